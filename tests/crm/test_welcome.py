"""The first contact: a job created tells each of its contacts, at once, on their channel and in
their language — thanks, the job, the stages ahead with their dates, what to prepare next, who
their person is, the portal link. Not telling them needs a reason, kept on the job's first event.

Time is frozen on Monday 2 March 2026, 10:00 in Paris. A job starting that day plans (business
days): Request received Mon 2 March (reached at once), Proposal sent Thu 5, Order confirmed
Thu 12, Installation scheduled Mon 16, Installed Mon 30 March, the internal Follow-up Mon 6 April.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import translation

from crm import notify
from crm.dates import said_date
from crm.errors import DomainError
from crm.links import portal_url, short_portal_url
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    Message,
    Milestone,
    Pipeline,
    StaffProfile,
)
from crm.notify import welcome_drafts
from crm.services.jobs import job_advance, job_create
from crm.services.outbox import messages_queue
from crm.sms_segments import measure

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)

# The customer-visible stages still ahead of a job started today, with their dates.
AHEAD = {
    "Proposal sent": date(2026, 3, 5),
    "Order confirmed": date(2026, 3, 12),
    "Installation scheduled": date(2026, 3, 16),
    "Installed": date(2026, 3, 30),
}
PREPARE = "Have your last two energy bills at hand."
PREPARE_FR = "Gardez vos deux dernières factures d'énergie sous la main."


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture
def bob_profile(bob: User) -> StaffProfile:
    return StaffProfile.objects.create(user=bob, phone="+33 1 99 00 12 02", job_title="Project manager")


@pytest.fixture
def pipeline(installation: Pipeline) -> Pipeline:
    """The Installation pipeline, with something to prepare for the proposal (in both languages)
    and the proposal's French name."""
    installation.stages.filter(name="Proposal sent").update(
        customer_instructions=PREPARE, customer_instructions_fr=PREPARE_FR, name_fr="Devis envoyé"
    )
    return installation


@pytest.fixture
def john(customer: Customer) -> Contact:
    """Reads English, prefers email."""
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


@pytest.fixture
def sophie(customer: Customer) -> Contact:
    """Prefers text messages and said yes to them."""
    return Contact.objects.create(
        customer=customer,
        name="Sophie Dupont",
        email="sophie@example.com",
        phone="+33 6 12 34 56 78",
        language="en",
        preferred_channel=Contact.Channel.SMS,
        sms_consent_at=MONDAY_MORNING,
        sms_consent_source="signed order form",
    )


@pytest.fixture
def paul(customer: Customer) -> Contact:
    """Prefers a phone call: the owner gets a call to make."""
    return Contact.objects.create(
        customer=customer,
        name="Paul Dupont",
        phone="+33 6 98 76 54 32",
        language="en",
        preferred_channel=Contact.Channel.PHONE,
    )


def create(customer: Customer, pipeline: Pipeline, owner: User, **kwargs) -> Job:
    kwargs.setdefault("title", "Heat pump installation")
    kwargs.setdefault("start_date", date(2026, 3, 2))
    return job_create(customer=customer, pipeline=pipeline, owner=owner, actor=owner, **kwargs)


def welcomes(job: Job):
    return Message.objects.filter(job=job, kind=Message.Kind.WELCOME).order_by("contact__name")


def created_event(job: Job) -> JobEvent:
    return job.events.get(kind=JobEvent.Kind.CREATED)


def french(day: date, fmt: str = "l j F Y") -> str:
    with translation.override("fr"):
        return said_date(day, fmt)


def english(day: date, fmt: str = "l j F Y") -> str:
    with translation.override("en"):
        return said_date(day, fmt)


# --- Once per contact, on their channel ---------------------------------------------------------


