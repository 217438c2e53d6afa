"""Files in the admin: shown for support, never added, changed or deleted there (the services and
the retention schedule do that); what each customer's files take in storage, in one query."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection
from django.db.models import Model
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, JobFile, Pipeline
from crm.services.files import document_share
from crm.services.jobs import job_create
from crm.uploads import inspect
from tests.files import PDF, received

pytestmark = pytest.mark.django_db


def url(model: type[Model], view: str, *args: Any) -> str:
    return reverse(f"admin:crm_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(client: Client, superuser: User) -> Client:
    client.force_login(superuser)
    return client


def stored(job: Job, title: str, size: int, **fields: Any) -> JobFile:
    """A file on ``job`` whose bytes are in storage (``size`` of them), without the upload path."""
    data = b"%" * size
    document = JobFile(
        job=job,
        direction=fields.pop("direction", JobFile.Direction.OUT),
        title=title,
        content_type=fields.pop("content_type", "application/pdf"),
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
        **fields,
    )
    document.file.save(".pdf", ContentFile(data), save=False)
    document.save()
    return document


def new_job(customer: Customer, installation: Pipeline, bob: User, title: str = "Battery") -> Job:
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title=title,
        actor=bob,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )


def cell(page: str, field: str, row: int = 0) -> str:
    """The text of a column's cell in the list's ``row`` (tags and spacing aside)."""
    html = page.split(f'class="field-{field}')[row + 1].split(">", 1)[1].split("</t")[0]
    return re.sub(r"<[^>]+>", "", html).strip()


# --- The file list ------------------------------------------------------------------------------


def test_the_file_list_shows_each_file_in_the_same_queries_for_3_or_30_files(
    staff: Client, job: Job, customer: Customer, installation: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    def list_queries() -> int:
        # The session's user, two counts, the page of files with their jobs, the date hierarchy
        # (two) and the content types to filter by.
        with django_assert_max_num_queries(7), CaptureQueriesContext(connection) as queries:
            response = staff.get(url(JobFile, "changelist"))
        assert response.status_code == 200
        return len(queries)

    battery = new_job(customer, installation, bob)
    for number in range(3):
        stored(job if number % 2 else battery, f"Invoice {number}", 1500)
    with_3 = list_queries()
    for number in range(27):
        stored(job if number % 2 else battery, f"Photo {number}", 10, content_type="image/jpeg")

    assert list_queries() == with_3


def test_the_file_list_says_what_each_file_is(staff: Client, job: Job, contact: Contact, bob: User) -> None:
    [photo] = received(job, contact, "roof.jpg")
    quote = document_share(job=job, actor=bob, document=inspect("quote.pdf", PDF), title="Quote")
    JobFile.objects.filter(pk=quote.pk).update(withdrawn_at=timezone.now(), removed_at=timezone.now())

    page = staff.get(url(JobFile, "changelist"), {"o": "1"}).text  # by title: Quote, roof.jpg

    assert [cell(page, "title", 0), cell(page, "title", 1)] == ["Quote", "roof.jpg"]
    assert url(JobFile, "change", photo.pk) in page
    assert cell(page, "job", 1) == str(job)
    assert cell(page, "direction", 1) == "From the customer"
    assert cell(page, "content_type", 0) == "application/pdf"
    assert cell(page, "size_display", 1) == filesizeformat(photo.size)
    assert cell(page, "withdrawn_at", 1) == cell(page, "removed_at", 1) == "-"
    assert cell(page, "removed_at", 0) != "-"


def test_the_file_list_searches_and_filters(
    staff: Client, job: Job, contact: Contact, bob: User, other_customer: Customer, installation: Pipeline
) -> None:
    [photo] = received(job, contact, "roof.jpg")
    quote = document_share(job=job, actor=bob, document=inspect("quote.pdf", PDF), title="Quote")
    theirs = stored(new_job(other_customer, installation, bob, "Antenna"), "Site plan", 100, removed_at=timezone.now())

    def listed(**query: str) -> set[int]:
        response = staff.get(url(JobFile, "changelist"), query)
        assert response.status_code == 200
        return {f.pk for f in response.context["cl"].result_list}

    assert listed(q="roof") == {photo.pk}
    assert listed(q=job.reference) == {photo.pk, quote.pk}
    assert listed(q="Acme") == {theirs.pk}  # the customer's name
    assert listed(direction__exact="in") == {photo.pk}
    assert listed(content_type="application/pdf") == {quote.pk, theirs.pk}
    assert listed(removed_at__isempty="1") == {photo.pk, quote.pk}  # still stored
    assert listed(removed_at__isempty="0") == {theirs.pk}
    assert listed(q="Dupont\x00") == {photo.pk, quote.pk}  # odd input, dropped


def test_a_file_is_shown_and_never_added_changed_or_deleted(
    staff: Client, job: Job, contact: Contact, bob: User
) -> None:
    [photo] = received(job, contact, "roof.jpg")
    before = JobFile.objects.values().get(pk=photo.pk)

    page = staff.get(url(JobFile, "change", photo.pk))
    assert page.status_code == 200
    assert not page.context["has_change_permission"] and not page.context["has_delete_permission"]
    assert 'name="_save"' not in page.text
    assert reverse("crm:job_file", args=[job.public_id, photo.public_id]) in page.text  # opened by the staff view
    assert "/media-not-served/" not in page.text  # never a storage address
    assert photo.file.name in page.text

    assert staff.get(url(JobFile, "add")).status_code == 403
    assert staff.post(url(JobFile, "change", photo.pk), {"title": "Renamed", "file": ""}).status_code == 403
    assert staff.get(url(JobFile, "delete", photo.pk)).status_code == 403
    assert staff.post(url(JobFile, "delete", photo.pk), {"post": "yes"}).status_code == 403
    assert staff.get(url(JobFile, "changelist")).context["action_form"] is None  # no "Delete selected"
    chosen = {"action": "delete_selected", "_selected_action": [photo.pk], "post": "yes"}
    staff.post(url(JobFile, "changelist"), chosen)

    assert JobFile.objects.values().get(pk=photo.pk) == before
    assert photo.file.storage.exists(photo.file.name)


def test_a_removed_file_says_so_and_offers_no_link(staff: Client, job: Job, contact: Contact) -> None:
    [photo] = received(job, contact, "roof.jpg")
    JobFile.objects.filter(pk=photo.pk).update(removed_at=timezone.now())

    page = staff.get(url(JobFile, "change", photo.pk)).text

    assert reverse("crm:job_file", args=[job.public_id, photo.public_id]) not in page
    assert "Removed" in page


# --- What each customer's files take ------------------------------------------------------------


def test_the_customer_list_shows_the_storage_each_customer_uses(
    staff: Client,
    job: Job,
    customer: Customer,
    contact: Contact,
    installation: Pipeline,
    bob: User,
    other_customer: Customer,
) -> None:
    # Two contacts: a sum joined with the contact count would come out twice as large.
    Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    photos = received(job, contact, "roof.jpg", "meter.jpg")
    battery = new_job(customer, installation, bob)
    plan = stored(battery, "Plan", 2_000_000)
    stored(battery, "Old plan", 5_000_000, removed_at=timezone.now())  # bytes gone: not counted
    Customer.objects.create(name="Zed Bakery")  # nothing stored

    response = staff.get(url(Customer, "changelist"), {"o": "1"})  # by name
    page = response.text

    names = [c.name for c in response.context["cl"].result_list]
    assert names == ["Acme Telecom", "Dupont household", "Zed Bakery"]
    assert [cell(page, "storage_used", row) for row in range(3)] == [
        filesizeformat(0),
        filesizeformat(sum(p.size for p in photos) + plan.size),
        filesizeformat(0),
    ]
    assert "Storage used" in page


def test_the_customer_list_sorts_by_storage_used(
    staff: Client, job: Job, customer: Customer, installation: Pipeline, bob: User, other_customer: Customer
) -> None:
    stored(job, "Plan", 1000)
    stored(new_job(other_customer, installation, bob), "Site survey", 3000)
    Customer.objects.create(name="Zed Bakery")
    column = ["action_checkbox", *staff.get(url(Customer, "changelist")).context["cl"].list_display].index(
        "storage_used"
    )

    def by_storage(order: str) -> list[str]:
        response = staff.get(url(Customer, "changelist"), {"o": order})
        return [c.name for c in response.context["cl"].result_list]

    assert by_storage(f"-{column - 1}") == ["Acme Telecom", "Dupont household", "Zed Bakery"]
    assert by_storage(f"{column - 1}") == ["Zed Bakery", "Dupont household", "Acme Telecom"]


def test_the_customer_list_costs_the_same_queries_for_3_or_30_customers_with_files(
    staff: Client, installation: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    def add_customers(count: int, start: int) -> None:
        for number in range(start, start + count):
            customer = Customer.objects.create(name=f"Customer {number:02}")
            Contact.objects.create(customer=customer, name=f"Contact {number}", email=f"c{number}@example.com")
            stored(new_job(customer, installation, bob), f"File {number}", 100 + number)

    def list_queries() -> int:
        # The session's user, two counts, the page of customers with their contact counts and
        # storage used: nothing per row.
        with django_assert_max_num_queries(4), CaptureQueriesContext(connection) as queries:
            response = staff.get(url(Customer, "changelist"))
        assert response.status_code == 200
        return len(queries)

    add_customers(3, 0)
    with_3 = list_queries()
    add_customers(27, 3)

    assert list_queries() == with_3


# --- On the job's page --------------------------------------------------------------------------


def test_the_job_page_lists_its_files_read_only_in_one_query(
    staff: Client, job: Job, contact: Contact, django_assert_max_num_queries
) -> None:
    received(job, contact, "roof.jpg")
    change = url(Job, "change", job.pk)

    def page_queries() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = staff.get(change)
        assert response.status_code == 200
        return len(queries), response.text

    page_queries()  # the first view of the session warms what it caches
    with_1, page = page_queries()
    [inline] = [i for i in staff.get(change).context["inline_admin_formsets"] if i.formset.model is JobFile]
    assert not inline.has_add_permission and not inline.has_change_permission and not inline.has_delete_permission
    assert "roof.jpg" in page
    for number in range(10):
        stored(job, f"Invoice {number}", 100)

    more, page = page_queries()
    assert more == with_1
    assert "Invoice 9" in page
