"""The campaign pages: list, write, audience, preview per language, send, progress.

bob writes and sends; dana is not staff. Time is frozen on Monday 2 March 2026, 10:00 in Paris.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from crm.models import Campaign, Contact, Customer, Message
from crm.services.campaigns import CampaignDetails, campaign_create, campaign_send_start, texts

pytestmark = pytest.mark.django_db

MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))

FORM = {
    "title": "Open day",
    "kind": "event",
    "starts_on": "2026-03-21",
    "ends_on": "2026-03-21",
    "link_url": "https://example.com/open-day",
    "subject_en": "Come to our open day",
    "body_en": "See a heat pump running, and meet the installers.",
    "link_label_en": "Book a place",
    "subject_fr": "Venez à nos portes ouvertes",
    "body_fr": "Voyez une pompe à chaleur en marche et rencontrez les installateurs.",
    "link_label_fr": "Réserver une place",
    "pipeline": "",
    "language": "",
}


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture
def staff(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def contacts(customer: Customer, contact: Contact) -> list[Contact]:
    john = Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")
    return [contact, john]


@pytest.fixture
def campaign(bob, contacts) -> Campaign:
    return campaign_create(
        details=CampaignDetails(
            title="Spring filter tip",
            kind="tip",
            starts_on=date(2026, 3, 2),
            ends_on=date(2026, 3, 31),
            subject_en="Clean your filter",
            body_en="A clean filter saves energy.",
            subject_fr="Nettoyez votre filtre",
            body_fr="Un filtre propre économise l'énergie.",
        ),
        actor=bob,
    )


def all_urls(campaign: Campaign) -> list[tuple[str, str]]:
    code = campaign.public_id
    return [
        ("get", reverse("crm:campaigns")),
        ("get", reverse("crm:campaign_new")),
        ("post", reverse("crm:campaign_new")),
        ("get", reverse("crm:campaign", args=[code])),
        ("get", reverse("crm:campaign_edit", args=[code])),
        ("post", reverse("crm:campaign_edit", args=[code])),
        ("get", reverse("crm:campaign_preview", args=[code, "en"])),
        ("get", reverse("crm:campaign_preview", args=[code, "fr"])),
        ("post", reverse("crm:campaign_send", args=[code])),
        ("post", reverse("crm:campaign_resume", args=[code])),
        ("get", reverse("crm:campaign_progress", args=[code])),
    ]


def snapshot() -> tuple[list[dict], int]:
    return list(Campaign.objects.order_by("pk").values()), Message.objects.count()


class TestAccess:
    def test_it_sends_anonymous_visitors_to_sign_in(self, client, campaign):
        for method, url in all_urls(campaign):
            response = getattr(client, method)(url, FORM) if method == "post" else client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url
        assert Campaign.objects.get().status == Campaign.Status.DRAFT
        assert Campaign.objects.count() == 1

    def test_it_refuses_users_who_are_not_staff(self, client, dana, campaign):
        client.force_login(dana)
        for method, url in all_urls(campaign):
            assert getattr(client, method)(url).status_code == 403, url
        assert Campaign.objects.get().status == Campaign.Status.DRAFT

    def test_an_unknown_campaign_is_a_404(self, staff):
        for name in ("crm:campaign", "crm:campaign_edit", "crm:campaign_progress"):
            assert staff.get(reverse(name, args=[uuid.uuid4()])).status_code == 404
        assert staff.post(reverse("crm:campaign_send", args=[uuid.uuid4()])).status_code == 404

    def test_get_never_changes_anything(self, staff, campaign):
        before = snapshot()
        for method, url in all_urls(campaign):
            if method == "get":
                assert staff.get(url).status_code in (200, 286), url  # 286: nothing to poll for
        assert snapshot() == before

    def test_get_never_changes_a_sending_campaign_either(self, staff, campaign, bob, monkeypatch):
        monkeypatch.setattr("crm.services.campaigns._enqueue", lambda campaign_id: None)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        before = snapshot()
        for method, url in all_urls(campaign):
            if method == "get":
                assert staff.get(url).status_code in (200, 302), url  # editing a sent campaign: back to it
        assert snapshot() == before

    def test_mutations_are_post_only(self, staff, campaign):
        for name in ("crm:campaign_send", "crm:campaign_resume"):
            assert staff.get(reverse(name, args=[campaign.public_id])).status_code == 405
        assert Campaign.objects.get().status == Campaign.Status.DRAFT


class TestList:
    def test_it_lists_campaigns_newest_first_in_a_fixed_number_of_queries(
        self, staff, campaign, bob, django_assert_max_num_queries
    ):
        for n in range(5):
            campaign_create(
                details=CampaignDetails(
                    title=f"Tip {n}",
                    kind="tip",
                    starts_on=date(2026, 3, 2),
                    ends_on=date(2026, 3, 31),
                    subject_en="S",
                    body_en="B",
                ),
                actor=bob,
            )
        with django_assert_max_num_queries(12):
            response = staff.get(reverse("crm:campaigns"))
        page = response.content.decode()
        assert response.context["nav"] == "campaigns"
        assert page.index("Tip 4") < page.index("Spring filter tip")
        assert 'aria-current="page" href="/campaigns/"' in page


class TestWriting:
    def test_it_creates_a_draft(self, staff, bob):
        response = staff.post(reverse("crm:campaign_new"), FORM)
        campaign = Campaign.objects.get()
        assert response["Location"] == reverse("crm:campaign", args=[campaign.public_id])
        assert (campaign.title, campaign.kind, campaign.status, campaign.created_by) == (
            "Open day",
            "event",
            "draft",
            bob,
        )
        assert campaign.link_label_fr == "Réserver une place"
        assert not Message.objects.exists()

    def test_the_end_cannot_be_before_the_start(self, staff):
        response = staff.post(reverse("crm:campaign_new"), {**FORM, "ends_on": "2026-03-20"})
        assert response.status_code == 200
        assert response.context["form"].errors["ends_on"] == ["The end date cannot be before the start date."]
        assert not Campaign.objects.exists()

    def test_it_needs_the_text_in_the_language_it_targets(self, staff):
        response = staff.post(
            reverse("crm:campaign_new"),
            {**FORM, "language": "fr", "subject_fr": "", "body_fr": "", "link_label_fr": ""},
        )
        errors = response.context["form"].errors
        assert errors["body_fr"] == ["This campaign goes to contacts who read French: write it in French."]
        assert not Campaign.objects.exists()

    def test_it_needs_some_text(self, staff):
        empty = dict.fromkeys(("subject_en", "body_en", "link_label_en", "subject_fr", "body_fr", "link_label_fr"), "")
        response = staff.post(reverse("crm:campaign_new"), {**FORM, **empty})
        assert response.context["form"].non_field_errors() == [
            "Write the subject and text in English, in French, or both."
        ]

    def test_it_edits_a_draft(self, staff, campaign):
        url = reverse("crm:campaign_edit", args=[campaign.public_id])
        assert 'value="Spring filter tip"' in staff.get(url).content.decode()
        response = staff.post(url, {**FORM, "title": "Renamed"})
        assert response["Location"] == reverse("crm:campaign", args=[campaign.public_id])
        campaign.refresh_from_db()
        assert (campaign.title, campaign.public_id) == ("Renamed", campaign.public_id)

    def test_a_sent_campaign_cannot_be_edited(self, staff, campaign, bob, monkeypatch):
        monkeypatch.setattr("crm.services.campaigns._enqueue", lambda campaign_id: None)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        url = reverse("crm:campaign_edit", args=[campaign.public_id])
        response = staff.post(url, {**FORM, "title": "Too late"})
        assert response["Location"] == reverse("crm:campaign", args=[campaign.public_id])
        campaign.refresh_from_db()
        assert campaign.title == "Spring filter tip"


class TestAudienceAndPreview:
    def test_the_draft_page_shows_the_audience_and_the_send_button(self, staff, campaign, contacts):
        Contact.objects.filter(pk=contacts[0].pk).update(opted_out_at=timezone.now())
        response = staff.get(reverse("crm:campaign", args=[campaign.public_id]))
        audience = response.context["audience"]
        assert (audience.total, audience.opted_out, audience.receiving) == (2, 1, 1)
        page = response.content.decode()
        assert "Send to 1 contact" in page
        assert reverse("crm:campaign_preview", args=[campaign.public_id, "fr"]) in page

    @pytest.mark.parametrize("language", ["en", "fr"])
    def test_the_preview_per_language_is_what_is_sent(
        self, staff, campaign, contacts, bob, language, django_capture_on_commit_callbacks
    ):
        response = staff.get(reverse("crm:campaign_preview", args=[campaign.public_id, language]))
        preview = response.context["email"]
        reader = response.context["contact"]
        assert reader.language == language
        page = response.content.decode()
        assert escape(preview.body_text) in page
        assert f'srcdoc="{escape(preview.body_html)}"' in page  # the email, escaped into the iframe
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:campaign_send", args=[campaign.public_id]))
        sent = Message.objects.get(contact=reader, kind=Message.Kind.TIP)
        assert (sent.subject, sent.body_text, sent.body_html) == (preview.subject, preview.body_text, preview.body_html)

    def test_a_language_the_campaign_does_not_go_out_in_has_no_preview(self, staff, campaign, bob):
        Campaign.objects.filter(pk=campaign.pk).update(language="en")
        assert staff.get(reverse("crm:campaign_preview", args=[campaign.public_id, "fr"])).status_code == 404
        assert staff.get(reverse("crm:campaign_preview", args=[campaign.public_id, "de"])).status_code == 404

    def test_the_preview_says_when_readers_get_another_language(self, staff, campaign):
        Campaign.objects.filter(pk=campaign.pk).update(subject_fr="", body_fr="")
        page = staff.get(reverse("crm:campaign_preview", args=[campaign.public_id, "fr"])).content.decode()
        assert "The campaign is not written in this language: these contacts receive it in English." in page


class TestSendAndProgress:
    def test_sending_twice_sends_once(self, staff, campaign, bob, django_capture_on_commit_callbacks):
        url = reverse("crm:campaign_send", args=[campaign.public_id])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            first = staff.post(url)
            second = staff.post(url)
        assert len(callbacks) >= 1
        assert first["Location"] == second["Location"] == reverse("crm:campaign", args=[campaign.public_id])
        campaign.refresh_from_db()
        assert (campaign.status, campaign.queued, campaign.sent_by) == (Campaign.Status.SENT, 2, bob)
        assert Message.objects.filter(kind=Message.Kind.TIP).count() == 2

    def test_a_campaign_by_text_says_how_many_text_messages_and_asks_to_confirm_them(
        self, staff, campaign, customer, bob, django_capture_on_commit_callbacks
    ):
        # Two contacts who chose texts: the French one's message is longer than one segment.
        for name, language in (("Luc Martin", "fr"), ("Ann Lee", "en")):
            Contact.objects.create(
                customer=customer,
                name=name,
                phone="+33612345678",
                language=language,
                preferred_channel="sms",
                sms_consent_at=timezone.now(),
                sms_consent_source="order form",
            )
        Campaign.objects.filter(pk=campaign.pk).update(body_fr="Un filtre propre économise l'énergie. " * 5)
        cost = texts(campaign)
        assert cost.contacts == 2 and cost.total == sum(row.length.segments for row in cost.by_language) > 2
        page = staff.get(campaign.get_absolute_url()).content.decode()
        assert f'name="texts_confirmed" value="{cost.total}"' in page
        assert f"sending it takes up to {cost.total} paid text messages" in page
        url = reverse("crm:campaign_send", args=[campaign.public_id])
        # Not confirmed, or confirmed for another count (the audience changed since): not sent.
        for data in ({}, {"texts_confirmed": str(cost.total - 1)}, {"texts_confirmed": "x" * 20}):
            response = staff.post(url, data, follow=True)
            assert f"This campaign takes {cost.total} text messages" in response.content.decode()
            assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(url, {"texts_confirmed": str(cost.total)})
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
        assert Message.objects.filter(kind=Message.Kind.TIP, channel="sms").count() == 2

    def test_an_ended_campaign_is_not_sent(self, staff, campaign):
        Campaign.objects.filter(pk=campaign.pk).update(starts_on=date(2026, 2, 1), ends_on=date(2026, 2, 28))
        response = staff.post(reverse("crm:campaign_send", args=[campaign.public_id]), follow=True)
        assert "This campaign ended on" in response.content.decode()
        assert Campaign.objects.get().status == Campaign.Status.DRAFT

    def test_the_progress_fragment_polls_until_sent(self, staff, campaign, bob, monkeypatch):
        monkeypatch.setattr("crm.services.campaigns._enqueue", lambda campaign_id: None)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        url = reverse("crm:campaign_progress", args=[campaign.public_id])
        response = staff.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        assert f'hx-get="{url}"' in page
        assert 'role="progressbar"' in page and 'aria-valuenow="0"' in page
        assert "0 of 2 contacts done." in page

        from crm.tasks import send_campaign

        send_campaign(campaign.pk)
        response = staff.get(url)
        assert response.status_code == 286
        page = response.content.decode()
        assert "hx-get" not in page
        assert 'aria-valuenow="100"' in page
        assert "Sending finished." in page

    def test_a_stalled_sending_offers_to_go_on(self, staff, campaign, bob, monkeypatch, time_machine):
        enqueued: list[int] = []
        monkeypatch.setattr("crm.services.campaigns._enqueue", enqueued.append)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        time_machine.shift(timedelta(minutes=5))
        page = staff.get(reverse("crm:campaign", args=[campaign.public_id])).content.decode()
        assert "Go on sending" in page
        staff.post(reverse("crm:campaign_resume", args=[campaign.public_id]))
        assert enqueued == [campaign.pk, campaign.pk]
