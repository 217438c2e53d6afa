"""Every portal URL, built from portal.urls.urlpatterns (a new URL is swept automatically):

- with another customer's session, a URL naming a job (``<uuid:public_id>``) is a 404, and so is
  one naming a visit of that job (``<uuid:visit_id>``);
- with a tampered token, a URL carrying a token is a 404 — except the sign-in link, which never
  dead-ends: it redirects to the page that sends a fresh link;
- anonymous, a page that needs a contact redirects to that page (with the job it was about); the
  public pages are listed here by name, so a new URL without a parameter must be classified;
- every form needs the CSRF token, and no mutation happens on GET: a GET of a mutation's URL goes
  on to a page (no portal URL dead-ends on a blank 405);
- a file (``<uuid:file_id>``) is found through its job: another customer's job's file is a 404;
- a campaign link (``<str:code>``) is public and durable: a code naming no campaign is a friendly
  404 page, never a redirect (tests/portal/test_campaign_links.py covers the rest).
"""

from __future__ import annotations

import uuid
from datetime import datetime

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
from crm.models import Contact, Job, JobFile, Message, Question, Visit, VisitKind
from crm.services.visits import visit_book
from portal.access import SESSION_KEY, SESSION_LANGUAGE_KEY
from portal.urls import urlpatterns
from tests.files import png, received, upload

from .conftest import PARIS

# Pages without a parameter: what an anonymous visitor gets.
NEEDS_CONTACT = {"home", "preferences", "reset_links"}
PUBLIC = {"signed_out", "link_sent", "language", "sign_out"}
# Views that change something on POST only; a GET goes on to a page (the unsubscribe link asks
# on GET, acts on POST).
MUTATIONS = {
    "ask",
    "upload",
    "visit_confirm",
    "visit_another_time",
    "visit_choose",
    "language",
    "sign_out",
    "reset_links",
}
# A visit's answers: a GET shows the page of that answer (where a message's one-click link lands).
ANSWER_PAGES = {"visit_confirm", "visit_another_time", "visit_choose"}
# Token URLs where a bad token still leads somewhere useful instead of a 404.
REDIRECTS_ON_BAD_TOKEN = {"enter", "short_enter"}
# One-click unsubscribe (RFC 8058): mail providers POST without a cookie; the token is the proof.
CSRF_EXEMPT = {"unsubscribe"}

# Not pages: a file's bytes (no template).
FILES = {"file", "file_thumbnail"}

# Public pages named by a code anyone with the message has (a campaign's durable link).
PUBLIC_CODES = {"campaign"}

TOKEN_MAKERS = {
    "enter": make_link_token,
    "short_enter": make_short_token,
    "calendar": make_calendar_token,
    "unsubscribe": make_unsubscribe_token,
    # A survey or check-in link names a job as well; the sweep's tokens name one of nobody's jobs
    # (tests/portal/test_survey.py covers the contact's own and another customer's job).
    "survey": lambda contact: make_survey_token(job_id=uuid.uuid4(), contact_id=contact.pk),
    "checkin": lambda contact: make_checkin_token(job_id=uuid.uuid4(), contact_id=contact.pk),
    "visit_calendar": lambda contact: make_visit_calendar_token(contact_id=contact.pk, visit_id=uuid.uuid4()),
}


@pytest.fixture
def visit(job: Job) -> Visit:
    """A visit of John's job (the sweep's URLs that name a visit name this one or a stranger's)."""
    return _book(job)


@pytest.fixture
def stranger_visit(stranger_job: Job) -> Visit:
    return _book(stranger_job)


@pytest.fixture(autouse=True)
def _files(job: Job, john: Contact, stranger_job: Job, stranger: Contact) -> None:
    """A photo on John's job and on the stranger's (the sweep's URLs that name a file)."""
    received(job, john)
    received(stranger_job, stranger)


def _book(job: Job) -> Visit:
    kind, _created = VisitKind.objects.get_or_create(pipeline=job.pipeline, name="Installation day")
    return visit_book(
        job=job,
        kind=kind,
        window_start=datetime(2026, 3, 3, 14, 0, tzinfo=PARIS),
        address="1 rue de la Paix, Paris",
        actor=job.owner,
        tell_customer=False,
    )


def params(pattern: URLPattern) -> set[str]:
    return set(pattern.pattern.converters)


def patterns_with(name: str) -> list[URLPattern]:
    return [p for p in urlpatterns if name in params(p)]


def ids(patterns: list[URLPattern]) -> list[str]:
    return [p.name for p in patterns]


def call(client: Client, pattern: URLPattern, url: str, **data: object):  # type: ignore[no-untyped-def]
    """POST for a mutation, else GET (or POST for a view that only takes POST)."""
    if pattern.name in MUTATIONS:
        if pattern.name == "upload":
            data["attachments"] = upload("photo.png", png(), "image/png")
        return client.post(url, data)
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, data)
    return response


