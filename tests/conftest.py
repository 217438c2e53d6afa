"""Personas and a small world built in code.

alice manages the team, bob owns jobs, charlie is staff with no jobs; dana is not staff.
The "Installation" pipeline has the stages of the demo; "Repair" is a second, shorter one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from django.contrib.auth.models import Group, User
from django_q.models import Schedule
from django_q.scheduler import scheduler

from crm.models import Contact, Customer, Job, Pipeline, StageTemplate
from crm.services.jobs import job_create
from tests.fake_twilio import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_FROM, FakeTwilio

INSTALLATION_STAGES = [
    # (name, shown to customer, business days from previous stage)
    ("Request received", True, 0),
    ("Proposal sent", True, 3),
    ("Order confirmed", True, 5),
    ("Installation scheduled", True, 2),
    ("Installed", True, 10),
    ("Follow-up", False, 5),
]


def make_pipeline(name: str, stages: list[tuple[str, bool, int]]) -> Pipeline:
    pipeline = Pipeline.objects.create(name=name)
    for position, (stage_name, visible, days) in enumerate(stages, start=1):
        StageTemplate.objects.create(
            pipeline=pipeline,
            position=position,
            name=stage_name,
            customer_visible=visible,
            default_duration_days=days,
        )
    return pipeline


@pytest.fixture
def alice(db) -> User:
    user = User.objects.create_user("alice", "alice@example.com", "pw", first_name="Alice", last_name="Martin")
    user.is_staff = True
    user.save()
    managers, _ = Group.objects.get_or_create(name="Managers")
    user.groups.add(managers)
    return user


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", "bob@example.com", "pw", first_name="Bob", last_name="Durand", is_staff=True)


@pytest.fixture
def charlie(db) -> User:
    return User.objects.create_user("charlie", "charlie@example.com", "pw", is_staff=True)


@pytest.fixture
def dana(db) -> User:
    return User.objects.create_user("dana", "dana@example.com", "pw")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def installation(db) -> Pipeline:
    return make_pipeline("Installation", INSTALLATION_STAGES)


@pytest.fixture
def repair(db) -> Pipeline:
    return make_pipeline("Repair", [("Reported", True, 0), ("Diagnosed", True, 2), ("Fixed", True, 3)])


@pytest.fixture
def customer(db) -> Customer:
    return Customer.objects.create(name="Dupont household")


@pytest.fixture
def contact(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="Marie Dupont", email="marie@example.com", language="fr")


@pytest.fixture
def other_customer(db) -> Customer:
    return Customer.objects.create(name="Acme Telecom", kind=Customer.Kind.COMPANY)


@pytest.fixture
def job(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump installation",
        actor=bob,
        start_date=date(2026, 3, 2),
        # A job already under way: its welcome is the welcome tests' business (test_welcome.py).
        notify_customer=False,
        not_told_reason="Opened before the tests begin.",
    )


@pytest.fixture
def run_schedules(db) -> Callable[[], int]:
    """Run the django-q2 schedules that are due now, as the cluster's scheduler does every 30 s
    (a retry, a staff alert digest); their tasks run in this process (sync). Returns how many ran."""

    def run() -> int:
        before = Schedule.objects.count()
        scheduler()
        return before - Schedule.objects.count()

    return run


@pytest.fixture
def fake_twilio(settings) -> Iterator[FakeTwilio]:
    """A fake Twilio REST API on a local port (tests/fake_twilio.py), and the product's Twilio
    backend pointed at it: SMS_BACKEND, TWILIO_API_URL, the test Account SID and auth token (which
    also sign the webhooks' requests), TWILIO_FROM a test number, no Messaging Service. A test may
    change these settings (the backend reads them at each send)."""
    with FakeTwilio() as fake:
        settings.SMS_BACKEND = "crm.sms_twilio.TwilioSmsBackend"
        settings.TWILIO_API_URL = fake.url
        settings.TWILIO_ACCOUNT_SID = TEST_ACCOUNT_SID
        settings.TWILIO_AUTH_TOKEN = TEST_AUTH_TOKEN
        settings.TWILIO_MESSAGING_SERVICE_SID = ""
        settings.TWILIO_FROM = TEST_FROM
        settings.TWILIO_TIMEOUT_SECONDS = 5
        yield fake
