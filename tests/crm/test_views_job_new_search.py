"""The new-job page once there are too many customers for a select: the customer is found by
search (live with htmx, plain GET without), then the form carries it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact, Customer, Job, Pipeline
from crm.views import customers as customer_views

URL = reverse("crm:job_new")


@pytest.fixture(autouse=True)
def _few_make_many(monkeypatch) -> None:
    """Three customers count as many: the page searches instead of listing them."""
    monkeypatch.setattr(customer_views, "CUSTOMER_SELECT_MAX", 2)


@pytest.fixture
def staff_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def customers(customer: Customer, contact: Contact, other_customer: Customer) -> list[Customer]:
    third = Customer.objects.create(name="Durand household")
    Contact.objects.create(customer=third, name="Luc Durand", email="luc@durand.example")
    return [customer, other_customer, third]


def links(html: str) -> list[dict[str, list[str]]]:
    """The query strings of the matches' links."""
    import re

    return [
        parse_qs(urlsplit(href.replace("&amp;", "&")).query)
        for href in re.findall(r'class="list-group-item[^"]*" href="([^"]+)"', html)
    ]


def test_it_asks_for_a_search_instead_of_listing_every_customer(staff_client, customers) -> None:
    html = staff_client.get(URL).content.decode()
    assert 'id="customer-q"' in html
    assert "Type part of a name or an email address." in html
    assert 'name="customer"' not in html  # no select of every customer, no form before one is chosen
    assert "Dupont household" not in html and "Acme Telecom" not in html


def test_it_finds_customers_by_name_or_by_a_contacts_email(staff_client, customers, installation) -> None:
    by_name = staff_client.get(URL, {"q": "household", "title": "Boiler", "pipeline": installation.pk})
    html = by_name.content.decode()
    assert "2 customers match “household”." in html
    assert "Dupont household" in html and "Durand household" in html and "Acme Telecom" not in html
    # Each match opens the form for that customer with what was typed so far.
    assert links(html) == [
        {"title": ["Boiler"], "pipeline": [str(installation.pk)], "customer": [str(customers[0].pk)]},
        {"title": ["Boiler"], "pipeline": [str(installation.pk)], "customer": [str(customers[2].pk)]},
    ]

    by_email = staff_client.get(URL, {"q": "luc@durand"}).content.decode()
    assert "1 customer matches “luc@durand”." in by_email
    assert "Durand household" in by_email and "Dupont household" not in by_email


def test_it_answers_htmx_with_the_matches_alone(staff_client, customers) -> None:
    response = staff_client.get(URL, {"q": "acme"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customer-matches")
    html = response.content.decode()
    assert html.startswith('<div id="customer-matches">')
    assert "Acme Telecom" in html
    assert "<h1" not in html


def test_it_says_when_nothing_matches_and_offers_a_new_customer(staff_client, customers) -> None:
    html = staff_client.get(URL, {"q": "zzz"}).content.decode()
    assert "No customer matches “zzz”." in html
    assert reverse("crm:customer_new") in html


def test_it_shows_the_first_matches_and_asks_to_narrow_down(staff_client, customers) -> None:
    Customer.objects.bulk_create([Customer(name=f"Batch household {i:02d}") for i in range(30)])
    html = staff_client.get(URL, {"q": "household"}).content.decode()
    assert "32 customers match “household”." in html
    assert "Here are the first 20: type more to narrow it down." in html
    assert len(links(html)) == 20


def test_it_costs_the_same_queries_for_10_or_300_matches(staff_client, customers) -> None:
    def queries(q: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(URL, {"q": q}).status_code == 200
        return len(captured)

    Customer.objects.bulk_create([Customer(name=f"Few {i}") for i in range(10)])
    few = queries("Few")
    many = Customer.objects.bulk_create([Customer(name=f"Many {i}") for i in range(300)])
    Contact.objects.bulk_create([Contact(customer=c, name=f"Contact {c.pk}", email=f"c{c.pk}@x.example") for c in many])
    assert queries("Many") == few


def test_it_opens_the_form_for_the_chosen_customer(staff_client, customers, contact, installation) -> None:
    customer = customers[0]
    response = staff_client.get(URL, {"customer": customer.pk, "title": "Boiler"})
    html = response.content.decode()
    assert 'id="customer-q"' not in html
    assert "Dupont household" in html
    assert f'type="hidden" name="customer" value="{customer.pk}"' in html
    assert "Marie Dupont" in html  # the customer's contacts are offered
    assert response.context["form"]["title"].value() == "Boiler"
    assert "Choose another customer" in html


def test_it_creates_the_job_for_the_chosen_customer(staff_client, customers, bob, installation) -> None:
    customer = customers[2]
    data = {
        "customer": customer.pk,
        "pipeline": installation.pk,
        "owner": bob.pk,
        "title": "Boiler",
        "start_date": "",
        "notify_customer": "on",
    }
    response = staff_client.post(URL, data)
    job = Job.objects.get()
    assert response.status_code == 302
    assert (job.customer, job.title) == (customer, "Boiler")


@pytest.mark.parametrize("value", ["", "abc", "999999"])
def test_it_asks_to_find_the_customer_when_none_was_chosen(staff_client, customers, bob, installation, value) -> None:
    data = {"customer": value, "pipeline": installation.pk, "owner": bob.pk, "title": "Boiler"}
    response = staff_client.post(URL, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="customer-q"' in html
    assert ("Find the customer first." if not value else "Select a valid choice.") in html
    assert not Job.objects.exists()


def test_it_keeps_the_select_while_customers_are_few(staff_client, customer, monkeypatch) -> None:
    monkeypatch.setattr(customer_views, "CUSTOMER_SELECT_MAX", 200)
    Pipeline.objects.create(name="Repair")
    html = staff_client.get(URL).content.decode()
    assert 'name="customer"' in html and "<select" in html
    assert 'id="customer-q"' not in html


def test_it_speaks_french_to_a_french_browser(staff_client, customers) -> None:
    html = staff_client.get(URL, {"q": "household"}, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Trouver le client\u00a0: nom, nom de contact, e-mail ou téléphone" in html
    assert "2 clients correspondent à « household »." in html