def job_args(pattern: URLPattern, job: Job, visit: Visit) -> list[object]:
    """A job URL's arguments: the job, and the visit or the file of that job when the URL names
    one."""
    if "visit_id" in params(pattern):
        return [job.public_id, visit.public_id]
    if "file_id" in params(pattern):
        return [job.public_id, JobFile.objects.filter(job=job).values_list("public_id", flat=True).first()]
    return [job.public_id]


def args_for(pattern: URLPattern, contact: Contact, job: Job, visit: Visit) -> list[object]:
    """Arguments that name the contact's own things: the URL's page as that contact sees it."""
    if "public_id" in params(pattern):
        return job_args(pattern, job, visit)
    if "token" in params(pattern):
        return [TOKEN_MAKERS[pattern.name](contact)]
    if "code" in params(pattern):
        return [uuid.uuid4()]
    return []


def test_every_url_is_classified() -> None:
    for pattern in urlpatterns:
        kinds = params(pattern)
        assert kinds <= {"public_id", "visit_id", "file_id", "token", "code"}, (
            f"{pattern.name}: sweep a new kind of parameter {kinds}"
        )
        if "visit_id" in kinds or "file_id" in kinds:
            assert "public_id" in kinds, f"{pattern.name}: a visit or a file is found through its job"
        if "code" in kinds:
            assert pattern.name in PUBLIC_CODES, f"classify {pattern.name} in {__name__}"
        if not kinds:
            assert pattern.name in NEEDS_CONTACT | PUBLIC, f"classify {pattern.name} in {__name__}"
        if "token" in kinds:
            assert pattern.name in TOKEN_MAKERS, f"add {pattern.name}'s token to TOKEN_MAKERS"
    assert patterns_with("public_id"), "the sweep must find the job URLs"
    assert patterns_with("visit_id"), "the sweep must find the visit URLs"


@pytest.mark.parametrize("pattern", patterns_with("public_id"), ids=ids(patterns_with("public_id")))
def test_another_customers_job_is_404(
    pattern: URLPattern, john_client: Client, stranger_job: Job, job: Job, visit: Visit, stranger_visit: Visit
) -> None:
    url = reverse(f"portal:{pattern.name}", args=job_args(pattern, stranger_job, stranger_visit))
    response = call(john_client, pattern, url, body="Hello", note="Hello")
    assert response.status_code == 404, url
    # The same URL for the contact's own job works (so the 404 is about scope, not the request).
    own_url = reverse(f"portal:{pattern.name}", args=job_args(pattern, job, visit))
    own = call(john_client, pattern, own_url, body="Hello", note="Hello")
    assert own.status_code in (200, 302), pattern.name
    assert not Question.objects.filter(job=stranger_job).exists()
    assert JobFile.objects.filter(job=stranger_job).count() == 1
    stranger_visit.refresh_from_db()
    assert (stranger_visit.status, stranger_visit.version) == (Visit.Status.PLANNED, 1)


@pytest.mark.parametrize("pattern", patterns_with("public_id"), ids=ids(patterns_with("public_id")))
def test_an_unknown_job_is_404(pattern: URLPattern, john_client: Client) -> None:
    url = reverse(f"portal:{pattern.name}", args=[uuid.uuid4() for _param in params(pattern)])
    assert call(john_client, pattern, url, body="Hello").status_code == 404


@pytest.mark.parametrize("pattern", patterns_with("public_id"), ids=ids(patterns_with("public_id")))
def test_a_job_url_sends_an_anonymous_visitor_to_the_new_link_page(
    pattern: URLPattern, client: Client, job: Job, visit: Visit
) -> None:
    response = call(client, pattern, reverse(f"portal:{pattern.name}", args=job_args(pattern, job, visit)), body="Hi")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:signed_out')}?job={job.public_id}"


@pytest.mark.parametrize("pattern", patterns_with("token"), ids=ids(patterns_with("token")))
def test_a_tampered_token_is_404(pattern: URLPattern, client: Client, john: Contact) -> None:
    good = TOKEN_MAKERS[pattern.name](john)
    tampered = {good[:-4] + "AAAA", "garbage", good.replace(":", "-"), good[:3] + "B" + good[4:]} - {good}
    for bad in sorted(tampered):
        response = call(client, pattern, reverse(f"portal:{pattern.name}", args=[bad]))
        if pattern.name in REDIRECTS_ON_BAD_TOKEN:
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("portal:signed_out"))
        else:
            assert response.status_code == 404, (pattern.name, bad)
    john.refresh_from_db()
    assert john.opted_out_at is None


