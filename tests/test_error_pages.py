"""The error pages (config/errors.py, templates/400.html … 500.html), as production shows
them (DEBUG off): branded, translated, and each with a way on — "My jobs" under /portal/, the
staff home elsewhere. A portal error page speaks the contact's language, like the portal does.

This module is also the test-only URLconf of the views that fail on purpose (``pytest.mark.urls``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.test import Client, RequestFactory
from django.urls import path, reverse
from django.utils import translation

from config import errors
from config import urls as project_urls
from crm import ratelimit
from crm.links import portal_url
from crm.models import Contact, Customer

# --- The test-only URLconf: the project's, plus views that fail ---------------------------------


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("Something broke")


def _suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("A malformed request")


def _forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


urlpatterns = [
    path("portal/boom/", _boom),
    path("boom/", _boom),
    path("portal/suspicious/", _suspicious),
    path("forbidden/", _forbidden),
    *project_urls.urlpatterns,
]
handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500

FAILING = pytest.mark.urls(__name__)

PORTAL_HOME = '<a class="btn btn-primary" href="/portal/">'
STAFF_HOME = '<a class="btn btn-primary" href="/">Back to the dashboard</a>'


@pytest.fixture(autouse=True)
def _production(settings, time_machine, monkeypatch) -> None:
    settings.DEBUG = False
    time_machine.move_to(datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris")), tick=False)
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"portal-rl-test-{uuid.uuid4().hex}")


@pytest.fixture
def marie(db) -> Contact:
    customer = Customer.objects.create(name="Dupont household")
    return Contact.objects.create(customer=customer, name="Marie Dupont", email="marie@example.com", language="fr")


@pytest.fixture
def john(marie: Contact) -> Contact:
    return Contact.objects.create(customer=marie.customer, name="John Smith", email="john@example.com", language="en")


def signed_in(contact: Contact) -> Client:
    client = Client()
    assert client.get(portal_url(contact)).status_code == 302
    return client


def missing_job_url() -> str:
    return reverse("portal:job", args=[uuid.uuid4()])


# --- 404 ----------------------------------------------------------------------------------------


def test_a_missing_portal_job_is_our_page_in_the_contacts_language(marie: Contact) -> None:
    response = signed_in(marie).get(missing_job_url())

    assert response.status_code == 404
    assert [t.name for t in response.templates][:2] == ["404.html", "portal/base.html"]
    page = response.text
    assert '<html lang="fr">' in page
    assert response["Content-Language"] == "fr"
    assert f"{PORTAL_HOME}Mes dossiers</a>" in page
    # The portal's own header: the contact's pages, and the language switcher.
    assert 'href="/portal/preferences/"' in page
    assert 'name="language" value="en"' in page
    assert "Not Found" not in page
    assert "no-cache" in response["Cache-Control"]


def test_a_missing_portal_job_in_english(john: Contact) -> None:
    response = signed_in(john).get(missing_job_url())

    assert response.status_code == 404
    assert "<title>Page not found · Brightside Installations</title>" in response.text
    assert "We could not find this page" in response.text
    assert f"{PORTAL_HOME}My jobs</a>" in response.text


def test_the_language_chosen_on_this_browser_wins(marie: Contact) -> None:
    client = signed_in(marie)
    client.post(reverse("portal:language"), {"language": "en"})

    page = client.get(missing_job_url()).text

    assert '<html lang="en">' in page
    assert f"{PORTAL_HOME}My jobs</a>" in page


def test_another_customers_job_is_the_same_404(marie: Contact, db) -> None:
    from crm.models import Job, Pipeline, StageTemplate
    from crm.services.jobs import job_create

    other = Customer.objects.create(name="Acme")
    owner = User.objects.create_user("bob", "bob@example.com", "pw", is_staff=True)
    pipeline = Pipeline.objects.create(name="Repair")
    StageTemplate.objects.create(pipeline=pipeline, position=1, name="Reported")
    theirs: Job = job_create(customer=other, pipeline=pipeline, owner=owner, title="Acme secret", actor=owner)

    response = signed_in(marie).get(reverse("portal:job", args=[theirs.public_id]))

    assert response.status_code == 404
    assert "Acme secret" not in response.text
    assert f"{PORTAL_HOME}Mes dossiers</a>" in response.text


def test_an_unknown_portal_address_without_a_session(db) -> None:
    response = Client().get("/portal/no-such-page/")

    assert response.status_code == 404
    assert f"{PORTAL_HOME}My jobs</a>" in response.text
    assert 'name="language" value="fr"' in response.text


def test_a_missing_staff_page_leads_home(db) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", "pw", is_staff=True)
    client = Client()
    client.force_login(bob)

    for url in (reverse("crm:job", args=[uuid.uuid4()]), "/no-such-page/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.templates[0].name == "404.html"
        assert "We could not find this page" in response.text
        assert STAFF_HOME in response.text
        assert "My jobs" not in response.text


def test_a_missing_staff_page_in_the_browsers_language(db) -> None:
    response = Client().get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="fr")

    assert response.status_code == 404
    assert '<html lang="fr">' in response.text


# --- 403 ----------------------------------------------------------------------------------------


def test_someone_who_is_not_staff_may_sign_in_as_someone_else(db) -> None:
    dana = User.objects.create_user("dana", "dana@example.com", "pw")
    client = Client()
    client.force_login(dana)

    response = client.get(reverse("crm:home"))

    assert response.status_code == 403
    assert "You are signed in as dana, who does not have access to the staff pages." in response.text
    assert f'action="{reverse("logout")}"' in response.text
    assert "Sign in with another account" in response.text


@FAILING
def test_a_staff_page_kept_for_managers_leads_home(db) -> None:
    client = Client()
    client.force_login(User.objects.create_user("bob", "bob@example.com", "pw", is_staff=True))

    response = client.get("/forbidden/")

    assert response.status_code == 403
    assert "This page is not open to you" in response.text
    assert STAFF_HOME in response.text


def test_a_portal_form_sent_without_its_token_is_our_page(john: Contact) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("portal:language"), {"language": "fr"})

    assert response.status_code == 403
    assert response.templates[0].name == "403_csrf.html"
    assert "We could not send this form" in response.text
    assert f"{PORTAL_HOME}My jobs</a>" in response.text


def test_a_staff_form_sent_without_its_token_is_our_page(db) -> None:
    response = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "bob", "password": "pw"})

    assert response.status_code == 403
    assert "We could not send this form" in response.text
    assert STAFF_HOME in response.text


# --- 400 ----------------------------------------------------------------------------------------


@FAILING
def test_a_bad_request_on_the_portal_is_our_page(marie: Contact) -> None:
    response = signed_in(marie).get("/portal/suspicious/")

    assert response.status_code == 400
    assert response.templates[0].name == "400.html"
    assert '<html lang="fr">' in response.text
    assert f"{PORTAL_HOME}Mes dossiers</a>" in response.text


# --- 500 ----------------------------------------------------------------------------------------


@FAILING
def test_a_server_error_on_the_portal_is_our_page_in_the_contacts_language(marie: Contact) -> None:
    client = signed_in(marie)
    client.raise_request_exception = False

    response = client.get("/portal/boom/")

    assert response.status_code == 500
    assert response["Content-Language"] == "fr"
    assert '<html lang="fr">' in response.text
    assert '<a class="button" href="/portal/">Mes dossiers</a>' in response.text
    assert "Brightside Installations" in response.text


@FAILING
def test_a_server_error_on_a_staff_page_is_our_page(db) -> None:
    client = Client()
    client.raise_request_exception = False

    response = client.get("/boom/")

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert '<a class="button" href="/">Back to the dashboard</a>' in response.text


@pytest.fixture
def english() -> Iterator[None]:
    """English active, whatever an earlier test's request left active in this thread."""
    with translation.override("en"):
        yield


def test_the_500_page_needs_no_request_and_no_database(english: None) -> None:
    # Whatever broke (the database, the session store) must not break this page too. No "db"
    # fixture: a query here would fail the test.
    request = RequestFactory().get("/portal/jobs/")  # no session at all: the active language
    response = errors.server_error(request)
    assert response.status_code == 500
    assert '<a class="button" href="/portal/">My jobs</a>' in response.content.decode()
    # Django's own handler gives it no context at all: it still reads well.
    page = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in page
    assert 'href="/"' in page
