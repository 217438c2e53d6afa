"""Links that can be taken back (crm.links, portal.access, portal.views): a reset ends every earlier
sign-in link, short link, calendar address and portal session of the contact, while links made
after it work; links made before the version existed keep working until then; a new email address
ends the old calendar address; signing out ends the session server-side; an old link on a new
browser asks "Continue as …?" first; each use is logged."""

from __future__ import annotations

import re
import struct
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils.crypto import salted_hmac

from crm.links import (
    SHORT_EPOCH,
    calendar_url,
    make_calendar_token,
    portal_url,
    short_portal_url,
    visit_answer_url,
)
from crm.models import Contact, ContactLinkUse, Job, VisitKind
from crm.services.contacts import contact_links_reset
from crm.services.customers import contact_update
from crm.services.visits import visit_book
from portal.access import SESSION_FINGERPRINT_KEY, SESSION_KEY

from .conftest import PARIS, sign_in

SIGNED_OUT = reverse("portal:signed_out")
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


def path_of(url: str) -> str:
    return url.removeprefix(settings.SITE_URL)


def fresh(contact: Contact) -> Contact:
    return Contact.objects.get(pk=contact.pk)


def opens_job(client: Client, url: str, job: Job) -> bool:
    response = client.get(url)
    return response.status_code == 302 and response["Location"] == reverse("portal:job", args=[job.public_id])


def reset(contact: Contact) -> Contact:
    return contact_links_reset(contact=contact)


# --- What a reset takes back ---------------------------------------------------------------------


def test_a_reset_ends_an_earlier_long_link(john: Contact, job: Job) -> None:
    url = portal_url(john, job)
    reset(john)
    client = Client()
    response = client.get(url)
    assert response["Location"] == f"{SIGNED_OUT}?job={job.public_id}&reason=expired"
    assert SESSION_KEY not in client.session


def test_a_reset_ends_an_earlier_short_link(john: Contact, job: Job) -> None:
    url = short_portal_url(john, job)
    reset(john)
    client = Client()
    assert client.get(url)["Location"] == f"{SIGNED_OUT}?reason=expired"
    assert SESSION_KEY not in client.session


def test_a_reset_ends_the_calendar_address(client: Client, john: Contact, job: Job) -> None:
    url = calendar_url(john)
    assert client.get(url).status_code == 200
    reset(john)
    assert client.get(url).status_code == 404


def test_a_reset_ends_an_open_portal_session(john_client: Client, john: Contact, job: Job) -> None:
    page = reverse("portal:job", args=[job.public_id])
    assert john_client.get(page).status_code == 200
    reset(john)
    response = john_client.get(page)
    assert response["Location"] == f"{SIGNED_OUT}?job={job.public_id}"
    assert SESSION_KEY not in john_client.session


def test_links_made_after_a_reset_work(john: Contact, job: Job) -> None:
    john = reset(john)
    client = Client()
    assert opens_job(client, portal_url(john, job), job)
    assert client.get(reverse("portal:job", args=[job.public_id])).status_code == 200
    assert opens_job(Client(), short_portal_url(john, job), job)
    assert Client().get(calendar_url(john)).status_code == 200


def test_a_reset_takes_back_only_that_contacts_links(
    contact: Contact, john: Contact, stranger: Contact, job: Job
) -> None:
    marie_url, stranger_calendar = portal_url(contact, job), calendar_url(stranger)
    reset(john)
    assert opens_job(Client(), marie_url, job)
    assert Client().get(stranger_calendar).status_code == 200


def test_the_unsubscribe_link_still_works_after_a_reset(client: Client, john: Contact) -> None:
    from crm.links import unsubscribe_url

    url = unsubscribe_url(john)
    reset(john)
    assert client.post(url).status_code == 200
    assert fresh(john).opted_out_at is not None


# --- Links made before the version existed ---------------------------------------------------------


