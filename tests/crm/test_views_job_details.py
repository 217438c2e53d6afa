"""The job page's "Edit details": title, the contacts who hear about the job, its installers
(crm.services.jobs.job_update_details)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Customer, Job, JobEvent, Pipeline
from crm.services.jobs import job_advance, job_cancel, job_create, job_update_details
from crm.text import person_name

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(time_machine):
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)


@pytest.fixture
def second_contact(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="Jean Dupont", email="jean@example.com")


@pytest.fixture
def stranger(other_customer: Customer) -> Contact:
    return Contact.objects.create(customer=other_customer, name="Sam Carter", email="sam@acme.example")


def page_url(job: Job) -> str:
    return reverse("crm:job", args=[job.public_id])


def details_url(job: Job) -> str:
    return reverse("crm:job_edit_details", args=[job.public_id])


def details(title: str = "Heat pump", contacts: list[Contact] = (), installers: list[User] = ()) -> dict:
    return {
        "details-title": title,
        "details-contacts": [c.pk for c in contacts],
        "details-installers": [u.pk for u in installers],
    }


def detail_events(job: Job) -> list[JobEvent]:
    return list(job.events.filter(kind=JobEvent.Kind.DETAILS_CHANGED))


# --- The form -----------------------------------------------------------------------------------


def test_it_shows_the_form_with_the_job_as_it_is(
    staff: Client,
    live_job: Job,
    contact: Contact,
    second_contact: Contact,
    stranger: Contact,
    charlie: User,
    dana: User,
) -> None:
    live_job.installers.set([charlie])
    response = staff.get(page_url(live_job))
    form = response.context["forms"]["details"]

    assert form.initial == {"title": "Heat pump", "contacts": [contact.pk], "installers": [charlie.pk]}
    offered_contacts = [value for value, _label in form.fields["contacts"].widget.choices]
    assert offered_contacts == [second_contact.pk, contact.pk]  # the customer's, by name
    offered_people = {choice.value for choice, _label in form.fields["installers"].choices}
    assert dana.pk not in offered_people  # not staff
    assert charlie.pk in offered_people
    body = response.content.decode()
    assert 'id="edit-details"' in body
    assert f'action="{details_url(live_job)}"' in body
    assert "Sam Carter" not in body


def test_it_shows_the_installers_on_the_page(staff: Client, live_job: Job, charlie: User, alice: User) -> None:
    live_job.installers.set([charlie, alice])
    body = staff.get(page_url(live_job)).content.decode()
    assert "Installers: charlie, Alice Martin" in body  # as the staff are listed: by first name


def test_it_links_the_no_contact_warning_to_the_form(
    staff: Client, customer: Customer, installation: Pipeline, bob: User
) -> None:
    job = job_create(customer=customer, pipeline=installation, owner=bob, title="Boiler", actor=bob, contacts=[])
    body = staff.get(page_url(job)).content.decode()
    assert "No contact on this job: nobody hears about it." in body
    assert '<a href="#edit-details">Choose who hears about it</a>' in body


# --- Saving -------------------------------------------------------------------------------------


def test_it_saves_the_title_contacts_and_installers(
    staff: Client, live_job: Job, bob: User, charlie: User, contact: Contact, second_contact: Contact
) -> None:
    response = staff.post(
        details_url(live_job), details(" Heat pump and boiler ", [contact, second_contact], [charlie])
    )

    assert response.status_code == 302
    assert response["Location"] == page_url(live_job)
    live_job.refresh_from_db()
    assert live_job.title == "Heat pump and boiler"
    assert set(live_job.contacts.all()) == {contact, second_contact}
    assert list(live_job.installers.all()) == [charlie]
    [event] = detail_events(live_job)
    assert event.actor == bob
    assert event.data == {
        "changed": {
            "title": {"old": "Heat pump", "new": "Heat pump and boiler"},
            "contacts": {
                "old": [contact.pk],
                "new": sorted([contact.pk, second_contact.pk]),
                "names": sorted([contact.name, second_contact.name]),
            },
            "installers": {"old": [], "new": [charlie.pk], "names": [person_name(charlie)]},
        }
    }
    assert "The details of" in staff.get(page_url(live_job)).content.decode()


def test_a_contact_added_later_hears_about_the_job(
    staff: Client,
    live_job: Job,
    contact: Contact,
    second_contact: Contact,
    bob: User,
    django_capture_on_commit_callbacks,
) -> None:
    staff.post(details_url(live_job), details(contacts=[contact, second_contact]))

    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=live_job, to_stage=live_job.pipeline.stages.get(position=2), actor=bob)

    assert sorted(address for message in mail.outbox for address in message.to) == [
        "jean@example.com",
        "marie@example.com",
    ]


def test_it_swaps_the_detail_block_for_htmx(staff: Client, live_job: Job, contact: Contact, charlie: User) -> None:
    response = staff.post(details_url(live_job), details("Heat pump", [contact], [charlie]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="job-detail">')
    assert "<html" not in body
    assert "The details of" in body
    assert "Installers: charlie" in body


def test_it_says_when_nothing_changed(staff: Client, live_job: Job, contact: Contact) -> None:
    response = staff.post(details_url(live_job), details("Heat pump", [contact]), follow=True)

    assert "Nothing to save: the details are as they were." in response.content.decode()
    assert detail_events(live_job) == []


def test_it_can_leave_a_job_without_contacts_and_says_so(staff: Client, live_job: Job) -> None:
    response = staff.post(details_url(live_job), details("Heat pump", []), follow=True)

    assert list(live_job.contacts.all()) == []
    assert "No contact on this job" in response.content.decode()


def test_it_edits_a_closed_job(staff: Client, live_job: Job, bob: User, contact: Contact, charlie: User) -> None:
    # Installers matter after the work too: the survey and the per-installer reports follow them.
    job_cancel(job=live_job, actor=bob, reason="Customer moved")
    assert 'id="edit-details"' in staff.get(page_url(live_job)).content.decode()

    response = staff.post(details_url(live_job), details("Heat pump", [contact], [charlie]))

    assert response.status_code == 302
    assert list(live_job.installers.all()) == [charlie]


def test_it_keeps_an_installer_who_has_left(
    staff: Client, live_job: Job, bob: User, contact: Contact, charlie: User
) -> None:
    job_update_details(job=live_job, actor=bob, installers=[charlie])
    User.objects.filter(pk=charlie.pk).update(is_active=False)

    # Still shown ticked, and kept while the title changes.
    form = staff.get(page_url(live_job)).context["forms"]["details"]
    assert charlie.pk in {choice.value for choice, _label in form.fields["installers"].choices}
    response = staff.post(details_url(live_job), details("Heat pump, phase 2", [contact], [charlie]))
    assert response.status_code == 302
    assert list(live_job.installers.all()) == [charlie]

    staff.post(details_url(live_job), details("Heat pump, phase 2", [contact], []))
    assert list(live_job.installers.all()) == []


# --- Refusals -----------------------------------------------------------------------------------


def test_it_refuses_a_contact_of_another_customer(
    staff: Client, live_job: Job, contact: Contact, stranger: Contact
) -> None:
    response = staff.post(details_url(live_job), details("Renamed", [contact, stranger]))

    assert response.status_code == 400
    assert "Sam Carter is not a contact of Dupont household." in response.content.decode()
    live_job.refresh_from_db()
    assert live_job.title == "Heat pump"
    assert list(live_job.contacts.all()) == [contact]
    assert detail_events(live_job) == []


def test_it_shows_the_refusal_in_place_for_htmx(staff: Client, live_job: Job, stranger: Contact) -> None:
    response = staff.post(details_url(live_job), details("Heat pump", [stranger]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="job-detail">')
    assert "Sam Carter is not a contact of Dupont household." in body


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"details-title": "  "}, "This field is required."),
        ({"details-installers": ["dana"]}, "is not a valid value"),
        ({"details-installers": ["99999999999999999999"]}, "is not a valid value"),
        ({"details-contacts": ["99999999999999999999999"]}, "is not a valid value"),
    ],
)
def test_it_explains_bad_details(staff: Client, live_job: Job, contact: Contact, changes: dict, error: str) -> None:
    response = staff.post(details_url(live_job), {**details("Heat pump", [contact]), **changes})

    assert response.status_code == 400
    assert error in response.content.decode()
    assert detail_events(live_job) == []


def test_it_refuses_someone_who_is_not_staff_as_installer(staff: Client, live_job: Job, dana: User) -> None:
    response = staff.post(details_url(live_job), details(installers=[dana]))

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert list(live_job.installers.all()) == []


def test_it_changes_nothing_on_get(staff: Client, live_job: Job, charlie: User) -> None:
    response = staff.get(details_url(live_job), details("Renamed", [], [charlie]))

    assert response.status_code == 405
    live_job.refresh_from_db()
    assert live_job.title == "Heat pump"
    assert detail_events(live_job) == []


def test_it_needs_the_csrf_token(bob: User, live_job: Job, contact: Contact) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)

    response = client.post(details_url(live_job), details("Renamed", [contact]))

    assert response.status_code == 403
    live_job.refresh_from_db()
    assert live_job.title == "Heat pump"


def test_it_refuses_people_who_are_not_staff(client: Client, dana: User, live_job: Job, contact: Contact) -> None:
    assert client.post(details_url(live_job), details("Renamed", [contact])).status_code == 302  # to sign in
    client.force_login(dana)
    assert client.post(details_url(live_job), details("Renamed", [contact])).status_code == 403
    live_job.refresh_from_db()
    assert live_job.title == "Heat pump"


def test_it_answers_404_for_an_unknown_job(staff: Client) -> None:
    url = reverse("crm:job_edit_details", args=["00000000-0000-0000-0000-000000000000"])
    assert staff.post(url, details()).status_code == 404
