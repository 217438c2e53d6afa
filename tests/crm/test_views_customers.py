"""Customer pages: list, detail, customer and contact forms, a new job from a pipeline."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from crm.models import Contact, Customer, Job, JobEvent, Message, Milestone, Pipeline
from crm.services.jobs import job_cancel, job_create
from tests.conftest import make_pipeline

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def job_url(job: Job) -> str:
    try:
        return reverse("crm:job", args=[job.public_id])
    except NoReverseMatch:  # the job page is built elsewhere
        return f"/jobs/{job.public_id}/"


def contact_data(**changes) -> dict[str, str]:
    data = {
        "name": "Jean Martin",
        "email": "jean@example.com",
        "phone": "",
        "language": "fr",
        "preferred_channel": "email",
        "time_zone": "Europe/Paris",
        "sms_consent_source": "",
    }
    return {**data, **changes}


def counts() -> tuple[int, ...]:
    return (
        Customer.objects.count(),
        Contact.objects.count(),
        Job.objects.count(),
        Milestone.objects.count(),
        JobEvent.objects.count(),
    )


@pytest.fixture
def staff_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def other_contact(other_customer: Customer) -> Contact:
    return Contact.objects.create(customer=other_customer, name="Wile Coyote", email="wile@acme.example")


@pytest.fixture
def urls(customer, contact) -> list[str]:
    return [
        reverse("crm:customers"),
        reverse("crm:customer_new"),
        reverse("crm:customer", args=[customer.pk]),
        reverse("crm:customer_edit", args=[customer.pk]),
        reverse("crm:contact_new", args=[customer.pk]),
        reverse("crm:contact_edit", args=[contact.pk]),
        reverse("crm:job_new") + f"?customer={customer.pk}",
    ]


# --- Who may come in ----------------------------------------------------------------------------


def assert_login_redirect(response, path: str) -> None:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    assert parse_qs(location.query)["next"] == [path]


def test_it_sends_anonymous_visitors_to_sign_in(client, urls):
    for url in urls:
        assert_login_redirect(client.get(url), url)
        assert_login_redirect(client.post(url, {"name": "X"}), url)
    assert Customer.objects.count() == 1


def test_it_refuses_users_who_are_not_staff(client, dana, urls):
    client.force_login(dana)
    for url in urls:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "X"}).status_code == 403, url
    assert Customer.objects.count() == 1


def test_it_gives_a_portal_session_nothing(client, contact, urls):
    session = client.session
    session["portal_contact_id"] = contact.pk
    session.save()
    for url in urls:
        assert_login_redirect(client.get(url), url)
        assert_login_redirect(client.post(url, {"name": "X"}), url)
    assert Customer.objects.count() == 1


def test_it_changes_nothing_on_get(staff_client, urls, job, installation, customer):
    before = counts()
    for url in urls:
        assert staff_client.get(url).status_code == 200, url
    # A new-job form reloaded with everything filled in still creates nothing.
    staff_client.get(
        reverse("crm:job_new"),
        {"customer": customer.pk, "pipeline": installation.pk, "title": "Boiler", "start_date": "2026-03-02"},
    )
    assert counts() == before


def test_it_refuses_other_methods(staff_client, customer):
    assert staff_client.put(reverse("crm:customer_edit", args=[customer.pk])).status_code == 405
    assert staff_client.post(reverse("crm:customers")).status_code == 405
    assert staff_client.post(reverse("crm:customer", args=[customer.pk])).status_code == 405


def test_it_answers_404_for_unknown_rows(staff_client):
    for name in ("crm:customer", "crm:customer_edit", "crm:contact_new", "crm:contact_edit"):
        assert staff_client.get(reverse(name, args=[999999])).status_code == 404


# --- List ---------------------------------------------------------------------------------------


def make_customers(count: int, *, pipeline: Pipeline, owner) -> None:
    """Customers with two contacts each, one open job and one cancelled job."""
    for number in range(count):
        customer = Customer.objects.create(name=f"Customer {number:03d}")
        Contact.objects.bulk_create(
            [
                Contact(customer=customer, name=f"First {number}", email=f"first{number}@example.com"),
                Contact(customer=customer, name=f"Second {number}", phone="+33600000000", preferred_channel="phone"),
            ]
        )
        job_create(customer=customer, pipeline=pipeline, owner=owner, title="Open", actor=owner)
        closed = job_create(customer=customer, pipeline=pipeline, owner=owner, title="Closed", actor=owner)
        job_cancel(job=closed, actor=owner, reason="Changed their mind")


def test_it_lists_customers_with_their_counts(staff_client, installation, bob, customer, contact):
    make_customers(2, pipeline=installation, owner=bob)
    response = staff_client.get(reverse("crm:customers"))
    assert response.status_code == 200
    assert response.context["nav"] == "customers"
    rows = {c.name: (c.contact_count, c.open_job_count) for c in response.context["customers"]}
    assert rows == {"Customer 000": (2, 1), "Customer 001": (2, 1), "Dupont household": (1, 0)}
    assert b"Marie Dupont" in response.content
    assert reverse("crm:customer", args=[customer.pk]).encode() in response.content


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("dupont", {"Dupont household"}),  # customer name
        ("coyote", {"Acme Telecom"}),  # contact name
        ("MARIE@example", {"Dupont household"}),  # contact email, any case
        ("nothing like it", set()),
    ],
)
def test_it_searches_customers(staff_client, contact, other_contact, search, expected):
    response = staff_client.get(reverse("crm:customers"), {"q": search})
    assert {c.name for c in response.context["customers"]} == expected
    if not expected:
        assert b"No customer matches" in response.content


def test_it_lists_a_customer_once_when_several_contacts_match(staff_client, customer, contact):
    Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    response = staff_client.get(reverse("crm:customers"), {"q": "dupont"})
    assert [c.name for c in response.context["customers"]] == ["Dupont household"]
    assert response.context["customers"][0].contact_count == 2


def test_it_paginates_by_fifty(staff_client, db):
    Customer.objects.bulk_create([Customer(name=f"Customer {n:03d}") for n in range(51)])
    first = staff_client.get(reverse("crm:customers"))
    assert len(first.context["customers"]) == 50
    assert b"page=2" in first.content
    second = staff_client.get(reverse("crm:customers"), {"page": 2})
    assert [c.name for c in second.context["customers"]] == ["Customer 050"]
    # A page number out of range or not a number shows a page, not an error.
    assert staff_client.get(reverse("crm:customers"), {"page": 99}).status_code == 200
    assert staff_client.get(reverse("crm:customers"), {"page": "x"}).status_code == 200


def test_it_keeps_the_search_across_pages(staff_client, db):
    Customer.objects.bulk_create([Customer(name=f"Smith {n:03d}") for n in range(51)])
    response = staff_client.get(reverse("crm:customers"), {"q": "smith"})
    assert b"q=smith&amp;page=2" in response.content


def _queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params or {}).status_code == 200
    return len(captured)


def test_it_lists_customers_in_a_constant_number_of_queries(
    staff_client, installation, bob, django_assert_max_num_queries
):
    url = reverse("crm:customers")
    make_customers(5, pipeline=installation, owner=bob)
    few = _queries(staff_client, url)
    make_customers(45, pipeline=installation, owner=bob)
    many = _queries(staff_client, url)
    assert few == many
    assert _queries(staff_client, url, {"q": "first"}) == many
    # Session, user, count, page, contacts of the page, and the navigation's counts.
    with django_assert_max_num_queries(12):
        staff_client.get(url)


# --- Detail -------------------------------------------------------------------------------------


def test_it_shows_a_customer_with_contacts_and_jobs(staff_client, customer, contact, job, bob):
    Contact.objects.filter(pk=contact.pk).update(
        email_bounced_at=timezone.now(), email_bounce_reason="Mailbox full", opted_out_at=timezone.now()
    )
    Contact.objects.create(
        customer=customer,
        name="Paul Dupont",
        phone="+33612345678",
        preferred_channel="sms",
        sms_consent_at=NOON,
        sms_consent_source="signed order form",
    )
    response = staff_client.get(reverse("crm:customer", args=[customer.pk]))
    assert response.status_code == 200
    assert response.context["nav"] == "customers"
    html = response.content.decode()
    assert "Marie Dupont" in html
    assert "Bounced" in html and "Mailbox full" in html
    assert "Opted out" in html
    assert "French" in html and "SMS" in html
    assert "signed order form" in html
    assert reverse("crm:contact_edit", args=[contact.pk]) in html
    assert job.reference in html
    assert job_url(job) in html
    assert "Request received" in html  # the job's stage
    assert "Bob Durand" in html
    assert f"{reverse('crm:job_new')}?customer={customer.pk}" in html


def test_it_shows_only_the_customers_own_contacts_and_jobs(staff_client, customer, other_contact, job):
    response = staff_client.get(reverse("crm:customer", args=[other_contact.customer_id]))
    html = response.content.decode()
    assert "Wile Coyote" in html
    assert "Marie Dupont" not in html
    assert job.reference not in html


def test_it_shows_a_customer_in_a_constant_number_of_queries(
    staff_client, customer, installation, repair, bob, django_assert_max_num_queries
):
    url = reverse("crm:customer", args=[customer.pk])

    def add(count: int) -> None:
        for n in range(count):
            Contact.objects.create(customer=customer, name=f"Contact {n}", email=f"c{n}@example.com")
            job_create(customer=customer, pipeline=repair, owner=bob, title=f"Job {n}", actor=bob)

    add(2)
    few = _queries(staff_client, url)
    add(18)
    assert _queries(staff_client, url) == few
    # Session, user, customer, contacts, jobs with stage, pipeline and owner, the navigation's
    # counts, the pipelines a request about no job yet may open a job in, and 1 INSERT in the
    # access log.
    with django_assert_max_num_queries(12):
        staff_client.get(url)


# --- Customer forms -----------------------------------------------------------------------------


def test_it_creates_a_customer(staff_client):
    response = staff_client.post(
        reverse("crm:customer_new"), {"name": "Martin SARL", "kind": "company", "address": "", "notes": ""}
    )
    customer = Customer.objects.get(name="Martin SARL")
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:customer", args=[customer.pk])
    assert customer.kind == "company"
    followed = staff_client.get(response["Location"])
    assert "Customer Martin SARL created." in followed.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "kind": "household"}, "This field is required."),
        ({"name": "X", "kind": "alien"}, "Select a valid choice."),
        ({}, "This field is required."),
    ],
)
def test_it_refuses_a_bad_customer(staff_client, db, data, message):
    response = staff_client.post(reverse("crm:customer_new"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Customer.objects.exists()


def test_it_edits_a_customer(staff_client, customer):
    url = reverse("crm:customer_edit", args=[customer.pk])
    form = staff_client.get(url)
    assert "Dupont household" in form.content.decode()
    response = staff_client.post(url, {"name": "Dupont family", "kind": "household", "notes": "Dog in the garden"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Dupont family"
    assert customer.notes == "Dog in the garden"


def test_it_refuses_a_bad_customer_edit(staff_client, customer):
    response = staff_client.post(reverse("crm:customer_edit", args=[customer.pk]), {"name": " ", "kind": "household"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    # The page still names the customer as saved.
    assert response.context["customer"].name == "Dupont household"
    customer.refresh_from_db()
    assert customer.name == "Dupont household"


# --- Contact forms ------------------------------------------------------------------------------


def test_it_adds_a_contact(staff_client, customer):
    url = reverse("crm:contact_new", args=[customer.pk])
    response = staff_client.post(url, contact_data(time_zone="America/Montreal"))
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:customer", args=[customer.pk])
    contact = Contact.objects.get(name="Jean Martin")
    assert contact.customer == customer
    assert (contact.email, contact.language, contact.time_zone) == ("jean@example.com", "fr", "America/Montreal")
    assert contact.sms_consent_at is None


def test_it_records_sms_consent_with_time_and_source(staff_client, customer):
    with time_machine.travel(NOON, tick=False):
        response = staff_client.post(
            reverse("crm:contact_new", args=[customer.pk]),
            contact_data(
                phone="+33612345678",
                preferred_channel="sms",
                sms_consent="on",
                sms_consent_source="signed order form",
            ),
        )
    assert response.status_code == 302
    contact = Contact.objects.get(name="Jean Martin")
    assert contact.preferred_channel == "sms"
    assert contact.sms_consent_at == NOON
    assert contact.sms_consent_source == "signed order form"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        (
            {"phone": "+33612345678", "preferred_channel": "sms"},
            "preferred_channel",
            "SMS can only be the preferred channel once the contact has consented to SMS.",
        ),
        (
            {"phone": "+33612345678", "sms_consent": "on", "sms_consent_source": " "},
            "sms_consent_source",
            "Say how the contact gave their consent to SMS.",
        ),
        (
            {"sms_consent": "on", "sms_consent_source": "phone call"},
            "phone",
            "SMS consent needs a mobile phone number.",
        ),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Mars/Olympus is not a known time zone."),
        (
            {"email": "", "phone": "+33612345678", "preferred_channel": "email"},
            "email",
            "Email is the preferred channel, so an address is needed.",
        ),
        ({"preferred_channel": "phone"}, "phone", "This preferred channel needs a phone number."),
        ({"name": ""}, "name", "This field is required."),
        ({"language": "xx"}, "language", "Select a valid choice."),
    ],
)
def test_it_refuses_bad_contact_details(staff_client, customer, changes, field, message):
    response = staff_client.post(reverse("crm:contact_new", args=[customer.pk]), contact_data(**changes))
    assert response.status_code == 200
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Contact.objects.exists()


INVALID = (
    "Enter a valid phone number, e.g. 06 12 34 56 78 or +33 6 12 34 56 78. "
    "A number without a country code is read as a number in France."
)


@pytest.mark.parametrize("phone", ["call me maybe", "12345", "+33 6 12 34 56 78 ext 2", "+999 1234"])
def test_it_refuses_a_phone_that_is_not_a_number(staff_client, customer, phone):
    response = staff_client.post(
        reverse("crm:contact_new", args=[customer.pk]),
        contact_data(phone=phone, preferred_channel="sms", sms_consent="on", sms_consent_source="phone call"),
    )
    assert response.status_code == 200
    [error] = response.context["form"].errors["phone"]
    assert error == INVALID
    assert INVALID in response.content.decode()
    assert not Contact.objects.exists()


def test_it_refuses_a_phone_that_is_not_a_number_on_edit(staff_client, contact):
    response = staff_client.post(reverse("crm:contact_edit", args=[contact.pk]), contact_data(phone="call me maybe"))
    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [INVALID]
    contact.refresh_from_db()
    assert contact.phone == ""


@pytest.mark.parametrize(
    ("typed", "stored", "shown"),
    [
        ("06 12 34 56 78", "+33612345678", "06 12 34 56 78"),
        ("+1 (514) 555-0199", "+15145550199", "+1 514-555-0199"),
    ],
)
def test_it_stores_a_phone_in_e164_and_shows_it_as_read(staff_client, customer, typed, stored, shown):
    staff_client.post(reverse("crm:contact_new", args=[customer.pk]), contact_data(phone=typed))
    contact = Contact.objects.get(name="Jean Martin")
    assert contact.phone == stored
    page = staff_client.get(reverse("crm:contact_edit", args=[contact.pk])).content.decode()
    assert f'value="{shown}"' in page  # edited as people read it, saved back to the same number
    assert f"<td>{shown}</td>" in staff_client.get(reverse("crm:customer", args=[customer.pk])).content.decode()


def test_it_refuses_texts_to_a_landline(staff_client, customer):
    response = staff_client.post(
        reverse("crm:contact_new", args=[customer.pk]),
        contact_data(phone="01 42 68 53 00", sms_consent="on", sms_consent_source="phone call"),
    )
    assert response.status_code == 200
    assert response.context["form"].errors["phone"] == [
        "01 42 68 53 00 cannot receive text messages: it is not a mobile number."
    ]
    assert not Contact.objects.exists()


def test_it_refuses_a_contact_with_neither_email_nor_phone(staff_client, customer):
    response = staff_client.post(reverse("crm:contact_new", args=[customer.pk]), contact_data(email=""))
    assert response.status_code == 200
    assert "an address is needed" in response.content.decode()
    assert not Contact.objects.exists()


def test_it_edits_a_contact(staff_client, contact):
    url = reverse("crm:contact_edit", args=[contact.pk])
    page = staff_client.get(url)
    assert "marie@example.com" in page.content.decode()
    response = staff_client.post(url, contact_data(name="Marie D.", email="marie@example.com", language="en"))
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:customer", args=[contact.customer_id])
    contact.refresh_from_db()
    assert (contact.name, contact.language) == ("Marie D.", "en")


def test_it_clears_the_bounce_when_the_address_changes(staff_client, contact):
    Contact.objects.filter(pk=contact.pk).update(email_bounced_at=timezone.now(), email_bounce_reason="Unknown user")
    url = reverse("crm:contact_edit", args=[contact.pk])
    assert "bounced" in staff_client.get(url).content.decode()
    staff_client.post(url, contact_data(name="Marie Dupont", email="marie.dupont@example.com"))
    contact.refresh_from_db()
    assert contact.email == "marie.dupont@example.com"
    assert contact.email_bounced_at is None
    assert contact.email_bounce_reason == ""


def test_it_records_consent_given_later(staff_client, contact):
    with time_machine.travel(NOON, tick=False):
        staff_client.post(
            reverse("crm:contact_edit", args=[contact.pk]),
            contact_data(
                name="Marie Dupont",
                email="marie@example.com",
                phone="+33612345678",
                sms_consent="on",
                sms_consent_source="phone call",
            ),
        )
    contact.refresh_from_db()
    assert contact.sms_consent_at == NOON
    assert contact.sms_consent_source == "phone call"


@pytest.fixture
def texter(customer: Customer) -> Contact:
    return Contact.objects.create(
        customer=customer,
        name="Paul Dupont",
        email="paul@example.com",
        phone="+33612345678",
        preferred_channel="sms",
        sms_consent_at=NOON,
        sms_consent_source="signed order form",
    )


def texter_data(**changes) -> dict[str, str]:
    return contact_data(
        name="Paul Dupont", email="paul@example.com", phone="+33612345678", preferred_channel="sms", **changes
    )


def test_it_keeps_the_recorded_consent_source(staff_client, texter):
    url = reverse("crm:contact_edit", args=[texter.pk])
    page = staff_client.get(url).content.decode()
    assert "signed order form" in page
    response = staff_client.post(url, texter_data(sms_consent="on", sms_consent_source="made up later"))
    assert response.status_code == 302
    texter.refresh_from_db()
    assert texter.sms_consent_at == NOON
    assert texter.sms_consent_source == "signed order form"


def test_it_falls_back_to_email_when_consent_is_withdrawn(staff_client, texter):
    response = staff_client.post(reverse("crm:contact_edit", args=[texter.pk]), texter_data(), follow=True)
    texter.refresh_from_db()
    assert texter.sms_consent_at is None
    assert texter.sms_consent_source == ""
    assert texter.preferred_channel == "email"
    assert "SMS consent withdrawn: Paul Dupont now hears from us by email." in response.content.decode()


def test_it_refuses_sms_for_a_contact_who_preferred_email(staff_client, contact):
    response = staff_client.post(
        reverse("crm:contact_edit", args=[contact.pk]),
        contact_data(name="Marie Dupont", email="marie@example.com", phone="+33612345678", preferred_channel="sms"),
    )
    assert response.status_code == 200
    assert "preferred_channel" in response.context["form"].errors
    contact.refresh_from_db()
    assert contact.preferred_channel == "email"


def test_it_shows_the_saved_name_after_a_bad_edit(staff_client, contact):
    response = staff_client.post(reverse("crm:contact_edit", args=[contact.pk]), contact_data(email="nope"))
    assert response.status_code == 200
    assert response.context["contact"].email == "marie@example.com"
    contact.refresh_from_db()
    assert contact.email == "marie@example.com"


# --- New job ------------------------------------------------------------------------------------


def job_data(for_customer: Customer, on_pipeline: Pipeline, owned_by, **changes) -> dict:
    data = {
        "customer": for_customer.pk,
        "pipeline": on_pipeline.pk,
        "owner": owned_by.pk,
        "title": "Heat pump",
        "start_date": "2026-03-02",
        # Ticked by default: the customer is welcomed.
        "notify_customer": "on",
    }
    return {**data, **changes}


def test_creating_a_job_welcomes_each_contact_once(staff_client, bob, customer, contact, installation):
    Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com", language="en")
    staff_client.post(reverse("crm:job_new"), job_data(customer, installation, bob))
    job = Job.objects.get()
    welcomes = Message.objects.filter(job=job, kind=Message.Kind.WELCOME)
    assert sorted(welcomes.values_list("to_address", flat=True)) == ["marie@example.com", "paul@example.com"]
    paul = welcomes.get(to_address="paul@example.com")
    assert paul.subject == f"Thank you for your order: Heat pump — your job {job.reference}"
    assert "- Proposal sent: Thursday 5 March 2026" in paul.body_text
    assert "/portal/enter/" in paul.body_text
    assert job.events.get().data["welcomed"] == 2


def test_a_job_created_without_a_welcome_needs_a_reason(staff_client, bob, customer, contact, installation):
    data = job_data(customer, installation, bob)
    del data["notify_customer"]
    response = staff_client.post(reverse("crm:job_new"), data)
    assert response.status_code == 200
    assert "Say why the customer is not welcomed" in response.content.decode()
    assert not Job.objects.exists()

    staff_client.post(reverse("crm:job_new"), {**data, "not_told_reason": "Told in person at the showroom"})
    job = Job.objects.get()
    assert not Message.objects.filter(job=job).exists()
    assert job.events.get().data["not_told_reason"] == "Told in person at the showroom"


def test_the_welcome_preview_is_what_will_be_sent_and_keeps_nothing(staff_client, bob, customer, contact, installation):
    url = reverse("crm:job_new_preview")
    response = staff_client.get(url, job_data(customer, installation, bob), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Marie Dupont" in html and "marie@example.com" in html
    assert "J-2026-0001" in html
    assert not Job.objects.exists() and not Message.objects.exists()
    # The preview used no reference: the job created next is the first.
    staff_client.post(reverse("crm:job_new"), job_data(customer, installation, bob))
    assert Job.objects.get().reference == "J-2026-0001"


def test_it_offers_a_new_job_for_a_customer(staff_client, bob, customer, contact, other_contact, installation):
    Pipeline.objects.create(name="Retired", is_active=False)
    response = staff_client.get(reverse("crm:job_new"), {"customer": customer.pk})
    assert response.status_code == 200
    form = response.context["form"]
    assert str(form["customer"].value()) == str(customer.pk)
    assert str(form["owner"].value()) == str(bob.pk)
    assert form["contacts"].value() == [contact.pk]
    html = response.content.decode()
    assert "Marie Dupont" in html
    assert "Wile Coyote" not in html  # another customer's contact is not offered
    assert "Retired" not in html
    assert "Dana" not in html and ">dana<" not in html  # not staff, cannot own a job


def test_it_ignores_a_customer_parameter_that_is_not_one(staff_client, contact):
    for value in ("abc", "999999", ""):
        response = staff_client.get(reverse("crm:job_new"), {"customer": value})
        assert response.status_code == 200
        assert "Marie Dupont" not in response.content.decode()


def test_it_carries_typed_values_when_the_form_reloads(staff_client, customer, installation):
    response = staff_client.get(
        reverse("crm:job_new"), {"customer": customer.pk, "title": "Boiler", "pipeline": installation.pk}
    )
    form = response.context["form"]
    assert form["title"].value() == "Boiler"
    assert str(form["pipeline"].value()) == str(installation.pk)


def test_it_creates_a_job(staff_client, bob, alice, customer, contact, installation):
    Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    response = staff_client.post(reverse("crm:job_new"), job_data(customer, installation, alice))
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == job_url(job)
    assert job.owner == alice
    assert job.title == "Heat pump"
    assert job.current_stage.position == 1
    assert set(job.contacts.values_list("name", flat=True)) == {"Marie Dupont", "Paul Dupont"}  # default: all
    milestones = list(job.milestones.order_by("stage__position"))
    assert len(milestones) == installation.stages.count()
    assert milestones[0].planned_date == date(2026, 3, 2)
    assert milestones[1].planned_date == date(2026, 3, 5)  # three business days later
    event = job.events.get()
    assert event.kind == JobEvent.Kind.CREATED
    assert event.actor == bob
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == [f"Job {job.reference} created."]


def test_it_creates_a_job_for_the_chosen_contacts(staff_client, bob, customer, contact, installation):
    paul = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    staff_client.post(reverse("crm:job_new"), job_data(customer, installation, bob, contacts=[paul.pk]))
    assert list(Job.objects.get().contacts.all()) == [paul]


def test_it_starts_a_job_today_without_a_start_date(staff_client, bob, customer, contact, installation):
    with time_machine.travel(NOON, tick=False):
        staff_client.post(reverse("crm:job_new"), job_data(customer, installation, bob, start_date=""))
    first = Job.objects.get().milestones.order_by("stage__position")[0]
    assert first.planned_date == date(2026, 3, 2)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": ""}, "title", "This field is required."),
        ({"customer": ""}, "customer", "This field is required."),
        ({"customer": "999999"}, "customer", "Select a valid choice."),
        ({"pipeline": ""}, "pipeline", "This field is required."),
        ({"start_date": "someday"}, "start_date", "Enter a valid date."),
    ],
)
def test_it_refuses_a_bad_job(staff_client, bob, customer, contact, installation, changes, field, message):
    response = staff_client.post(reverse("crm:job_new"), job_data(customer, installation, bob, **changes))
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert not Job.objects.exists()


def test_it_refuses_a_contact_of_another_customer(staff_client, bob, customer, contact, other_contact, installation):
    response = staff_client.post(
        reverse("crm:job_new"), job_data(customer, installation, bob, contacts=[contact.pk, other_contact.pk])
    )
    assert response.status_code == 200
    assert response.context["form"].errors["contacts"] == ["Wile Coyote is not a contact of Dupont household."]
    assert "Wile Coyote is not a contact of Dupont household." in response.content.decode()
    assert not Job.objects.exists()


def test_it_refuses_a_pipeline_no_longer_in_use(staff_client, bob, customer, contact, installation):
    installation.is_active = False
    installation.save()
    response = staff_client.post(reverse("crm:job_new"), job_data(customer, installation, bob))
    assert "pipeline" in response.context["form"].errors
    assert not Job.objects.exists()


def test_it_refuses_an_owner_who_is_not_staff(staff_client, bob, dana, customer, contact, installation):
    response = staff_client.post(reverse("crm:job_new"), job_data(customer, installation, dana))
    assert "owner" in response.context["form"].errors
    assert not Job.objects.exists()


def test_it_shows_the_services_refusal_on_the_form(staff_client, bob, customer, contact):
    empty = make_pipeline("Empty", [])
    response = staff_client.post(reverse("crm:job_new"), job_data(customer, empty, bob))
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["The Empty pipeline has no stages yet."]
    assert "The Empty pipeline has no stages yet." in response.content.decode()
    assert not Job.objects.exists()


def test_it_shows_a_services_refusal_above_the_form(staff_client, customer, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError({"customer": "This customer was merged into another.", "name": "Name taken."})

    monkeypatch.setattr("crm.views.customers.contact_create", refuse)
    response = staff_client.post(reverse("crm:contact_new", args=[customer.pk]), contact_data())
    assert response.status_code == 200
    form = response.context["form"]
    assert form.non_field_errors() == ["This customer was merged into another."]
    assert form.errors["name"] == ["Name taken."]
    assert "This customer was merged into another." in response.content.decode()
