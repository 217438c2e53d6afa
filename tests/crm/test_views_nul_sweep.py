"""Every staff page, built from crm.urls.urlpatterns (a new URL must be classified here, so it
joins the sweep), and every admin page, given text PostgreSQL refuses: a NUL, and the bytes of a
lone surrogate (``%ED%A0%80``, half a UTF-16 pair written as UTF-8).

- GET of each page with each query parameter it reads (and a stray ``q``) set to either: never a
  500; a search finds what it finds without the NUL.
- POST of each action form (GET for the previews) with each field in turn carrying either: never
  a 500; a text field with a NUL answers with the form's error, and nothing is saved with it.
- The admin's list pages with ``q``, each list filter and the date drill-down set to either, its
  autocomplete's term, its change forms and the job actions' reason: never a 500, and a NUL
  typed in a text field is answered with the form's error.

The test client cannot send a lone surrogate as a ``str`` (it encodes bodies and query strings to
UTF-8, which refuses one), so its bytes go raw; Django decodes them to U+FFFD, which any database
stores. SQLite accepts a NUL where PostgreSQL raises, so after every request the whole database is
also read back: no text anywhere holds a NUL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, reverse

from crm.links import make_staff_calendar_token
from crm.models import (
    ApiKey,
    Campaign,
    Commitment,
    Contact,
    Customer,
    ImportRun,
    Job,
    JobFile,
    Message,
    Pipeline,
    Question,
    Visit,
    VisitKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from crm.services.api_keys import api_key_create
from crm.services.campaigns import CampaignDetails, campaign_create
from crm.services.csv_import import import_create
from crm.services.files import document_share
from crm.services.jobs import job_create
from crm.services.questions import question_create
from crm.services.visits import visit_book
from crm.services.webhooks import endpoint_create
from crm.urls import urlpatterns
from crm.views import customers as customer_views
from crm.workdays import business_zone
from tests.crm.test_admin import form_data
from tests.crm.test_csv_import import GOOD, csv_bytes
from tests.files import photo

pytestmark = pytest.mark.django_db

NUL = "\x00"
# What a browser or a script sends for "\ud800" (which no UTF-8 encoder takes): its bytes as
# UTF-8 would write them, percent-encoded.
SURROGATE_BYTES = "%ED%A0%80"
# Django's own message (forms.CharField), which every text field of ours shows for a NUL.
NUL_REFUSED = "Null characters are not allowed."


# --- Reading the database back ------------------------------------------------------------------


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def stored_with_nul() -> list[str]:
    """Every stored value, of every model, that holds a NUL (read in Python: a lookup with a NUL
    is itself refused by PostgreSQL)."""
    found = []
    for model in apps.get_models():
        for row in model._default_manager.values():
            if any(NUL in text for text in _texts(row)):
                found.append(f"{model._meta.label} {row.get('id')}")
    return found


# --- Sending odd values -------------------------------------------------------------------------


def with_nul(value: Any) -> Any:
    """``value`` (a form value, or a list of them) with a NUL in it."""
    if isinstance(value, list):
        return [f"{item}{NUL}" for item in value] or [NUL]
    return f"{value}{NUL}"


def encoded(data: dict[str, Any], *, surrogate_in: str) -> str:
    """``data`` urlencoded, with a lone surrogate's bytes after the value of ``surrogate_in``."""
    marker = "SURROGATEMARKER"
    value = data[surrogate_in]
    odd = ([f"{item}{marker}" for item in value] or [marker]) if isinstance(value, list) else f"{value}{marker}"
    return urlencode({**data, surrogate_in: odd}, doseq=True).replace(marker, SURROGATE_BYTES)


def get_raw(client: Client, url: str, query: str) -> Any:
    return client.get(f"{url}?{query}")


def post_raw(client: Client, url: str, body: str) -> Any:
    return client.post(url, body, content_type="application/x-www-form-urlencoded")


def shown(response: Any) -> str:
    """What the person reads after the request: the page, and the messages it left for the next."""
    notes = " ".join(str(message) for message in get_messages(response.wsgi_request))
    return response.content.decode(errors="replace") + notes


