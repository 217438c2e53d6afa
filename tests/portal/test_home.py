"""portal.views.home: "My jobs" — open jobs first, finished ones readable for good."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Customer, Job, Pipeline
from crm.services.jobs import job_cancel, job_complete, job_create, job_hold, job_update_details

from .conftest import advance


def new_job(customer: Customer, pipeline: Pipeline, owner: User, title: str) -> Job:
    return job_create(customer=customer, pipeline=pipeline, owner=owner, title=title, actor=owner)


def test_it_lists_open_jobs_first_then_finished_ones(
    john_client: Client, customer: Customer, john: Contact, repair: Pipeline, bob: User, time_machine
) -> None:
    finished = new_job(customer, repair, bob, "Old boiler repair")
    advance(finished, "Fixed")
    job_complete(job=finished, actor=bob)
    time_machine.shift(60)
    cancelled = new_job(customer, repair, bob, "Cancelled repair")
    job_cancel(job=cancelled, actor=bob, reason="Customer sold the house")
    time_machine.shift(60)
    new_job(customer, repair, bob, "Older open job")
    time_machine.shift(60)
    on_hold = new_job(customer, repair, bob, "Job on hold")
    job_hold(job=on_hold, actor=bob, reason="Waiting")
    time_machine.shift(60)
    newest_open = new_job(customer, repair, bob, "Newest open job")

    page = john_client.get(reverse("portal:home")).text
    order = [
        page.index(t)
        for t in ("Newest open job", "Job on hold", "Older open job", "Cancelled repair", "Old boiler repair")
    ]
    assert order == sorted(order)
    assert page.index("In progress") < page.index("Newest open job") < page.index("Finished")
    assert "Finished on Monday 2 March." in page
    assert "Cancelled on Monday 2 March." in page
    assert "On hold" in page
    assert newest_open.reference in page


def test_it_shows_where_each_job_stands(john_client: Client, job: Job) -> None:
    advance(job, "Order confirmed")
    page = john_client.get(reverse("portal:home")).text
    assert "Order confirmed" in page
    assert "Next: Installation scheduled — Monday 16 March" in page
    assert reverse("portal:job", args=[job.public_id]) in page


def test_it_lists_only_the_contacts_customers_jobs(john_client: Client, job: Job, stranger_job: Job) -> None:
    page = john_client.get(reverse("portal:home")).text
    assert "Heat pump installation" in page
    assert "Acme cabling" not in page


def test_it_says_when_there_is_nothing_yet(john_client: Client) -> None:
    assert "There is no job to show yet." in john_client.get(reverse("portal:home")).text


def test_it_offers_the_calendar_feed(john_client: Client, john: Contact) -> None:
    page = john_client.get(reverse("portal:home")).text
    assert 'href="webcal://testserver/portal/calendar/' in page
    assert "http://testserver/portal/calendar/" in page


def test_it_costs_three_queries_however_many_jobs(
    john_client: Client, customer: Customer, repair: Pipeline, bob: User, django_assert_max_num_queries
) -> None:
    for i in range(20):
        new_job(customer, repair, bob, f"Job {i}")
    # The jobs' version (and the session checked), the contact, the jobs, their milestones.
    with django_assert_max_num_queries(4):
        first = john_client.get(reverse("portal:home"))
    assert first.status_code == 200
    # Unchanged: whole from the cache after the first of those.
    with django_assert_max_num_queries(1):
        again = john_client.get(reverse("portal:home"))
    assert again.status_code == 200 and "Job 19" in again.text


def test_my_jobs_kept_whole_shows_each_change_at_once(
    john_client: Client, customer: Customer, repair: Pipeline, bob: User
) -> None:
    job = new_job(customer, repair, bob, "Gutter repair")
    john_client.get(reverse("portal:home"))
    job_update_details(job=job, actor=bob, title="Gutter and roof repair")
    assert "Gutter and roof repair" in john_client.get(reverse("portal:home")).text
    new_job(customer, repair, bob, "Chimney sweep")
    assert "Chimney sweep" in john_client.get(reverse("portal:home")).text
    customer.name = "The Smith family"
    customer.save()
    assert "The Smith family" in john_client.get(reverse("portal:home")).text


def test_it_needs_a_signed_in_contact(client: Client) -> None:
    response = client.get(reverse("portal:home"))
    assert response["Location"] == reverse("portal:signed_out")


def test_it_keeps_finished_jobs_readable_for_good(
    client: Client, customer: Customer, john: Contact, repair: Pipeline, bob: User, time_machine
) -> None:
    from .conftest import sign_in

    old = job_create(
        customer=customer,
        pipeline=repair,
        owner=bob,
        title="Repair from long ago",
        actor=bob,
        start_date=date(2026, 3, 2),
    )
    advance(old, "Fixed")
    job_complete(job=old, actor=bob)
    time_machine.shift(3 * 365 * 24 * 3600)
    sign_in(client, john)
    assert "Repair from long ago" in client.get(reverse("portal:home")).text
    assert client.get(reverse("portal:job", args=[old.public_id])).status_code == 200