def test_each_contact_is_welcomed_once_on_their_channel(
    customer, contact, john, sophie, paul, pipeline, bob, bob_profile
) -> None:
    job = create(customer, pipeline, bob)

    rows = {m.contact.name: m for m in welcomes(job)}
    assert sorted(rows) == ["John Smith", "Marie Dupont", "Paul Dupont", "Sophie Dupont"]
    expected = {
        "Marie Dupont": (Message.Channel.EMAIL, "marie@example.com", Message.Status.QUEUED),
        "John Smith": (Message.Channel.EMAIL, "john@example.com", Message.Status.QUEUED),
        "Sophie Dupont": (Message.Channel.SMS, "+33 6 12 34 56 78", Message.Status.QUEUED),
        "Paul Dupont": (Message.Channel.PHONE, "+33 6 98 76 54 32", Message.Status.CALL_PENDING),
    }
    for name, (channel, to_address, status) in expected.items():
        row = rows[name]
        assert (row.channel, row.to_address, row.status) == (channel, to_address, status), name
        assert row.direction == Message.Direction.OUT
        assert row.idempotency_key == f"welcome:{job.pk}:{row.contact.pk}:{channel}"
        assert row.author == bob
    assert created_event(job).data["welcomed"] == 4
    assert created_event(job).data["not_told_reason"] == ""


def test_the_email_thanks_lists_the_stages_ahead_what_to_prepare_the_person_and_the_link(
    customer, john, pipeline, bob, bob_profile
) -> None:
    job = create(customer, pipeline, bob)
    [row] = welcomes(job)

    assert row.language == "en"
    assert row.subject == f"Thank you for your order: Heat pump installation — your job {job.reference}"
    text = row.body_text
    assert "Hello John Smith," in text
    assert f"Thank you for your order: “Heat pump installation”. We have opened your job {job.reference}" in text
    assert "The steps ahead, and when we expect them:" in text
    listed = [line for line in text.splitlines() if line.startswith("- ")]
    assert listed == [f"- {name}: {english(day)}" for name, day in AHEAD.items()]
    # The first stage is behind them, the internal one is not theirs to see.
    assert "Request received" not in text and "Follow-up" not in text
    assert "What happens next: Proposal sent, expected on Thursday 5 March 2026." in text
    assert f"To prepare: {PREPARE}" in text
    assert "Your point of contact is Bob Durand, +33 1 99 00 12 02, bob@example.com." in text
    assert portal_url(john, job) in text

    html = row.body_html
    assert "Heat pump installation" in html
    for name, day in AHEAD.items():
        assert f"{name}</td>" in html and english(day) in html
    assert PREPARE in html
    assert "Bob Durand" in html and "Project manager" in html and 'href="tel:+33199001202"' in html
    assert portal_url(john, job).replace("&", "&amp;") in html


def test_the_text_message_carries_the_short_link_and_fits(customer, sophie, pipeline, bob, bob_profile) -> None:
    job = create(customer, pipeline, bob)
    [row] = welcomes(job)

    assert row.channel == Message.Channel.SMS
    assert measure(row.body_text).segments <= settings.SMS_MAX_SEGMENTS
    assert row.body_text.endswith(short_portal_url(sophie, job))
    assert "/portal/enter/" not in row.body_text
    # Plain quotes (GSM-7): the curly ones would make it UCS-2, where it would not fit whole.
    assert f'thank you for your order "Heat pump installation" (job {job.reference}).' in row.body_text
    assert measure(row.body_text).encoding == "GSM-7"
    assert "Next: Proposal sent, 5 March." in row.body_text
    assert "Your contact: Bob +33 1 99 00 12 02" in row.body_text


def test_a_contact_who_prefers_a_call_gives_the_owner_a_call_to_make(customer, paul, pipeline, bob) -> None:
    job = create(customer, pipeline, bob)
    [row] = welcomes(job)

    assert (row.channel, row.status) == (Message.Channel.PHONE, Message.Status.CALL_PENDING)
    assert row.body_text.startswith("Call Paul Dupont on 06 98 76 54 32 (they prefer a phone call).")
    assert f"Thank them for their order “Heat pump installation” (job {job.reference})" in row.body_text
    for name, day in AHEAD.items():
        assert f"- {name}: {english(day)}" in row.body_text


