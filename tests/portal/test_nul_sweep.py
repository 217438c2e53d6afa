"""Every portal URL, built from portal.urls.urlpatterns (a new URL must be classified here, so it
joins the sweep), given text PostgreSQL refuses: a NUL, and the bytes of a lone surrogate
(``%ED%A0%80``; see tests/crm/test_views_nul_sweep.py for why they are sent raw).

- GET of each page with each query parameter it reads (and a stray one), and of each token URL
  with a NUL in its token: never a 500.
- POST of each form with each field in turn carrying either: never a 500; a field where the
  person types answers a NUL with the form's error; nothing is saved with a NUL.
- The language switcher's ``next``: a path on this site, else the page the browser came from,
  else "My jobs" — never a 500, never another site, whatever it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, reverse

from crm.links import (
    make_calendar_token,
    make_checkin_token,
    make_link_token,
    make_short_token,
    make_survey_token,
    make_unsubscribe_token,
    make_visit_calendar_token,
)
from crm.models import Contact, Job, JobFile, Pipeline, Visit, VisitKind
from crm.services.checkins import check_in_send
from crm.services.jobs import job_complete, job_create
from crm.services.surveys import survey_invite
from crm.services.visits import visit_book
from portal.urls import urlpatterns
from tests.crm.test_views_nul_sweep import NUL, NUL_REFUSED, SURROGATE_BYTES, encoded, shown, stored_with_nul, with_nul
from tests.files import received

from .conftest import PARIS

pytestmark = pytest.mark.django_db


@dataclass
class World:
    job: Job
    done_job: Job
    john: Contact
    visit: Visit
    photo: JobFile

    def token(self, name: str) -> str:
        makers: dict[str, Callable[[], str]] = {
            "enter": lambda: make_link_token(self.john),
            "short_enter": lambda: make_short_token(self.john, self.job),
            "calendar": lambda: make_calendar_token(self.john),
            "unsubscribe": lambda: make_unsubscribe_token(self.john),
            "survey": lambda: make_survey_token(job_id=self.job.public_id, contact_id=self.john.pk),
            "checkin": lambda: make_checkin_token(job_id=self.done_job.public_id, contact_id=self.john.pk),
            "visit_calendar": lambda: make_visit_calendar_token(contact_id=self.john.pk, visit_id=self.visit.public_id),
        }
        return makers[name]()


@pytest.fixture
def world(job: Job, john: Contact, installation: Pipeline, bob) -> World:
    assert survey_invite(job=job, contact=john) is not None
    done_job = job_create(
        customer=john.customer,
        pipeline=installation,
        owner=bob,
        title="Boiler service",
        actor=bob,
        contacts=[john],
        start_date=date(2026, 3, 2),
    )
    job_complete(job=done_job, actor=bob)
    assert check_in_send(job=done_job, contact=john) is not None
    visit = visit_book(
        job=job,
        kind=VisitKind.objects.create(pipeline=installation, name="Installation day"),
        window_start=datetime(2026, 3, 3, 14, 0, tzinfo=PARIS),
        address="1 rue de la Paix, Paris",
        actor=bob,
        tell_customer=False,
    )
    (photo,) = received(job, john, "meter.jpg")
    return World(job=job, done_job=done_job, john=john, visit=visit, photo=photo)


@pytest.fixture
def john_sweeps(john_client: Client) -> Client:
    # A 500 is a response here, not an exception, so the status is what the person would get.
    john_client.raise_request_exception = False
    return john_client


def args_for(pattern: URLPattern, world: World, *, token: str | None = None) -> list[Any]:
    converters = pattern.pattern.converters
    if "visit_id" in converters:
        return [world.job.public_id, world.visit.public_id]
    if "file_id" in converters:
        return [world.job.public_id, world.photo.public_id]
    if "public_id" in converters:
        return [world.job.public_id]
    if "token" in converters:
        return [world.token(str(pattern.name)) if token is None else token]
    if "code" in converters:
        return ["c0ffee00-0000-4000-8000-000000000000"]
    return []


def url_of(name: str, world: World) -> str:
    pattern = next(p for p in urlpatterns if p.name == name)
    return reverse(f"portal:{name}", args=args_for(pattern, world))


# Pages, with the query parameters they read (each page is also tried with a stray "q").
PAGES: dict[str, tuple[str, ...]] = {
    "home": (),
    "job": (),
    "job_status": (),
    "ask": (),
    "visit_confirm": (),
    "visit_another_time": (),
    "visit_choose": (),
    "preferences": (),
    "reset_links": (),
    "language": ("language", "next"),
    "sign_out": (),
    "enter": ("job", "visit", "answer"),
    "short_enter": (),
    "signed_out": ("job", "reason"),
    "link_sent": (),
    "calendar": (),
    "visit_calendar": (),
    "unsubscribe": (),
    "survey": ("product", "workmanship", "conduct", "recommend", "edit"),
    "checkin": ("answer",),
    "campaign": ("lang",),
    "upload": (),
    "file": (),
    "file_thumbnail": (),
}


@dataclass(frozen=True)
class Submission:
    """A form as a person sends it; ``text`` names the fields where they type."""

    data: dict[str, Any]
    text: tuple[str, ...]


FORMS: dict[str, Callable[[World], Submission]] = {
    "ask": lambda w: Submission({"body": "When do you come?"}, ("body",)),
    "visit_another_time": lambda w: Submission({"note": "Thursday?", "version": str(w.visit.version)}, ("note",)),
    "visit_choose": lambda w: Submission(
        {"start": (w.visit.window_start + timedelta(days=1)).isoformat(), "version": str(w.visit.version)}, ()
    ),
    "preferences": lambda w: Submission(
        {"language": "en", "preferred_channel": "email", "non_essential": "on", "time_zone": "Europe/London"}, ()
    ),
    "language": lambda w: Submission({"language": "fr", "next": reverse("portal:home")}, ()),
    "signed_out": lambda w: Submission({"address": w.john.email, "job": str(w.job.public_id)}, ("address",)),
    "survey": lambda w: Submission(
        {"product_quality": "5", "workmanship": "4", "installer_conduct": "5", "recommend": "9", "comment": "Tidy."},
        ("comment",),
    ),
    "checkin": lambda w: Submission({"answer": "problem", "details": "The pump is noisy."}, ("details",)),
    # The photos themselves: tests/portal/test_files.py (a NUL in a file's name); the note here.
    "upload": lambda w: Submission({"note": "The meter"}, ("note",)),
}
# Buttons: a POST with nothing typed (tried with a stray field all the same).
BUTTONS = {"sign_out", "unsubscribe", "visit_confirm", "reset_links"}

NAMES = [str(p.name) for p in urlpatterns]
TOKEN_PATTERNS = [p for p in urlpatterns if "token" in p.pattern.converters]


def test_it_sweeps_every_portal_url() -> None:
    for name in NAMES:
        assert name in PAGES, f"classify portal:{name} in {__name__}"
    assert set(PAGES) | set(FORMS) | BUTTONS <= set(NAMES), "a name here is no longer a URL"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_it_opens_every_page_whatever_its_query_string_holds(john_sweeps: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    for parameter in dict.fromkeys((*PAGES[name], "q")):
        for response in (
            john_sweeps.get(url, {parameter: NUL}),
            john_sweeps.get(url, {parameter: f"5{NUL}"}),
            john_sweeps.get(f"{url}?{parameter}={SURROGATE_BYTES}"),
        ):
            assert response.status_code != 500, (name, parameter)
    assert stored_with_nul() == []


@pytest.mark.parametrize("pattern", TOKEN_PATTERNS, ids=[str(p.name) for p in TOKEN_PATTERNS])
def test_it_answers_a_token_with_nul_as_any_bad_token(john_sweeps: Client, world: World, pattern: URLPattern) -> None:
    good = world.token(str(pattern.name))
    for token in (NUL, f"{good}{NUL}", f"{good[:5]}{NUL}{good[5:]}", "\ufffd"):
        url = reverse(f"portal:{pattern.name}", args=args_for(pattern, world, token=token))
        assert john_sweeps.get(url).status_code in (302, 404), (pattern.name, token)
        assert john_sweeps.post(url, {"answer": "all_good"}).status_code in (302, 404, 405), (pattern.name, token)
    world.john.refresh_from_db()
    assert world.john.opted_out_at is None


@pytest.mark.parametrize("name", sorted(FORMS))
def test_it_answers_every_form_with_nul_with_its_error(john_sweeps: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    submission = FORMS[name](world)
    for field_name, value in submission.data.items():
        response = john_sweeps.post(url, {**submission.data, field_name: with_nul(value)})

        assert response.status_code != 500, (name, field_name)
        if field_name in submission.text:
            assert NUL_REFUSED in shown(response), (name, field_name)
    assert stored_with_nul() == []


@pytest.mark.parametrize("name", sorted(FORMS))
def test_it_takes_a_lone_surrogate_in_any_field_of_every_form(john_sweeps: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    submission = FORMS[name](world)
    for field_name in submission.data:
        body = encoded(submission.data, surrogate_in=field_name)
        response = john_sweeps.post(url, body, content_type="application/x-www-form-urlencoded")

        assert response.status_code != 500, (name, field_name)


@pytest.mark.parametrize("name", sorted(BUTTONS))
def test_it_ignores_odd_fields_sent_with_a_button(john_sweeps: Client, world: World, name: str) -> None:
    url = url_of(name, world)
    assert john_sweeps.post(url, {"next": NUL, "reason": NUL}).status_code != 500
    assert (
        john_sweeps.post(url, f"next={SURROGATE_BYTES}", content_type="application/x-www-form-urlencoded").status_code
        != 500
    )
    assert stored_with_nul() == []


# --- The language switcher's "next" -------------------------------------------------------------


@pytest.mark.parametrize(
    "next_value",
    [
        "hello",  # redirect() took it for a view name: a 500
        "crm:home",  # a view name that exists: the staff pages
        "portal:home",
        "https://evil.example.com/",
        "//evil.example.com/portal/",
        "/\\evil.example.com",
        "http://testserver/portal/preferences/",  # ours, but not a path
        "/portal/\x00/",
        "\x00/portal/",
        "",
    ],
)
def test_it_goes_home_for_a_next_that_is_not_a_local_path(client: Client, db, next_value: str) -> None:
    client.raise_request_exception = False
    response = client.post(reverse("portal:language"), {"language": "fr", "next": next_value})

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:home")


def test_it_goes_back_to_a_local_path(client: Client, db) -> None:
    target = reverse("portal:signed_out") + "?reason=expired"
    response = client.post(reverse("portal:language"), {"language": "fr", "next": target})
    assert response["Location"] == target


def test_it_goes_back_to_the_page_it_came_from_without_a_usable_next(john_client: Client, job: Job) -> None:
    page = reverse("portal:job", args=[job.public_id])

    came_from = john_client.post(
        reverse("portal:language"), {"language": "fr", "next": "hello"}, HTTP_REFERER=f"http://testserver{page}?x=1"
    )
    from_elsewhere = john_client.post(
        reverse("portal:language"), {"language": "fr"}, HTTP_REFERER="https://evil.example.com/portal/"
    )
    from_a_nul = john_client.post(
        reverse("portal:language"), {"language": "fr"}, HTTP_REFERER="http://testserver/portal/\x00"
    )

    assert came_from["Location"] == f"{page}?x=1"
    assert from_elsewhere["Location"] == reverse("portal:home")
    assert from_a_nul["Location"] == reverse("portal:home")


def test_it_sends_a_new_link_whatever_the_hidden_job_holds(client: Client, john: Contact) -> None:
    # The job travels in a hidden field: a NUL there is no error the person could see or fix.
    response = client.post(reverse("portal:signed_out"), {"address": john.email, "job": f"x{NUL}"})
    assert response["Location"] == reverse("portal:link_sent")
