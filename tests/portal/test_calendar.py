"""portal.views.calendar: the contact's .ics feed. Every dated customer-visible milestone of the
customer's open (and recently closed) jobs, as an all-day event whose UID survives a date move."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.links import make_calendar_token
from crm.models import Contact, Customer, Job, Pipeline, StageTemplate
from crm.services.jobs import job_cancel, job_complete, job_create, job_hold, milestone_move

from .conftest import advance


def feed(client: Client, contact: Contact) -> str:
    response = client.get(reverse("portal:calendar", args=[make_calendar_token(contact)]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return response.content.decode()


def events(ics: str) -> list[dict[str, str]]:
    unfolded = ics.replace("\r\n ", "")
    found = []
    for block in unfolded.split("BEGIN:VEVENT\r\n")[1:]:
        lines = block.split("\r\nEND:VEVENT")[0].split("\r\n")
        found.append(dict(line.split(":", 1) for line in lines))
    return found


def by_summary(ics: str) -> dict[str, dict[str, str]]:
    return {e["SUMMARY"].split(" — ")[0]: e for e in events(ics)}


def test_it_lists_the_dated_visible_milestones(client: Client, john: Contact, job: Job) -> None:
    ics = feed(client, john)
    assert ics.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert ics.endswith("END:VCALENDAR\r\n")
    found = by_summary(ics)
    assert set(found) == {"Request received", "Proposal sent", "Order confirmed", "Installation scheduled", "Installed"}
    installed = found["Installed"]
    assert installed["SUMMARY"] == f"Installed — Heat pump installation ({job.reference})"
    assert installed["DTSTART;VALUE=DATE"] == "20260330"
    assert installed["DTEND;VALUE=DATE"] == "20260331"
    assert installed["URL"] == f"http://testserver/portal/jobs/{job.public_id}/"
    assert installed["STATUS"] == "CONFIRMED"
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))


def test_it_keeps_the_uid_when_a_date_moves(client: Client, john: Contact, job: Job) -> None:
    before = by_summary(feed(client, john))["Installed"]
    milestone = job.milestones.get(stage__name="Installed")
    milestone_move(milestone=milestone, new_date=date(2026, 4, 2), reason="Parts", actor=job.owner)
    after = by_summary(feed(client, john))["Installed"]
    assert after["UID"] == before["UID"]
    assert (before["DTSTART;VALUE=DATE"], after["DTSTART;VALUE=DATE"]) == ("20260330", "20260402")
    assert len({e["UID"] for e in events(feed(client, john))}) == 5


def test_it_says_what_to_prepare(client: Client, john: Contact, job: Job) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Installed").update(
        customer_instructions="Clear access to the boiler room; someone must be home."
    )
    description = by_summary(feed(client, john))["Installed"]["DESCRIPTION"]
    assert "To prepare: Clear access to the boiler room\\; someone must be home." in description


def test_it_marks_the_dates_of_a_job_on_hold_tentative(client: Client, john: Contact, job: Job) -> None:
    job_hold(job=job, actor=job.owner, reason="Waiting")
    found = by_summary(feed(client, john))
    assert found["Installed"]["STATUS"] == "TENTATIVE"
    assert found["Request received"]["STATUS"] == "CONFIRMED"


def test_it_drops_the_future_dates_of_a_cancelled_job(client: Client, john: Contact, job: Job) -> None:
    job_cancel(job=job, actor=job.owner, reason="Customer moved")
    assert set(by_summary(feed(client, john))) == {"Request received"}


def test_it_keeps_a_finished_job_for_a_while(client: Client, john: Contact, job: Job, time_machine) -> None:
    advance(job, "Follow-up")
    job_complete(job=job, actor=job.owner)
    assert len(events(feed(client, john))) == 5
    time_machine.shift(timedelta(days=91))
    assert events(feed(client, john)) == []


def test_it_lists_only_the_contacts_customers_jobs(client: Client, john: Contact, job: Job, stranger_job: Job) -> None:
    assert "Acme cabling" not in feed(client, john)


def test_it_speaks_the_contacts_language(client: Client, contact: Contact, job: Job) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Installed").update(name_fr="Installé")
    assert "Installé" in by_summary(feed(client, contact))


def test_it_escapes_text(client: Client, customer: Customer, john: Contact, installation: Pipeline, bob: User) -> None:
    job_create(customer=customer, pipeline=installation, owner=bob, title="Pumps, pipes; and\\more", actor=bob)
    assert "Pumps\\, pipes\\; and\\\\more" in feed(client, john)


def test_it_is_404_for_a_tampered_token(client: Client, john: Contact) -> None:
    token = make_calendar_token(john)
    assert client.get(reverse("portal:calendar", args=[token[:-3] + "abc"])).status_code == 404


def test_it_is_404_for_a_deleted_contact(client: Client, john: Contact) -> None:
    url = reverse("portal:calendar", args=[make_calendar_token(john)])
    john.delete()
    assert client.get(url).status_code == 404


def test_it_needs_no_session(client: Client, john: Contact, job: Job) -> None:
    # Calendar apps fetch it without cookies: the token is the key.
    assert "BEGIN:VEVENT" in feed(Client(), john)
