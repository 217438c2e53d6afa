"""Knock-on dates: a date that moves pushes the later ones out, and the customer hears every date
that changed in one message, each recorded as told (proactive while its old date has not passed).
Dates moved without telling are told later in one go (dates_tell). A date moved sooner is good
news, said without an apology; a personal note is signed by whoever wrote it; a conflict names
who moved the job; French dates say « 1er » for the first of the month.

Time is frozen on Monday 2 March 2026, 10:00 in Paris, the day bob's heat pump job starts:
Request received Mon 2 March (reached), Proposal sent Thu 5, Order confirmed Thu 12, Installation
scheduled Mon 16, Installed Mon 30 March, the internal Follow-up Mon 6 April. A promise "by
<day>" falls due at 18:00 that day. Marie reads French, John English.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from crm.dates import said_date
from crm.errors import ConflictError, DomainError
from crm.links import portal_url
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    Message,
    Milestone,
    Pipeline,
    Renegotiation,
    StaffProfile,
    StageTemplate,
)
from crm.services.jobs import commitment_move_and_tell, dates_tell, job_advance, job_create, milestone_move
from crm.services.messages import free_message_send, status_update_send
from crm.services.promises import document_promise

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)
OPEN = Commitment.OPEN_STATES
APOLOGY = "We wanted you to know as soon as we did, so you can plan around it."


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture
def bob_profile(bob: User) -> StaffProfile:
    return StaffProfile.objects.create(user=bob, phone="+33 1 99 00 12 02", job_title="Project manager")


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


@pytest.fixture
def job(customer: Customer, contact: Contact, john: Contact, installation: Pipeline, bob: User, bob_profile) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        contacts=[contact, john],
        start_date=date(2026, 3, 2),
        notify_customer=False,
        not_told_reason="The welcome is test_welcome.py's business.",
    )


def paris(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def closing(day: date) -> datetime:
    return datetime.combine(day, time(18, 0), tzinfo=PARIS)


def milestone(job: Job, name: str) -> Milestone:
    return Milestone.objects.select_related("job", "stage").get(job=job, stage__name=name)


def stage(job: Job, name: str) -> StageTemplate:
    return job.pipeline.stages.get(name=name)


def forecasts(job: Job) -> dict[str, date | None]:
    return {m.stage.name: m.forecast_date for m in job.milestones.select_related("stage").order_by("stage__position")}


def promise(job: Job, name: str) -> Commitment:
    return job.commitments.get(milestone__stage__name=name, state__in=OPEN)


def latest_move(job: Job, name: str) -> Renegotiation:
    return promise(job, name).renegotiations.order_by("created_at", "pk").last()


def date_messages(job: Job) -> dict[str, Message]:
    rows = Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).select_related("contact")
    by_name: dict[str, Message] = {}
    for row in rows:
        assert row.contact.name not in by_name, f"two date messages to {row.contact.name}"
        by_name[row.contact.name] = row
    return by_name


def english(day: date, fmt: str = "l j F Y") -> str:
    with translation.override("en"):
        return said_date(day, fmt)


def french(day: date, fmt: str = "l j F Y") -> str:
    with translation.override("fr"):
        return said_date(day, fmt)


def move(job: Job, name: str, to: date, *, actor: User | None = None, **kwargs) -> Milestone:
    kwargs.setdefault("reason", "The heat pump ships a week later")
    return milestone_move(milestone=milestone(job, name), new_date=to, actor=actor or job.owner, **kwargs)


def sign_in(client: Client, contact: Contact, job: Job) -> Client:
    response = client.get(portal_url(contact, job))
    assert response.status_code == 302, response
    return client


def portal_page(client: Client, job: Job) -> str:
    return client.get(reverse("portal:job", args=[job.public_id])).text


def _notes(html: str) -> list[str]:
    return [" ".join(note.split()) for note in re.findall(r'class="small move-note mb-0">(.*?)</p>', html, re.S)]


def timeline_notes(page: str) -> list[str]:
    """The timeline's date-change lines ("Was X, now Y — we told you on Z."), as the page reads."""
    start = page.index('<ol class="timeline">')
    return _notes(page[start : page.index("</ol>", start)])