def old_fingerprint(contact: Contact) -> str:
    """The fingerprint as crm.links made it before link versions."""
    return salted_hmac("portal.link.email", contact.email.strip().lower()).hexdigest()[:16]


def old_link(contact: Contact, job: Job) -> str:
    token = signing.dumps({"c": contact.pk, "e": old_fingerprint(contact)}, salt="portal.link", compress=True)
    return f"{reverse('portal:enter', args=[token])}?job={job.public_id}"


def old_short_link(contact: Contact, job: Job) -> str:
    import base64

    day = (date(2026, 3, 2) - SHORT_EPOCH).days
    payload = struct.pack(">BIIH4s", 1, contact.pk, job.pk, day, bytes.fromhex(old_fingerprint(contact)[:8]))
    mac = salted_hmac("portal.short", payload, algorithm="sha256").digest()[:12]
    return reverse("portal:short_enter", args=[base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")])


def old_calendar(contact: Contact) -> str:
    return reverse("portal:calendar", args=[signing.dumps({"c": contact.pk}, salt="portal.calendar", compress=True)])


def test_links_sent_before_versions_existed_keep_working(john: Contact, job: Job) -> None:
    client = Client()
    assert opens_job(client, old_link(john, job), job)
    # The session is bound exactly as before too: sessions already open stay open.
    assert client.session[SESSION_FINGERPRINT_KEY] == old_fingerprint(john)
    assert opens_job(Client(), old_short_link(john, job), job)
    assert Client().get(old_calendar(john)).status_code == 200


def test_links_sent_before_versions_existed_end_with_a_reset(john: Contact, job: Job) -> None:
    long, short, feed = old_link(john, job), old_short_link(john, job), old_calendar(john)
    reset(john)
    assert Client().get(long)["Location"].startswith(SIGNED_OUT)
    assert Client().get(short)["Location"].startswith(SIGNED_OUT)
    assert Client().get(feed).status_code == 404


# --- A new email address --------------------------------------------------------------------------


def change_email(contact: Contact, email: str) -> Contact:
    return contact_update(
        contact=contact,
        name=contact.name,
        email=email,
        phone=contact.phone,
        language=contact.language,
        preferred_channel=contact.preferred_channel,
        time_zone=contact.time_zone,
        sms_consent=False,
    )


def test_a_new_email_address_ends_the_old_calendar_address(john: Contact, job: Job) -> None:
    feeds = (calendar_url(john), old_calendar(john))
    john = change_email(john, "john.smith@example.org")
    assert john.link_version == 1
    for feed in feeds:
        assert Client().get(feed).status_code == 404
    assert Client().get(calendar_url(john)).status_code == 200


def test_an_address_written_differently_is_the_same_address(john: Contact, job: Job) -> None:
    feed = old_calendar(john)
    john = change_email(john, "John@Example.com")
    assert john.link_version == 0
    assert Client().get(feed).status_code == 200


# --- Reset from the preferences page ----------------------------------------------------------------


def test_the_preferences_page_offers_the_reset(john_client: Client) -> None:
    page = john_client.get(reverse("portal:preferences")).text
    assert "Reset my links" in page
    assert f'action="{reverse("portal:reset_links")}"' in page


def test_the_reset_keeps_this_browser_signed_in_and_shows_the_new_calendar_address(
    john_client: Client, john: Contact, job: Job
) -> None:
    other_browser = sign_in(Client(), john)
    old_feed, old_link_url = calendar_url(john), portal_url(john, job)

    response = john_client.post(reverse("portal:reset_links"), HTTP_USER_AGENT=IPHONE)

    assert response["Location"] == reverse("portal:preferences") + "#links"
    page = john_client.get(response["Location"])
    assert page.status_code == 200
    assert "Your links are reset" in page.text
    assert calendar_url(fresh(john)) in page.text
    assert old_feed not in page.text
    # This browser is still signed in; the other one, the old link and the old feed are not.
    assert john_client.get(reverse("portal:job", args=[job.public_id])).status_code == 200
    assert other_browser.get(reverse("portal:home"))["Location"] == SIGNED_OUT
    assert Client().get(old_link_url)["Location"].startswith(SIGNED_OUT)
    assert Client().get(old_feed).status_code == 404
    use = ContactLinkUse.objects.get(contact=john, kind=ContactLinkUse.Kind.RESET)
    assert (use.actor, use.device) == (None, ContactLinkUse.Device.PHONE)


def test_the_reset_changes_nothing_on_get(john_client: Client, john: Contact) -> None:
    response = john_client.get(reverse("portal:reset_links"))
    assert response["Location"] == reverse("portal:preferences")
    assert fresh(john).link_version == 0


def test_the_reset_needs_the_csrf_token(john: Contact) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), john)
    assert client.post(reverse("portal:reset_links")).status_code == 403
    assert fresh(john).link_version == 0


