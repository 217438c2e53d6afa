"""Two-factor sign-in (crm/views/two_factor.py, crm.services.two_factor, crm.access): set up from
Your account with a QR code and a first code, ten backup codes shown once; after the password a
staff member with a device gives a code before any staff page or the admin; wrong codes are
refused and throttled; with STAFF_2FA_REQUIRED, managers and the admin's users set it up first.

Time is frozen: an authenticator app's code is the one for the clock's 30-second step, and a code
works once (the next one is the next step's).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.roles import roles_ensure
from crm.services.two_factor import totp_enrolment_confirm, totp_enrolment_start

SECURITY = reverse("crm:account_security")
VERIFY = reverse("crm:two_factor_verify")
START = reverse("crm:two_factor_start")
CONFIRM = reverse("crm:two_factor_confirm")
QR = reverse("crm:two_factor_qr")
OFF = reverse("crm:two_factor_off")
NEW_CODES = reverse("crm:backup_codes_new")
NOON = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(time_machine: Any) -> Any:
    time_machine.move_to(NOON, tick=False)
    return time_machine


def app_code(device: TOTPDevice) -> str:
    """What the person's authenticator app shows now."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def next_step(clock: Any) -> None:
    """30 seconds on: the app shows its next code (one code works once)."""
    clock.shift(timedelta(seconds=30))


class Enrolled:
    def __init__(self, user: User, clock: Any) -> None:
        totp_enrolment_start(user=user)
        pending = TOTPDevice.objects.get(user=user, confirmed=False)
        check = totp_enrolment_confirm(user=user, code=app_code(pending))
        assert check.accepted
        self.device = TOTPDevice.objects.get(user=user)
        self.backup_codes = list(check.backup_codes)
        next_step(clock)

    def code(self) -> str:
        self.device.refresh_from_db()
        return app_code(self.device)


def enrol(user: User, clock: Any) -> Enrolled:
    return Enrolled(user, clock)


def signed_in(client: Client, user: User) -> Client:
    """A new session past the password only (as after the sign-in form)."""
    client.logout()
    client.force_login(user)
    return client


