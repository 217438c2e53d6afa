"""Satisfaction surveys (crm.services.surveys): invited the morning after the survey stage in each
contact's time zone, once per job and contact however often the schedule runs, never at night,
never to someone who opted out; answered again without a second row; a low score alerts the owner,
opens a recovery call on the dashboard and is kept by a call that reaches the customer.

The job starts Monday 2 March 2026 and is installed on Tuesday 10 March at 15:00 in Paris (14:00
UTC): 10:00 that morning in Montreal (UTC-4 since 8 March), so for both the invitation is due on
Wednesday 11 March at 10:00 their time: 09:00 UTC for Paris, 14:00 UTC for Montreal.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from crm.errors import DomainError
from crm.models import Commitment, Contact, Customer, Job, JobEvent, Message, Pipeline, Survey
from crm.services.delivery import build_email
from crm.services.jobs import job_advance, job_complete, job_create, job_update_details
from crm.services.messages import CallOutcome, call_log
from crm.services.surveys import invitations_due, invitations_send, survey_answer, survey_invite
from crm.tasks import send_survey_invitations

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
MONTREAL = ZoneInfo("America/Montreal")
UTC = ZoneInfo("UTC")
INSTALLED_AT = datetime(2026, 3, 10, 15, 0, tzinfo=PARIS)
PARIS_MORNING = datetime(2026, 3, 11, 10, 0, tzinfo=PARIS)
MONTREAL_MORNING = datetime(2026, 3, 11, 10, 0, tzinfo=MONTREAL)


@pytest.fixture(autouse=True)
def _start(time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 2, 10, 0, tzinfo=PARIS), tick=False)


@pytest.fixture
def surveyed(installation: Pipeline) -> Pipeline:
    installation.survey_stage = installation.stages.get(name="Installed")
    installation.survey_delay_days = 1
    installation.save()
    return installation


@pytest.fixture
def marie(contact: Contact) -> Contact:
    contact.time_zone = "Europe/Paris"
    contact.save()
    return contact


@pytest.fixture
def luc(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer, name="Luc Tremblay", email="luc@example.com", language="fr", time_zone="America/Montreal"
    )


@pytest.fixture
def installer(db) -> User:
    return User.objects.create_user("marc", "marc@example.com", "pw", first_name="Marc", is_staff=True)


@pytest.fixture
def job(customer: Customer, marie: Contact, luc: Contact, surveyed: Pipeline, bob: User, installer: User) -> Job:
    job = job_create(
        customer=customer,
        pipeline=surveyed,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        contacts=[marie, luc],
        start_date=date(2026, 3, 2),
    )
    return job_update_details(job=job, actor=bob, installers=[installer])


def install(job: Job, time_machine, *, at: datetime = INSTALLED_AT) -> Job:
    time_machine.move_to(at, tick=False)
    return job_advance(job=job, to_stage=job.pipeline.stages.get(name="Installed"), actor=job.owner)


def invitations(job: Job) -> list[Message]:
    return list(Message.objects.filter(job=job, kind=Message.Kind.SURVEY_INVITATION).order_by("pk"))


def run_at(moment: datetime, time_machine) -> int:
    time_machine.move_to(moment, tick=False)
    return send_survey_invitations()


# --- Inviting -----------------------------------------------------------------------------------


def test_it_invites_each_contact_once_however_often_the_schedule_runs(job: Job, time_machine) -> None:
    install(job, time_machine)
    assert run_at(MONTREAL_MORNING, time_machine) == 2
    assert run_at(MONTREAL_MORNING, time_machine) == 0
    assert run_at(MONTREAL_MORNING + timedelta(hours=2), time_machine) == 0

    rows = invitations(job)
    assert len(rows) == 2
    assert sorted(m.idempotency_key for m in rows) == sorted(f"survey:{job.pk}:{c.pk}" for c in job.contacts.all())
    assert Survey.objects.filter(job=job).count() == 2


def test_an_invitation_already_made_is_not_made_again(job: Job, marie: Contact, time_machine) -> None:
    install(job, time_machine)
    time_machine.move_to(PARIS_MORNING, tick=False)
    assert survey_invite(job=job, contact=marie) is not None
    # A second worker that looked before the first committed finds the row and stops.
    assert survey_invite(job=job, contact=marie) is None
    assert len(invitations(job)) == 1


def test_it_invites_in_the_morning_of_each_contacts_time_zone(
    job: Job, marie: Contact, luc: Contact, time_machine
) -> None:
    install(job, time_machine)
    # The day it was installed: nobody yet.
    assert run_at(datetime(2026, 3, 10, 19, 0, tzinfo=PARIS), time_machine) == 0
    # 09:59 in Paris, 04:59 in Montreal.
    assert run_at(PARIS_MORNING - timedelta(minutes=1), time_machine) == 0
    # 10:00 in Paris, 05:00 in Montreal: Marie only.
    assert run_at(PARIS_MORNING, time_machine) == 1
    assert [m.contact for m in invitations(job)] == [marie]
    # 09:59 in Montreal (14:59 in Paris): still not Luc.
    assert run_at(MONTREAL_MORNING - timedelta(minutes=1), time_machine) == 0
    assert run_at(MONTREAL_MORNING, time_machine) == 1
    assert [m.contact for m in invitations(job)] == [marie, luc]
    assert MONTREAL_MORNING.astimezone(UTC).hour == 14


def test_it_never_invites_at_night_where_the_contact_is(job: Job, marie: Contact, luc: Contact, time_machine) -> None:
    install(job, time_machine)
    # The schedule did not run on Wednesday; Wednesday 20:00 in Paris is too late (14:00 in Montreal
    # is fine for Luc).
    assert run_at(datetime(2026, 3, 11, 20, 0, tzinfo=PARIS), time_machine) == 1
    assert [m.contact for m in invitations(job)] == [luc]
    # 02:00 and 08:59 in Paris: night.
    assert run_at(datetime(2026, 3, 12, 2, 0, tzinfo=PARIS), time_machine) == 0
    assert run_at(datetime(2026, 3, 12, 8, 59, tzinfo=PARIS), time_machine) == 0
    # 09:00 in Paris: Marie, the next morning.
    assert run_at(datetime(2026, 3, 12, 9, 0, tzinfo=PARIS), time_machine) == 1
    assert [m.contact for m in invitations(job)] == [luc, marie]


def test_the_delay_follows_the_pipeline(job: Job, surveyed: Pipeline, time_machine) -> None:
    surveyed.survey_delay_days = 3
    surveyed.save()
    install(job, time_machine)
    assert run_at(datetime(2026, 3, 12, 12, 0, tzinfo=PARIS), time_machine) == 0
    assert run_at(datetime(2026, 3, 13, 10, 0, tzinfo=PARIS), time_machine) == 1  # Marie (Paris)


def test_a_pipeline_without_a_survey_stage_sends_none(job: Job, surveyed: Pipeline, time_machine) -> None:
    surveyed.survey_stage = None
    surveyed.save()
    install(job, time_machine)
    assert run_at(MONTREAL_MORNING, time_machine) == 0
    assert invitations_due() == []


def test_an_opted_out_contact_gets_no_invitation(job: Job, marie: Contact, luc: Contact, time_machine) -> None:
    install(job, time_machine)
    marie.opted_out_at = INSTALLED_AT
    marie.save()
    run_at(MONTREAL_MORNING, time_machine)
    assert [m.contact for m in invitations(job)] == [luc]
    assert not Survey.objects.filter(contact=marie).exists()


def test_an_opt_out_after_the_schedule_looked_is_honoured(job: Job, marie: Contact, time_machine) -> None:
    install(job, time_machine)
    time_machine.move_to(PARIS_MORNING, tick=False)
    due = [d for d in invitations_due() if d.contact == marie]
    Contact.objects.filter(pk=marie.pk).update(opted_out_at=PARIS_MORNING)
    assert survey_invite(job=due[0].job, contact=due[0].contact) is None
    assert invitations(job) == []


def test_a_cancelled_job_gets_no_survey(job: Job, time_machine) -> None:
    from crm.services.jobs import job_cancel

    install(job, time_machine)
    job_cancel(job=job, actor=job.owner, reason="Customer moved away.")
    assert run_at(MONTREAL_MORNING, time_machine) == 0


def test_a_completed_job_still_gets_its_survey(job: Job, time_machine) -> None:
    install(job, time_machine)
    job_complete(job=job, actor=job.owner)
    assert run_at(MONTREAL_MORNING, time_machine) == 2


def test_it_gives_up_on_an_invitation_weeks_late(job: Job, time_machine) -> None:
    install(job, time_machine)
    assert run_at(datetime(2026, 3, 27, 12, 0, tzinfo=PARIS), time_machine) == 0


def test_the_email_offers_the_first_score_in_one_click(job: Job, marie: Contact, time_machine) -> None:
    install(job, time_machine)
    run_at(PARIS_MORNING, time_machine)
    message = invitations(job)[0]
    survey = Survey.objects.get(job=job, contact=marie)

    assert message.channel == Message.Channel.EMAIL
    assert message.to_address == "marie@example.com"
    assert message.status == Message.Status.QUEUED
    assert "/portal/survey/" in message.body_text
    for score in range(1, 6):
        assert f"?product={score}" in message.body_html
    assert "Marc" in message.body_html  # the installer
    assert list(survey.installers.all()) == list(job.installers.all())
    email = build_email(message)
    # Non-essential: one-click unsubscribe.
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_sms_carries_the_survey_link(job: Job, luc: Contact, time_machine) -> None:
    luc.phone = "+1 514 555 0199"
    luc.sms_consent_at = INSTALLED_AT
    luc.sms_consent_source = "signed order form"
    luc.preferred_channel = Contact.Channel.SMS
    luc.save()
    install(job, time_machine)
    run_at(MONTREAL_MORNING, time_machine)
    sms = Message.objects.get(job=job, contact=luc, kind=Message.Kind.SURVEY_INVITATION)
    assert sms.channel == Message.Channel.SMS
    assert "/portal/survey/" in sms.body_text
    assert "/portal/enter/" not in sms.body_text
    assert len(sms.body_text) <= 320


def test_the_email_escapes_what_people_typed(job: Job, marie: Contact, time_machine) -> None:
    Job.objects.filter(pk=job.pk).update(title="<script>alert('x')</script> & co")
    Contact.objects.filter(pk=marie.pk).update(name="Marie <b>Dupont</b>")
    job.refresh_from_db()
    install(job, time_machine)
    run_at(PARIS_MORNING, time_machine)
    message = Message.objects.get(job=job, contact=marie, kind=Message.Kind.SURVEY_INVITATION)
    assert "<script>" not in message.body_html
    assert "&lt;script&gt;" in message.body_html
    assert "<b>Dupont</b>" not in message.body_html
    # Plain text is plain: shown as typed.
    assert "<script>alert('x')</script> & co" in message.body_text


def test_a_french_contact_gets_it_in_french(job: Job, marie: Contact, time_machine) -> None:
    install(job, time_machine)
    run_at(PARIS_MORNING, time_machine)
    message = Message.objects.get(job=job, contact=marie, kind=Message.Kind.SURVEY_INVITATION)
    assert message.language == "fr"
    assert "Bonjour" in message.body_text
    assert "Comment" in message.subject


def test_the_schedule_exists() -> None:
    from crm.schedules import PERIODIC

    assert ("survey-invitations", "crm.tasks.send_survey_invitations", 15) in [
        (p.name, p.func, p.minutes) for p in PERIODIC
    ]


# --- Answering ----------------------------------------------------------------------------------


@pytest.fixture
def survey(job: Job, marie: Contact, time_machine) -> Survey:
    install(job, time_machine)
    time_machine.move_to(PARIS_MORNING, tick=False)
    created = survey_invite(job=job, contact=marie)
    assert created is not None
    time_machine.move_to(datetime(2026, 3, 11, 18, 0, tzinfo=PARIS), tick=False)
    return created


def answer(survey: Survey, **scores) -> Survey:
    values = {"product_quality": None, "workmanship": None, "installer_conduct": None, "recommend": None}
    return survey_answer(survey=survey, **{**values, **scores})


def test_answering_again_updates_the_one_row(survey: Survey, time_machine) -> None:
    answer(survey, product_quality=5, workmanship=4, installer_conduct=5, recommend=9, comment="Very tidy.")
    first = Survey.objects.get(pk=survey.pk)
    time_machine.move_to(datetime(2026, 3, 12, 9, 0, tzinfo=PARIS), tick=False)
    answer(survey, product_quality=4, workmanship=4, installer_conduct=5, recommend=10, comment="Still happy.")

    assert Survey.objects.filter(job=survey.job, contact=survey.contact).count() == 1
    again = Survey.objects.get(pk=survey.pk)
    assert (again.product_quality, again.recommend, again.comment) == (4, 10, "Still happy.")
    assert again.answered_at == first.answered_at
    assert again.updated_at > first.updated_at
    events = JobEvent.objects.filter(job=survey.job, kind=JobEvent.Kind.SURVEY_ANSWERED).order_by("pk")
    assert [e.data["changed"] for e in events] == [False, True]


def test_the_answer_attaches_to_the_installers(survey: Survey, installer: User, bob: User) -> None:
    job_update_details(job=survey.job, actor=bob, installers=[installer, bob])
    answer(survey, installer_conduct=5)
    assert set(survey.installers.all()) == {installer, bob}


def test_one_score_is_an_answer(survey: Survey) -> None:
    answer(survey, product_quality=5)
    survey.refresh_from_db()
    assert survey.is_answered
    assert survey.workmanship is None


def test_an_answer_needs_a_score(survey: Survey) -> None:
    with pytest.raises(DomainError):
        answer(survey, comment="Just a comment")
    assert not Survey.objects.get(pk=survey.pk).is_answered


@pytest.mark.parametrize(
    "scores", [{"product_quality": 0}, {"workmanship": 6}, {"installer_conduct": -1}, {"recommend": 11}]
)
def test_a_score_out_of_range_is_refused(survey: Survey, scores: dict[str, int]) -> None:
    with pytest.raises(DomainError):
        answer(survey, **scores)


def test_a_good_answer_opens_no_recovery(survey: Survey, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        answer(survey, product_quality=3, workmanship=3, installer_conduct=3, recommend=7)
    assert not Commitment.objects.filter(kind=Commitment.Kind.RECOVERY).exists()
    assert mail.outbox == []


@pytest.mark.parametrize(
    "scores",
    [
        {"product_quality": 2},
        {"workmanship": 1},
        {"installer_conduct": 2, "recommend": 10},
        {"product_quality": 5, "recommend": 6},
        {"recommend": 0},
    ],
)
def test_a_low_score_opens_a_recovery_call_and_alerts_the_owner(
    survey: Survey, scores: dict[str, int], bob: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        answer(survey, comment="The outdoor unit is noisy.", **scores)

    recovery = Commitment.objects.get(kind=Commitment.Kind.RECOVERY)
    assert recovery.job == survey.job
    assert recovery.contact == survey.contact
    assert recovery.owner == bob
    assert recovery.is_open
    # Answered Wednesday 18:00 (closing time): one business day later is Thursday 18:00.
    assert recovery.due_at == datetime(2026, 3, 12, 18, 0, tzinfo=PARIS)
    assert Survey.objects.get(pk=survey.pk).recovery == recovery
    [alert] = mail.outbox
    assert alert.to == ["bob@example.com"]
    assert "Unhappy customer" in alert.subject
    assert survey.job.reference in alert.subject
    assert "The outdoor unit is noisy." in alert.body
    assert f"/jobs/{survey.job.public_id}/" in alert.body


def test_the_recovery_is_due_one_business_day_later_over_a_weekend(survey: Survey, time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 13, 15, 0, tzinfo=PARIS), tick=False)  # Friday
    answer(survey, recommend=2)
    recovery = Commitment.objects.get(kind=Commitment.Kind.RECOVERY)
    assert recovery.due_at == datetime(2026, 3, 16, 15, 0, tzinfo=PARIS)  # Monday


def test_a_low_answer_changed_again_opens_one_recovery(survey: Survey, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        answer(survey, product_quality=1)
        answer(survey, product_quality=1, comment="And nobody called yet.")
    assert Commitment.objects.filter(kind=Commitment.Kind.RECOVERY).count() == 1
    assert len(mail.outbox) == 1


def test_it_shows_on_the_owners_dashboard_and_the_managers_team_view(
    survey: Survey, bob: User, alice: User, client: Client
) -> None:
    answer(survey, workmanship=1, comment="Holes left in the wall.")

    client.force_login(bob)
    response = client.get(reverse("crm:home"))
    unhappy = next(s for s in response.context["sections"] if s.key == "unhappy")
    assert response.context["sections"][0].key == "unhappy"
    assert [s.pk for s in unhappy.rows] == [survey.pk]
    body = response.content.decode()
    assert "Unhappy customers to call" in body
    assert "Holes left in the wall." in body
    assert response.context["attention_counts"]["unhappy"] == 1
    # Not listed a second time among the promises about to slip.
    at_risk = next(s for s in response.context["sections"] if s.key == "at_risk")
    assert all(c.kind != Commitment.Kind.RECOVERY for c in at_risk.rows)

    client.force_login(alice)
    mine = client.get(reverse("crm:home"))
    assert next(s for s in mine.context["sections"] if s.key == "unhappy").count == 0
    team = client.get(reverse("crm:home") + "?scope=team")
    assert [s.pk for s in next(s for s in team.context["sections"] if s.key == "unhappy").rows] == [survey.pk]


def test_a_call_that_reaches_the_customer_keeps_the_recovery(survey: Survey, bob: User, client: Client) -> None:
    answer(survey, recommend=3)
    call_log(job=survey.job, contact=survey.contact, actor=bob, outcome=CallOutcome.VOICEMAIL)
    assert Commitment.objects.get(kind=Commitment.Kind.RECOVERY).is_open

    call_log(job=survey.job, contact=survey.contact, actor=bob, outcome=CallOutcome.REACHED, notes="Sorted.")
    recovery = Commitment.objects.get(kind=Commitment.Kind.RECOVERY)
    assert recovery.state == Commitment.State.KEPT
    client.force_login(bob)
    response = client.get(reverse("crm:home"))
    assert next(s for s in response.context["sections"] if s.key == "unhappy").count == 0


def test_a_call_with_another_contact_does_not_keep_it(survey: Survey, luc: Contact, bob: User) -> None:
    answer(survey, recommend=3)
    call_log(job=survey.job, contact=luc, actor=bob, outcome=CallOutcome.REACHED)
    assert Commitment.objects.get(kind=Commitment.Kind.RECOVERY).is_open


def test_completing_the_job_does_not_withdraw_the_recovery(survey: Survey, bob: User) -> None:
    answer(survey, recommend=1)
    job_complete(job=survey.job, actor=bob)
    assert Commitment.objects.get(kind=Commitment.Kind.RECOVERY).is_open


def test_after_a_call_the_same_low_answer_opens_no_new_recovery(survey: Survey, bob: User) -> None:
    answer(survey, recommend=3)
    call_log(job=survey.job, contact=survey.contact, actor=bob, outcome=CallOutcome.REACHED)
    answer(survey, recommend=3, comment="Adding a detail.")
    assert Commitment.objects.filter(kind=Commitment.Kind.RECOVERY).count() == 1
    # Happy, then unhappy again: that is news.
    answer(survey, recommend=9)
    answer(survey, recommend=2)
    assert Commitment.objects.filter(kind=Commitment.Kind.RECOVERY).count() == 2


def test_the_job_log_tells_what_was_answered(survey: Survey) -> None:
    answer(survey, product_quality=4, recommend=8)
    event = JobEvent.objects.get(job=survey.job, kind=JobEvent.Kind.SURVEY_ANSWERED)
    assert event.summary == "Marie Dupont: product 4/5, recommend 8/10"


# --- Many workers at once (PostgreSQL) ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_schedules_at_once_invite_each_contact_once(job: Job, time_machine) -> None:
    from django.db import connection

    from tests.crm.test_scan import run_together

    if connection.vendor != "postgresql":
        pytest.skip("concurrent schedules need PostgreSQL")
    install(job, time_machine)
    time_machine.move_to(MONTREAL_MORNING, tick=False)

    outcomes = run_together(invitations_send, invitations_send, invitations_send)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(outcomes) == 2
    assert len(invitations(job)) == 2
    assert Survey.objects.filter(job=job).count() == 2


# --- The demo: the survey the morning after, with the documented command --------------------------


def test_the_demo_sends_its_surveys_with_the_documented_command(time_machine, settings) -> None:
    from io import StringIO

    from django.core.management import call_command

    from crm.demo import seed_demo_world

    settings.DEBUG = True
    time_machine.move_to(datetime(2026, 3, 18, 9, 30, tzinfo=PARIS), tick=False)
    seed_demo_world()
    installation = Pipeline.objects.get(name="Installation")
    repair = Pipeline.objects.get(name="Repair")
    assert (installation.survey_stage.name, installation.survey_delay_days, installation.checkin_days) == (
        "Installed",
        1,
        30,
    )
    assert (repair.survey_stage.name, repair.checkin_days) == ("Checked", 30)
    assert Survey.objects.count() == 0

    out = StringIO()
    call_command("send_after_job", "--as-of", "2026-03-19T17:00", stdout=out)

    assert "survey invitations queued:" in out.getvalue()
    invited_jobs = {s.job.title for s in Survey.objects.select_related("job")}
    # Reached "Installed" or "Checked" during the seeding (the day before); 17:00 in Paris is 12:00
    # in Montreal, where the Tremblays live.
    assert {"Smart thermostat and radiator valves", "Chaudière qui ne chauffe plus"} <= invited_jobs
    assert Message.objects.filter(kind=Message.Kind.SURVEY_INVITATION).count() >= 2