def test_the_reset_needs_a_signed_in_contact(client: Client, john: Contact) -> None:
    assert client.post(reverse("portal:reset_links"))["Location"] == SIGNED_OUT
    assert fresh(john).link_version == 0


# --- Signing out ----------------------------------------------------------------------------------


def test_signing_out_ends_the_session_server_side(john_client: Client, job: Job) -> None:
    old_key = john_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=old_key).exists()

    john_client.post(reverse("portal:sign_out"))

    assert not Session.objects.filter(session_key=old_key).exists()
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_key
    response = replay.get(reverse("portal:job", args=[job.public_id]), follow=True)
    assert response.redirect_chain[0][0] == f"{SIGNED_OUT}?job={job.public_id}"
    assert "Send me a new link" in response.text
    assert "Heat pump installation" not in response.text


# --- "Continue as …?" for an old link on a new browser ------------------------------------------------


def test_an_old_link_on_a_new_browser_asks_first_and_get_signs_nobody_in(john: Contact, job: Job, time_machine) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(days=1, minutes=1))
    client = Client()

    for response in (client.get(url), client.head(url)):
        assert response.status_code == 200
        assert SESSION_KEY not in client.session
    page = client.get(url)
    assert "Continue as John?" in page.text
    assert settings.COMPANY_NAME in page.text
    assert f'action="{path_of(url)}"' in page.text.replace("&amp;", "&")
    assert f'href="{SIGNED_OUT}?job={job.public_id}"' in page.text  # "Not you? Ask for your own link"
    assert "Heat pump installation" not in page.text
    assert "no-cache" in page["Cache-Control"]
    assert not ContactLinkUse.objects.exists()


def test_the_continue_button_signs_in_and_goes_on_to_the_link_s_page(john: Contact, job: Job, time_machine) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(days=3))
    client = Client(enforce_csrf_checks=True)
    page = client.get(url)
    assert client.post(path_of(url)).status_code == 403  # the button's form carries the CSRF token
    assert SESSION_KEY not in client.session

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(path_of(url), {"csrfmiddlewaretoken": token.group(1)})

    assert response["Location"] == reverse("portal:job", args=[job.public_id])
    assert client.session[SESSION_KEY] == john.pk
    assert client.get(response["Location"]).status_code == 200


def test_a_visit_answer_link_goes_on_to_its_answer_after_continuing(john: Contact, job: Job, time_machine) -> None:
    kind = VisitKind.objects.create(pipeline=job.pipeline, name="Installation day")
    visit = visit_book(
        job=job,
        kind=kind,
        window_start=datetime(2026, 3, 10, 14, 0, tzinfo=PARIS),
        address="1 rue de la Paix, Paris",
        actor=job.owner,
        tell_customer=False,
    )
    url = visit_answer_url(john, visit, "confirm")
    time_machine.shift(timedelta(days=2))
    client = Client()
    assert client.get(url).status_code == 200
    assert client.post(path_of(url))["Location"] == reverse(
        "portal:visit_confirm", args=[job.public_id, visit.public_id]
    )