@pytest.mark.parametrize("pattern", patterns_with("token"), ids=ids(patterns_with("token")))
def test_a_token_signed_for_another_purpose_is_refused(pattern: URLPattern, client: Client, john: Contact) -> None:
    # A calendar token must not sign anyone in, an unsubscribe token must not open a calendar...
    for maker_name, maker in TOKEN_MAKERS.items():
        if maker_name == pattern.name:
            continue
        response = call(client, pattern, reverse(f"portal:{pattern.name}", args=[maker(john)]))
        assert response.status_code in (302, 404), (pattern.name, maker_name)
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("portal:signed_out"))


@pytest.mark.parametrize("pattern", patterns_with("code"), ids=ids(patterns_with("code")))
def test_a_code_naming_nothing_is_a_friendly_404(pattern: URLPattern, john_client: Client) -> None:
    for bad in (str(uuid.uuid4()), "garbage", "not-a-uuid-%20"):
        for visitor in (Client(), john_client):
            response = visitor.get(reverse(f"portal:{pattern.name}", args=[bad]))
            assert response.status_code == 404, (pattern.name, bad)
            assert response.templates, "a page of ours, not a bare error"


@pytest.mark.parametrize("name", sorted(NEEDS_CONTACT))
def test_a_page_that_needs_a_contact_redirects_an_anonymous_visitor(name: str, client: Client) -> None:
    response = client.get(reverse(f"portal:{name}"))
    assert response["Location"] == reverse("portal:signed_out")


@pytest.mark.parametrize("name", sorted(NEEDS_CONTACT))
def test_a_page_shows_only_the_signed_in_contacts_own_data(
    name: str, john_client: Client, stranger: Contact, stranger_job: Job
) -> None:
    page = john_client.get(reverse(f"portal:{name}")).text
    for secret in (stranger.name, stranger.email, stranger_job.title, stranger_job.reference):
        assert secret not in page


MUTATION_PATTERNS = [p for p in urlpatterns if p.name in MUTATIONS]


@pytest.mark.parametrize("pattern", MUTATION_PATTERNS, ids=ids(MUTATION_PATTERNS))
def test_a_mutation_changes_nothing_on_get(
    pattern: URLPattern, john_client: Client, job: Job, john: Contact, visit: Visit
) -> None:
    args = job_args(pattern, job, visit) if "public_id" in params(pattern) else []
    response = john_client.get(
        reverse(f"portal:{pattern.name}", args=args), {"language": "fr", "body": "Hi", "note": "Hi"}
    )
    assert response.status_code == (200 if pattern.name in ANSWER_PAGES else 302)
    assert SESSION_KEY in john_client.session
    assert SESSION_LANGUAGE_KEY not in john_client.session
    assert not Question.objects.exists()
    visit.refresh_from_db()
    assert (visit.status, visit.version, visit.move_asked_at) == (Visit.Status.PLANNED, 1, None)
    page = john_client.get(response["Location"]) if response.status_code == 302 else response
    assert page.status_code == 200
    assert '<html lang="en">' in page.text


@pytest.mark.parametrize("pattern", urlpatterns, ids=ids(urlpatterns))
def test_no_url_dead_ends_on_get(
    pattern: URLPattern, john_client: Client, john: Contact, job: Job, visit: Visit
) -> None:
    # Where a browser can land after a form was shown at that address and GET it again (the
    # language switcher goes back to the current address): a page of ours, never a bare 405.
    url = reverse(f"portal:{pattern.name}", args=args_for(pattern, john, job, visit))
    response = john_client.get(url, follow=True)
    if pattern.name in PUBLIC_CODES | {"survey", "checkin", "visit_calendar"}:
        # The sweep's code and tokens name nothing of John's: the friendly 404 page.
        assert response.status_code == 404, pattern.name
    else:
        assert response.status_code == 200, pattern.name
    if pattern.name not in {"calendar"} | FILES:
        # Rendered now, or kept whole from an earlier rendering (portal.job_page).
        assert response.templates or response.content.startswith(b"<!doctype html>"), pattern.name


@pytest.mark.parametrize("pattern", urlpatterns, ids=ids(urlpatterns))
def test_every_form_needs_the_csrf_token(pattern: URLPattern, john: Contact, job: Job, visit: Visit) -> None:
    from .conftest import sign_in

    client = sign_in(Client(enforce_csrf_checks=True), john)
    response = client.post(
        reverse(f"portal:{pattern.name}", args=args_for(pattern, john, job, visit)),
        {"body": "Hi", "note": "Hi", "address": john.email},
    )
    if pattern.name in CSRF_EXEMPT:
        assert response.status_code == 200
    else:
        assert response.status_code in (403, 405), pattern.name
    assert not Question.objects.exists()
    assert not Message.objects.filter(kind=Message.Kind.PORTAL_LINK).exists()
    visit.refresh_from_db()
    assert visit.status == Visit.Status.PLANNED
