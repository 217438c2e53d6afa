"""The promise scan (a django-q2 schedule every five minutes): each owner gets at most one digest
a business morning of their promises about to slip, each promise in one digest; managers are told
at once, and once, when one breaks; owners of silent jobs are told once per silence — however
often, and from however many workers, it runs.

Time starts frozen on Monday 2 March 2026, 10:00 in Paris, the day the heat pump job starts (its
first promise, "Proposal sent", is due Thursday 5 March at 18:00). A promise is about to slip
once it falls due before closing time one business day from today. alice manages the team, root
is a superuser, bob owns the job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection

from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, StaffProfile
from crm.services.jobs import commitment_move_and_tell, job_create, job_hold, job_reassign
from crm.services.messages import status_update_send
from crm.services.promises import commitment_mark_kept, document_promise
from crm.services.scan import scan
from crm.tasks import scan_commitments

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)


def paris(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture
def team(alice: User, superuser: User, charlie: User) -> None:
    """Managers (alice, by group; root, as superuser) and a plain staff member."""


def run_scan(capture) -> dict[str, int]:
    """One scheduled run, with what it queued after commit actually sent."""
    with capture(execute=True):
        return scan_commitments()


def emails(subject_start: str) -> list[tuple[str, ...]]:
    return sorted(tuple(m.to) for m in mail.outbox if m.subject.startswith(subject_start))


def promise(job: Job, stage: str) -> Commitment:
    return job.commitments.get(milestone__stage__name=stage)


# --- The morning digest of promises about to slip -----------------------------------------------


def digests() -> list[Any]:
    """The digests sent (one email each), in the order they went."""
    return [m for m in mail.outbox if "about to slip" in m.subject.lower()]


def test_an_owner_gets_one_digest_a_morning_whatever_the_number_of_promises(
    job: Job,
    customer: Customer,
    installation: Pipeline,
    alice: User,
    bob: User,
    time_machine,
    django_capture_on_commit_callbacks,
) -> None:
    # Made on Monday, all due by Thursday's closing: inside the window on Wednesday morning.
    theirs = job_create(customer=customer, pipeline=installation, owner=alice, title="Solar panels", actor=alice)
    document_promise(job=job, title="Site photos", due_on=date(2026, 3, 5), actor=bob)
    document_promise(job=job, title="The quote", due_on=date(2026, 3, 4), actor=bob)
    document_promise(job=job, title="Grant forms", due_on=date(2026, 3, 5), actor=bob)
    document_promise(job=job, title="The plans", due_on=date(2026, 3, 4), actor=bob)
    document_promise(job=theirs, title="Roof survey", due_on=date(2026, 3, 4), actor=alice)
    time_machine.move_to(paris(3, 4, 9), tick=False)  # Wednesday, opening time

    counts = run_scan(django_capture_on_commit_callbacks)

    assert (counts["nudged"], counts["digests"]) == (7, 2)
    by_owner = {m.to[0]: m for m in digests()}
    assert sorted(by_owner) == ["alice@example.com", "bob@example.com"]
    assert len(mail.outbox) == 2
    theirs_digest, ours = by_owner["alice@example.com"], by_owner["bob@example.com"]
    assert theirs_digest.subject == "2 promises about to slip"
    assert ours.subject == "5 promises about to slip"
    assert ours.body.startswith("5 of your promises are about to slip, the soonest first.")
    # Soonest first: Wednesday's two (in the order they were made), then Thursday's three.
    listed = ["The quote", "The plans", "Proposal sent", "Site photos", "Grant forms"]
    positions = [ours.body.index(f"“{title}” on J-2026-0001 Heat pump installation is due") for title in listed]
    assert positions == sorted(positions)
    assert "is due Wednesday 4 March 18:00 and is not done yet." in ours.body
    assert "Roof survey" not in ours.body and "Proposal sent” on J-2026-0002 Solar panels" in theirs_digest.body
    assert not job.commitments.filter(state=Commitment.State.OPEN, due_at__lte=paris(3, 5, 18), nudged_at=None)


def test_a_second_scan_the_same_day_sends_nothing(
    job: Job, team, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 4, 10), tick=False)  # Wednesday: Thursday's promise is about to slip

    counts = [run_scan(django_capture_on_commit_callbacks)]
    for hour, minute in ((10, 5), (10, 10), (15, 0)):
        time_machine.move_to(paris(3, 4, hour, minute), tick=False)
        counts.append(run_scan(django_capture_on_commit_callbacks))

    assert [(c["nudged"], c["digests"]) for c in counts] == [(1, 1), (0, 0), (0, 0), (0, 0)]
    [nudge] = mail.outbox
    assert nudge.to == ["bob@example.com"]
    assert nudge.subject == "About to slip: Proposal sent — J-2026-0001"
    assert nudge.body.startswith("A promise of yours is about to slip.")
    assert "“Proposal sent” on J-2026-0001 Heat pump installation is due Thursday 5 March" in nudge.body
    assert promise(job, "Proposal sent").nudged_at == paris(3, 4, 10)
    assert promise(job, "Order confirmed").nudged_at is None


def test_the_digest_is_stored_once_an_owner_a_day_under_its_nudges_key(
    job: Job, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 4, 9), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    [row] = Message.objects.filter(kind=Message.Kind.STAFF_ALERT)
    assert (row.staff, row.status) == (bob, Message.Status.SENT)
    # alert_staff stores "alert:<name>:<key>:<person>", the key being nudges:<owner>:<day>.
    assert row.idempotency_key == f"alert:promises-at-risk:nudges:{bob.pk}:2026-03-04:{bob.pk}"


def test_the_digest_links_each_promise_to_its_new_date_page(
    job: Job, bob: User, client, time_machine, django_capture_on_commit_callbacks
) -> None:
    quote = document_promise(job=job, title="The quote", due_on=date(2026, 3, 5), actor=bob)
    time_machine.move_to(paris(3, 4, 10), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    [digest] = mail.outbox
    for commitment in (promise(job, "Proposal sent"), quote):
        link = f"http://testserver/jobs/{job.public_id}/promises/{commitment.pk}/move/"
        assert f"New date, tell them now: {link}" in digest.body
    assert "Every promise about to slip is on your dashboard: http://testserver/" in digest.body
    # The link opens the "new date, tell them now" page of that promise.
    client.force_login(bob)
    page = client.get(f"/jobs/{job.public_id}/promises/{quote.pk}/move/")
    assert page.status_code == 200
    assert "The quote" in page.content.decode()


def test_an_owner_who_reads_french_is_nudged_in_french(
    job: Job, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    StaffProfile.objects.create(user=bob, language="fr")
    time_machine.move_to(paris(3, 4, 10), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    [nudge] = mail.outbox
    assert nudge.subject == "Sur le point de glisser : Proposal sent — J-2026-0001"
    assert "jeudi 5 mars 18:00" in nudge.body


def test_the_nudge_gives_the_due_time_where_the_team_works(
    job: Job, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 4, 10), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    [nudge] = mail.outbox
    assert "is due Thursday 5 March 18:00 and is not done yet." in nudge.body


def test_no_digest_before_opening_time(job: Job, time_machine, django_capture_on_commit_callbacks) -> None:
    time_machine.move_to(paris(3, 4, 8, 59), tick=False)

    assert run_scan(django_capture_on_commit_callbacks) == {"nudged": 0, "digests": 0, "broken": 0, "silent": 0}
    assert promise(job, "Proposal sent").nudged_at is None

    time_machine.move_to(paris(3, 4, 9, 0), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["digests"] == 1


def test_no_digest_on_a_weekend_the_next_business_morning_has_it(
    job: Job, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    monday = document_promise(job=job, title="The quote", due_on=date(2026, 3, 9), actor=bob)
    mail.outbox = []

    # Saturday and Sunday: Monday's promise is inside the window, nobody is nudged.
    for day in (7, 8):
        time_machine.move_to(paris(3, day, 10), tick=False)
        assert run_scan(django_capture_on_commit_callbacks)["digests"] == 0
    assert digests() == []

    time_machine.move_to(paris(3, 9, 9, 5), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["digests"] == 1
    [digest] = digests()
    assert digest.subject == "About to slip: The quote — J-2026-0001"
    monday.refresh_from_db()
    assert monday.nudged_at == paris(3, 9, 9, 5)


def test_no_digest_on_a_holiday(job: Job, settings, time_machine, django_capture_on_commit_callbacks) -> None:
    settings.HOLIDAYS = [date(2026, 3, 4)]
    time_machine.move_to(paris(3, 4, 10), tick=False)  # a Wednesday, but a holiday

    assert run_scan(django_capture_on_commit_callbacks)["digests"] == 0
    assert mail.outbox == []


def test_a_promise_entering_the_window_in_the_afternoon_waits_for_the_next_morning(
    job: Job,
    customer: Customer,
    installation: Pipeline,
    alice: User,
    bob: User,
    time_machine,
    django_capture_on_commit_callbacks,
) -> None:
    time_machine.move_to(paris(3, 4, 9), tick=False)
    run_scan(django_capture_on_commit_callbacks)  # bob's digest: Proposal sent
    assert len(digests()) == 1

    # Wednesday afternoon: a promise made for tomorrow, one moved into the window, and one made by
    # someone who had no digest this morning.
    time_machine.move_to(paris(3, 4, 14), tick=False)
    quote = document_promise(job=job, title="The quote", due_on=date(2026, 3, 5), actor=bob)
    order = promise(job, "Order confirmed")
    commitment_move_and_tell(commitment=order, new_date=date(2026, 3, 5), reason="Parts arrived", actor=bob)
    theirs = job_create(customer=customer, pipeline=installation, owner=alice, title="Solar panels", actor=alice)
    survey = document_promise(job=theirs, title="Roof survey", due_on=date(2026, 3, 5), actor=alice)
    mail.outbox = []
    for minute in (5, 10):
        time_machine.move_to(paris(3, 4, 14, minute), tick=False)
        assert run_scan(django_capture_on_commit_callbacks)["digests"] == 0
    assert digests() == []
    for waiting in (quote, order, survey):
        waiting.refresh_from_db()
        assert waiting.nudged_at is None

    # Thursday morning: each owner's digest lists them, not what an earlier digest listed.
    time_machine.move_to(paris(3, 5, 9), tick=False)
    counts = run_scan(django_capture_on_commit_callbacks)

    assert (counts["nudged"], counts["digests"]) == (3, 2)
    by_owner = {m.to[0]: m for m in digests()}
    assert by_owner["bob@example.com"].subject == "2 promises about to slip"
    assert "Proposal sent" not in by_owner["bob@example.com"].body
    assert "“Order confirmed” on J-2026-0001" in by_owner["bob@example.com"].body
    assert "“The quote” on J-2026-0001" in by_owner["bob@example.com"].body
    assert by_owner["alice@example.com"].subject == "About to slip: Roof survey — J-2026-0002"


def test_a_promise_that_breaks_is_told_at_once_though_no_digest_listed_it(
    job: Job, team, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 4, 9), tick=False)
    run_scan(django_capture_on_commit_callbacks)  # bob's digest: Proposal sent
    time_machine.move_to(paris(3, 4, 14), tick=False)
    today = document_promise(job=job, title="The quote", due_on=date(2026, 3, 4), actor=bob)
    mail.outbox = []

    time_machine.move_to(paris(3, 4, 18, 5), tick=False)
    counts = run_scan(django_capture_on_commit_callbacks)

    assert (counts["digests"], counts["broken"]) == (0, 1)
    assert digests() == []
    assert emails("Promise broken: The quote") == [("alice@example.com",), ("bob@example.com",), ("root@example.com",)]
    today.refresh_from_db()
    assert (today.state, today.nudged_at) == (Commitment.State.BROKEN, None)


def test_nothing_is_nudged_before_its_warning_window(job: Job, team, django_capture_on_commit_callbacks) -> None:
    assert run_scan(django_capture_on_commit_callbacks) == {"nudged": 0, "digests": 0, "broken": 0, "silent": 0}
    assert mail.outbox == []


def test_the_warning_window_follows_the_settings(
    job: Job, settings, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 3, 9), tick=False)
    settings.COMMITMENT_WARNING_BUSINESS_DAYS = 2  # Tuesday + 2 business days = Thursday

    assert run_scan(django_capture_on_commit_callbacks)["nudged"] == 1
    assert promise(job, "Proposal sent").nudged_at == paris(3, 3, 9)


def test_a_promise_already_kept_is_not_nudged(
    job: Job, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    promised = document_promise(job=job, title="The quote", due_on=date(2026, 3, 3), actor=bob)
    commitment_mark_kept(commitment=promised, actor=bob)
    time_machine.move_to(paris(3, 3, 9), tick=False)

    assert run_scan(django_capture_on_commit_callbacks)["nudged"] == 0


def test_a_moved_promise_can_be_nudged_again_for_its_new_date(
    job: Job, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 4, 10), tick=False)
    run_scan(django_capture_on_commit_callbacks)
    proposal = promise(job, "Proposal sent")
    commitment_move_and_tell(commitment=proposal, new_date=date(2026, 3, 9), reason="Survey needed", actor=bob)
    proposal.refresh_from_db()
    assert proposal.nudged_at is None

    # Not yet: Monday 9 March is more than a business day away.
    time_machine.move_to(paris(3, 5, 10), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["nudged"] == 0
    # Friday: Monday is the next business day.
    time_machine.move_to(paris(3, 6, 10), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["nudged"] == 1
    time_machine.move_to(paris(3, 6, 10, 5), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["nudged"] == 0

    assert emails("About to slip: Proposal sent") == [("bob@example.com",), ("bob@example.com",)]
    assert promise(job, "Proposal sent").nudged_at == paris(3, 6, 10)


def test_the_nudge_goes_to_whoever_owns_the_job_now(
    job: Job, alice: User, charlie: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    job_reassign(job=job, owner=charlie, actor=alice)
    time_machine.move_to(paris(3, 4, 10), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    assert emails("About to slip") == [("charlie@example.com",)]


# --- Broken promises ----------------------------------------------------------------------------


def test_a_promise_past_its_time_breaks_once_and_managers_and_owner_hear_once(
    job: Job, team, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 5, 19), tick=False)  # Thursday, after closing

    first = run_scan(django_capture_on_commit_callbacks)
    time_machine.move_to(paris(3, 5, 19, 5), tick=False)
    second = run_scan(django_capture_on_commit_callbacks)

    assert (first["broken"], second["broken"]) == (1, 0)
    proposal = promise(job, "Proposal sent")
    assert proposal.state == Commitment.State.BROKEN
    assert proposal.broken_at == proposal.escalated_at == paris(3, 5, 19)
    [event] = job.events.filter(kind=JobEvent.Kind.PROMISE_BROKEN)
    assert (event.actor, event.data["commitment_id"], event.data["promise"]) == (None, proposal.pk, "Proposal sent")
    # One email each: the managers (by group and as superuser) and the owner; not charlie.
    assert emails("Promise broken") == [("alice@example.com",), ("bob@example.com",), ("root@example.com",)]
    assert {m.subject for m in mail.outbox} == {"Promise broken: Proposal sent — J-2026-0001"}
    assert "(owner: Bob Durand)" in mail.outbox[0].body
    # Only the promise whose time passed.
    assert promise(job, "Order confirmed").state == Commitment.State.OPEN


def test_a_promise_breaks_at_its_exact_due_time(job: Job, time_machine, django_capture_on_commit_callbacks) -> None:
    time_machine.move_to(paris(3, 5, 17, 59), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["broken"] == 0
    time_machine.move_to(paris(3, 5, 18, 0), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["broken"] == 1


def test_an_owner_who_manages_hears_once(
    job: Job, team, alice: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    job_reassign(job=job, owner=alice, actor=alice)
    time_machine.move_to(paris(3, 5, 19), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    assert emails("Promise broken") == [("alice@example.com",), ("root@example.com",)]


def test_a_nudged_promise_that_still_slips_breaks(
    job: Job, team, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 4, 10), tick=False)
    run_scan(django_capture_on_commit_callbacks)
    time_machine.move_to(paris(3, 6, 9), tick=False)

    run_scan(django_capture_on_commit_callbacks)

    proposal = promise(job, "Proposal sent")
    assert (proposal.state, proposal.nudged_at, proposal.broken_at) == (
        Commitment.State.BROKEN,
        paris(3, 4, 10),
        paris(3, 6, 9),
    )
    assert len(emails("About to slip")) == 1
    assert len(emails("Promise broken")) == 3


# --- Silence ------------------------------------------------------------------------------------


def test_a_silent_job_alarms_its_owner_once_per_silence(
    job: Job, contact: Contact, time_machine, django_capture_on_commit_callbacks
) -> None:
    # No message has gone out since the job was created on Monday 2 March at 10:00.
    time_machine.move_to(paris(3, 9, 9, 59), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 0

    time_machine.move_to(paris(3, 9, 10, 1), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 1
    assert Job.objects.get(pk=job.pk).silence_nudged_at == paris(3, 9, 10, 1)
    [alarm] = [m for m in mail.outbox if m.subject.startswith("No news")]
    assert alarm.to == ["bob@example.com"]
    assert alarm.subject == "No news for 7 days: J-2026-0001"
    assert f"/jobs/{job.public_id}/#actions" in alarm.body

    # Still silent, already told: nothing more, however long the silence lasts.
    for day in (10, 16, 19):
        time_machine.move_to(paris(3, day, 10), tick=False)
        assert run_scan(django_capture_on_commit_callbacks)["silent"] == 0

    # A message goes out on the 20th: the silence is over, and a new one starts.
    time_machine.move_to(paris(3, 20, 10), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        [update] = status_update_send(job=job, actor=job.owner)
    assert Message.objects.get(pk=update.pk).status == Message.Status.SENT
    for day in (21, 26):
        time_machine.move_to(paris(3, day, 10), tick=False)
        assert run_scan(django_capture_on_commit_callbacks)["silent"] == 0

    time_machine.move_to(paris(3, 27, 10, 1), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 1
    time_machine.move_to(paris(3, 27, 10, 6), tick=False)
    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 0
    assert emails("No news") == [("bob@example.com",), ("bob@example.com",)]


def test_a_message_that_never_went_out_does_not_end_the_silence(
    job: Job, contact: Contact, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 9, 11), tick=False)
    run_scan(django_capture_on_commit_callbacks)
    # Queued (the worker never sent it), then failed: the customer still heard nothing.
    time_machine.move_to(paris(3, 10, 11), tick=False)
    [queued] = status_update_send(job=job, actor=job.owner)
    Message.objects.filter(pk=queued.pk).update(status=Message.Status.FAILED)

    time_machine.move_to(paris(3, 18, 11), tick=False)

    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 0
    assert len(emails("No news")) == 1


def test_silence_is_counted_per_pipeline_and_only_for_active_jobs(
    job: Job, customer: Customer, repair: Pipeline, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    repair.silence_days = 2
    repair.save()
    quick = job_create(customer=customer, pipeline=repair, owner=bob, title="Boiler repair", actor=bob)
    held = job_create(customer=customer, pipeline=repair, owner=bob, title="Held repair", actor=bob)
    job_hold(job=held, actor=bob, reason="Waiting for parts")
    time_machine.move_to(paris(3, 4, 10, 1), tick=False)

    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 1

    assert Job.objects.get(pk=quick.pk).silence_nudged_at == paris(3, 4, 10, 1)
    assert Job.objects.get(pk=job.pk).silence_nudged_at is None
    assert Job.objects.get(pk=held.pk).silence_nudged_at is None


def test_a_message_sent_recently_keeps_the_alarm_quiet(
    job: Job, contact: Contact, time_machine, django_capture_on_commit_callbacks
) -> None:
    time_machine.move_to(paris(3, 5, 10), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        status_update_send(job=job, actor=job.owner)
    time_machine.move_to(paris(3, 11, 10), tick=False)

    assert run_scan(django_capture_on_commit_callbacks)["silent"] == 0


# --- Many workers at once (PostgreSQL) ----------------------------------------------------------


def run_together(*calls: Callable[[], Any], timeout: float = 30) -> list[Any]:
    """Start every call at the same moment, each in its own thread and database connection."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index] = call()
        except Exception as error:  # reported by the assertion below
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a scan is stuck"
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent scans need PostgreSQL")
def test_scans_at_once_send_one_digest_and_escalate_each_promise_exactly_once(
    customer: Customer, contact: Contact, installation: Pipeline, alice: User, bob: User, time_machine
) -> None:
    jobs = [
        job_create(customer=customer, pipeline=installation, owner=bob, title=f"Job {i}", actor=bob) for i in range(3)
    ]
    today, tomorrow = [], []
    for job in jobs:
        for i in range(8):
            today.append(document_promise(job=job, title=f"Doc {i}", due_on=date(2026, 3, 3), actor=bob))
            tomorrow.append(document_promise(job=job, title=f"Plan {i}", due_on=date(2026, 3, 4), actor=bob))
    # Tuesday 19:00, no scan yet today: today's promises have just broken, tomorrow's are about to
    # slip (made on Monday, so in this morning's digest).
    time_machine.move_to(paris(3, 3, 19), tick=False)
    mail.outbox = []

    outcomes = run_together(scan, scan, scan)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(o["nudged"] for o in outcomes) == len(tomorrow) == 24
    assert sum(o["digests"] for o in outcomes) == 1
    assert sum(o["broken"] for o in outcomes) == len(today) == 24
    assert Commitment.objects.filter(pk__in=[c.pk for c in tomorrow], nudged_at__isnull=False).count() == 24
    assert Commitment.objects.filter(pk__in=[c.pk for c in today], state=Commitment.State.BROKEN).count() == 24
    broken_events = JobEvent.objects.filter(kind=JobEvent.Kind.PROMISE_BROKEN)
    assert broken_events.count() == 24
    assert len({e.data["commitment_id"] for e in broken_events}) == 24
    # bob's one digest lists all 24.
    assert emails("24 promises about to slip") == [("bob@example.com",)]
    # Each broken promise: one email to alice (the manager) and one to bob (the owner).
    assert len(emails("Promise broken")) == 48
    assert emails("Promise broken").count(("alice@example.com",)) == 24