def test_within_a_day_the_link_signs_in_directly(john: Contact, job: Job, time_machine) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(hours=23, minutes=59))
    assert opens_job(Client(), url, job)


def test_a_browser_signed_in_as_that_contact_is_not_asked(
    john_client: Client, john: Contact, job: Job, time_machine
) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(days=5))
    assert opens_job(john_client, url, job)


def test_a_browser_signed_in_as_someone_else_is_asked(
    marie_client: Client, contact: Contact, john: Contact, job: Job, time_machine
) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(days=2))
    assert marie_client.get(url).status_code == 200
    assert marie_client.session[SESSION_KEY] == contact.pk  # nothing changed until the button


def test_short_links_count_by_day(john: Contact, job: Job, time_machine) -> None:
    url = short_portal_url(john, job)  # made on Monday 2 March (09:00 UTC)
    time_machine.move_to(datetime(2026, 3, 3, 23, 30, tzinfo=UTC))  # the next day: 38 h later
    assert opens_job(Client(), url, job)
    time_machine.move_to(datetime(2026, 3, 4, 0, 30, tzinfo=UTC))  # the day after: 39 h later
    client = Client()
    page = client.get(url)
    assert page.status_code == 200
    assert "Continue as John?" in page.text
    assert SESSION_KEY not in client.session
    assert client.post(path_of(url))["Location"] == reverse("portal:job", args=[job.public_id])
    assert client.session[SESSION_KEY] == john.pk


def test_a_link_taken_back_meanwhile_does_not_sign_in_from_the_button(john: Contact, job: Job, time_machine) -> None:
    url = portal_url(john, job)
    time_machine.shift(timedelta(days=2))
    client = Client()
    assert client.get(url).status_code == 200
    reset(john)
    assert client.post(path_of(url))["Location"] == f"{SIGNED_OUT}?job={job.public_id}&reason=expired"
    assert SESSION_KEY not in client.session


# --- The log of uses -----------------------------------------------------------------------------------


def test_a_sign_in_is_logged_with_its_device(client: Client, john: Contact, job: Job) -> None:
    client.get(portal_url(john, job), HTTP_USER_AGENT=IPHONE)
    (use,) = ContactLinkUse.objects.filter(contact=john)
    assert (use.kind, use.device, use.actor) == (ContactLinkUse.Kind.SIGN_IN, ContactLinkUse.Device.PHONE, None)


@pytest.mark.parametrize("fetches", [1, 3])
def test_calendar_fetches_are_logged_once_a_day(john: Contact, job: Job, time_machine, fetches: int) -> None:
    url = calendar_url(john)
    for _fetch in range(fetches):
        assert Client().get(url, HTTP_USER_AGENT="iOS/17.4 (21E219) dataaccessd/1.0").status_code == 200
    assert ContactLinkUse.objects.filter(contact=john, kind=ContactLinkUse.Kind.CALENDAR).count() == 1
    time_machine.shift(timedelta(days=1))
    Client().get(url)
    uses = ContactLinkUse.objects.filter(contact=john, kind=ContactLinkUse.Kind.CALENDAR).order_by("at")
    assert [(u.day, u.device) for u in uses] == [
        (date(2026, 3, 2), ContactLinkUse.Device.PHONE),
        (date(2026, 3, 3), ContactLinkUse.Device.UNKNOWN),
    ]


def test_a_refused_calendar_address_logs_nothing(john: Contact) -> None:
    url = calendar_url(john)
    reset(john)
    Client().get(url)
    assert not ContactLinkUse.objects.filter(kind=ContactLinkUse.Kind.CALENDAR).exists()


def test_the_calendar_token_of_another_purpose_is_refused(john: Contact) -> None:
    # A calendar token is bound like a sign-in link, but under its own salt: it signs nobody in.
    client = Client()
    response = client.get(reverse("portal:enter", args=[make_calendar_token(john)]))
    assert response["Location"].startswith(SIGNED_OUT)
    assert SESSION_KEY not in client.session
