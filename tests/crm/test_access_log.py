"""The access log: who saw which customer's data, and when — a customer's page, a job's page (its
messages and files), a file, the unassigned inbox, each export — one INSERT per page view; kept
ACCESS_LOG_RETENTION_DAYS, pruned by the daily schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import AccessRecord, Contact, ContactLinkUse, Customer, Job
from crm.roles import roles_ensure
from crm.schedules import PERIODIC
from crm.services.csv_import import import_create
from crm.tasks import prune_access_log
from tests.crm.test_views_csv_import import GOOD, csv_bytes
from tests.files import received

pytestmark = pytest.mark.django_db


def records() -> list[tuple[str, str, int | None, str]]:
    return list(AccessRecord.objects.order_by("pk").values_list("username", "kind", "customer_id", "subject"))


def inserts_into_the_log(queries: CaptureQueriesContext) -> int:
    table = AccessRecord._meta.db_table
    return sum(1 for q in queries.captured_queries if q["sql"].startswith("INSERT") and table in q["sql"])


def test_a_job_page_is_one_record_and_one_insert(staff: Client, live_job: Job, bob: User) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert staff.get(reverse("crm:job", args=[live_job.public_id])).status_code == 200

    assert inserts_into_the_log(queries) == 1
    assert records() == [("bob", "job", live_job.customer_id, live_job.reference)]
    (record,) = AccessRecord.objects.all()
    assert (record.user, record.path) == (bob, reverse("crm:job", args=[live_job.public_id]))
    assert timezone.now() - record.at < timedelta(minutes=1)


def test_a_customer_page_is_recorded(staff: Client, customer: Customer) -> None:
    assert staff.get(reverse("crm:customer", args=[customer.pk])).status_code == 200
    assert records() == [("bob", "customer", customer.pk, customer.name)]


def test_the_edit_pages_of_a_customer_and_a_contact_are_recorded(
    staff: Client, customer: Customer, contact: Contact
) -> None:
    assert staff.get(reverse("crm:customer_edit", args=[customer.pk])).status_code == 200
    assert staff.get(reverse("crm:contact_edit", args=[contact.pk])).status_code == 200
    assert records() == [
        ("bob", "customer", customer.pk, customer.name),
        ("bob", "customer", customer.pk, contact.name),
    ]


def test_a_file_is_recorded_its_thumbnail_is_not(staff: Client, live_job: Job, contact: Contact) -> None:
    (photo,) = received(live_job, contact, "roof.jpg")
    assert staff.get(reverse("crm:job_file_thumbnail", args=[live_job.public_id, photo.public_id])).status_code == 200
    assert records() == []
    assert staff.get(reverse("crm:job_file", args=[live_job.public_id, photo.public_id])).status_code == 200
    assert records() == [("bob", "file", live_job.customer_id, "roof.jpg")]


def test_the_inbox_and_the_exports_are_recorded(staff: Client, alice: User, bob: User) -> None:
    assert staff.get(reverse("crm:inbox")).status_code == 200
    assert staff.get(reverse("crm:health"), {"format": "csv"}).status_code == 200
    run = import_create(file_name="clients.csv", data=csv_bytes(*GOOD, "Dupont household,,,Bad,nope,,,,,,"), actor=bob)
    assert staff.get(reverse("crm:import_errors", args=[run.public_id])).status_code == 200

    kinds = [(kind, customer, subject.split("-")[0]) for _who, kind, customer, subject in records()]
    assert kinds == [
        ("inbox", None, "1"),
        ("export", None, "communication"),
        ("export", None, "import errors: clients.csv"),
    ]


def test_a_page_that_is_refused_records_nothing(client: Client, live_job: Job, customer: Customer) -> None:
    # Not signed in: sent to sign in, and nobody saw anything.
    assert client.get(reverse("crm:job", args=[live_job.public_id])).status_code == 302
    assert client.get(reverse("crm:customer", args=[customer.pk])).status_code == 302
    assert records() == []


def test_records_older_than_the_retention_are_pruned(settings, bob: User, customer: Customer, contact: Contact) -> None:
    settings.ACCESS_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    for days in (31, 29.9, 1):
        AccessRecord.objects.create(
            user=bob, username="bob", kind="customer", customer=customer, at=now - timedelta(days=days)
        )

    old_use = ContactLinkUse.objects.create(
        contact=contact,
        kind=ContactLinkUse.Kind.SIGN_IN,
        at=now - timedelta(days=31),
        day=(now - timedelta(days=31)).date(),
    )
    recent_use = ContactLinkUse.objects.create(
        contact=contact,
        kind=ContactLinkUse.Kind.SIGN_IN,
        at=now - timedelta(days=2),
        day=(now - timedelta(days=2)).date(),
    )

    assert prune_access_log() == 2
    assert sorted((now - at).days for at in AccessRecord.objects.values_list("at", flat=True)) == [1, 29]
    assert list(ContactLinkUse.objects.all()) == [recent_use]
    assert not ContactLinkUse.objects.filter(pk=old_use.pk).exists()
    assert prune_access_log() == 0


def test_pruning_is_a_daily_schedule() -> None:
    (schedule,) = [s for s in PERIODIC if s.name == "access-log-prune"]
    assert (schedule.func, schedule.minutes) == ("crm.tasks.prune_access_log", 24 * 60)


def test_a_deleted_user_leaves_their_name_on_the_record(client: Client, live_job: Job) -> None:
    dora = User.objects.create_user("dora", "dora@example.com", "pw", is_staff=True)
    client.force_login(dora)
    client.get(reverse("crm:job", args=[live_job.public_id]))
    dora.delete()
    assert records() == [("dora", "job", live_job.customer_id, live_job.reference)]
    assert AccessRecord.objects.get().user is None


def test_managers_read_a_customers_log_in_the_admin_and_staff_cannot(
    client: Client, alice: User, bob: User, customer: Customer, other_customer: Customer
) -> None:
    roles_ensure()
    for who, seen in ((bob, customer), (bob, other_customer), (alice, customer)):
        AccessRecord.objects.create(user=who, username=who.username, kind="customer", customer=seen, subject=seen.name)

    client.force_login(alice)
    page = client.get(reverse("admin:crm_customer_change", args=[customer.pk])).content.decode()
    log_url = reverse("admin:crm_accessrecord_changelist") + f"?customer__id__exact={customer.pk}"
    assert f'href="{log_url}"' in page
    listed = client.get(log_url)
    assert listed.status_code == 200
    assert [r.customer for r in listed.context["cl"].result_list] == [customer, customer]

    client.force_login(bob)
    assert client.get(log_url).status_code == 403