def promise_notes(page: str) -> list[str]:
    """The "What we promised you" card's lines ("Moved from X to Y — we told you on Z.")."""
    start = page.index('id="promises"')
    return _notes(page[start : page.index("</section>", start)])


# Installation scheduled a week later: Mon 16 → Mon 23 March; Installed, ten business days on,
# is pushed from Mon 30 March to Mon 6 April (the internal Follow-up too, never told).
A_WEEK_LATER = date(2026, 3, 23)
INSTALLED_PUSHED = date(2026, 4, 6)


# --- A middle stage moved, told -----------------------------------------------------------------


def test_a_middle_stage_moved_later_sends_one_message_listing_every_changed_date(job: Job, bob: User) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=True)

    assert forecasts(job)["Installation scheduled"] == A_WEEK_LATER
    assert forecasts(job)["Installed"] == INSTALLED_PUSHED
    messages = date_messages(job)
    assert sorted(messages) == ["John Smith", "Marie Dupont"]

    john = messages["John Smith"]
    assert john.subject == f"New dates — your job {job.reference}"
    assert (
        "We have to change some dates:\n"
        f"- Installation scheduled: {english(A_WEEK_LATER)} (was {english(date(2026, 3, 16))})\n"
        f"- Installed: {english(INSTALLED_PUSHED)} (was {english(date(2026, 3, 30))})\n"
    ) in john.body_text
    assert "Why: The heat pump ships a week later" in john.body_text
    assert APOLOGY in john.body_text
    assert "Follow-up" not in john.body_text
    for day in (A_WEEK_LATER, date(2026, 3, 16), INSTALLED_PUSHED, date(2026, 3, 30)):
        assert english(day) in john.body_html
    assert "Installed</td>" in john.body_html and "Installation scheduled</td>" in john.body_html

    marie = messages["Marie Dupont"]
    assert marie.language == "fr"
    for name, new, old in (
        ("Installation scheduled", A_WEEK_LATER, date(2026, 3, 16)),
        ("Installed", INSTALLED_PUSHED, date(2026, 3, 30)),
    ):
        line = next(line for line in marie.body_text.splitlines() if line.startswith(f"- {name}"))
        assert french(new) in line and french(old) in line, line
    assert "Follow-up" not in marie.body_text


def test_every_promise_a_told_move_pushes_out_is_recorded_as_told_in_time(job: Job, bob: User) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=True)

    for name, old, new in (
        ("Installation scheduled", date(2026, 3, 16), A_WEEK_LATER),
        ("Installed", date(2026, 3, 30), INSTALLED_PUSHED),
    ):
        renegotiation = latest_move(job, name)
        assert (renegotiation.old_due_at, renegotiation.new_due_at) == (closing(old), closing(new)), name
        assert renegotiation.told_customer_at == timezone.now(), name
        assert renegotiation.proactive is True, name
        assert renegotiation.holder == bob, name
        assert renegotiation.actor == bob, name
        assert promise(job, name).due_at == closing(new)
    # Nothing is left to tell.
    assert dates_tell_refused(job, bob)


def dates_tell_refused(job: Job, actor: User) -> bool:
    with pytest.raises(DomainError, match="already"):
        dates_tell(job=job, actor=actor)
    return True


def test_the_move_is_recorded_with_the_dates_it_pushed_out(job: Job, bob: User) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=True)

    moved = job.events.get(kind=JobEvent.Kind.DATE_MOVED)
    assert moved.data["tell_customer"] is True
    assert moved.data["before_old_date"] is True
    rolled = {r["stage"]: (r["old_date"], r["new_date"]) for r in moved.data["rolled"]}
    assert rolled["Installed"] == ("2026-03-30", "2026-04-06")


def test_the_portal_says_each_moved_date_was_told(client: Client, job: Job, john: Contact) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=True)

    page = portal_page(sign_in(client, john, job), job)
    # The promises card reads the promises' history: both told.
    promised = promise_notes(page)
    assert any(n.startswith("Moved from 16 March to 23 March — we told you on 2 March.") for n in promised), promised
    assert any(n.startswith("Moved from 30 March to 6 April — we told you on 2 March.") for n in promised), promised
    # The timeline must say the same of both dates.
    timeline = timeline_notes(page)
    assert any(n.startswith("Was 16 March, now 23 March — we told you on 2 March.") for n in timeline), timeline
    assert any(n.startswith("Was 30 March, now 6 April — we told you on 2 March.") for n in timeline), timeline