def test_the_scan_reports_what_it_did(job: Job, team, time_machine, django_capture_on_commit_callbacks) -> None:
    time_machine.move_to(paris(3, 11, 10), tick=False)  # Wednesday 11 March

    counts = run_scan(django_capture_on_commit_callbacks)

    # Proposal sent (5 March) broke; Order confirmed (12 March) is about to slip; silent 9 days.
    assert counts == {"nudged": 1, "digests": 1, "broken": 1, "silent": 1}
    assert run_scan(django_capture_on_commit_callbacks) == {"nudged": 0, "digests": 0, "broken": 0, "silent": 0}


def test_the_health_report_counts_the_digests_the_scan_sends(
    job: Job, bob: User, time_machine, django_capture_on_commit_callbacks
) -> None:
    """The digest row the scan stores is the one the report counts (one key, two modules)."""
    from crm.reports import Period, health_report

    time_machine.move_to(paris(3, 4, 9), tick=False)
    run_scan(django_capture_on_commit_callbacks)
    run_scan(django_capture_on_commit_callbacks)  # the same morning: no second digest

    report = health_report(period=Period(date(2026, 3, 2), date(2026, 3, 8)))
    assert report.for_owner(bob.pk).total.nudges == 1
    assert report.for_owner(None).total.nudges == 1