def is_verified(client: Client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


def to_verify(path: str) -> str:
    return f"{VERIFY}?next={path.replace('/', '%2F')}"


def to_security(path: str) -> str:
    return f"{SECURITY}?next={path.replace('/', '%2F')}"


# --- Setting it up ------------------------------------------------------------------------------


def test_it_sets_up_the_app_from_its_qr_code_and_shows_the_backup_codes_once(
    client: Client, bob: User, clock: Any
) -> None:
    signed_in(client, bob)
    page = client.get(SECURITY)
    assert page.status_code == 200
    assert "Two-factor sign-in is off" in page.text
    assert 'action="/account/security/two-factor/start/"' in page.text
    assert not TOTPDevice.objects.exists()  # a GET creates nothing

    started = client.post(START, {"next": "/jobs/"})
    assert started.status_code == 302
    assert started["Location"] == to_security("/jobs/") + "#set-up"
    device = TOTPDevice.objects.get(user=bob)
    assert not device.confirmed

    page = client.get(started["Location"])
    secret = page.context["secret"]
    assert secret.replace(" ", "") == device.config_url.split("secret=")[1].split("&")[0]
    assert f'id="totp-secret">{secret}</code>' in page.text
    assert f'src="{QR}"' in page.text

    qr = client.get(QR)
    assert qr.status_code == 200
    assert qr["Content-Type"] == "image/svg+xml"
    assert "no-store" in qr["Cache-Control"]
    assert qr.content.startswith(b"<svg") and b"style" not in qr.content

    wrong = client.post(CONFIRM, {"code": f"{(int(app_code(device)) + 1) % 10**6:06d}", "next": "/jobs/"})
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.text
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    next_step(clock)  # past the wait the wrong code started
    device.refresh_from_db()
    confirmed = client.post(CONFIRM, {"code": app_code(device), "next": "/jobs/"})
    assert confirmed.status_code == 200
    assert "no-store" in confirmed["Cache-Control"]
    codes = list(confirmed.context["codes"])
    assert len(codes) == 10
    assert sorted(codes) == sorted(StaticToken.objects.filter(device__user=bob).values_list("token", flat=True))
    assert all(code in confirmed.text for code in codes)
    assert "This page will not show them again" in confirmed.text
    assert 'href="/jobs/"' in confirmed.text
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert is_verified(client)

    # Later visits say how many are left, never what they are.
    again = client.get(SECURITY)
    assert "Two-factor sign-in is on" in again.text
    assert "10 backup codes left" in again.text
    assert not any(code in again.text for code in codes)
    assert client.get(QR).status_code == 404  # nothing being set up any more
    assert client.get("/jobs/").status_code == 200


def test_a_code_of_the_wrong_shape_is_asked_again_without_counting(client: Client, bob: User) -> None:
    signed_in(client, bob).post(START)
    response = client.post(CONFIRM, {"code": "12ab"})

    assert response.status_code == 400
    assert "Type the 6 digits the app shows" in response.text
    assert TOTPDevice.objects.get(user=bob).throttling_failure_count == 0


def test_confirming_with_nothing_being_set_up_says_so(client: Client, bob: User) -> None:
    response = signed_in(client, bob).post(CONFIRM, {"code": "123456"}, follow=True)

    assert "Start setting up two-factor sign-in first." in response.text


# --- Signing in with a code ---------------------------------------------------------------------


def test_every_staff_page_asks_for_the_code_after_the_password(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    signed_in(client, bob)

    assert client.get("/jobs/?page=2")["Location"] == f"{VERIFY}?next=%2Fjobs%2F%3Fpage%3D2"
    assert client.get("/")["Location"] == to_verify("/")
    assert client.get(SECURITY)["Location"] == to_verify(SECURITY)
    # An htmx request is told to load the page whole rather than swap it into a fragment.
    assert client.get("/jobs/", headers={"HX-Request": "true"})["HX-Redirect"] == to_verify("/jobs/")

    page = client.get(to_verify("/jobs/"))
    assert page.status_code == 200
    assert "Enter your code" in page.text
    assert "Needs attention" not in page.text  # no staff page before the code

    response = client.post(VERIFY, {"code": me.code(), "next": "/jobs/"})
    assert response.status_code == 302
    assert response["Location"] == "/jobs/"
    assert is_verified(client)
    assert client.get("/jobs/").status_code == 200
    assert client.get(VERIFY + "?next=/jobs/")["Location"] == "/jobs/"  # already given


def test_the_sign_in_form_then_asks_for_the_code(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    signed = client.post("/accounts/login/?next=/jobs/", {"username": "bob", "password": "pw", "next": "/jobs/"})
    assert signed.status_code == 302

    assert client.get("/jobs/")["Location"] == to_verify("/jobs/")
    assert client.post(VERIFY, {"code": me.code(), "next": "/jobs/"})["Location"] == "/jobs/"
    assert client.get("/jobs/").status_code == 200


def test_a_wrong_code_is_refused_and_the_next_try_waits(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    signed_in(client, bob)
    good = me.code()
    wrong = f"{(int(good) + 1) % 10**6:06d}"

    refused = client.post(VERIFY, {"code": wrong, "next": "/jobs/"})
    assert refused.status_code == 400
    assert "That code is not right" in refused.text
    assert 'class="invalid-feedback"' in refused.text or "is-invalid" in refused.text
    assert not is_verified(client)
    assert client.get("/jobs/")["Location"] == to_verify("/jobs/")

    # django-otp's throttling: after a wrong code, even the right one waits a second.
    waiting = client.post(VERIFY, {"code": good, "next": "/jobs/"})
    assert waiting.status_code == 400
    assert "Too many wrong codes: wait 1 second, then try again." in waiting.text
    assert not is_verified(client)

    clock.shift(timedelta(seconds=2))
    assert client.post(VERIFY, {"code": good, "next": "/jobs/"})["Location"] == "/jobs/"


def test_a_backup_code_signs_in_once(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    code = me.backup_codes[0]
    signed_in(client, bob)

    response = client.post(VERIFY, {"code": code.upper(), "next": "/jobs/"})
    assert response["Location"] == "/jobs/"
    assert is_verified(client)
    [warning] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "9 are left" in warning
    assert not StaticToken.objects.filter(token=code).exists()

    signed_in(client, bob)
    again = client.post(VERIFY, {"code": code, "next": "/jobs/"})
    assert again.status_code == 400
    assert "That code is not right" in again.text
    assert not is_verified(client)


def test_the_verify_page_goes_nowhere_else(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    signed_in(client, bob)

    response = client.post(VERIFY, {"code": me.code(), "next": "https://evil.example/"})

    assert response["Location"] == reverse("crm:home")


def test_the_verify_page_is_for_staff_past_the_password(client: Client, dana: User) -> None:
    assert client.get(VERIFY)["Location"].startswith(reverse("login"))
    assert signed_in(client, dana).get(VERIFY).status_code == 403


def test_without_a_device_the_verify_page_sends_on(client: Client, bob: User) -> None:
    signed_in(client, bob)
    assert client.get(to_verify("/jobs/"))["Location"] == "/jobs/"
    assert client.get("/jobs/").status_code == 200


# --- Required: managers and the admin -----------------------------------------------------------


@pytest.fixture
def required(settings: Any) -> None:
    settings.STAFF_2FA_REQUIRED = True


@pytest.mark.usefixtures("required")
def test_a_manager_sets_it_up_before_anything_else(client: Client, alice: User) -> None:
    signed_in(client, alice)

    assert client.get("/jobs/")["Location"] == to_security("/jobs/")
    assert client.get(reverse("crm:health"))["Location"] == to_security(reverse("crm:health"))
    page = client.get(to_security("/jobs/"))
    assert page.status_code == 200
    assert "Your role needs two-factor sign-in" in page.text


@pytest.mark.usefixtures("required")
def test_a_superuser_sets_it_up_before_anything_else(client: Client, superuser: User) -> None:
    assert signed_in(client, superuser).get("/")["Location"] == to_security("/")


@pytest.mark.usefixtures("required")
def test_a_staff_member_without_a_device_is_not_sent_to_set_it_up(client: Client, charlie: User) -> None:
    assert signed_in(client, charlie).get("/jobs/").status_code == 200


@pytest.mark.usefixtures("required")
def test_the_admin_sends_its_users_to_set_it_up_first(client: Client, superuser: User, charlie: User) -> None:
    signed_in(client, superuser)
    response = client.get("/admin/crm/job/", follow=True)
    assert response.redirect_chain[-1][0] == to_security("/admin/crm/job/")
    assert "Your role needs two-factor sign-in" in response.text

    # A staff member with no role needing it still needs it for the admin.
    signed_in(client, charlie)
    assert client.get("/jobs/").status_code == 200
    assert client.get("/admin/", follow=True).redirect_chain[-1][0] == to_security("/admin/")


@pytest.mark.usefixtures("required")
def test_the_admin_refuses_a_session_that_has_not_given_its_code(client: Client, superuser: User, clock: Any) -> None:
    me = enrol(superuser, clock)
    signed_in(client, superuser)

    response = client.get("/admin/crm/job/", follow=True)
    assert response.redirect_chain[0][0] == f"{reverse('admin:login')}?next=/admin/crm/job/"
    assert response.redirect_chain[-1][0] == to_verify("/admin/crm/job/")
    assert "Enter your code" in response.text

    assert client.post(VERIFY, {"code": me.code(), "next": "/admin/crm/job/"})["Location"] == "/admin/crm/job/"
    assert client.get("/admin/crm/job/").status_code == 200


def test_the_admin_asks_for_the_code_of_whoever_has_one_even_when_optional(
    client: Client, superuser: User, clock: Any
) -> None:
    enrol(superuser, clock)
    signed_in(client, superuser)

    assert client.get("/admin/", follow=True).redirect_chain[-1][0] == to_verify("/admin/")


def test_the_admin_is_unchanged_for_others_when_optional(client: Client, superuser: User) -> None:
    assert signed_in(client, superuser).get("/admin/").status_code == 200


# --- Backup codes, a new phone, turning it off --------------------------------------------------


def verified(client: Client, user: User, me: Enrolled) -> Client:
    signed_in(client, user)
    assert client.post(VERIFY, {"code": me.code()}).status_code == 302
    return client


def test_new_backup_codes_replace_the_old_ones(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    verified(client, bob, me)
    next_step(clock)

    response = client.post(NEW_CODES, {"codes-code": me.code()})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new = list(response.context["codes"])
    assert len(new) == 10 and not set(new) & set(me.backup_codes)
    assert "Your earlier backup codes no longer work" in response.text

    signed_in(client, bob)
    assert client.post(VERIFY, {"code": me.backup_codes[1]}).status_code == 400
    clock.shift(timedelta(seconds=2))  # the wait the wrong code started
    assert client.post(VERIFY, {"code": new[0]}).status_code == 302


def test_new_backup_codes_need_a_right_code(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    verified(client, bob, me)

    response = client.post(NEW_CODES, {"codes-code": "000000" if me.code() != "000000" else "111111"})

    assert response.status_code == 400
    assert "That code is not right" in response.text
    assert sorted(StaticToken.objects.values_list("token", flat=True)) == sorted(me.backup_codes)


def test_a_new_phone_replaces_the_old_one_once_it_gives_its_code(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    verified(client, bob, me)
    old = me.device

    client.post(START)
    assert TOTPDevice.objects.filter(user=bob).count() == 2  # the old one works until then
    new = TOTPDevice.objects.get(user=bob, confirmed=False)
    next_step(clock)
    assert client.post(CONFIRM, {"code": app_code(new)}).status_code == 200

    assert list(TOTPDevice.objects.filter(user=bob)) == [new]
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()


def test_it_turns_off_with_a_current_code(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    verified(client, bob, me)
    next_step(clock)

    refused = client.post(OFF, {"off-code": me.backup_codes[0][::-1]})
    assert refused.status_code == 400
    assert TOTPDevice.objects.filter(user=bob).exists()

    clock.shift(timedelta(seconds=2))
    response = client.post(OFF, {"off-code": me.code()}, follow=True)
    assert "Two-factor sign-in is off" in response.text
    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert not StaticDevice.objects.filter(user=bob).exists()

    # A new session is the password alone again.
    client.post(reverse("logout"))
    assert signed_in(client, bob).get("/jobs/").status_code == 200


@pytest.mark.usefixtures("required")
def test_it_stays_on_for_a_role_that_needs_it(client: Client, alice: User, clock: Any) -> None:
    me = enrol(alice, clock)
    verified(client, alice, me)
    next_step(clock)

    page = client.get(SECURITY)
    assert "so it stays on" in page.text
    assert f'action="{OFF}"' not in page.text
    response = client.post(OFF, {"off-code": me.code()}, follow=True)
    assert "Your role needs two-factor sign-in, so it cannot be turned off." in response.text
    assert TOTPDevice.objects.filter(user=alice, confirmed=True).exists()


def test_the_pages_change_nothing_on_get(client: Client, bob: User) -> None:
    signed_in(client, bob)
    for url in (START, CONFIRM, OFF, NEW_CODES):
        assert client.get(url).status_code == 405
    assert not TOTPDevice.objects.exists()


def test_the_staff_menu_links_to_the_account_page(client: Client, bob: User) -> None:
    page = signed_in(client, bob).get("/")
    assert f'href="{SECURITY}"' in page.text


# --- Odd input ----------------------------------------------------------------------------------

NUL = "\x00"
SURROGATE_BYTES = "%ED%A0%80"


def test_odd_input_is_never_a_500(client: Client, bob: User, clock: Any) -> None:
    me = enrol(bob, clock)
    client.raise_request_exception = False
    signed_in(client, bob)
    for odd in (f"/jobs/{NUL}", "/\\evil.example/"):
        assert client.get(VERIFY, {"next": odd}).status_code == 200
    assert client.get(f"{VERIFY}?next={SURROGATE_BYTES}").status_code == 200
    refused = client.post(VERIFY, {"code": f"12{NUL}3456", "next": NUL})
    assert refused.status_code == 400
    assert "Null characters are not allowed." in refused.text
    post = client.post(VERIFY, f"code={SURROGATE_BYTES}&next=%2F", content_type="application/x-www-form-urlencoded")
    assert post.status_code == 400

    verified(client, bob, me)
    for url, field in ((CONFIRM, "code"), (NEW_CODES, "codes-code"), (OFF, "off-code")):
        response = client.post(url, {field: f"{NUL}123456", "next": f"/{NUL}"})
        assert response.status_code in (302, 400), url
        raw = client.post(url, f"{field}={SURROGATE_BYTES}", content_type="application/x-www-form-urlencoded")
        assert raw.status_code in (302, 400), url
    assert client.get(SECURITY, {"next": NUL}).status_code == 200
    assert client.get(f"{SECURITY}?next={SURROGATE_BYTES}").status_code == 200


def test_a_manager_removes_a_lost_phone_and_a_staff_member_cannot(
    client: Client, alice: User, bob: User, charlie: User, clock: Any
) -> None:
    """Bob lost his phone: a manager removes his app and his backup codes in the admin, and at
    his next sign-in he is asked for no code. Charlie, staff, cannot."""
    roles_ensure()
    enrol(bob, clock)
    app = reverse("admin:otp_totp_totpdevice_delete", args=[TOTPDevice.objects.get(user=bob).pk])
    codes = reverse("admin:otp_static_staticdevice_delete", args=[StaticDevice.objects.get(user=bob).pk])

    signed_in(client, charlie)
    assert client.get(app).status_code == 403
    assert client.get(codes).status_code == 403

    verified(client, alice, enrol(alice, clock))
    assert client.post(app, {"post": "yes"}).status_code == 302
    assert client.post(codes, {"post": "yes"}).status_code == 302
    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert not StaticDevice.objects.filter(user=bob).exists()

    signed_in(client, bob)
    assert client.get(reverse("crm:home")).status_code == 200


def test_the_password_cannot_be_changed_past_the_password_alone(client: Client, bob: User, clock: Any) -> None:
    """Changing it ends the real owner's other sessions: it asks for the code first."""
    me = enrol(bob, clock)
    signed_in(client, bob)
    change = reverse("password_change")
    data = {"old_password": "pw", "new_password1": "a long new passphrase", "new_password2": "a long new passphrase"}

    response = client.post(change, data)

    assert response["Location"] == to_verify(change)
    bob.refresh_from_db()
    assert bob.check_password("pw")
    verified(client, bob, me)
    assert client.post(change, data)["Location"] == reverse("password_change_done")
    bob.refresh_from_db()
    assert bob.check_password("a long new passphrase")


def test_a_session_from_before_it_was_set_up_asks_for_the_code_soon_after(bob: User, clock: Any) -> None:
    """The laptop left signed in, then two-factor set up from the phone: within five minutes the
    laptop's session asks for the code too."""
    laptop = signed_in(Client(), bob)
    assert laptop.get(reverse("crm:jobs")).status_code == 200
    enrol(bob, clock)

    clock.shift(timedelta(minutes=6))

    assert laptop.get(reverse("crm:jobs"))["Location"] == to_verify(reverse("crm:jobs"))


def test_a_superusers_devices_are_removed_by_a_superuser_only(
    client: Client, alice: User, superuser: User, clock: Any
) -> None:
    roles_ensure()
    enrol(superuser, clock)
    app = reverse("admin:otp_totp_totpdevice_delete", args=[TOTPDevice.objects.get(user=superuser).pk])

    verified(client, alice, enrol(alice, clock))
    assert client.post(app, {"post": "yes"}).status_code == 403
    assert TOTPDevice.objects.filter(user=superuser).exists()