def test_it_sends_a_lone_surrogate_as_its_bytes_since_the_client_cannot_encode_it(client: Client) -> None:
    with pytest.raises(UnicodeEncodeError):
        client.post("/", {"q": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        client.get("/", {"q": "\ud800"})


# --- The world every page is opened in -----------------------------------------------------------


@dataclass
class World:
    job: Job
    customer: Customer
    contact: Contact
    installation: Pipeline
    commitment: Commitment
    question: Question
    job_message: Message
    inbound: Message
    campaign: Campaign
    run: ImportRun
    visit: Visit
    owner: User
    colleague: User
    document: JobFile
    api_key: ApiKey
    endpoint: WebhookEndpoint
    delivery: WebhookDelivery

    def stage(self, position: int) -> int:
        return self.installation.stages.get(position=position).pk


@pytest.fixture(autouse=True)
def frozen(time_machine) -> None:
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


@pytest.fixture
def world(customer: Customer, contact: Contact, installation: Pipeline, alice: User, bob: User, charlie: User) -> World:
    job = job_create(customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob)
    # This afternoon, with alice (the manager the pages are opened as) going: on her "Today" page.
    visit = visit_book(
        job=job,
        kind=VisitKind.objects.create(pipeline=installation, name="Site survey"),
        window_start=datetime(2026, 3, 2, 14, 0, tzinfo=business_zone()),
        installers=[alice],
        address="12 rue des Lilas, Lyon",
        actor=bob,
        tell_customer=False,
    )
    question = question_create(job=job, contact=contact, body="When do you come?", source=Question.Source.PORTAL)
    inbound = Message.objects.create(
        channel=Message.Channel.EMAIL,
        direction=Message.Direction.IN,
        kind=Message.Kind.REPLY,
        status=Message.Status.RECEIVED,
        from_address=contact.email,
        contact=contact,
        subject="About my pump",
        idempotency_key="in:sweep",
    )
    campaign = campaign_create(
        details=CampaignDetails(
            title="Spring filter tip",
            kind="tip",
            starts_on=date(2026, 3, 2),
            ends_on=date(2026, 3, 31),
            subject_en="Clean your filter",
            body_en="A clean filter saves energy.",
            subject_fr="Nettoyez votre filtre",
            body_fr="Un filtre propre économise l'énergie.",
        ),
        actor=bob,
    )
    endpoint = endpoint_create(
        url="https://example.com/hooks", event_types=["job.created"], description="", actor=alice
    )
    return World(
        api_key=api_key_create(name="ERP", owner=alice, scopes=["jobs:read"], actor=alice)[0],
        endpoint=endpoint,
        delivery=WebhookDelivery.objects.create(
            endpoint=endpoint, event_type="job.created", payload={}, status="failed"
        ),
        job=job,
        customer=customer,
        contact=contact,
        installation=installation,
        commitment=job.commitments.get(milestone__stage__name="Installed"),
        question=question,
        job_message=job.messages.order_by("pk").first() or inbound,
        inbound=inbound,
        campaign=campaign,
        run=import_create(file_name="clients.csv", data=csv_bytes(*GOOD), actor=bob),
        visit=visit,
        owner=bob,
        colleague=charlie,
        # A photo of the finished work shared with the customer: it has a thumbnail, and it can
        # be withdrawn.
        document=document_share(job=job, actor=bob, document=photo("finished.jpg"), title="The finished work"),
    )


@pytest.fixture
def manager(client: Client, alice: User) -> Client:
    """alice manages the team: every staff page and action is open to her."""
    # A 500 is a response here, not an exception, so the status is what the person would get.
    client.raise_request_exception = False
    client.force_login(alice)
    return client


def args_for(pattern: URLPattern, world: World) -> list[Any]:
    """The URL's arguments, naming the world's things."""
    name = str(pattern.name)
    by_converter: dict[str, Any] = {
        "public_id": (
            world.campaign.public_id
            if name.startswith("campaign")
            else world.run.public_id
            if name.startswith("import")
            else world.visit.public_id
            if name in ("visit_move", "visit_move_preview", "visit_cancel", "visit_crew", "visit_action")
            else world.job.public_id
        ),
        "pk": (
            world.contact.pk
            if name in ("contact_edit", "contact_reset_links")
            else world.api_key.pk
            if name.startswith("api_key")
            else world.delivery.pk
            if name == "webhook_delivery_send_again"
            else world.endpoint.pk
            if name.startswith("webhook")
            else world.customer.pk
        ),
        "token": make_staff_calendar_token(world.owner),
        "commitment_id": world.commitment.pk,
        "request_id": world.question.pk,
        "message_id": world.inbound.pk if name.startswith("inbox") else world.job_message.pk,
        "file_id": world.document.public_id,
        "language": "en",
    }
    return [by_converter[converter] for converter in pattern.pattern.converters]


def url_of(name: str, world: World) -> str:
    pattern = next(p for p in urlpatterns if p.name == name)
    return reverse(f"crm:{name}", args=args_for(pattern, world))


# --- What each page reads, and what each form takes ----------------------------------------------

# Pages, with the query parameters they read (each page is also tried with a stray "q").
PAGES: dict[str, tuple[str, ...]] = {
    "home": ("scope",),
    "search": ("q",),
    "schedule": ("day", "week", "who"),
    "staff_calendar": (),
    "account_security": ("next",),
    "two_factor_qr": (),
    "two_factor_verify": ("next",),
    "jobs": ("q", "owner", "pipeline", "stage", "status", "late", "sort", "page"),
    "job_board": ("pipeline", "owner"),
    "job": (),
    "inbox": ("page",),
    "customers": ("q", "page"),
    "customer": (),
    "customer_new": (),
    "customer_edit": (),
    "contact_new": (),
    "contact_edit": (),
    "job_new": ("customer", "q", "pipeline", "owner", "title", "start_date"),
    "commitment_move": (),
    "import": (),
    "import_sample": (),
    "import_detail": (),
    "import_mapping": (),
    "import_progress": (),
    "import_errors": (),
    "campaigns": ("page",),
    "campaign": (),
    "campaign_new": (),
    "campaign_edit": (),
    "campaign_preview": (),
    "campaign_progress": (),
    "health": ("from", "to", "owner", "format"),
    "satisfaction": ("from", "to", "owner", "installer", "pipeline", "format"),
    "api_keys": (),
    "webhooks": (),
    "webhook": (),
    "today": (),
    "job_file": (),
    "job_file_thumbnail": (),
}


@dataclass(frozen=True)
class Submission:
    """A form as a person sends it when all is well; ``text`` names its fields where a person
    types, which must answer a NUL with the form's error."""

    method: str
    data: dict[str, Any]
    text: tuple[str, ...]


def _advance(w: World) -> dict[str, Any]:
    return {
        "advance-to_stage": w.stage(2),
        "advance-expected_stage": w.job.current_stage_id,
        "advance-note": "Parts ordered",
        "advance-backwards_reason": "",
        "advance-notify_customer": "on",
    }


def _move(w: World) -> dict[str, Any]:
    return {
        "move-milestone": w.job.milestones.get(stage__position=5).pk,
        "move-new_date": "2026-04-20",
        "move-reason": "The engineer is ill",
        "move-tell_customer": "on",
        "move-note": "Sorry",
    }


def _message(w: World) -> dict[str, Any]:
    return {"message-contacts": [w.contact.pk], "message-body": "Parts arrived"}


def _text(w: World) -> dict[str, Any]:
    # The contact agreed to texts (the world's contact, given a mobile number and that consent).
    Contact.objects.filter(pk=w.contact.pk).update(
        phone="+33612345678", sms_consent_at=datetime(2026, 2, 1, tzinfo=business_zone()), sms_consent_source="form"
    )
    return {"text-contact": w.contact.pk, "text-body": "Parts arrived"}


def _logged_request(w: World) -> dict[str, Any]:
    return {
        "request-body": "A quote for a second charger",
        "request-source": "phone",
        "request-contact": w.contact.pk,
        "request-received_at": "2026-03-02T09:30",
    }


def _bulk(w: World) -> dict[str, Any]:
    return {"to_stage": w.stage(2), "note": "On our way", "notify_customer": "on", "back": "q=Heat&status=open"}


def _contact(w: World) -> dict[str, Any]:
    return {
        "name": "Paul Martin",
        "email": "paul@example.com",
        "phone": "+33 6 12 34 56 78",
        "language": "fr",
        "preferred_channel": "email",
        "time_zone": "Europe/Paris",
        "sms_consent_source": "",
    }


def _customer(w: World) -> dict[str, Any]:
    return {"name": "Martin household", "kind": "household", "address": "2 rue des Lilas", "notes": "A dog"}


def _campaign(w: World) -> dict[str, Any]:
    return {
        "title": "Open day",
        "kind": "event",
        "starts_on": "2026-03-21",
        "ends_on": "2026-03-21",
        "link_url": "https://example.com/open-day",
        "subject_en": "Come to our open day",
        "body_en": "See a heat pump running.",
        "link_label_en": "Book a place",
        "subject_fr": "Venez à nos portes ouvertes",
        "body_fr": "Voyez une pompe à chaleur en marche.",
        "link_label_fr": "Réserver",
        "pipeline": "",
        "language": "",
    }


def _new_job(w: World) -> dict[str, Any]:
    return {
        "customer": w.customer.pk,
        "pipeline": w.installation.pk,
        "owner": w.owner.pk,
        "title": "Boiler",
        "contacts": [w.contact.pk],
        "start_date": "",
        "notify_customer": "on",
        "not_told_reason": "Told at the showroom",
    }


def _book_visit(w: World) -> dict[str, Any]:
    return {
        "visit_book-kind": w.visit.kind_id,
        "visit_book-day": "2026-03-04",
        "visit_book-start": "09:00",
        "visit_book-end": "11:00",
        "visit_book-all_day": "",
        "visit_book-installers": [w.colleague.pk],
        "visit_book-subcontractor": "Froid Services",
        "visit_book-address": "12 rue des Lilas, Lyon",
        "visit_book-prepare": "Clear the way to the boiler",
        "visit_book-tell_customer": "on",
        "visit_book-double_booking": "",
    }


def _move_visit(w: World) -> dict[str, Any]:
    prefix = f"visit-{w.visit.pk}-move"
    return {
        f"{prefix}-reason": "The engineer is ill",
        f"{prefix}-day": "2026-03-05",
        f"{prefix}-start": "14:00",
        f"{prefix}-end": "16:00",
        f"{prefix}-all_day": "",
        f"{prefix}-tell_customer": "on",
        f"{prefix}-expected_version": w.visit.version,
    }


def _cancel_visit(w: World) -> dict[str, Any]:
    prefix = f"visit-{w.visit.pk}-cancel"
    return {
        f"{prefix}-reason": "The customer sold the house",
        f"{prefix}-tell_customer": "on",
        f"{prefix}-expected_version": w.visit.version,
    }


def _crew_visit(w: World) -> dict[str, Any]:
    prefix = f"visit-{w.visit.pk}-crew"
    return {f"{prefix}-subcontractor": "Acme Roofing", f"{prefix}-expected_version": w.visit.version}


CAMPAIGN_TEXT = (
    "title",
    "link_url",
    "subject_en",
    "body_en",
    "link_label_en",
    "subject_fr",
    "body_fr",
    "link_label_fr",
)

FORMS: dict[str, Callable[[World], list[Submission]]] = {
    "job_advance": lambda w: [Submission("post", _advance(w), ("advance-note", "advance-backwards_reason"))],
    "job_advance_preview": lambda w: [Submission("get", _advance(w), ("advance-note", "advance-backwards_reason"))],
    "job_board_move": lambda w: [
        Submission("get", {"to": w.stage(2), "expected": w.job.current_stage_id, "pipeline": "", "owner": "all"}, ()),
        Submission("post", {**_advance(w), "owner": "all"}, ("advance-note", "advance-backwards_reason")),
    ],
    "job_move_date": lambda w: [Submission("post", _move(w), ("move-reason", "move-note"))],
    "job_move_date_preview": lambda w: [Submission("get", _move(w), ("move-reason", "move-note"))],
    "job_log_call": lambda w: [
        Submission(
            "post",
            {
                "call-contact": w.contact.pk,
                "call-outcome": "reached",
                "call-notes": "Talked",
                "call-callback_on": "",
                "call-asked": "A quote for a second charger",
            },
            ("call-notes", "call-asked"),
        )
    ],
    "job_send_message": lambda w: [Submission("post", _message(w), ("message-body",))],
    "job_message_preview": lambda w: [Submission("get", _message(w), ("message-body",))],
    "job_send_text": lambda w: [Submission("post", _text(w), ("text-body",))],
    "job_text_preview": lambda w: [Submission("get", _text(w), ("text-body",))],
    "job_reassign": lambda w: [
        Submission("post", {"owner-owner": w.colleague.pk, "owner-reason": "Holiday"}, ("owner-reason",))
    ],
    "job_change_status": lambda w: [
        Submission("post", {"status-action": "hold", "status-reason": "Waiting for parts"}, ("status-reason",))
    ],
    "job_edit_details": lambda w: [
        Submission(
            "post",
            {"details-title": "Heat pump", "details-contacts": [w.contact.pk], "details-installers": []},
            ("details-title",),
        )
    ],
    "question_answer": lambda w: [Submission("post", {"body": "On Tuesday"}, ("body",))],
    "job_question_new": lambda w: [Submission("post", _logged_request(w), ("request-body",))],
    "customer_question_new": lambda w: [
        Submission("post", {**_logged_request(w), "request-job": w.job.pk}, ("request-body",))
    ],
    "inbox_assign": lambda w: [Submission("post", {"job": w.job.pk}, ())],
    "jobs_bulk_review": lambda w: [
        Submission("post", {**_bulk(w), "jobs": [str(w.job.public_id)]}, ("note", "back")),
        Submission("post", {**_bulk(w), "all_on_page": "on", "on_page": [str(w.job.public_id)]}, ("note",)),
    ],
    "jobs_bulk_move": lambda w: [
        Submission("post", {**_bulk(w), "seen": [f"{w.job.public_id}:{w.job.current_stage_id}"]}, ("note", "back"))
    ],
    "commitment_move": lambda w: [
        Submission("get", {"new_date": "2026-04-20", "reason": "Parts are late", "note": "Sorry"}, ("reason", "note")),
        Submission("post", {"new_date": "2026-04-20", "reason": "Parts are late", "note": "Sorry"}, ("reason", "note")),
    ],
    "promise_new": lambda w: [
        Submission(
            "post",
            {"promise-title": "The quote", "promise-due_on": "2026-03-06", "promise-contact": w.contact.pk},
            ("promise-title",),
        )
    ],
    "status_update": lambda w: [Submission("post", {"update-note": "All on track"}, ("update-note",))],
    "customer_new": lambda w: [Submission("post", _customer(w), ("name", "address", "notes"))],
    "customer_edit": lambda w: [Submission("post", _customer(w), ("name", "address", "notes"))],
    "contact_new": lambda w: [Submission("post", _contact(w), ("name", "email", "phone", "sms_consent_source"))],
    "contact_edit": lambda w: [Submission("post", _contact(w), ("name", "email", "phone", "sms_consent_source"))],
    "job_new": lambda w: [Submission("post", _new_job(w), ("title", "not_told_reason"))],
    "job_new_preview": lambda w: [Submission("get", _new_job(w), ("title", "not_told_reason"))],
    "import_mapping": lambda w: [Submission("post", {k: str(v) for k, v in w.run.mapping.items()}, ())],
    "import_start": lambda w: [Submission("post", {"valid_only": "on"}, ())],
    "campaign_new": lambda w: [Submission("post", _campaign(w), CAMPAIGN_TEXT)],
    "campaign_edit": lambda w: [Submission("post", _campaign(w), CAMPAIGN_TEXT)],
    "visit_book": lambda w: [
        Submission("post", _book_visit(w), ("visit_book-subcontractor", "visit_book-address", "visit_book-prepare"))
    ],
    "visit_book_preview": lambda w: [
        Submission("get", _book_visit(w), ("visit_book-subcontractor", "visit_book-address", "visit_book-prepare"))
    ],
    "visit_move": lambda w: [Submission("post", _move_visit(w), (f"visit-{w.visit.pk}-move-reason",))],
    "visit_move_preview": lambda w: [Submission("get", _move_visit(w), (f"visit-{w.visit.pk}-move-reason",))],
    "visit_cancel": lambda w: [Submission("post", _cancel_visit(w), (f"visit-{w.visit.pk}-cancel-reason",))],
    "visit_crew": lambda w: [Submission("post", _crew_visit(w), (f"visit-{w.visit.pk}-crew-subcontractor",))],
    "document_withdraw": lambda w: [Submission("post", {"reason": "Replaced by the new one"}, ("reason",))],
    "api_keys": lambda w: [
        Submission("post", {"name": "Shop", "owner": str(w.owner.pk), "scopes": ["jobs:read"]}, ("name",))
    ],
    "webhooks": lambda w: [
        Submission(
            "post",
            {"url": "https://example.org/in", "description": "Shop", "event_types": ["job.created"]},
            ("url", "description"),
        )
    ],
    "webhook": lambda w: [
        Submission(
            "post",
            {"url": "https://example.org/in", "description": "Shop", "event_types": ["job.created"]},
            ("url", "description"),
        )
    ],
    # The "Today" page's buttons; the visit is this afternoon's (the world's clock is 10:00).
    "visit_action": lambda w: [
        Submission("post", {"action": "on_the_way", "minutes": "30", "at": "", "reason": ""}, ("reason",)),
        Submission(
            "post", {"action": "running_late", "minutes": "", "at": "14:30", "reason": "Traffic in Lyon"}, ("reason",)
        ),
        Submission("post", {"action": "missed", "minutes": "", "at": "", "reason": "Nobody home"}, ("reason",)),
    ],
}

# Buttons: a POST with nothing typed (tried with a stray field all the same).
BUTTONS = {
    "staff_calendar_reset",
    "two_factor_start",
    "two_factor_confirm",
    "two_factor_off",
    "backup_codes_new",
    "contact_reset_links",
    "alert_send_again",
    "alert_handled",
    "message_handled",
    "message_retry",
    "inbox_dismiss",
    "commitment_kept",
    "import_restart",
    "campaign_send",
    "campaign_resume",
    "dates_tell",
    # The world's pipeline has no roles: the form has no field (tried with a stray one).
    "job_roles",
    "api_key_revoke",
    "webhook_rotate",
    "webhook_active",
    "webhook_delivery_send_again",
}
# The upload's file is not a form value: test_it_imports_a_file_with_nul_in_its_name_and_cells, and
# tests/crm/test_views_files.py for a shared document (a NUL in its title and in its file name).
UPLOADS = {"import", "document_share"}

NAMES = [str(p.name) for p in urlpatterns]


def test_it_sweeps_every_staff_url() -> None:
    for name in NAMES:
        assert name in PAGES or name in FORMS or name in BUTTONS or name in UPLOADS, (
            f"classify crm:{name} in {__name__}"
        )
    assert set(PAGES) | set(FORMS) | BUTTONS | UPLOADS <= set(NAMES), "a name here is no longer a URL"


# --- Pages --------------------------------------------------------------------------------------


def _get_page(client: Client, url: str, parameters: tuple[str, ...]) -> None:
    for parameter in dict.fromkeys((*parameters, "q")):
        for response in (
            client.get(url, {parameter: NUL}),
            client.get(url, {parameter: f"Heat{NUL}"}),
            get_raw(client, url, f"{parameter}={SURROGATE_BYTES}"),
        ):
            assert response.status_code != 500, (url, parameter)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_it_opens_every_page_whatever_its_query_string_holds(
    manager: Client, world: World, monkeypatch, name: str
) -> None:
    url = url_of(name, world)
    _get_page(manager, url, PAGES[name])
    if name == "job_new":
        # Past CUSTOMER_SELECT_MAX customers the page searches for the customer (?q=).
        monkeypatch.setattr(customer_views, "CUSTOMER_SELECT_MAX", 0)
        _get_page(manager, url, PAGES[name])
    assert stored_with_nul() == []


@pytest.mark.parametrize(
    "name", ["jobs", "customers", "job_new"], ids=["jobs list", "customers list", "new job's customer search"]
)
def test_it_searches_as_if_the_nul_was_not_typed(manager: Client, world: World, monkeypatch, name: str) -> None:
    monkeypatch.setattr(customer_views, "CUSTOMER_SELECT_MAX", 0)
    search = {"jobs": "Heat", "customers": "Dupont", "job_new": "Dupont"}[name]
    query = {"owner": "all"} if name == "jobs" else {}

    plain = manager.get(reverse(f"crm:{name}"), {**query, "q": search})
    with_nul = manager.get(reverse(f"crm:{name}"), {**query, "q": f"{search[:2]}{NUL}{search[2:]}{NUL}"})

    assert with_nul.status_code == plain.status_code == 200
    found = {
        "jobs": lambda r: [job.reference for job in r.context["page"].object_list],
        "customers": lambda r: [customer.name for customer in r.context["customers"]],
        "job_new": lambda r: [customer.name for customer in r.context["matches"].customers],
    }[name]
    assert found(with_nul) == found(plain) != []


# --- Forms --------------------------------------------------------------------------------------


def _send(client: Client, method: str, url: str, data: dict[str, Any]) -> Any:
    return client.get(url, data) if method == "get" else client.post(url, data)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_it_answers_every_form_with_nul_with_its_error(manager: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    for submission in FORMS[name](world):
        for field_name, value in submission.data.items():
            response = _send(manager, submission.method, url, {**submission.data, field_name: with_nul(value)})

            assert response.status_code != 500, (name, field_name)
            if field_name in submission.text:
                assert NUL_REFUSED in shown(response), (name, field_name)
    assert stored_with_nul() == []


@pytest.mark.parametrize("name", sorted(FORMS))
def test_it_takes_a_lone_surrogate_in_any_field_of_every_form(manager: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    for submission in FORMS[name](world):
        for field_name in submission.data:
            body = encoded(submission.data, surrogate_in=field_name)
            response = (get_raw if submission.method == "get" else post_raw)(manager, url, body)

            assert response.status_code != 500, (name, field_name)


@pytest.mark.parametrize("name", sorted(BUTTONS))
def test_it_ignores_odd_fields_sent_with_a_button(manager: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    assert manager.post(url, {"reason": NUL, "note": NUL}).status_code != 500
    assert post_raw(manager, url, f"reason={SURROGATE_BYTES}").status_code != 500
    assert stored_with_nul() == []


def test_it_imports_a_file_with_nul_in_its_name_and_cells(manager: Client) -> None:
    # With a byte-order mark the file is read as UTF-8 whatever it holds (without one, a NUL
    # makes it unreadable as text: test_csv_import.py).
    data = b"\xef\xbb\xbf" + csv_bytes(*GOOD).replace(b"Marie Dupont", b"Marie\x00 Dupont")

    response = manager.post(
        reverse("crm:import"), {"file": SimpleUploadedFile("clients\x00.csv", data, content_type="text/csv")}
    )

    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.VALIDATED
    assert run.invalid_rows == 0
    assert run.file_name == "clients.csv"
    assert "Marie Dupont" in [cells[3] for _number, cells in run.rows]
    assert stored_with_nul() == []


# --- The admin ----------------------------------------------------------------------------------


def _filter_parameters(model_admin: admin.ModelAdmin) -> list[str]:
    """The query parameters of the list page's filters and date drill-down (a few lookups each:
    the filters compare the value as it comes)."""
    names: list[str] = []
    for list_filter in model_admin.list_filter:
        if isinstance(list_filter, str):
            names += [list_filter, f"{list_filter}__gte"]
        elif isinstance(list_filter, tuple):
            names += [f"{list_filter[0]}__isempty", f"{list_filter[0]}__id__exact"]
        else:
            names.append(list_filter.parameter_name)
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    return names


ADMINS = list(admin.site._registry.items())


@pytest.fixture
def superuser_client(client: Client, superuser: User) -> Client:
    client.raise_request_exception = False
    client.force_login(superuser)
    return client


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=[m._meta.label for m, _a in ADMINS])
def test_it_lists_every_admin_page_whatever_its_filters_hold(
    superuser_client: Client, world: World, model: type, model_admin: admin.ModelAdmin
) -> None:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    for parameter in ["q", *_filter_parameters(model_admin)]:
        for response in (
            superuser_client.get(url, {parameter: NUL}),
            get_raw(superuser_client, url, f"{parameter}={SURROGATE_BYTES}"),
        ):
            assert response.status_code != 500, (url, parameter)


AUTOCOMPLETES = [
    (model, name) for model, model_admin in ADMINS for name in getattr(model_admin, "autocomplete_fields", ())
]


@pytest.mark.parametrize(("model", "field_name"), AUTOCOMPLETES, ids=[f"{m.__name__}.{f}" for m, f in AUTOCOMPLETES])
def test_it_completes_every_admin_autocomplete_whatever_is_typed(
    superuser_client: Client, world: World, model: type, field_name: str
) -> None:
    query = {"app_label": model._meta.app_label, "model_name": model._meta.model_name, "field_name": field_name}
    url = reverse("admin:autocomplete")

    typed = superuser_client.get(url, {**query, "term": f"D{NUL}"})
    raw = get_raw(superuser_client, url, urlencode(query) + f"&term={SURROGATE_BYTES}")

    assert typed.status_code == 200
    assert raw.status_code == 200


CHANGE_FORMS: dict[str, Callable[[World], Any]] = {
    "customer": lambda w: w.customer,
    "contact": lambda w: w.contact,
    "pipeline": lambda w: w.installation,
    "stagetemplate": lambda w: w.installation.stages.get(position=2),
    "job": lambda w: w.job,
    "milestone": lambda w: w.job.milestones.get(stage__position=5),
}


@pytest.mark.parametrize("model_name", sorted(CHANGE_FORMS))
def test_it_answers_every_admin_change_form_with_nul_with_its_error(
    superuser_client: Client, world: World, model_name: str
) -> None:
    obj = CHANGE_FORMS[model_name](world)
    url = reverse(f"admin:crm_{model_name}_change", args=[obj.pk])
    page = superuser_client.get(url)
    data = form_data(page)
    form = page.context["adminform"].form
    for name in form.fields:
        if name not in data or form.fields[name].disabled:
            continue
        response = superuser_client.post(url, {**data, name: with_nul(data[name])})
        raw = post_raw(superuser_client, url, encoded(data, surrogate_in=name))

        assert response.status_code != 500, (model_name, name)
        assert raw.status_code != 500, (model_name, name)
        if isinstance(form.fields[name], forms.CharField):
            assert NUL_REFUSED in shown(response), (model_name, name)
    assert stored_with_nul() == []


@pytest.mark.parametrize("action", ["hold", "cancel", "complete", "resume"])
def test_it_refuses_an_admin_action_reason_with_nul(superuser_client: Client, world: World, action: str) -> None:
    url = reverse("admin:crm_job_changelist")
    events = world.job.events.count()

    refused = superuser_client.post(
        url, {"action": action, "_selected_action": [world.job.pk], "reason": f"P{NUL}"}, follow=True
    )
    assert refused.status_code == 200
    assert NUL_REFUSED in refused.content.decode()
    assert world.job.events.count() == events

    raw = post_raw(
        superuser_client, url, f"action={action}&_selected_action={world.job.pk}&reason=Parts{SURROGATE_BYTES}"
    )
    assert raw.status_code == 302
    assert stored_with_nul() == []
