"""Two-factor sign-in in a real browser, on a 360 px phone: sign in, set up the app from the key
the page shows, keep the backup codes, sign out, and sign in again with the app's code. Each of
its pages fits the screen and passes axe-core."""

from __future__ import annotations

from base64 import b32decode
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, page_width, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def app_code(secret: str) -> str:
    """What an authenticator app given this key shows now."""
    return f"{totp(b32decode(secret.replace(' ', ''))):06d}"


def check(page: Any) -> None:
    assert page_width(page) <= 360, f"{page.url} scrolls sideways on a 360px phone"
    assert_accessible(page)


def test_it_sets_up_two_factor_and_signs_in_with_a_code(
    phone_page: Any, live_server: Any, bob: User, time_machine: Any
) -> None:
    page = phone_page
    base = live_server.url
    sign_in(page, f"{base}/jobs/")
    page.get_by_role("button", name="Menu").tap()
    page.get_by_role("link", name="Your account: Bob").tap()
    page.wait_for_url(f"{base}/account/security/")
    check(page)

    page.get_by_role("button", name="Set up two-factor sign-in").tap()
    expect(page.get_by_role("img", name="QR code to scan with your authenticator app")).to_be_visible()
    check(page)
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(app_code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").tap()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    expect(page.get_by_role("list", name="Backup codes").get_by_role("listitem")).to_have_count(10)
    check(page)

    page.get_by_role("button", name="Menu").tap()
    page.get_by_role("button", name="Sign out").tap()
    page.wait_for_url(f"{base}/accounts/login/")

    # The app's next code (a code works once).
    time_machine.move_to(timezone.now() + timedelta(seconds=30), tick=True)
    page.goto(f"{base}/jobs/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Sign in").tap()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    check(page)
    page.get_by_label("Code").fill(app_code(secret))
    page.get_by_role("button", name="Continue").tap()
    page.wait_for_url(f"{base}/jobs/")