# --- The same move, not told; then told in one go -----------------------------------------------


def test_a_move_not_told_sends_nothing_and_leaves_every_move_untold(job: Job, bob: User) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=False)

    assert forecasts(job)["Installed"] == INSTALLED_PUSHED
    assert date_messages(job) == {}
    assert not Message.objects.filter(job=job).exists()
    for name in ("Installation scheduled", "Installed"):
        renegotiation = latest_move(job, name)
        assert renegotiation.told_customer_at is None, name
        assert renegotiation.proactive is False, name
        assert renegotiation.holder == bob, name


def test_dates_tell_tells_every_untold_move_in_one_message(time_machine, job: Job, bob: User) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=False)
    time_machine.move_to(paris(3, 3, 9), tick=False)

    changes = dates_tell(job=job, actor=bob)

    assert [(c.stage.name, c.old_date, c.new_date) for c in changes] == [
        ("Installation scheduled", date(2026, 3, 16), A_WEEK_LATER),
        ("Installed", date(2026, 3, 30), INSTALLED_PUSHED),
    ]
    messages = date_messages(job)
    assert sorted(messages) == ["John Smith", "Marie Dupont"]
    john = messages["John Smith"]
    assert john.subject == f"New dates — your job {job.reference}"
    assert f"- Installation scheduled: {english(A_WEEK_LATER)} (was {english(date(2026, 3, 16))})" in john.body_text
    assert f"- Installed: {english(INSTALLED_PUSHED)} (was {english(date(2026, 3, 30))})" in john.body_text
    assert "Why: The heat pump ships a week later" in john.body_text
    assert john.author == bob
    assert john.idempotency_key.startswith(f"dates:{job.pk}:")

    for name in ("Installation scheduled", "Installed"):
        renegotiation = latest_move(job, name)
        assert renegotiation.told_customer_at == paris(3, 3, 9), name
        assert renegotiation.proactive is True, name

    told = job.events.get(kind=JobEvent.Kind.DATES_TOLD)
    assert told.actor == bob
    assert told.data["proactive"] == 2 and told.data["late"] == 0
    assert [c["stage"] for c in told.data["changes"]] == ["Installation scheduled", "Installed"]


def test_dates_tell_twice_is_refused_and_sends_nothing_more(job: Job, bob: User) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=False)
    dates_tell(job=job, actor=bob)
    count = Message.objects.filter(job=job).count()

    with pytest.raises(DomainError, match="already"):
        dates_tell(job=job, actor=bob)

    assert Message.objects.filter(job=job).count() == count
    assert job.events.filter(kind=JobEvent.Kind.DATES_TOLD).count() == 1


def test_dates_tell_with_nothing_moved_is_refused(job: Job, bob: User) -> None:
    with pytest.raises(DomainError, match="already"):
        dates_tell(job=job, actor=bob)
    assert not Message.objects.filter(job=job).exists()


def test_a_move_told_after_its_old_date_passed_is_late(time_machine, job: Job, bob: User) -> None:
    move(job, "Installed", date(2026, 4, 3), tell_customer=False)
    # Tuesday 31 March: the customer's date, Monday 30 March, has passed.
    time_machine.move_to(paris(3, 31, 9), tick=False)

    dates_tell(job=job, actor=bob)

    renegotiation = latest_move(job, "Installed")
    assert renegotiation.told_customer_at == paris(3, 31, 9)
    assert renegotiation.proactive is False
    told = job.events.get(kind=JobEvent.Kind.DATES_TOLD)
    assert (told.data["proactive"], told.data["late"]) == (0, 1)


def test_the_portal_says_dates_told_later_were_told(client: Client, time_machine, job: Job, john: Contact) -> None:
    move(job, "Installation scheduled", A_WEEK_LATER, tell_customer=False)
    time_machine.move_to(paris(3, 3, 9), tick=False)
    dates_tell(job=job, actor=job.owner)

    page = portal_page(sign_in(client, john, job), job)
    promised = promise_notes(page)
    assert any(n.startswith("Moved from 16 March to 23 March — we told you on 3 March.") for n in promised), promised
    assert any(n.startswith("Moved from 30 March to 6 April — we told you on 3 March.") for n in promised), promised
    timeline = timeline_notes(page)
    assert any(n.startswith("Was 16 March, now 23 March — we told you on 3 March.") for n in timeline), timeline
    assert any(n.startswith("Was 30 March, now 6 April — we told you on 3 March.") for n in timeline), timeline


