"""manage.py seed_demo: a believable world, built through the services, that a second run leaves alone."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from crm.demo import BACK_DATED_REASON, BACK_DATED_VISIT_REASON
from crm.links import make_link_token
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    JobEvent,
    JobRole,
    Message,
    Milestone,
    Pipeline,
    Visit,
    VisitKind,
)
from crm.services.jobs import job_advance
from crm.workdays import business_today

PARIS = ZoneInfo("Europe/Paris")
WEDNESDAY = dt.datetime(2026, 3, 18, 9, 30, tzinfo=PARIS)
THURSDAY = dt.date(2026, 3, 19)
MONDAY = dt.date(2026, 3, 23)

# The jobs the demo makes late on purpose: overdue without news, slipped silently, moved with notice.
LATE_TITLES = {
    "Wi-Fi des clients et câblage réseau",
    "Hotte d’extraction de la cuisine",
    "Thermopompe centrale, rez-de-chaussée",
    "Groupe froid de la chambre froide",
    "Panne d’eau chaude, aile est",
    "Borne de recharge dans le garage",
}


@pytest.fixture(autouse=True)
def development(settings, monkeypatch) -> None:
    settings.DEBUG = True
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)


@pytest.fixture
def frozen():
    with time_machine.travel(WEDNESDAY, tick=False) as traveller:
        yield traveller


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    models = [*apps.get_app_config("crm").get_models(), User, Group, Group.permissions.through]
    return {model._meta.label: model._default_manager.count() for model in models}


def visit_of(title: str) -> Visit:
    return Visit.objects.select_related("commitment", "job").get(job__title=title)


def visits_seen() -> list[tuple]:
    return list(Visit.objects.order_by("pk").values_list("pk", "job_id", "kind_id", "window_start", "status"))


def late_job_titles() -> set[str]:
    milestones = Milestone.objects.filter(job__status__in=[Job.Status.ACTIVE, Job.Status.ON_HOLD]).select_related("job")
    return {m.job.title for m in milestones if m.is_late}


@pytest.fixture(scope="class")
def world(django_db_setup, django_db_blocker):
    """One seeded world shared by the tests that only read it (like setUpTestData), rolled back after."""
    with (
        django_db_blocker.unblock(),
        time_machine.travel(WEDNESDAY, tick=False),
        pytest.MonkeyPatch.context() as monkeypatch,
        transaction.atomic(),
    ):
        monkeypatch.delenv("DEMO_PASSWORD", raising=False)
        with override_settings(DEBUG=True):
            seed()
        yield
        transaction.set_rollback(True)


@pytest.mark.django_db
@pytest.mark.usefixtures("world")
class TestTheWorld:
    def test_it_creates_the_staff_logins(self) -> None:
        alice, bob, chloe = (User.objects.get(username=name) for name in ("alice", "bob", "chloe"))
        assert alice.is_staff and alice.is_superuser
        assert alice.groups.filter(name="Managers").exists()
        assert bob.is_staff and not bob.is_superuser
        assert chloe.is_staff and not chloe.is_superuser
        for user in (alice, bob, chloe):
            assert user.check_password("demo")
            assert user.first_name and user.last_name and user.email.endswith("@example.com")
            assert user.staff_profile.job_title and user.staff_profile.phone
        # Staff can work in the admin, but the event log stays append-only.
        assert bob.groups.filter(name="Staff").exists()
        assert bob.has_perms(["crm.view_job", "crm.add_customer", "crm.change_contact", "crm.view_jobevent"])
        assert not bob.has_perm("crm.change_jobevent")
        assert not bob.has_perm("crm.delete_job")

    def test_it_creates_both_pipelines(self) -> None:
        assert sorted(Pipeline.objects.values_list("name", flat=True)) == ["Installation", "Repair"]
        installation = Pipeline.objects.get(name="Installation")
        stages = list(installation.stages.order_by("position"))
        assert [(s.name, s.default_duration_days, s.customer_visible) for s in stages] == [
            ("Request received", 0, True),
            ("Proposal sent", 3, True),
            ("Order confirmed", 5, True),
            ("Installation scheduled", 3, True),
            ("Installed", 10, True),
            ("Follow-up", 5, False),
        ]
        assert stages[1].message_key == "proposal-sent"
        assert stages[3].message_key == "installation-scheduled"
        assert "boiler room" in stages[4].customer_instructions
        assert Pipeline.objects.get(name="Repair").stages.count() >= 4

    def test_the_installation_pipeline_says_who_answers_for_the_customer_at_each_stage(self) -> None:
        installation = Pipeline.objects.get(name="Installation")
        holders = {
            role.name: role.default_holder.username for role in installation.roles.select_related("default_holder")
        }
        assert holders == {"Sales": "bob", "Production manager": "alice", "Installation coordinator": "chloe"}
        stages = installation.stages.select_related("role").order_by("position")
        assert [(s.name, s.role.name if s.role else "") for s in stages] == [
            ("Request received", "Sales"),
            ("Proposal sent", "Sales"),
            ("Order confirmed", "Production manager"),
            ("Installation scheduled", "Installation coordinator"),
            ("Installed", "Installation coordinator"),
            ("Follow-up", ""),
        ]
        # What the customer reads on the card of the person they are handed to.
        assert User.objects.get(username="chloe").staff_profile.job_title == "Installation coordinator"
        assert not Pipeline.objects.get(name="Repair").roles.exists()
        # Every installation job knows who holds each role; the sales person is whoever took the request.
        for job in Job.objects.filter(pipeline=installation):
            roles = {row.role.name: row.holder for row in JobRole.objects.filter(job=job).select_related("role")}
            assert set(roles) == set(holders)
            assert roles["Installation coordinator"].username == "chloe"

    def test_a_job_past_a_roles_stage_was_handed_to_its_holder(self) -> None:
        fitted = Job.objects.get(title="Smart thermostat and radiator valves")  # bob took the request
        assert fitted.owner.username == "chloe"
        handed = fitted.events.get(kind=JobEvent.Kind.OWNER_CHANGED)
        assert (handed.data["old_owner"], handed.data["new_owner"]) == ("Bob Durand", "Chloé Bernard")
        assert (handed.data["role"], handed.data["stage"]) == ("Installation coordinator", "Installed")
        ordered = Job.objects.get(title="Solar panels and home battery")
        assert ordered.owner.username == "alice"  # the production manager, from "Order confirmed" on
        # A stage without a role (the follow-up) leaves the job with whoever had it.
        assert Job.objects.get(title="Pompe à chaleur air-eau").owner.username == "bob"

    def test_only_the_job_opened_today_welcomes_its_contacts(self) -> None:
        fresh = Job.objects.get(title="Pompe à chaleur : code d’erreur E12")
        welcomes = Message.objects.filter(kind=Message.Kind.WELCOME).select_related("contact")
        assert {m.job_id for m in welcomes} == {fresh.pk}
        assert sorted((m.contact.name, m.channel) for m in welcomes) == [
            ("Marie Lefèvre", Contact.Channel.SMS),
            ("Paul Lefèvre", Contact.Channel.EMAIL),
        ]
        assert fresh.events.get(kind=JobEvent.Kind.CREATED).data["welcomed"] == 2
        # The others were opened weeks ago: the seed does not welcome them late, and says why.
        for created in JobEvent.objects.filter(kind=JobEvent.Kind.CREATED).exclude(job=fresh):
            assert (created.data["welcomed"], created.data["not_told_reason"]) == (0, BACK_DATED_REASON)

    def test_it_creates_customers_in_both_languages(self) -> None:
        assert Customer.objects.count() >= 5
        assert set(Customer.objects.values_list("kind", flat=True)) == {"household", "company"}
        contacts = list(Contact.objects.all())
        assert {c.language for c in contacts} == {"en", "fr"}
        assert {c.time_zone for c in contacts} == {"Europe/Paris", "Europe/London", "America/Montreal"}
        sms = [c for c in contacts if c.preferred_channel == Contact.Channel.SMS]
        assert sms
        assert all(c.sms_consent_at and c.sms_consent_source and c.phone for c in sms)
        assert any(c.preferred_channel == Contact.Channel.PHONE for c in contacts)
        for contact in contacts:
            contact.full_clean()

    def test_every_job_has_milestones_and_a_history(self) -> None:
        jobs = list(Job.objects.select_related("pipeline"))
        assert 18 <= len(jobs) <= 22
        for job in jobs:
            assert job.milestones.count() == job.pipeline.stages.count()
            assert job.events.filter(kind=JobEvent.Kind.CREATED).exists()
            assert job.contacts.exists()
        assert set(Job.objects.values_list("owner__username", flat=True)) == {"alice", "bob", "chloe"}
        assert Job.objects.filter(current_stage__position__gt=1).count() >= 10

    def test_jobs_started_in_the_past(self) -> None:
        today = business_today()
        first = Milestone.objects.filter(stage__position=1)
        assert all(today - dt.timedelta(days=60) <= m.planned_date <= today for m in first)
        assert first.filter(planned_date__lte=today - dt.timedelta(days=30)).exists()

    def test_jobs_have_every_status(self) -> None:
        assert Job.objects.filter(status=Job.Status.ON_HOLD).count() in (1, 2)
        assert Job.objects.filter(status=Job.Status.CANCELLED).count() == 1
        assert Job.objects.filter(status=Job.Status.DONE).count() in (2, 3)
        assert Job.objects.filter(status=Job.Status.ACTIVE).count() >= 12
        for job in Job.objects.exclude(status__in=[Job.Status.ACTIVE, Job.Status.ON_HOLD]):
            assert job.closed_at is not None
        for job in Job.objects.filter(status=Job.Status.DONE):
            assert not job.milestones.filter(completed_at__isnull=True).exists()

    def test_each_pipeline_has_its_kinds_of_visit(self) -> None:
        kinds = {
            (k.pipeline.name, k.name): (k.name_fr, k.window_minutes, k.duration_minutes, k.stage, k.completes_stage)
            for k in VisitKind.objects.select_related("pipeline", "stage")
        }
        assert set(kinds) == {
            ("Installation", "Site survey"),
            ("Installation", "Installation day"),
            ("Repair", "Repair call"),
        }
        assert kinds["Installation", "Site survey"] == ("Visite technique", 120, 60, None, False)
        name_fr, window, duration, stage, completes = kinds["Installation", "Installation day"]
        assert (name_fr, window, duration, stage.name, completes) == (
            "Journée d’installation",
            120,
            480,
            "Installed",
            True,
        )
        assert kinds["Repair", "Repair call"][0] == "Dépannage"
        for kind in VisitKind.objects.all():
            kind.full_clean()

    def test_a_crew_is_running_late_today(self) -> None:
        now = timezone.now()
        visit = visit_of("Loading bay door motor")
        assert visit.window_start.astimezone(PARIS).date() == business_today()
        assert now < visit.window_start
        # Told before the window that they will come after it: the window's promise moved in time.
        assert visit.status == Visit.Status.PLANNED
        assert visit.expected_at is not None and visit.expected_at > visit.window_end
        assert visit.expected_at.astimezone(PARIS).date() == business_today()
        told = visit.job.events.get(kind=JobEvent.Kind.VISIT_RUNNING_LATE)
        assert told.data["before_window"] and told.data["reason"]
        assert visit.commitment.state == Commitment.State.RENEGOTIATED
        assert visit.commitment.due_at == visit.expected_at
        assert visit.commitment.renegotiations.get().proactive
        sent = set(Message.objects.filter(job=visit.job).values_list("kind", flat=True))
        assert {Message.Kind.VISIT_BOOKED, Message.Kind.VISIT_RUNNING_LATE} <= sent
        assert visit.at_risk(now)
        assert sorted(visit.installers.values_list("username", flat=True)) == ["bob", "chloe"]

    def test_marie_has_a_visit_to_confirm_on_the_next_business_day(self) -> None:
        marie = Contact.objects.get(name="Marie Lefèvre")
        visit = visit_of("Pompe à chaleur : code d’erreur E12")
        assert visit.window_start.astimezone(PARIS).date() == THURSDAY
        assert (visit.status, visit.confirmed_at, visit.move_asked_at) == (Visit.Status.PLANNED, None, None)
        assert visit.job.contacts.filter(pk=marie.pk).exists()
        assert visit.address == visit.job.customer.address != ""
        # Booked now, so told now (her SMS carries the portal link), like the job opened today.
        booked = Message.objects.get(job=visit.job, contact=marie, kind=Message.Kind.VISIT_BOOKED)
        assert booked.channel == Contact.Channel.SMS

    def test_two_visits_were_done_one_inside_its_window_one_late(self) -> None:
        now = timezone.now()
        kept, late = visit_of("Solar panels and home battery"), visit_of("Thermopompe centrale, rez-de-chaussée")
        for visit in (kept, late):
            assert visit.status == Visit.Status.DONE
            assert visit.window_end < now and visit.window_start.astimezone(PARIS).date() < business_today()
            assert visit.arrived_at is not None and visit.done_at is not None
            assert visit.arrived_at < visit.done_at < now
            assert visit.commitment.state == Commitment.State.KEPT
            assert visit.commitment.first_due_at == visit.commitment.due_at == visit.window_end
            assert visit.commitment.kept_at == visit.arrived_at
            # Booked back then: not told to the customer now, and the log says why.
            booked = visit.job.events.get(kind=JobEvent.Kind.VISIT_BOOKED)
            assert (booked.data["told_customer"], booked.data["not_told_reason"]) == (False, BACK_DATED_VISIT_REASON)
            assert dt.datetime.fromisoformat(booked.data["window_start"]) == visit.window_start
            assert not Message.objects.filter(job=visit.job, kind__startswith="visit").exists()
        assert kept.window_start <= kept.arrived_at <= kept.window_end
        assert kept.commitment.broken_at is None
        assert kept.job.events.get(kind=JobEvent.Kind.VISIT_ARRIVED).data["in_window"]
        # Late: the window ended without the crew (the scan broke its promise), kept when they came.
        assert late.arrived_at > late.window_end
        assert late.commitment.kept_at > late.commitment.first_due_at
        assert late.commitment.broken_at is not None and late.commitment.broken_at < late.arrived_at
        assert not late.job.events.get(kind=JobEvent.Kind.VISIT_ARRIVED).data["in_window"]
        # A team: more than one person goes on visits.
        crews = {v.installers.get().username for v in (kept, late)}
        assert crews == {"bob", "chloe"}

    def test_maries_portal_asks_her_to_confirm_the_visit(self, client: Client) -> None:
        marie = Contact.objects.get(name="Marie Lefèvre")
        visit = visit_of("Pompe à chaleur : code d’erreur E12")
        assert client.get(reverse("portal:enter", args=[make_link_token(marie)])).status_code == 302

        page = client.get(reverse("portal:job", args=[visit.job.public_id])).text

        assert reverse("portal:visit_confirm", args=[visit.job.public_id, visit.public_id]) in page
        # In her language: "That works", and the visit's French name.
        with translation.override(marie.language):
            assert gettext("That works") in page
        assert "Dépannage" in page

    def test_the_installers_today_page_shows_the_visit_running_late(self, client: Client) -> None:
        client.force_login(User.objects.get(username="bob"))

        page = client.get(reverse("crm:today")).text

        assert "Northwind Logistics Ltd" in page
        assert "Okafor household" not in page

    def test_some_jobs_are_running_late(self) -> None:
        assert late_job_titles() == LATE_TITLES
        today = business_today()
        overdue = Milestone.objects.filter(
            completed_at__isnull=True, forecast_date__lt=today, job__status=Job.Status.ACTIVE
        )
        assert overdue.exists()
        moves = JobEvent.objects.filter(kind=JobEvent.Kind.DATE_MOVED)
        assert all(event.data["reason"] for event in moves)
        # Both kinds of notice, for the promise reports: before the old date and after it.
        assert {event.data["before_old_date"] for event in moves} == {True, False}
        assert all(event.data["tell_customer"] for event in moves)
        assert Message.objects.filter(kind=Message.Kind.DATE_MOVED).exists()


@pytest.mark.django_db
class TestSeeding:
    def test_it_prints_the_logins_and_a_second_run_changes_nothing(self, frozen) -> None:
        output = seed()

        assert "Demo data created: 3 users, 2 pipelines" in output
        for username in ("alice", "bob", "chloe"):
            assert username in output
        assert "'demo'" in output
        assert "20 jobs" in output
        assert "3 visit kinds" in output and "4 visits" in output

        before = counts()
        frozen.shift(dt.timedelta(days=3))
        output = seed()

        assert counts() == before
        assert "nothing to create" in output
        assert "alice" in output and "password unchanged" in output

    def test_seeding_again_books_no_visit_twice(self, frozen) -> None:
        seed("--quiet")
        visits, kinds = visits_seen(), VisitKind.objects.count()
        promises, messages = Commitment.objects.count(), Message.objects.count()
        assert len(visits) == 4

        seed("--quiet")
        frozen.shift(dt.timedelta(days=1))
        seed("--quiet")

        assert visits_seen() == visits
        assert VisitKind.objects.count() == kinds
        assert (Commitment.objects.count(), Message.objects.count()) == (promises, messages)

    @pytest.mark.parametrize(
        ("moment", "day"),
        [
            (dt.datetime(2026, 3, 18, 19, 0, tzinfo=PARIS), THURSDAY),  # Wednesday evening
            (dt.datetime(2026, 3, 21, 15, 0, tzinfo=PARIS), MONDAY),  # Saturday
            (dt.datetime(2026, 3, 23, 0, 30, tzinfo=PARIS), MONDAY),  # Monday night, before opening
        ],
        ids=["evening", "saturday", "monday-early"],
    )
    def test_too_late_for_today_the_crew_goes_the_next_business_morning(self, moment, day) -> None:
        with time_machine.travel(moment, tick=False):
            assert seed("--quiet") == ""

            visit = visit_of("Loading bay door motor")
            assert visit.window_start == dt.datetime.combine(day, dt.time(9, 0), tzinfo=PARIS)
            # Nothing to say yet: a crew can only say it is late on the day.
            assert visit.expected_at is None
            assert not JobEvent.objects.filter(kind=JobEvent.Kind.VISIT_RUNNING_LATE).exists()
            maries = visit_of("Pompe à chaleur : code d’erreur E12")
            assert maries.window_start.astimezone(PARIS).date() > business_today()
            assert maries.status == Visit.Status.PLANNED
            assert Visit.objects.filter(status=Visit.Status.DONE).count() == 2

    def test_a_demo_job_entering_the_coordinators_stage_is_handed_to_her(self, frozen) -> None:
        seed("--quiet")
        job = Job.objects.get(title="Solar panels and home battery")
        alice, chloe = job.owner, User.objects.get(username="chloe")
        assert (alice.username, job.current_stage.name) == ("alice", "Order confirmed")

        job_advance(job=job, to_stage=job.pipeline.stages.get(name="Installation scheduled"), actor=alice)

        job.refresh_from_db()
        assert job.owner == chloe
        handed = job.events.filter(kind=JobEvent.Kind.OWNER_CHANGED).latest("id")
        assert (handed.data["new_owner"], handed.data["role"]) == ("Chloé Bernard", "Installation coordinator")
        assert Message.objects.filter(kind=Message.Kind.STAFF_ALERT, staff=chloe, job=None).exists()
        told = Message.objects.filter(job=job, kind=Message.Kind.STAGE_CHANGE).latest("id")
        assert "Chloé Bernard" in told.body_text

    def test_the_password_is_only_set_on_users_it_creates(self, frozen, monkeypatch) -> None:
        User.objects.create_user("bob", "bob@corp.example.com", "his-own", is_staff=True)
        monkeypatch.setenv("DEMO_PASSWORD", "s3cret-demo")

        output = seed()

        assert User.objects.get(username="alice").check_password("s3cret-demo")
        bob = User.objects.get(username="bob")
        assert bob.check_password("his-own")
        assert bob.email == "bob@corp.example.com"
        assert Job.objects.filter(owner=bob).exists()
        assert "s3cret-demo" not in output
        assert "bob" in output and "password unchanged" in output

    def test_it_writes_nothing_when_an_owner_cannot_own_jobs(self, frozen) -> None:
        User.objects.create_user("chloe", "chloe@example.com", "pw")  # not staff

        with pytest.raises(CommandError, match="not an active staff member"):
            seed()

        assert not Job.objects.exists()
        assert not Customer.objects.exists()

    def test_it_refuses_the_default_password_without_debug(self, frozen, settings) -> None:
        settings.DEBUG = False

        with pytest.raises(CommandError, match="DEMO_PASSWORD"):
            seed()

        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "moment",
        [
            dt.datetime(2026, 3, 21, 15, 0, tzinfo=PARIS),  # Saturday
            dt.datetime(2026, 3, 23, 0, 30, tzinfo=PARIS),  # Monday in Paris, still Sunday in UTC
        ],
        ids=["saturday", "monday-early"],
    )
    def test_the_same_jobs_are_late_on_any_day(self, moment: dt.datetime) -> None:
        with time_machine.travel(moment, tick=False):
            assert seed("--quiet") == ""

            assert Job.objects.count() == 20
            assert late_job_titles() == LATE_TITLES


def test_it_refuses_to_seed_with_a_real_sms_provider(settings) -> None:
    from django.core.management import CommandError, call_command

    from crm.management.commands.seed_demo import demo_texts_stay_local

    settings.SMS_BACKEND = "crm.sms_twilio.TwilioSmsBackend"
    settings.TWILIO_API_URL = "https://api.twilio.com"
    with pytest.raises(CommandError, match="would be texted for real"):
        call_command("seed_demo", "--quiet")
    # Twilio's library pointed at the fake Twilio: the demo's texts stay on this machine.
    settings.TWILIO_API_URL = "http://127.0.0.1:8026"
    assert demo_texts_stay_local()
