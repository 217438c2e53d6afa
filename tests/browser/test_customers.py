"""Customer pages in a browser: signed in as staff, every page passes axe-core, and choosing a
customer on the new-job form offers that customer's contacts."""

from __future__ import annotations

import pytest

from crm.models import Contact
from tests.browser.conftest import assert_accessible, sign_in


@pytest.mark.django_db(transaction=True)
def test_it_serves_accessible_customer_pages(page, live_server, bob, customer, contact, job, other_customer):
    Contact.objects.create(customer=other_customer, name="Wile Coyote", email="wile@acme.example")
    base = live_server.url

    sign_in(page, f"{base}/customers/")
    assert page.get_by_role("heading", name="Customers").is_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Dupont household").click()
    page.wait_for_url(f"{base}/customers/{customer.pk}/")
    assert page.get_by_role("link", name=job.reference, exact=True).is_visible()
    # The same job is offered to file a request a customer made by phone or in person.
    assert page.get_by_label("About the job").locator("option", has_text=job.reference).count() == 1
    assert_accessible(page)

    page.get_by_role("link", name="Edit Marie Dupont").click()
    page.wait_for_url(f"{base}/contacts/{contact.pk}/edit/")
    assert page.get_by_label("Time zone").is_visible()
    assert_accessible(page)

    page.goto(f"{base}/jobs/new/?customer={customer.pk}")
    assert page.get_by_label("Marie Dupont").is_checked()
    assert_accessible(page)

    # Another customer: the form reloads in place with that customer's contacts, keeping the title.
    page.locator("#id_title").fill("Boiler service")
    page.locator("#id_customer").select_option(label="Acme Telecom")
    page.get_by_label("Wile Coyote").wait_for()
    assert page.get_by_label("Marie Dupont").count() == 0
    assert page.locator("#id_title").input_value() == "Boiler service"
    assert_accessible(page)


@pytest.mark.django_db(transaction=True)
def test_it_finds_the_customer_of_a_new_job_by_search(
    page, live_server, bob, customer, contact, other_customer, installation, monkeypatch
):
    from crm.models import Job
    from crm.views import customers as customer_views

    monkeypatch.setattr(customer_views, "CUSTOMER_SELECT_MAX", 1)
    Contact.objects.create(customer=other_customer, name="Wile Coyote", email="wile@acme.example")
    base = live_server.url

    sign_in(page, f"{base}/jobs/new/")
    assert_accessible(page)

    # Matches appear as one types (htmx), found by a contact's email too.
    page.get_by_label("Find the customer: name, contact name, email or phone").fill("wile@")
    match = page.get_by_role("link", name="Acme Telecom")
    match.wait_for()
    assert page.get_by_text("1 customer matches “wile@”.").is_visible()
    assert page.get_by_role("link", name="Dupont household").count() == 0
    assert_accessible(page)

    match.click()
    page.get_by_label("Wile Coyote").wait_for()
    page.locator("#id_title").fill("Fibre to the warehouse")
    page.locator("#id_pipeline").select_option(label="Installation")
    page.get_by_role("button", name="Create job").click()
    page.wait_for_url(f"{base}/jobs/*/")
    job = Job.objects.get()
    assert (job.customer, job.title) == (other_customer, "Fibre to the warehouse")
