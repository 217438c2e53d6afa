"""Staff sign-in throttled (django-axes, crm.views.accounts): five failures for one username, or
from one client address, pause sign-in for 15 minutes on the staff and the admin sign-in page, with
the same page whether the username exists or not; a success clears the count; the pause ends with
the cool-off, when a manager deletes the attempts in the admin, or with a new password from the
reset link. The password reset form is rate-limited by address and by client address.

Every attempt is a real POST of the sign-in form, its CSRF token read from the page first."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse

from crm import ratelimit
from crm.ratelimit import client_ip
from tests.test_settings import start

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
RESET = "/accounts/password_reset/"
PAUSED = "signing in is paused for 15 minutes"
TOO_MANY = "A new password has been asked for too many times"
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture(autouse=True)
def _monday_morning(time_machine, monkeypatch) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)
    # The cache may be a Redis shared by parallel test runs: each test counts in its own keys.
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"portal-rl-test-{uuid.uuid4().hex}")


@pytest.fixture
def browser(db) -> Client:
    """A client that, like a browser, must send the CSRF token of the page it posts from."""
    return Client(enforce_csrf_checks=True)


def post_form(client: Client, url: str, data: dict[str, str], *, ip: str, **headers: str) -> HttpResponse:
    """Open the page, then post its form with the page's CSRF token, from ``ip``."""
    page = client.get(url, REMOTE_ADDR=ip, **headers)
    assert page.status_code == 200
    token = TOKEN.search(page.content.decode())
    assert token, f"no CSRF token on {url}"
    return client.post(url, {**data, "csrfmiddlewaretoken": token[1]}, REMOTE_ADDR=ip, **headers)


def sign_in(client: Client, username: str, password: str, *, ip: str = "10.0.0.1", url: str = LOGIN, **headers: str):
    return post_form(client, url, {"username": username, "password": password}, ip=ip, **headers)


def signed_in(response: HttpResponse) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session  # type: ignore[attr-defined]


def is_paused(response: HttpResponse) -> bool:
    return response.status_code == 429 and PAUSED in response.content.decode()


def page_text(response: HttpResponse) -> str:
    """The page as everyone gets it: without the CSRF token, which is new on every page."""
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", response.content.decode())


def fail_five_times(client: Client, username: str, *, url: str = LOGIN) -> list[HttpResponse]:
    """Five wrong passwords for ``username``, each from another address: only the username counts."""
    return [sign_in(client, username, "wrong", ip=f"10.1.0.{n}", url=url) for n in range(1, 6)]


def test_the_sixth_attempt_for_a_username_is_refused_even_with_the_right_password(browser: Client, bob: User) -> None:
    failures = fail_five_times(browser, "bob")
    assert [r.status_code for r in failures[:4]] == [200] * 4
    assert all("Please enter a correct username and password" in r.content.decode() for r in failures[:4])
    # The fifth failure reaches the limit: that answer is already the paused page.
    assert is_paused(failures[4])

    sixth = sign_in(browser, "bob", "pw", ip="10.1.0.6")

    assert is_paused(sixth)
    assert not signed_in(sixth)
    assert "_auth_user_id" not in browser.session
    page = sixth.content.decode()
    assert "Ask a manager to unlock your sign-in" in page
    assert reverse("password_reset") in page
    assert sixth["Retry-After"] == "900"
    assert "no-store" in sixth["Cache-Control"]


def test_a_username_that_does_not_exist_gets_the_same_page(browser: Client, bob: User) -> None:
    fail_five_times(browser, "bob")
    fail_five_times(browser, "nobody")

    for_bob = sign_in(browser, "bob", "pw", ip="10.2.0.1")
    for_nobody = sign_in(browser, "nobody", "pw", ip="10.2.0.2")

    assert is_paused(for_bob) and is_paused(for_nobody)
    assert page_text(for_bob) == page_text(for_nobody)
    assert "bob" not in page_text(for_bob)


def test_failures_from_one_address_for_several_usernames_pause_that_address(browser: Client, bob: User) -> None:
    for username in ["alice", "charlie", "dana", "root", "nobody"]:
        sign_in(browser, username, "wrong", ip="10.3.0.1")

    assert is_paused(sign_in(browser, "bob", "pw", ip="10.3.0.1"))
    assert signed_in(sign_in(Client(enforce_csrf_checks=True), "bob", "pw", ip="10.3.0.2"))


def test_a_success_before_the_limit_clears_the_count(browser: Client, bob: User) -> None:
    for _ in range(4):
        sign_in(browser, "bob", "wrong")
    assert signed_in(sign_in(browser, "bob", "pw"))
    for _ in range(4):
        assert sign_in(browser, "bob", "wrong").status_code == 200

    # Eight failures in all, but four since the success.
    assert signed_in(sign_in(browser, "bob", "pw"))


