"""Start-up from the environment: safe defaults, and no production without a secret."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.EMAIL_BACKEND)"


WEBHOOK_PROBE = (
    "import django; django.setup(); from django.urls import Resolver404, resolve\n"
    "for esp in ('postmark', 'mailgun'):\n"
    "    try:\n        resolve(f'/anymail/{esp}/tracking/'); print(esp, 'served')\n"
    "    except Resolver404:\n        print(esp, 'absent')"
)


def start(probe: str = PROBE, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_DEBUG"} and not k.startswith("ANYMAIL_")
    }
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_it_refuses_production_without_a_secret():
    result = start()
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_starts_in_production_with_a_secret_and_debug_off():
    result = start(SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


def test_it_allows_development_without_a_secret():
    result = start(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.core.mail.backends.console.EmailBackend"]


def test_it_picks_the_email_provider_from_the_environment():
    result = start(
        SECRET_KEY="x" * 50, ANYMAIL_ESP="postmark", ANYMAIL_POSTMARK_SERVER_TOKEN="t", ANYMAIL_WEBHOOK_SECRET="u:p"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "anymail.backends.postmark.EmailBackend"


@pytest.mark.parametrize(
    ("esp", "backend"),
    [
        ("resend", "crm.email_backends.ResendEmailBackend"),
        ("brevo", "crm.email_backends.BrevoEmailBackend"),
        ("mailgun", "anymail.backends.mailgun.EmailBackend"),
    ],
)
def test_it_gives_the_providers_that_take_one_the_backend_that_sends_the_idempotency_key(esp: str, backend: str):
    result = start(SECRET_KEY="x" * 50, ANYMAIL_ESP=esp, ANYMAIL_WEBHOOK_SECRET="u:p")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == backend


def test_it_reads_the_provider_timeout_as_seconds():
    probe = (
        "import django; django.setup(); from django.core.mail import get_connection; "
        "print(repr(get_connection().timeout))"
    )
    env = {"SECRET_KEY": "x" * 50, "ANYMAIL_ESP": "postmark", "ANYMAIL_WEBHOOK_SECRET": "u:p"}
    env["ANYMAIL_POSTMARK_SERVER_TOKEN"] = "t"
    result = start(probe, **env, ANYMAIL_REQUESTS_TIMEOUT="7.5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "7.5"
    refused = start(probe, **env, ANYMAIL_REQUESTS_TIMEOUT="soon")
    assert refused.returncode != 0
    assert "ANYMAIL_REQUESTS_TIMEOUT must be a number of seconds" in refused.stderr


def test_it_refuses_a_production_provider_whose_webhooks_would_take_anyone():
    result = start(SECRET_KEY="x" * 50, ANYMAIL_ESP="postmark", ANYMAIL_POSTMARK_SERVER_TOKEN="t")
    assert result.returncode != 0
    assert "ANYMAIL_WEBHOOK_SECRET is not set" in result.stderr


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_it_rejects_a_boolean_it_cannot_read(value):
    result = start(DJANGO_DEBUG=value)
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def served(**env: str) -> list[str]:
    return start(WEBHOOK_PROBE, **env).stdout.split("\n")[:2]


def test_it_serves_the_configured_providers_webhooks_only_and_never_without_their_secret():
    production = {"SECRET_KEY": "x" * 50}
    assert served(**production) == ["postmark absent", "mailgun absent"]
    assert served(**production, ANYMAIL_WEBHOOK_SECRET="u:p") == ["postmark absent", "mailgun absent"]
    assert served(**production, ANYMAIL_ESP="postmark", ANYMAIL_WEBHOOK_SECRET="u:p") == [
        "postmark served",
        "mailgun absent",
    ]
    assert served(DJANGO_DEBUG="1") == ["postmark absent", "mailgun absent"]
    assert served(DJANGO_DEBUG="1", ANYMAIL_ESP="mailgun") == ["postmark absent", "mailgun served"]
