"""A campaign's durable link (/portal/c/<public_id>/): no sign-in, the content while the campaign
runs, "this offer has ended" and what is current once it has ended (status 200, never an error),
a friendly 404 page for a link that names nothing.

Time is frozen on Monday 2 March 2026, 10:00 in Paris (tests/portal/conftest.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.links import campaign_url
from crm.models import Campaign, Contact, Message
from crm.services.campaigns import CampaignDetails, campaign_create, campaign_send_start, texts
from portal.access import SESSION_KEY

from .conftest import PARIS

pytestmark = pytest.mark.django_db


def make_campaign(bob, *, sent: bool = True, **overrides) -> Campaign:
    values = {
        "title": "Open day",
        "kind": Campaign.Kind.EVENT,
        "starts_on": date(2026, 3, 21),
        "ends_on": date(2026, 3, 21),
        "subject_en": "Come to our open day",
        "body_en": "See a heat pump running.\n\nMeet the installers.",
        "subject_fr": "Venez à nos portes ouvertes",
        "body_fr": "Voyez une pompe à chaleur en marche.",
        "link_url": "https://example.com/open-day",
        "link_label_en": "Book a place",
        "link_label_fr": "Réserver une place",
    }
    values.update(overrides)
    campaign = campaign_create(details=CampaignDetails(**values), actor=bob)
    if sent:
        # What the sending leaves behind; how it gets there is tests/crm/test_campaigns.py's business.
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, sent_at=timezone.now())
        campaign.refresh_from_db()
    return campaign


def link(campaign: Campaign, language: str = "en") -> str:
    return campaign_url(campaign, language=language).removeprefix("http://testserver")


def current_links(page: str) -> list[str]:
    section = page.split('id="on-now"', 1)[1] if 'id="on-now"' in page else ""
    return re.findall(r'<li><a href="([^"]+)">', section)


class TestRunning:
    def test_it_shows_the_campaign_without_signing_in(self, client: Client, bob):
        campaign = make_campaign(bob)
        response = client.get(link(campaign))
        assert response.status_code == 200
        page = response.content.decode()
        assert "Come to our open day" in page
        assert "<p>See a heat pump running.</p>\n\n<p>Meet the installers.</p>" in page
        assert "Saturday 21 March 2026" in page
        assert (
            '<a class="btn btn-primary" href="https://example.com/open-day" rel="noopener noreferrer">Book a place</a>'
            in page
        )
        assert response.headers["Content-Language"] == "en"
        assert SESSION_KEY not in client.session  # it signs nobody in

    def test_it_shows_it_in_the_language_of_the_message(self, client: Client, bob):
        page = client.get(link(make_campaign(bob), "fr")).content.decode()
        assert "Venez à nos portes ouvertes" in page
        assert "Réserver une place" in page
        assert "Come to our open day" not in page

    def test_without_a_language_it_follows_the_browser_and_a_choice_made_here_wins(self, client: Client, bob):
        campaign = make_campaign(bob)
        bare = reverse("portal:campaign", args=[campaign.public_id])
        assert "Venez à nos portes ouvertes" in client.get(bare, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
        client.post(reverse("portal:language"), {"language": "fr", "next": link(campaign, "en")})
        assert "Venez à nos portes ouvertes" in client.get(link(campaign, "en")).content.decode()

    def test_a_language_it_is_not_written_in_gets_the_written_one(self, client: Client, bob):
        campaign = make_campaign(bob, subject_fr="", body_fr="", link_label_fr="")
        page = client.get(link(campaign, "fr")).content.decode()
        assert "See a heat pump running." in page

    def test_it_runs_until_the_end_of_its_last_day(self, client: Client, bob, time_machine):
        campaign = make_campaign(bob)
        time_machine.move_to(datetime(2026, 3, 21, 23, 30, tzinfo=PARIS), tick=False)
        page = client.get(link(campaign)).content.decode()
        assert "See a heat pump running." in page
        assert "This offer has ended" not in page
        time_machine.shift(timedelta(hours=1))  # Sunday 22 March, 00:30 in Paris
        page = client.get(link(campaign)).content.decode()
        assert "This offer has ended" in page
        assert "See a heat pump running." not in page

    def test_user_text_is_escaped(self, client: Client, bob):
        campaign = make_campaign(bob, body_en="<script>alert(1)</script>")
        page = client.get(link(campaign)).content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    def test_it_only_answers_get(self, client: Client, bob):
        assert client.post(link(make_campaign(bob))).status_code == 405


class TestEnded:
    def test_an_ended_campaign_says_so_and_shows_what_is_current(self, client: Client, bob):
        ended = make_campaign(bob, title="Winter", starts_on=date(2026, 1, 10), ends_on=date(2026, 2, 28))
        everyone = make_campaign(
            bob, title="Spring tip", kind="tip", ends_on=date(2026, 4, 30), starts_on=date(2026, 3, 1)
        )
        english = make_campaign(
            bob, title="English webinar", kind="training", language="en", subject_fr="", body_fr="", link_label_fr=""
        )
        make_campaign(bob, title="Draft", sent=False)
        make_campaign(bob, title="Also over", starts_on=date(2026, 2, 1), ends_on=date(2026, 3, 1))

        response = client.get(link(ended, "en"))
        assert response.status_code == 200
        page = response.content.decode()
        assert "This offer has ended" in page
        assert "“Come to our open day” ended on 28 February 2026." in page
        assert current_links(page) == [link(english, "en"), link(everyone, "en")]  # soonest end first
        assert "See a heat pump running." not in page  # not the old content
        assert f'href="{reverse("portal:home")}"' in page

        # A French reader is not offered the English-only webinar.
        page = client.get(link(ended, "fr")).content.decode()
        assert current_links(page) == [link(everyone, "fr")]

    def test_with_nothing_current_it_points_to_the_portal(self, client: Client, bob):
        ended = make_campaign(bob, starts_on=date(2026, 1, 10), ends_on=date(2026, 2, 28))
        response = client.get(link(ended))
        assert response.status_code == 200
        page = response.content.decode()
        assert "There is nothing else on right now" in page
        assert f'href="{reverse("portal:home")}"' in page

    def test_the_link_in_a_message_opens_the_campaign_then_the_ended_page(
        self, bob, job, john: Contact, time_machine, django_capture_on_commit_callbacks
    ):
        campaign = make_campaign(bob, sent=False, language="en")
        with django_capture_on_commit_callbacks(execute=True):
            campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        message = Message.objects.get(contact=john, kind=Message.Kind.TIP)
        url = re.search(r"http://testserver(/portal/c/\S+)", message.body_text).group(1)
        visitor = Client()
        assert "See a heat pump running." in visitor.get(url).content.decode()
        time_machine.shift(timedelta(days=60))
        response = visitor.get(url)
        assert response.status_code == 200
        assert "This offer has ended" in response.content.decode()


class TestNotFound:
    def test_a_garbled_or_unknown_link_is_a_friendly_404(self, client: Client, bob):
        running = make_campaign(bob, title="Running", kind="tip", starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 31))
        for code in ("0b5f2f6e-not-a-uuid", "6f1d7b8e-2c4a-4b1e-9f3d-1a2b3c4d5e6f"):
            response = client.get(reverse("portal:campaign", args=[code]))
            assert response.status_code == 404
            page = response.content.decode()
            assert "We could not find this page" in page
            assert current_links(page) == [reverse("portal:campaign", args=[running.public_id]) + "?lang=en"]

    def test_a_draft_is_not_public_but_staff_can_open_it(self, client: Client, bob):
        draft = make_campaign(bob, sent=False)
        assert client.get(link(draft)).status_code == 404
        client.force_login(bob)
        response = client.get(link(draft))
        assert response.status_code == 200
        assert "Draft: only the team can see this page" in response.content.decode()

    def test_a_draft_needs_the_second_factor_of_whoever_has_one(self, client: Client, bob):
        """Past the password only, a staff member with two-factor sign-in is nobody here yet."""
        draft = make_campaign(bob, sent=False)
        TOTPDevice.objects.create(user=bob, name="phone", confirmed=True)
        client.post(reverse("login"), {"username": "bob", "password": "pw"})
        assert client.get(reverse("crm:home")).status_code == 302  # asked for the code
        assert client.get(link(draft)).status_code == 404