def test_the_admin_sign_in_is_paused_too(browser: Client, superuser: User) -> None:
    fail_five_times(browser, "root", url=ADMIN_LOGIN)

    refused = sign_in(browser, "root", "pw", ip="10.4.0.1", url=ADMIN_LOGIN)

    assert is_paused(refused)
    assert "_auth_user_id" not in browser.session


def test_failures_on_the_staff_page_pause_the_admin_page(browser: Client, superuser: User) -> None:
    fail_five_times(browser, "root")

    assert is_paused(sign_in(browser, "root", "pw", ip="10.4.0.2", url=ADMIN_LOGIN))


def test_sign_in_works_again_after_the_cool_off(browser: Client, bob: User, time_machine) -> None:
    fail_five_times(browser, "bob")
    time_machine.shift(timedelta(minutes=14))
    assert is_paused(sign_in(browser, "bob", "pw"))

    time_machine.shift(timedelta(minutes=16))

    assert signed_in(sign_in(browser, "bob", "pw"))


def test_an_attempt_during_the_pause_starts_the_wait_again(browser: Client, bob: User, time_machine) -> None:
    # One person in one browser: the case the page's "starts the wait again" speaks to. (Failures
    # from several places each end 15 minutes after their own time, so the pause may end sooner.)
    for _ in range(5):
        sign_in(browser, "bob", "wrong")
    time_machine.shift(timedelta(minutes=10))
    assert is_paused(sign_in(browser, "bob", "pw"))

    time_machine.shift(timedelta(minutes=10))  # 20 minutes after the failures, 10 after the retry
    assert is_paused(sign_in(browser, "bob", "pw"))

    time_machine.shift(timedelta(minutes=16))
    assert signed_in(sign_in(browser, "bob", "pw"))


def _delete_in_admin(admin: Client, attempt: AccessAttempt) -> HttpResponse:
    url = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert admin.get(url).status_code == 200
    return admin.post(url, {"post": "yes"})


def test_deleting_the_attempts_in_the_admin_lets_the_person_sign_in(
    browser: Client, bob: User, superuser: User
) -> None:
    for _ in range(5):
        sign_in(browser, "bob", "wrong")
    assert is_paused(sign_in(browser, "bob", "pw"))
    admin = Client()
    admin.force_login(superuser)
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"), {"q": "bob"})
    assert "Locked Out" in listing.content.decode()

    for attempt in AccessAttempt.objects.filter(username="bob"):
        assert _delete_in_admin(admin, attempt).status_code == 302

    assert not AccessAttempt.objects.exists()
    assert signed_in(sign_in(browser, "bob", "pw"))


def test_a_manager_needs_to_view_and_delete_attempts_to_clear_a_lockout(
    browser: Client, bob: User, charlie: User
) -> None:
    fail_five_times(browser, "bob")
    manager = Client()
    manager.force_login(charlie)
    attempt = AccessAttempt.objects.filter(username="bob").first()
    assert attempt
    url = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert manager.get(url).status_code == 403

    charlie.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="axes", codename__in=["view_accessattempt", "delete_accessattempt"]
        )
    )
    assert manager.get(reverse("admin:axes_accessattempt_changelist")).status_code == 200
    for attempt in AccessAttempt.objects.filter(username="bob"):
        assert _delete_in_admin(manager, attempt).status_code == 302

    assert signed_in(sign_in(browser, "bob", "pw"))


def _reset_link(message: mail.EmailMessage) -> str:
    found = re.search(r"http://testserver(/accounts/reset/\S+/)", str(message.body))
    assert found
    return found[1]


def test_a_new_password_from_the_reset_link_lifts_the_pause(browser: Client, bob: User, mailoutbox) -> None:
    fail_five_times(browser, "bob")
    assert post_form(browser, RESET, {"email": "bob@example.com"}, ip="10.5.0.1").status_code == 302
    assert len(mailoutbox) == 1

    choose = browser.get(_reset_link(mailoutbox[0]), REMOTE_ADDR="10.5.0.1")
    assert choose.status_code == 302
    new = {"new_password1": "a-long-new-passphrase-42", "new_password2": "a-long-new-passphrase-42"}
    saved = post_form(browser, choose["Location"], new, ip="10.5.0.1")
    assert saved.status_code == 302

    assert signed_in(sign_in(browser, "bob", "a-long-new-passphrase-42", ip="10.5.0.1"))


@pytest.mark.parametrize("address", ["bob@example.com", "nobody@example.com"])
def test_the_reset_form_sends_at_most_three_emails_for_one_address(
    browser: Client, bob: User, mailoutbox, address: str
) -> None:
    answers = [post_form(browser, RESET, {"email": address}, ip=f"10.6.0.{n}") for n in range(1, 6)]

    assert [a.status_code for a in answers] == [302, 302, 302, 429, 429]
    assert all(a["Location"] == reverse("password_reset_done") for a in answers[:3])
    assert TOO_MANY in answers[3].content.decode()
    assert answers[3]["Retry-After"] == "3600"
    assert len(mailoutbox) == (3 if address == "bob@example.com" else 0)