def test_a_contact_without_any_address_is_welcomed_by_a_portal_note(customer, john, pipeline, bob, monkeypatch) -> None:
    # The database refuses a contact with neither email nor phone (contact_has_email_or_phone), so
    # a contact that nothing reaches is played by john, whom reachable_channel says only the
    # portal reaches (as it does for a contact without any address: see the next test).
    monkeypatch.setattr(notify, "reachable_channel", lambda contact: Message.Channel.PORTAL)
    job = create(customer, pipeline, bob)
    [row] = welcomes(job)

    assert (row.channel, row.status, row.to_address) == (Message.Channel.PORTAL, Message.Status.SENT, "")
    assert row.sent_at is not None
    assert row.idempotency_key == f"welcome:{job.pk}:{john.pk}:portal"
    assert "Heat pump installation" in row.body_text
    assert f"- Proposal sent: {english(AHEAD['Proposal sent'])}" in row.body_text


def test_reachable_channel_names_the_portal_for_a_contact_without_any_address(customer) -> None:
    assert notify.reachable_channel(Contact(customer=customer, name="Nobody", email="", phone="")) == "portal"


# --- In the contact's language ------------------------------------------------------------------


def test_a_french_contact_is_welcomed_in_french(customer, contact, pipeline, bob, bob_profile) -> None:
    job = create(customer, pipeline, bob)
    [row] = welcomes(job)

    assert row.language == "fr"
    assert "Heat pump installation" in row.subject and job.reference in row.subject
    text = row.body_text
    assert "Bonjour Marie Dupont," in text
    assert "Heat pump installation" in text
    for name, day in AHEAD.items():
        label = "Devis envoyé" if name == "Proposal sent" else name
        assert f"- {label}: {french(day)}" in text
    assert "jeudi 5 mars 2026" in text
    assert PREPARE_FR in text and PREPARE not in text
    # No English date slipped into the French message.
    assert "Thursday" not in text and "March" not in text
    assert portal_url(contact, job) in text
    assert "Bob Durand" in text and "+33 1 99 00 12 02" in text


def test_the_french_welcome_words_are_french(customer, contact, john, pipeline, bob) -> None:
    """Its own test: it needs the French catalogue to have the welcome's new strings."""
    job = create(customer, pipeline, bob)
    marie = welcomes(job).get(contact=contact)
    johns = welcomes(job).get(contact=john)

    assert marie.subject != johns.subject
    assert "Thank you for your order" not in marie.subject
    assert "Thank you for your order" not in marie.body_text
    assert "The steps ahead, and when we expect them:" not in marie.body_text


# --- Once, whatever runs again -----------------------------------------------------------------


def test_the_welcome_is_stored_once_per_contact_whatever_queues_it_again(
    customer, contact, john, pipeline, bob
) -> None:
    job = create(customer, pipeline, bob)
    first = sorted(welcomes(job).values_list("pk", flat=True))
    assert len(first) == 2

    milestones = list(Milestone.objects.filter(job=job).select_related("stage"))
    again = messages_queue(
        drafts=welcome_drafts(job, milestones=milestones),
        job=job,
        key=lambda d: f"welcome:{job.pk}:{d.contact.pk}:{d.channel}",
        author=bob,
    )

    assert sorted(m.pk for m in again) == first
    assert sorted(welcomes(job).values_list("pk", flat=True)) == first
    assert Message.objects.filter(job=job).count() == 2


def test_two_jobs_each_welcome_their_contacts(customer, contact, pipeline, bob) -> None:
    one = create(customer, pipeline, bob)
    two = create(customer, pipeline, bob, title="Solar panels")

    assert welcomes(one).count() == 1 and welcomes(two).count() == 1
    assert "Solar panels" in welcomes(two).get().body_text


def test_a_job_created_for_some_contacts_welcomes_only_them(customer, contact, john, pipeline, bob) -> None:
    job = create(customer, pipeline, bob, contacts=[john])
    assert [m.contact for m in welcomes(job)] == [john]


# --- Not welcoming needs a reason ---------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   "])
def test_not_welcoming_without_a_reason_is_refused_and_stores_nothing(customer, contact, pipeline, bob, reason) -> None:
    with pytest.raises(DomainError, match="Say why the customer is not welcomed"):
        create(customer, pipeline, bob, notify_customer=False, not_told_reason=reason)

    assert not Job.objects.exists()
    assert not Message.objects.exists()
    assert not JobEvent.objects.exists()
    assert not Milestone.objects.exists()
    assert not Commitment.objects.exists()