# --- A late stage reached, told ----------------------------------------------------------------


def test_a_late_stage_lists_the_dates_it_pushes_out_and_records_them_told(time_machine, job: Job, bob: User) -> None:
    # Order confirmed, promised for Thu 12 March, is reached a day late, on Friday 13: Installation
    # scheduled (two business days on) moves from Mon 16 to Tue 17 March, Installed from Mon 30 to
    # Tue 31 March — told before either old date has passed.
    time_machine.move_to(paris(3, 13, 9), tick=False)

    job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=bob)

    pushed = {
        "Installation scheduled": (date(2026, 3, 16), date(2026, 3, 17)),
        "Installed": (date(2026, 3, 30), date(2026, 3, 31)),
    }
    assert forecasts(job)["Installation scheduled"] == date(2026, 3, 17)
    assert forecasts(job)["Installed"] == date(2026, 3, 31)
    john = Message.objects.get(job=job, kind=Message.Kind.STAGE_CHANGE, contact__name="John Smith")
    assert "This step took longer than planned, so these dates move:" in john.body_text
    for name, (old, new) in pushed.items():
        assert f"- {name}: {english(new)} (was {english(old)})" in john.body_text
    assert "Follow-up" not in john.body_text
    assert not Message.objects.filter(job=job, kind=Message.Kind.DATE_MOVED).exists()
    for name in pushed:
        renegotiation = latest_move(job, name)
        assert renegotiation.told_customer_at == paris(3, 13, 9), name
        assert renegotiation.proactive is True, name
        assert renegotiation.holder == bob, name
    with pytest.raises(DomainError, match="already"):
        dates_tell(job=job, actor=bob)


def test_the_portal_says_dates_pushed_out_by_a_late_stage_were_told(
    client: Client, time_machine, job: Job, john: Contact
) -> None:
    time_machine.move_to(paris(3, 13, 9), tick=False)
    job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=job.owner)

    page = portal_page(sign_in(client, john, job), job)
    promised = promise_notes(page)
    assert any(n.startswith("Moved from 30 March to 31 March — we told you on 13 March.") for n in promised), promised
    timeline = timeline_notes(page)
    assert any(n.startswith("Was 16 March, now 17 March — we told you on 13 March.") for n in timeline), timeline
    assert any(n.startswith("Was 30 March, now 31 March — we told you on 13 March.") for n in timeline), timeline


def test_a_stage_reached_after_a_later_date_passed_tells_that_one_late(time_machine, job: Job, bob: User) -> None:
    # Reached on Thursday 19 March: Installation scheduled's date (Mon 16) has passed, so telling
    # its new date now is late; Installed's (Mon 30) has not.
    time_machine.move_to(paris(3, 19, 9), tick=False)

    job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=bob)

    assert forecasts(job)["Installation scheduled"] == A_WEEK_LATER
    assert forecasts(job)["Installed"] == INSTALLED_PUSHED
    scheduled, installed = latest_move(job, "Installation scheduled"), latest_move(job, "Installed")
    assert scheduled.told_customer_at == installed.told_customer_at == paris(3, 19, 9)
    assert (scheduled.proactive, installed.proactive) == (False, True)


def test_a_late_stage_reached_without_telling_leaves_the_pushed_dates_untold(time_machine, job: Job, bob: User) -> None:
    time_machine.move_to(paris(3, 19, 9), tick=False)

    job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=bob, notify_customer=False)

    assert not Message.objects.filter(job=job).exists()
    for name in ("Installation scheduled", "Installed"):
        assert latest_move(job, name).told_customer_at is None, name
    assert [c.stage.name for c in dates_tell(job=job, actor=bob)] == ["Installation scheduled", "Installed"]


# --- Sooner is good news ------------------------------------------------------------------------


