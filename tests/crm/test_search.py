"""The navigation's search: references, names, emails, phone numbers however written, titles;
live results for htmx, a plain page without; few queries; the other search boxes share its rule."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, Pipeline
from crm.phones import search_key
from crm.search import search
from crm.services.jobs import job_create

pytestmark = pytest.mark.django_db

LIVE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "nav-search-results"}


def make_job(customer: Customer, pipeline: Pipeline, owner: User, title: str) -> Job:
    return job_create(
        customer=customer,
        pipeline=pipeline,
        owner=owner,
        title=title,
        actor=owner,
        notify_customer=False,
        not_told_reason="Test.",
    )


def found(text: str) -> dict[str, list[str]]:
    results = search(text, limit=25)
    return {
        "jobs": [job.reference for job in results.jobs.rows],
        "customers": [customer.name for customer in results.customers.rows],
        "contacts": [contact.name for contact in results.contacts.rows],
    }


@pytest.fixture
def leroy(db) -> Contact:
    customer = Customer.objects.create(name="Leroy SARL", kind=Customer.Kind.COMPANY)
    return Contact.objects.create(
        customer=customer, name="Paul Leroy", email="paul@leroy.example", phone="06 12 34 56 78"
    )


@pytest.mark.parametrize(
    "typed",
    ["06 12 34 56 78", "+33 6 12 34 56 78", "06.12.34.56.78", "0612345678", "0033 612345678", "(0)6-12-34-56-78"],
)
def test_a_phone_number_is_found_however_it_is_typed(leroy: Contact, typed: str) -> None:
    assert found(typed)["contacts"] == ["Paul Leroy"]
    assert found(typed)["customers"] == ["Leroy SARL"]


@pytest.mark.parametrize("stored", ["+33 6 12 34 56 78", "+33612345678", "06-12-34-56-78"])
def test_a_phone_number_is_found_however_it_was_stored(leroy: Contact, stored: str) -> None:
    Contact.objects.filter(pk=leroy.pk).update(phone=stored)
    for typed in ("06 12 34 56 78", "+33 6 12 34 56 78", "06.12.34.56.78"):
        assert found(typed)["contacts"] == ["Paul Leroy"], (stored, typed)


def test_part_of_a_number_finds_it_and_other_numbers_do_not(leroy: Contact) -> None:
    assert found("06 12 34")["contacts"] == ["Paul Leroy"]
    assert found("06 12 34 56 79")["contacts"] == []


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("(415) 555-0100", "4155550100"),
        ("+1 415 555 0100", "4155550100"),
        ("+44 20 7946 0958", "2079460958"),
        ("+1 514 555 0199", "5145550199"),
        ("Dupont", None),
        ("J-2026-0003", None),
        ("123", None),
    ],
)
def test_the_search_key_of_a_number_is_its_national_number(typed: str, key: str | None, settings) -> None:
    settings.PHONE_DEFAULT_REGION = "US"
    assert search_key(typed) == key


def test_references_names_emails_and_titles_are_found_in_any_case(job: Job, leroy: Contact, other_customer) -> None:
    assert found(job.reference.lower())["jobs"] == [job.reference]
    assert found(job.reference[-4:])["jobs"] == [job.reference]
    assert found("heat PUMP")["jobs"] == [job.reference]
    assert found("dupont") == {"jobs": [job.reference], "customers": ["Dupont household"], "contacts": ["Marie Dupont"]}
    assert found("MARIE@example")["contacts"] == ["Marie Dupont"]
    assert found("acme")["customers"] == ["Acme Telecom"]
    assert found("nobody at all") == {"jobs": [], "customers": [], "contacts": []}


def test_an_exact_reference_comes_first_then_open_jobs(customer: Customer, installation: Pipeline, bob: User) -> None:
    jobs = [make_job(customer, installation, bob, f"Job {n}") for n in range(3)]
    Job.objects.filter(pk=jobs[2].pk).update(status=Job.Status.DONE, closed_at=timezone.now())
    assert found("Job ")["jobs"] == [jobs[1].reference, jobs[0].reference, jobs[2].reference]
    assert found(jobs[0].reference)["jobs"][0] == jobs[0].reference


def test_one_character_asks_for_more(staff: Client, job: Job) -> None:
    response = staff.get(reverse("crm:search"), {"q": "J"})
    assert "Type at least 2 characters." in response.content.decode()
    assert response.context["results"].empty


def test_the_page_lists_each_kind_and_says_what_was_searched(staff: Client, job: Job, leroy: Contact) -> None:
    response = staff.get(reverse("crm:search"), {"q": "dupont"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<title>Search: dupont" in body
    assert reverse("crm:job", args=[job.public_id]) in body
    assert reverse("crm:customer", args=[job.customer_id]) in body
    assert "Paul Leroy" not in body
    # The page's own box holds what was searched (the navigation's stays a magnifier).
    assert 'id="page-search" name="q" value="dupont"' in body


def test_the_live_results_are_a_fragment_with_a_link_to_the_page(staff: Client, job: Job) -> None:
    response = staff.get(reverse("crm:search"), {"q": "Heat"}, **LIVE)
    body = response.content.decode()
    assert "<html" not in body and job.reference in body
    assert f"{reverse('crm:search')}?q=Heat" in body
    assert staff.get(reverse("crm:search"), {"q": ""}, **LIVE).content == b""
    nothing = staff.get(reverse("crm:search"), {"q": "<b>zzz</b>"}, **LIVE).content.decode()
    assert "No job, customer or contact matches “&lt;b&gt;zzz&lt;/b&gt;”." in nothing


def test_the_live_results_show_five_of_each_kind(
    staff: Client, customer: Customer, installation: Pipeline, bob: User
) -> None:
    for n in range(7):
        make_job(customer, installation, bob, f"Boiler {n}")
    live = staff.get(reverse("crm:search"), {"q": "boiler"}, **LIVE)
    assert len(live.context["results"].jobs.rows) == 5 and live.context["results"].jobs.more
    page = staff.get(reverse("crm:search"), {"q": "boiler"})
    assert len(page.context["results"].jobs.rows) == 7 and not page.context["results"].jobs.more


def test_it_keeps_its_queries_few(staff: Client, customer: Customer, installation: Pipeline, bob: User) -> None:
    for n in range(12):
        other = Customer.objects.create(name=f"Martin {n}")
        Contact.objects.create(customer=other, name=f"Jo Martin {n}", phone=f"06 12 34 56 {n:02}")
        make_job(other, installation, bob, "Martin roof")
    staff.get(reverse("crm:search"), {"q": "martin"})  # the session and the user, once
    for params, most in (({"q": "martin"}, 5), ({"q": "06 12 34 56"}, 5)):
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(reverse("crm:search"), params).status_code == 200
        assert len(queries) <= most, [q["sql"][:80] for q in queries]
        with CaptureQueriesContext(connection) as queries:
            staff.get(reverse("crm:search"), params, **LIVE)
        assert len(queries) <= 4, [q["sql"][:80] for q in queries]


def test_only_staff_may_search(client: Client, dana: User) -> None:
    assert client.get(reverse("crm:search"), {"q": "dupont"}).status_code == 302
    client.force_login(dana)
    assert client.get(reverse("crm:search"), {"q": "dupont"}).status_code == 403


def test_the_customers_and_jobs_lists_find_a_phone_number_too(staff: Client, leroy: Contact, job: Job) -> None:
    Contact.objects.create(customer=job.customer, name="Jean Dupont", phone="+33 7 98 76 54 32")
    customers = staff.get(reverse("crm:customers"), {"q": "06.12.34.56.78"}).content.decode()
    assert "Leroy SARL" in customers and "Dupont household" not in customers
    jobs = staff.get(reverse("crm:jobs"), {"q": "07 98 76 54 32"}).content.decode()
    assert job.reference in jobs


def test_a_sign_in_link_by_number_finds_the_contact_by_its_number_however_written(leroy: Contact) -> None:
    from crm.services.contacts import contacts_with_phone

    # Compared in E.164, a number without its country code read as one of PHONE_DEFAULT_REGION (FR).
    for typed in ("0612345678", "06 12 34 56 78", "+33612345678", "0033 6 12 34 56 78"):
        assert [c.pk for c in contacts_with_phone(typed)] == [leroy.pk], typed
    assert contacts_with_phone("06 12 34 56 79") == []
    assert contacts_with_phone("06 12 34") == []  # not a whole number