def test_the_reset_limit_answers_the_same_for_known_and_unknown_addresses(browser: Client, bob: User) -> None:
    for _ in range(3):
        post_form(browser, RESET, {"email": "bob@example.com"}, ip="10.7.0.1")
        post_form(browser, RESET, {"email": "nobody@example.com"}, ip="10.7.0.2")

    known = post_form(browser, RESET, {"email": "bob@example.com"}, ip="10.7.0.1")
    unknown = post_form(browser, RESET, {"email": "nobody@example.com"}, ip="10.7.0.2")

    assert known.status_code == unknown.status_code == 429
    assert page_text(known) == page_text(unknown)
    assert "example.com" not in page_text(known)


def test_the_reset_form_is_limited_for_one_client_address_across_addresses(
    browser: Client, bob: User, mailoutbox
) -> None:
    for n in range(20):
        assert post_form(browser, RESET, {"email": f"someone{n}@example.com"}, ip="10.8.0.1").status_code == 302

    held = post_form(browser, RESET, {"email": "bob@example.com"}, ip="10.8.0.1")

    assert held.status_code == 429 and TOO_MANY in held.content.decode()
    assert mailoutbox == []
    assert post_form(browser, RESET, {"email": "bob@example.com"}, ip="10.8.0.2").status_code == 302
    assert len(mailoutbox) == 1


# --- Which address is counted ---------------------------------------------------------------------


def _request(remote: str = "203.0.113.9", forwarded: str | None = None, header: str = "HTTP_X_FORWARDED_FOR"):
    meta = {"REMOTE_ADDR": remote} | ({header: forwarded} if forwarded is not None else {})
    return RequestFactory().get("/", **meta)


def test_without_a_trusted_proxy_only_remote_addr_counts(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(_request(forwarded="198.51.100.7")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        # What the client wrote itself is left of what the proxy appended.
        (1, "192.0.2.1, 198.51.100.7", "198.51.100.7"),
        (2, "192.0.2.1, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        # Fewer entries than proxies, or no address at all: the proxy's address (REMOTE_ADDR).
        (2, "198.51.100.7", "203.0.113.9"),
        (1, "", "203.0.113.9"),
        (1, "not-an-address", "203.0.113.9"),
        (1, "198.51.100.7:4711", "203.0.113.9"),
        # One spelling per address; an IPv6 client is its /64.
        (1, "::ffff:198.51.100.7", "198.51.100.7"),
        (1, "2001:db8:1:2:aaaa::1", "2001:db8:1:2::"),
    ],
)
def test_behind_trusted_proxies_the_address_they_saw_counts(settings, hops: int, forwarded: str, expected: str) -> None:
    settings.TRUSTED_PROXY_COUNT = hops
    assert client_ip(_request(forwarded=forwarded)) == expected


def test_the_forwarded_header_can_be_another(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.CLIENT_IP_HEADER = "X-Real-IP"
    request = _request(forwarded="198.51.100.7", header="HTTP_X_REAL_IP")
    request.META["HTTP_X_FORWARDED_FOR"] = "192.0.2.1"
    assert client_ip(request) == "198.51.100.7"


def test_no_address_is_none(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(_request(remote="")) is None


def test_a_forwarded_header_written_by_the_client_changes_nothing_by_default(browser: Client, bob: User) -> None:
    for n in range(5):
        sign_in(browser, f"user{n}", "wrong", ip="10.9.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    assert is_paused(sign_in(browser, "bob", "pw", ip="10.9.0.1", HTTP_X_FORWARDED_FOR="192.0.2.99"))


def test_behind_a_proxy_each_client_is_paused_alone(browser: Client, bob: User, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        # The attacker writes a different address each time; the proxy appends the real one.
        sign_in(browser, f"user{n}", "wrong", ip="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.66")

    assert is_paused(sign_in(browser, "bob", "pw", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.66"))
    colleague = Client(enforce_csrf_checks=True)
    assert signed_in(sign_in(colleague, "bob", "pw", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7"))


@pytest.mark.parametrize(
    "env",
    [
        {"AXES_FAILURE_LIMIT": "0"},
        {"AXES_COOLOFF_MINUTES": "0"},
        {"TRUSTED_PROXY_COUNT": "-1"},
        {"CLIENT_IP_HEADER": "X-Forwarded-For: 1.2.3.4"},
    ],
)
def test_it_refuses_to_start_with_a_throttle_that_cannot_work(env: dict[str, str]) -> None:
    result = start(SECRET_KEY="x" * 50, **env)
    assert result.returncode != 0
    assert next(iter(env)) in result.stderr