def test_a_date_moved_sooner_is_good_news_without_an_apology(job: Job, bob: User) -> None:
    friday = date(2026, 3, 13)
    move(job, "Installation scheduled", friday, tell_customer=True, reason="A slot opened up")

    # Later dates are never pulled in.
    assert forecasts(job)["Installed"] == date(2026, 3, 30)
    messages = date_messages(job)
    john = messages["John Smith"]
    assert john.subject == f"Good news: Installation scheduled sooner — your job {job.reference}"
    assert (
        f"Good news: “Installation scheduled” comes sooner than planned — {english(friday)} "
        f"instead of {english(date(2026, 3, 16))}."
    ) in john.body_text
    assert "Good news" in john.body_html
    assert APOLOGY not in john.body_text and APOLOGY not in john.body_html
    assert "We have to change" not in john.body_text
    marie = messages["Marie Dupont"]
    assert marie.subject.startswith("Bonne nouvelle")
    assert french(friday) in marie.body_text
    assert "Nous tenions à vous prévenir" not in marie.body_text
    assert "Nous tenions à vous prévenir" not in marie.body_html
    renegotiation = latest_move(job, "Installation scheduled")
    assert renegotiation.proactive is True and renegotiation.told_customer_at == timezone.now()


def test_a_date_moved_sooner_is_good_news_by_text_message_too(job: Job, customer: Customer, bob: User) -> None:
    sophie = Contact.objects.create(
        customer=customer,
        name="Sophie Dupont",
        phone="+33 6 12 34 56 78",
        language="en",
        preferred_channel=Contact.Channel.SMS,
        sms_consent_at=MONDAY_MORNING,
        sms_consent_source="signed order form",
    )
    job.contacts.add(sophie)

    move(job, "Installation scheduled", date(2026, 3, 13), tell_customer=True, reason="A slot opened up")

    sms = date_messages(job)["Sophie Dupont"]
    assert sms.channel == Message.Channel.SMS
    assert "good news, Installation scheduled sooner: 13 March." in sms.body_text


# --- A note is signed by whoever wrote it -------------------------------------------------------


def signed_by(text: str, name: str) -> bool:
    return f"— {name}" in text


def test_a_stage_note_by_alice_on_bobs_job_is_signed_by_alice(job: Job, alice: User) -> None:
    job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=alice, note="The proposal is attached.")

    john = Message.objects.get(job=job, kind=Message.Kind.STAGE_CHANGE, contact__name="John Smith")
    assert "The proposal is attached.\n— Alice\n" in john.body_text
    assert signed_by(john.body_html, "Alice") and not signed_by(john.body_html, "Bob")
    assert not signed_by(john.body_text, "Bob")
    # The person to call is still the owner.
    assert "Your point of contact is Bob Durand" in john.body_text


def test_a_date_note_by_alice_on_bobs_job_is_signed_by_alice(job: Job, alice: User) -> None:
    move(job, "Installed", date(2026, 4, 2), actor=alice, tell_customer=True, note="Sorry for the wait.")

    john = date_messages(job)["John Smith"]
    assert "Sorry for the wait.\n— Alice\n" in john.body_text
    assert signed_by(john.body_html, "Alice") and not signed_by(john.body_html, "Bob")
    assert not signed_by(john.body_text, "Bob")


def test_a_note_by_the_owner_is_signed_by_the_owner(job: Job, bob: User) -> None:
    move(job, "Installed", date(2026, 4, 2), actor=bob, tell_customer=True, note="Sorry for the wait.")
    john = date_messages(job)["John Smith"]
    assert "Sorry for the wait.\n— Bob\n" in john.body_text


def test_a_status_update_note_by_alice_is_signed_by_alice(job: Job, alice: User) -> None:
    status_update_send(job=job, actor=alice, note="All parts are in stock.")

    john = Message.objects.get(job=job, kind=Message.Kind.STATUS_UPDATE, contact__name="John Smith")
    assert signed_by(john.body_html, "Alice") and not signed_by(john.body_html, "Bob")
    assert "All parts are in stock.\n— Alice\n" in john.body_text


def test_a_promise_moved_note_by_alice_is_signed_by_alice(job: Job, alice: User, john: Contact) -> None:
    quote = document_promise(job=job, title="The quote", due_on=date(2026, 3, 4), actor=job.owner, contact=john)

    commitment_move_and_tell(
        commitment=quote, new_date=date(2026, 3, 6), reason="Waiting for a price", actor=alice, note="Nearly there."
    )

    message = Message.objects.get(job=job, kind=Message.Kind.PROMISE_MOVED)
    assert signed_by(message.body_html, "Alice") and not signed_by(message.body_html, "Bob")
    assert "Nearly there.\n— Alice\n" in message.body_text


