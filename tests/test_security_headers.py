"""The security headers of every kind of page — staff, portal, error, admin: the
Content-Security-Policy (config/settings.py, django-csp), HSTS on HTTPS, X-Frame-Options,
Referrer-Policy, Permissions-Policy, Cross-Origin-Opener-Policy, nosniff. The report-only rollout
and the object store's images are read from the environment at start, so they are tried in a
process of their own (as tests/test_settings.py does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.template import loader
from django.test import Client
from django.urls import reverse

from crm.links import make_link_token
from crm.models import Campaign, Contact, Job
from crm.services.campaigns import CampaignDetails, campaign_create
from crm.workdays import business_today

ROOT = Path(__file__).resolve().parent.parent

DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
REFUSED_FEATURES = ["camera", "microphone", "geolocation", "payment", "usb"]


def directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {part[0]: part[1] if len(part) > 1 else "" for part in parts}


def assert_secured(response) -> None:
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy == DIRECTIVES, policy
    assert "Content-Security-Policy-Report-Only" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    features = dict(item.split("=", 1) for item in response.headers["Permissions-Policy"].split(", "))
    assert all(features[name] == "()" for name in REFUSED_FEATURES), features


@pytest.fixture
def staff(client: Client, bob: User) -> Client:
    client.force_login(bob)
    return client


@pytest.fixture
def root(client: Client, superuser: User) -> Client:
    client.force_login(superuser)
    return client


def test_it_secures_a_staff_page(staff: Client, job: Job) -> None:
    response = staff.get(reverse("crm:job", args=[job.public_id]))
    assert response.status_code == 200
    assert_secured(response)


@pytest.mark.django_db
def test_it_secures_the_sign_in_page(client: Client) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert_secured(response)


@pytest.mark.django_db
def test_it_secures_a_portal_page(client: Client, contact: Contact, job: Job) -> None:
    entered = client.get(reverse("portal:enter", args=[make_link_token(contact)]) + f"?job={job.public_id}")
    assert_secured(entered)
    response = client.get(reverse("portal:job", args=[job.public_id]))
    assert response.status_code == 200
    assert_secured(response)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/no-such-page/", "/portal/no-such-page/"])
def test_it_secures_an_error_page(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert_secured(response)


def test_it_secures_the_admin(root: Client, job: Job) -> None:
    for url in [reverse("admin:index"), reverse("admin:crm_job_change", args=[job.pk])]:
        response = root.get(url)
        assert response.status_code == 200, url
        assert_secured(response)


def test_the_500_page_needs_no_inline_style() -> None:
    page = loader.get_template("500.html").render()
    assert "<style" not in page and "style=" not in page
    assert '<link rel="stylesheet" href="/static/css/error.css">' in page
    assert (ROOT / "static" / "css" / "error.css").is_file()


@pytest.mark.django_db
def test_it_sends_hsts_over_https_only(client: Client, settings) -> None:
    assert (settings.DEBUG, settings.SECURE_HSTS_SECONDS) == (False, 31536000)  # production's defaults
    secure = client.get(reverse("login"), secure=True)
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in client.get(reverse("login")).headers


@pytest.fixture
def campaign(bob: User) -> Campaign:
    return campaign_create(
        details=CampaignDetails(
            title="Spring tip",
            kind=Campaign.Kind.TIP,
            starts_on=business_today(),
            ends_on=business_today(),
            subject_en="Spring tip",
            body_en="A clean filter saves energy.",
        ),
        actor=bob,
    )


def test_the_campaign_preview_alone_allows_the_emails_style_attributes(staff: Client, campaign: Campaign) -> None:
    preview = staff.get(reverse("crm:campaign_preview", args=[campaign.public_id, "en"]))
    assert preview.status_code == 200
    assert directives(preview.headers["Content-Security-Policy"]) == {**DIRECTIVES, "style-src-attr": "'unsafe-inline'"}
    page = staff.get(reverse("crm:campaign", args=[campaign.public_id]))
    assert directives(page.headers["Content-Security-Policy"]) == DIRECTIVES


def test_report_only_mode_moves_the_exception_with_the_policy(staff: Client, campaign: Campaign, settings) -> None:
    settings.CONTENT_SECURITY_POLICY = None
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": settings.CSP_DIRECTIVES}
    preview = staff.get(reverse("crm:campaign_preview", args=[campaign.public_id, "en"]))
    assert "Content-Security-Policy" not in preview.headers
    reported = directives(preview.headers["Content-Security-Policy-Report-Only"])
    assert reported == {**DIRECTIVES, "style-src-attr": "'unsafe-inline'"}


# --- Read from the environment at start -------------------------------------------------------

PROBE = (
    "import django; django.setup()\n"
    "from csp.middleware import CSPMiddleware\n"
    "from django.http import HttpResponse\n"
    "from django.test import RequestFactory\n"
    "response = CSPMiddleware(lambda request: HttpResponse())(RequestFactory().get('/'))\n"
    "for name in ('Content-Security-Policy', 'Content-Security-Policy-Report-Only'):\n"
    "    print(response.headers.get(name, '-'))\n"
)


def start(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CSP_", "S3_", "FILE_STORAGE", "DJANGO_"))}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="x" * 50)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_it_enforces_the_policy_by_default() -> None:
    enforced, reported = start()
    assert directives(enforced) == DIRECTIVES
    assert reported == "-"


def test_report_only_sends_the_same_policy_to_be_reported_only() -> None:
    enforced, reported = start(CSP_REPORT_ONLY="1", CSP_REPORT_URI="https://reports.example.com/csp")
    assert enforced == "-"
    assert directives(reported) == {**DIRECTIVES, "report-uri": "https://reports.example.com/csp"}


@pytest.mark.parametrize(
    ("store", "images"),
    [
        (
            {"S3_ENDPOINT_URL": "https://s3.fr-par.scw.cloud"},
            "'self' data: https://s3.fr-par.scw.cloud https://*.s3.fr-par.scw.cloud",
        ),
        (
            {"S3_REGION": "eu-west-3"},
            "'self' data: https://photos.s3.amazonaws.com https://photos.s3.eu-west-3.amazonaws.com",
        ),
        ({}, "'self' data: https://*.amazonaws.com"),
    ],
)
def test_images_may_come_from_the_object_store_a_thumbnail_redirects_to(store: dict[str, str], images: str) -> None:
    enforced, _reported = start(FILE_STORAGE="s3", S3_BUCKET="photos", **store)
    assert directives(enforced)["img-src"] == images