def test_not_welcoming_with_a_reason_sends_nothing_and_records_why(customer, contact, pipeline, bob) -> None:
    job = create(customer, pipeline, bob, notify_customer=False, not_told_reason="  Told in person at the showroom  ")

    assert not Message.objects.filter(job=job).exists()
    data = created_event(job).data
    assert data["not_told_reason"] == "Told in person at the showroom"
    assert data["welcomed"] == 0


# --- A job starting later -----------------------------------------------------------------------


def test_a_job_starting_next_monday_has_not_reached_its_first_stage(customer, contact, pipeline, bob) -> None:
    job = create(customer, pipeline, bob, start_date=date(2026, 3, 9))

    first = job.milestones.get(stage__name="Request received")
    assert first.completed_at is None
    assert first.forecast_date == date(2026, 3, 9)
    assert job.current_stage.name == "Request received"
    # No promise for the first stage; every later stage the customer sees has one.
    assert not job.commitments.filter(milestone=first).exists()
    assert sorted(job.commitments.values_list("title", flat=True)) == sorted(AHEAD)
    assert job.milestones.get(stage__name="Proposal sent").forecast_date == date(2026, 3, 12)
    # Its welcome says when it starts.
    [row] = welcomes(job)
    assert f"- Request received: {french(date(2026, 3, 9))}" in row.body_text


def test_advancing_a_job_that_started_later_reaches_its_first_stage(
    customer, contact, pipeline, bob, time_machine
) -> None:
    job = create(customer, pipeline, bob, start_date=date(2026, 3, 9))
    time_machine.move_to(datetime(2026, 3, 12, 9, 0, tzinfo=PARIS), tick=False)

    job_advance(job=job, to_stage=pipeline.stages.get(name="Proposal sent"), actor=bob)

    reached = job.milestones.filter(completed_at__isnull=False).order_by("stage__position")
    assert [m.stage.name for m in reached] == ["Request received", "Proposal sent"]
    assert job.commitments.get(title="Proposal sent").state == Commitment.State.KEPT


# --- The staff's new-job page -------------------------------------------------------------------


def job_form(customer: Customer, pipeline: Pipeline, owner: User, **changes) -> dict:
    data = {
        "customer": customer.pk,
        "pipeline": pipeline.pk,
        "owner": owner.pk,
        "title": "Heat pump installation",
        "start_date": "2026-03-02",
        "notify_customer": "on",
        "not_told_reason": "",
    }
    return {**data, **changes}


@pytest.fixture
def bob_client(client: Client, bob: User) -> Client:
    client.force_login(bob)
    return client


def test_the_new_job_page_welcomes_each_contact(bob_client, customer, contact, john, pipeline, bob) -> None:
    response = bob_client.post(reverse("crm:job_new"), job_form(customer, pipeline, bob))

    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:job", args=[job.public_id])
    rows = list(welcomes(job))
    assert [(m.contact, m.channel, m.language) for m in rows] == [
        (john, Message.Channel.EMAIL, "en"),
        (contact, Message.Channel.EMAIL, "fr"),
    ]
    assert all(m.author == bob for m in rows)
    assert created_event(job).data["welcomed"] == 2


def test_the_new_job_page_offers_the_welcome_ticked(bob_client, customer, contact, pipeline) -> None:
    response = bob_client.get(reverse("crm:job_new"), {"customer": customer.pk})
    form = response.context["form"]
    assert form.fields["notify_customer"].initial is True
    assert 'name="notify_customer"' in response.text and 'name="not_told_reason"' in response.text


def test_the_new_job_page_without_a_welcome_needs_a_reason(bob_client, customer, contact, pipeline, bob) -> None:
    data = job_form(customer, pipeline, bob)
    del data["notify_customer"]

    response = bob_client.post(reverse("crm:job_new"), data)
    assert response.status_code == 200
    assert "Say why the customer is not welcomed" in response.text
    assert not Job.objects.exists() and not Message.objects.exists()

    response = bob_client.post(reverse("crm:job_new"), {**data, "not_told_reason": "Told at the showroom"})
    job = Job.objects.get()
    assert response.status_code == 302
    assert not Message.objects.filter(job=job).exists()
    assert created_event(job).data["not_told_reason"] == "Told at the showroom"
