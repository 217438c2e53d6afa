"""No unauthenticated request to a webhook URL is a server error: the configured providers'
URLs answer junk, no credentials or wrong ones with a 4xx; every other provider's URL is a 404
(anymail mounts them all, and a provider we have no keys for raised its configuration error: a
500, and an error report to the admins for each such request). Over real HTTP."""

from __future__ import annotations

import pytest
import requests
from anymail import urls as anymail_urls
from django.conf import settings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

# Every provider anymail knows, by the first part of its URLs.
PROVIDERS = sorted({str(p.pattern).lstrip("^").split("/")[0] for p in anymail_urls.urlpatterns})
SERVED = [f"anymail/{esp}/{kind}/" for esp in settings.ANYMAIL_WEBHOOK_ESPS for kind in ("tracking", "inbound")]
NOT_SERVED = [
    f"anymail/{esp}/{kind}/"
    for esp in PROVIDERS
    if esp not in settings.ANYMAIL_WEBHOOK_ESPS
    for kind in ("tracking", "inbound")
]
JUNK = [
    {"data": b"\x00\xff not json {", "headers": {"Content-Type": "application/json"}},
    {"data": b'{"RecordType": "Delivery"}', "headers": {"Content-Type": "application/json"}},
    {
        "data": b"--x\r\nContent-Disposition: form-data; name=email\r\n\r\n\x00\r\n--x--",
        "headers": {"Content-Type": "multipart/form-data; boundary=x"},
    },
    {"data": b"", "headers": {}},
]
CREDENTIALS = [None, ("hook", "wrong"), ("nobody", "test-secret")]


def test_the_configured_providers_are_served_and_the_others_are_not() -> None:
    assert "postmark" in PROVIDERS and "mailgun" in PROVIDERS
    assert SERVED and NOT_SERVED


@pytest.mark.parametrize("url", SERVED + NOT_SERVED)
def test_junk_without_good_credentials_is_refused_never_a_server_error(live_server, url: str) -> None:
    answers = set()
    for auth in CREDENTIALS:
        for junk in JUNK:
            response = requests.post(f"{live_server.url}/{url}", auth=auth, timeout=10, **junk)  # type: ignore[arg-type]
            answers.add(response.status_code)
    if url in NOT_SERVED:
        assert answers == {404}, url
    else:
        assert answers <= {400, 401, 403}, (url, answers)


@pytest.mark.parametrize("url", SERVED)
def test_junk_with_good_credentials_is_a_client_error_or_kept(live_server, url: str) -> None:
    """With the right secret, junk is refused with a 4xx (or, for an inbound email anymail can
    read at all, kept): never a 500."""
    for junk in JUNK:
        response = requests.post(f"{live_server.url}/{url}", auth=("hook", "test-secret"), timeout=10, **junk)  # type: ignore[arg-type]
        assert response.status_code < 500, (url, junk, response.status_code)