def test_a_free_message_by_alice_is_signed_by_alice(job: Job, alice: User) -> None:
    free_message_send(job=job, actor=alice, body="Could you send us a photo of the meter?")

    john = Message.objects.get(job=job, kind=Message.Kind.FREE, contact__name="John Smith")
    assert "Could you send us a photo of the meter?\n\nAlice\n" in john.body_text
    assert ">Alice</p>" in john.body_html
    assert "\nBob\n" not in john.body_text


# --- A conflict names who moved the job ---------------------------------------------------------


def test_a_conflicting_advance_names_the_colleague_who_moved_the_job(job: Job, alice: User, bob: User) -> None:
    seen = job.current_stage
    job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=alice, expected_stage=seen)

    with pytest.raises(ConflictError) as refused:
        job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=bob, expected_stage=seen)

    assert str(refused.value) == (
        f"Alice Martin moved job {job.reference} to “Proposal sent” in the meantime; look again before changing it."
    )
    assert Job.objects.get(pk=job.pk).current_stage.name == "Proposal sent"


def test_a_conflict_with_ones_own_other_window_says_so(job: Job, bob: User) -> None:
    seen = job.current_stage
    job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=bob, expected_stage=seen)

    with pytest.raises(ConflictError, match=r"^You \(in another window\) moved job"):
        job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=bob, expected_stage=seen)


def test_a_conflict_with_the_system_says_so(job: Job, bob: User) -> None:
    seen = job.current_stage
    job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=None, expected_stage=seen)

    with pytest.raises(ConflictError, match=r"^The system moved job"):
        job_advance(job=job, to_stage=stage(job, "Order confirmed"), actor=bob, expected_stage=seen)


# --- « 1er » in French --------------------------------------------------------------------------


def test_said_date_says_1er_for_the_first_of_the_month_in_french_only() -> None:
    first = date(2026, 4, 1)
    assert french(first) == "mercredi 1er avril 2026"
    assert french(first, "j F") == "1er avril"
    assert french(date(2026, 4, 2), "j F") == "2 avril"
    assert english(first, "j F") == "1 April"


def test_a_date_on_the_first_of_april_is_1er_avril_for_a_french_contact(job: Job, bob: User) -> None:
    move(job, "Installed", date(2026, 4, 1), tell_customer=True)

    messages = date_messages(job)
    marie = messages["Marie Dupont"]
    assert "mercredi 1er avril 2026" in marie.body_text
    assert "mercredi 1er avril 2026" in marie.body_html
    assert "1 avril" not in marie.body_text and "1 avril" not in marie.body_html
    assert "Wednesday 1 April 2026" in messages["John Smith"].body_text


def test_the_portal_says_1er_avril_to_a_french_contact(client: Client, job: Job, contact: Contact) -> None:
    move(job, "Installed", date(2026, 4, 1), tell_customer=True)

    page = portal_page(sign_in(client, contact, job), job)
    assert "1er avril" in page
    assert " 1 avril" not in page


def test_a_welcome_reaching_the_first_of_april_says_1er_avril(
    customer: Customer, contact: Contact, installation: Pipeline, bob: User
) -> None:
    # A short pipeline of its own, started on Monday 30 March: its visit falls on Wednesday 1 April.
    pipeline = Pipeline.objects.create(name="Quick visit")
    StageTemplate.objects.create(pipeline=pipeline, position=1, name="Booked", default_duration_days=0)
    StageTemplate.objects.create(pipeline=pipeline, position=2, name="Visit", default_duration_days=2)
    job = job_create(
        customer=customer,
        pipeline=pipeline,
        owner=bob,
        title="Boiler check",
        actor=bob,
        contacts=[contact],
        start_date=date(2026, 3, 30),
    )

    assert job.milestones.get(stage__name="Visit").forecast_date == date(2026, 4, 1)
    welcome = Message.objects.get(job=job, kind=Message.Kind.WELCOME)
    assert "mercredi 1er avril 2026" in welcome.body_text
    assert "1 avril" not in welcome.body_text
