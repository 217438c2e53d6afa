"""Campaigns: who is in the segment, who is skipped and why (opt-out, the frequency cap across
kinds, no way to reach them), sending once in batches with exact counters, and the preview per
language being exactly what is sent.

Time is frozen on Monday 2 March 2026, 10:00 in Paris. The world:

- the Dupont household: Marie (French) and John (English); a completed Installation job;
- Acme Telecom: Olga (English); an active Repair job;
- the Martin household: Nina (French), who only gave a phone number, with SMS consent; no job;
- the Petit household: Paul (French), a phone number and no SMS consent; no job.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from crm.errors import DomainError
from crm.links import campaign_url
from crm.models import Campaign, Contact, Customer, Message, Pipeline
from crm.notify_campaigns import campaign_draft
from crm.services import campaigns as service
from crm.services.campaigns import (
    CampaignDetails,
    audience,
    campaign_create,
    campaign_send_batch,
    campaign_send_resume,
    campaign_send_run,
    campaign_send_start,
    campaign_update,
    preview_drafts,
    segment_contacts,
    texts,
)
from crm.services.jobs import job_complete, job_create
from crm.sms_segments import measure
from crm.tasks import send_campaign
from tests.crm.test_concurrency import run_together, wait_until_blocking_another_session

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture
def held_tasks(monkeypatch) -> list[tuple[str, int]]:
    """The sending tasks the services enqueue, held back so the test runs them, as a worker would.
    (The real enqueue, after commit, is what the ``send`` fixture goes through.)"""
    queued: list[tuple[str, int]] = []
    monkeypatch.setattr(
        service, "_enqueue", lambda campaign_id: queued.append(("crm.tasks.send_campaign", campaign_id))
    )
    return queued


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


@pytest.fixture
def olga(other_customer: Customer) -> Contact:
    return Contact.objects.create(customer=other_customer, name="Olga Stranger", email="olga@acme.example")


@pytest.fixture
def nina(db) -> Contact:
    martin = Customer.objects.create(name="Martin household")
    return Contact.objects.create(
        customer=martin,
        name="Nina Martin",
        phone="+33 6 12 34 56 78",
        language="fr",
        preferred_channel=Contact.Channel.SMS,
        sms_consent_at=MONDAY_MORNING - timedelta(days=30),
        sms_consent_source="signed order form",
    )


@pytest.fixture
def paul(db) -> Contact:
    petit = Customer.objects.create(name="Petit household")
    return Contact.objects.create(
        customer=petit, name="Paul Petit", phone="+33 6 98 76 54 32", language="fr", preferred_channel="phone"
    )


@pytest.fixture
def world(customer, contact, john, other_customer, olga, nina, paul, installation, repair, bob) -> dict[str, Contact]:
    done = job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        contacts=[contact, john],
        start_date=date(2026, 1, 5),
    )
    job_complete(job=done, actor=bob)
    job_create(customer=other_customer, pipeline=repair, owner=bob, title="Router repair", actor=bob)
    Message.objects.all().delete()  # what creating the jobs queued is not what these tests count
    return {"marie": contact, "john": john, "olga": olga, "nina": nina, "paul": paul}


def details(**overrides) -> CampaignDetails:
    values = {
        "title": "Spring filter tip",
        "kind": Campaign.Kind.TIP,
        "starts_on": date(2026, 3, 2),
        "ends_on": date(2026, 3, 31),
        "subject_en": "Clean your heat pump filter",
        "body_en": "A clean filter saves energy.\n\nRinse it under the tap every month.",
        "subject_fr": "Nettoyez le filtre de votre pompe à chaleur",
        "body_fr": "Un filtre propre économise de l'énergie.\n\nRincez-le sous le robinet chaque mois.",
    }
    values.update(overrides)
    return CampaignDetails(**values)


def new_campaign(bob, **overrides) -> Campaign:
    return campaign_create(details=details(**overrides), actor=bob)


def sent_to(campaign: Campaign) -> set[str]:
    keys = Message.objects.filter(idempotency_key__startswith=f"campaign:{campaign.pk}:")
    return {m.contact.name for m in keys.select_related("contact")}


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what was deferred to the commit (the task, the messages' sends) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def send(committed):
    def send(campaign: Campaign, bob) -> Campaign:
        """Start the sending; the task runs once it commits (inline, as django-q2 does in tests)."""
        with committed():
            campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        campaign.refresh_from_db()
        return campaign

    return send


def received(name: str) -> list[Message]:
    return list(Message.objects.filter(contact__name=name, kind=Message.Kind.TIP))


class TestSegment:
    def test_it_selects_everyone_without_filters(self, world, bob):
        campaign = new_campaign(bob)
        assert {c.name for c in segment_contacts(campaign)} == {
            "Marie Dupont",
            "John Smith",
            "Olga Stranger",
            "Nina Martin",
            "Paul Petit",
        }

    def test_it_selects_the_customers_with_a_job_in_the_pipeline(self, world, bob, installation: Pipeline, repair):
        assert {c.name for c in segment_contacts(new_campaign(bob, pipeline=installation))} == {
            "Marie Dupont",
            "John Smith",
        }
        assert {c.name for c in segment_contacts(new_campaign(bob, pipeline=repair))} == {"Olga Stranger"}

    def test_it_selects_the_customers_with_a_completed_job(self, world, bob, repair):
        campaign = new_campaign(bob, completed_jobs_only=True)
        assert {c.name for c in segment_contacts(campaign)} == {"Marie Dupont", "John Smith"}
        # Acme's repair job is still active.
        assert not segment_contacts(new_campaign(bob, pipeline=repair, completed_jobs_only=True)).exists()

    def test_it_selects_by_language(self, world, bob):
        assert {c.name for c in segment_contacts(new_campaign(bob, language="fr"))} == {
            "Marie Dupont",
            "Nina Martin",
            "Paul Petit",
        }
        assert {c.name for c in segment_contacts(new_campaign(bob, language="en", completed_jobs_only=True))} == {
            "John Smith"
        }

    def test_the_audience_says_who_would_receive_it_and_why_not(self, world, bob):
        Contact.objects.filter(pk=world["olga"].pk).update(opted_out_at=timezone.now())
        Message.objects.create(
            contact=world["john"],
            channel="email",
            kind=Message.Kind.CHECK_IN,
            status=Message.Status.SENT,
            idempotency_key="checkin:test:john",
            created_at=timezone.now() - timedelta(days=5),
        )
        found = audience(new_campaign(bob))
        assert found.total == 5
        assert found.by_language == [("en", "English", 2), ("fr", "French", 3)]
        assert (found.opted_out, found.unreachable, found.capped) == (1, 1, 1)
        assert found.receiving == 2  # Marie and Nina

    def test_the_segment_is_the_same_when_sending(self, world, bob, installation, send):
        campaign = send(new_campaign(bob, pipeline=installation, language="fr"), bob)
        assert sent_to(campaign) == {"Marie Dupont"}
        assert campaign.total == 1


class TestSkipped:
    def test_it_honours_an_opt_out(self, world, bob, send):
        Contact.objects.filter(pk=world["marie"].pk).update(opted_out_at=timezone.now() - timedelta(days=1))
        campaign = send(new_campaign(bob), bob)
        assert "Marie Dupont" not in sent_to(campaign)
        assert campaign.skipped_opted_out == 1

    def test_the_frequency_cap_holds_across_kinds(self, world, bob, send):
        now = timezone.now()
        # John had a check-in 5 days ago: held back. Olga had a tip 20 days ago: she may have another.
        for contact, kind, days in ((world["john"], Message.Kind.CHECK_IN, 5), (world["olga"], Message.Kind.TIP, 20)):
            Message.objects.create(
                contact=contact,
                channel="email",
                kind=kind,
                status=Message.Status.SENT,
                idempotency_key=f"earlier:{contact.pk}",
                created_at=now - timedelta(days=days),
            )
        campaign = send(new_campaign(bob), bob)
        assert sent_to(campaign) == {"Marie Dupont", "Olga Stranger", "Nina Martin"}
        assert campaign.skipped_capped == 1

    def test_a_tip_just_sent_holds_back_the_next_campaign(self, world, bob, send):
        first = send(new_campaign(bob, language="en"), bob)
        assert sent_to(first) == {"John Smith", "Olga Stranger"}
        second = send(new_campaign(bob, title="Another", language="en"), bob)
        assert sent_to(second) == set()
        assert second.skipped_capped == 2

    def test_it_skips_a_contact_it_cannot_reach_without_a_phone_call(self, world, bob, send):
        campaign = send(new_campaign(bob), bob)
        assert "Paul Petit" not in sent_to(campaign)
        assert campaign.skipped_unreachable == 1
        assert not Message.objects.filter(channel__in=["phone", "portal"]).exists()


class TestSending:
    def test_it_queues_one_tip_per_contact_in_their_language_on_their_channel(self, world, bob, send):
        campaign = send(new_campaign(bob), bob)
        assert campaign.status == Campaign.Status.SENT
        messages = {m.contact.name: m for m in Message.objects.select_related("contact").filter(kind="tip")}
        assert set(messages) == {"Marie Dupont", "John Smith", "Olga Stranger", "Nina Martin"}
        for name, message in messages.items():
            assert message.job is None
            assert message.idempotency_key == f"campaign:{campaign.pk}:{message.contact.pk}", name
        assert messages["Marie Dupont"].subject == "Nettoyez le filtre de votre pompe à chaleur"
        assert messages["Marie Dupont"].language == "fr"
        assert messages["John Smith"].subject == "Clean your heat pump filter"
        sms = messages["Nina Martin"]
        assert (sms.channel, sms.to_address) == ("sms", "+33 6 12 34 56 78")
        assert campaign_url(campaign, language="fr") in sms.body_text
        assert "/portal/unsubscribe/" in sms.body_text
        assert measure(sms.body_text).segments <= settings.SMS_MAX_SEGMENTS

    def test_the_email_links_to_the_campaign_and_unsubscribe_without_an_owner_card(self, world, bob, send):
        campaign = send(new_campaign(bob, language="fr", pipeline=None), bob)
        (email,) = [m for m in mail.outbox if m.to == ["marie@example.com"]]
        html = email.alternatives[0][0]
        for body in (email.body, html):
            assert campaign_url(campaign, language="fr").replace("&", "&amp;" if body is html else "&") in body
            assert "/portal/unsubscribe/" in body
            assert "Rincez-le sous le robinet" in body
            assert "Bonjour Marie Dupont," in body
        assert "Bob" not in html  # no owner card: a campaign is not about one job
        assert email.extra_headers["List-Unsubscribe"].startswith("<http://testserver/portal/unsubscribe/")
        assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    def test_user_text_is_escaped_in_the_html(self, world, bob):
        campaign = new_campaign(bob, body_en="Save <b>50%</b> & more", language="en")
        draft = campaign_draft(world["john"], campaign)
        assert "Save &lt;b&gt;50%&lt;/b&gt; &amp; more" in draft.body_html
        assert "Save <b>50%</b> & more" in draft.body_text

    def test_a_reader_of_a_language_it_is_not_written_in_gets_the_written_one_whole(self, world, bob, send):
        campaign = send(new_campaign(bob, subject_fr="", body_fr=""), bob)
        (marie,) = received("Marie Dupont")
        assert (marie.language, marie.subject) == ("en", "Clean your heat pump filter")
        assert "Hello Marie Dupont," in marie.body_text
        assert campaign.queued == 4

    def test_sending_twice_sends_once(self, world, bob, held_tasks):
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)  # the double click
        assert held_tasks == [("crm.tasks.send_campaign", campaign.pk)]
        assert send_campaign(campaign.pk) == Campaign.Status.SENT
        assert send_campaign(campaign.pk) == Campaign.Status.SENT  # a duplicate task finds nothing to do
        assert not campaign_send_batch(campaign_id=campaign.pk)
        campaign.refresh_from_db()
        assert Message.objects.filter(kind="tip").count() == 4 == campaign.queued
        assert held_tasks == [("crm.tasks.send_campaign", campaign.pk)]

    def test_two_tasks_racing_share_the_batches(self, world, bob, held_tasks, monkeypatch):
        monkeypatch.setattr(service, "BATCH_SIZE", 1)
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        # Two workers alternate batch by batch: each batch goes to one of them, the cursor moves on.
        while campaign_send_batch(campaign_id=campaign.pk) | campaign_send_batch(campaign_id=campaign.pk):
            pass
        campaign.refresh_from_db()
        assert Message.objects.filter(kind="tip").count() == 4 == campaign.queued
        assert campaign.processed == campaign.total == 5

    def test_progress_counts_are_exact_batch_by_batch(self, world, bob, held_tasks):
        Contact.objects.filter(pk=world["olga"].pk).update(opted_out_at=timezone.now())
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        campaign.refresh_from_db()
        assert (campaign.status, campaign.total, campaign.processed, campaign.percent) == ("sending", 5, 0, 0)

        # Contacts are taken in id order: Marie, John, Olga, Nina, Paul.
        assert campaign_send_batch(campaign_id=campaign.pk, size=2)
        campaign.refresh_from_db()
        assert (campaign.queued, campaign.skipped_opted_out, campaign.skipped_unreachable) == (2, 0, 0)
        assert campaign.percent == 40

        assert campaign_send_batch(campaign_id=campaign.pk, size=2)
        campaign.refresh_from_db()
        assert (campaign.queued, campaign.skipped_opted_out, campaign.processed, campaign.percent) == (3, 1, 4, 80)

        assert not campaign_send_batch(campaign_id=campaign.pk, size=2)  # the last, short batch finishes it
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.SENT
        assert campaign.sent_at == timezone.now()
        assert (
            campaign.total,
            campaign.queued,
            campaign.skipped_capped,
            campaign.skipped_opted_out,
            campaign.skipped_unreachable,
        ) == (5, 3, 0, 1, 1)
        assert campaign.percent == 100

    def test_contacts_added_during_the_sending_are_not_in_it(self, world, bob, held_tasks, customer):
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        late = Contact.objects.create(customer=customer, name="Late Comer", email="late@example.com")
        send_campaign(campaign.pk)
        campaign.refresh_from_db()
        assert late.name not in sent_to(campaign)
        assert campaign.total == campaign.processed == 5

    def test_a_contact_deleted_during_the_sending_leaves_the_counters_adding_up(self, world, bob, held_tasks):
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        world["olga"].delete()
        send_campaign(campaign.pk)
        campaign.refresh_from_db()
        assert campaign.total == campaign.processed == 4

    def test_a_long_sending_hands_over_to_a_new_task(self, world, bob, held_tasks, monkeypatch):
        monkeypatch.setattr(service, "BATCH_SIZE", 2)
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        assert campaign_send_run(campaign_id=campaign.pk, seconds=0) == "continued"
        assert held_tasks == [("crm.tasks.send_campaign", campaign.pk)] * 2
        campaign.refresh_from_db()
        assert (campaign.status, campaign.processed) == ("sending", 2)
        assert send_campaign(campaign.pk) == Campaign.Status.SENT
        assert Message.objects.filter(kind="tip").count() == 4

    def test_a_stalled_sending_goes_on_where_it_stopped(self, world, bob, held_tasks, time_machine):
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        campaign_send_batch(campaign_id=campaign.pk, size=2)  # then the worker died
        campaign.refresh_from_db()
        assert not service.is_stalled(campaign)
        assert campaign_send_resume(campaign=campaign).updated_at == campaign.updated_at  # moving: nothing
        time_machine.shift(timedelta(minutes=5))
        campaign.refresh_from_db()
        assert service.is_stalled(campaign)
        campaign_send_resume(campaign=campaign)
        campaign_send_resume(campaign=campaign)  # resumed a moment ago: nothing more
        assert held_tasks == [("crm.tasks.send_campaign", campaign.pk)] * 2
        send_campaign(campaign.pk)
        campaign.refresh_from_db()
        assert (campaign.status, campaign.queued, campaign.processed) == ("sent", 4, 5)
        assert Message.objects.filter(kind="tip").count() == 4

    def test_it_refuses_to_send_an_ended_campaign_or_an_empty_audience(self, world, bob, repair):
        ended = new_campaign(bob, starts_on=date(2026, 2, 1), ends_on=date(2026, 3, 1))
        with pytest.raises(DomainError, match="ended"):
            campaign_send_start(campaign=ended, actor=bob, texts_confirmed=texts(ended).total)
        empty = new_campaign(bob, pipeline=repair, completed_jobs_only=True)
        with pytest.raises(DomainError, match="No contact"):
            campaign_send_start(campaign=empty, actor=bob, texts_confirmed=texts(empty).total)
        assert not Campaign.objects.exclude(status="draft").exists()
        assert not Message.objects.exists()


class TestPreview:
    @pytest.mark.parametrize("language", ["en", "fr"])
    def test_the_preview_is_exactly_what_is_sent(self, world, bob, language, send):
        campaign = new_campaign(bob, kind=Campaign.Kind.EVENT, link_url="https://example.com/open-day")
        contact, (email, _sms) = preview_drafts(campaign, language=language)
        assert contact.language == language and contact.pk
        send(campaign, bob)
        (message,) = received(contact.name)
        assert message.channel == "email"
        assert (message.to_address, message.subject, message.body_text, message.body_html) == (
            email.to_address,
            email.subject,
            email.body_text,
            email.body_html,
        )

    def test_the_sms_preview_is_exactly_what_is_sent(self, world, bob, send):
        Contact.objects.filter(pk=world["marie"].pk).update(opted_out_at=timezone.now())
        campaign = new_campaign(bob, language="fr")
        contact, (_email, sms) = preview_drafts(campaign, language="fr")
        assert contact.name == "Nina Martin"
        send(campaign, bob)
        (message,) = received("Nina Martin")
        assert message.body_text == sms.body_text

    def test_without_a_reader_of_the_language_it_shows_an_example(self, world, bob, installation):
        campaign = new_campaign(bob, pipeline=installation, language="en")
        Contact.objects.filter(language="en").update(opted_out_at=timezone.now())
        contact, (email, _sms) = preview_drafts(campaign, language="en")
        assert contact.pk is None
        assert "Hello Sam Example," in email.body_text
        assert not Message.objects.exists()


class TestWriting:
    def test_it_creates_a_draft(self, bob):
        campaign = new_campaign(bob, title="  Spaces  ")
        assert (campaign.status, campaign.title, campaign.created_by) == ("draft", "Spaces", bob)
        assert campaign.public_id

    def test_the_end_cannot_be_before_the_start(self, bob):
        with pytest.raises(ValidationError) as error:
            new_campaign(bob, starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 9))
        assert "ends_on" in error.value.error_dict
        # One-day events are fine.
        assert new_campaign(bob, kind="event", starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 10)).pk

    def test_it_needs_the_text_for_the_languages_it_targets(self, bob):
        with pytest.raises(ValidationError) as error:
            new_campaign(bob, language="fr", subject_fr="", body_fr="")
        assert set(error.value.error_dict) == {"subject_fr", "body_fr"}
        with pytest.raises(ValidationError) as error:
            new_campaign(bob, subject_en="", body_en="", subject_fr="", body_fr="")
        assert set(error.value.error_dict) == {"__all__"}
        with pytest.raises(ValidationError) as error:
            new_campaign(bob, body_fr="")
        assert set(error.value.error_dict) == {"body_fr"}
        # English only, for every language, or French only for French readers: fine.
        assert new_campaign(bob, subject_fr="", body_fr="").pk
        assert new_campaign(bob, language="fr", subject_en="", body_en="").pk

    def test_a_link_label_needs_a_link(self, bob):
        with pytest.raises(ValidationError) as error:
            new_campaign(bob, link_label_en="Book now")
        assert set(error.value.error_dict) == {"link_url"}

    def test_it_edits_a_draft_only(self, world, bob, send):
        campaign = new_campaign(bob)
        campaign = campaign_update(campaign=campaign, details=details(title="Renamed"))
        assert campaign.title == "Renamed"
        send(campaign, bob)
        with pytest.raises(DomainError):
            campaign_update(campaign=campaign, details=details(title="Too late"))
        campaign.refresh_from_db()
        assert campaign.title == "Renamed"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
class TestConcurrently:
    """Two people, two workers, a check-in schedule: at the same moment, on real row locks."""

    def test_two_clicks_at_once_start_one_sending(self, world, bob, held_tasks):
        campaign = new_campaign(bob)
        outcomes = run_together(
            *[lambda: campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)] * 2
        )
        assert [kind for kind, _result in outcomes] == ["ok", "ok"]
        assert held_tasks == [("crm.tasks.send_campaign", campaign.pk)]

    def test_two_workers_at_once_send_each_message_once(self, world, bob, held_tasks, monkeypatch):
        monkeypatch.setattr(service, "BATCH_SIZE", 1)
        campaign = new_campaign(bob)
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        outcomes = run_together(*[lambda: send_campaign(campaign.pk)] * 2)
        assert [kind for kind, _result in outcomes] == ["ok", "ok"]
        campaign.refresh_from_db()
        assert Message.objects.filter(kind=Message.Kind.TIP).count() == 4 == campaign.queued
        assert (campaign.status, campaign.total, campaign.processed) == ("sent", 5, 5)

    def test_a_check_in_queued_at_the_same_moment_holds_the_tip_back(self, world, bob, held_tasks):
        campaign = new_campaign(bob, language="en")
        campaign_send_start(campaign=campaign, actor=bob, texts_confirmed=texts(campaign).total)
        john = world["john"]

        locked = threading.Event()

        def check_in() -> None:
            # What the check-in schedule does: lock the contact, check the cap, queue the message.
            with transaction.atomic():
                Contact.objects.select_for_update().get(pk=john.pk)
                Message.objects.create(
                    contact=john,
                    channel="email",
                    kind=Message.Kind.CHECK_IN,
                    idempotency_key=f"checkin:race:{john.pk}",
                )
                locked.set()
                assert wait_until_blocking_another_session(), "the campaign's batch should wait for the lock"

        def campaign_worker() -> str:
            assert locked.wait(timeout=5)
            return send_campaign(campaign.pk)

        outcomes = run_together(check_in, campaign_worker)
        assert [kind for kind, _result in outcomes] == ["ok", "ok"], outcomes
        campaign.refresh_from_db()
        assert sent_to(campaign) == {"Olga Stranger"}
        assert campaign.skipped_capped == 1
