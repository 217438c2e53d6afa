"""portal.views.job_status: the live fragment the open job page polls. Unchanged: 304 after one
query. Changed by staff: the new status at the next poll."""

from __future__ import annotations

from datetime import date

from django.test import Client
from django.urls import reverse

from crm.models import Contact, Job
from crm.services.jobs import milestone_move

from .conftest import advance, sign_in


def status_url(job: Job) -> str:
    return reverse("portal:job_status", args=[job.public_id])


def test_it_renders_the_status_and_timeline_alone(john_client: Client, job: Job) -> None:
    response = john_client.get(status_url(job), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Where things stand" in response.text
    assert "Timeline" in response.text
    assert "<html" not in response.text
    assert response["ETag"]
    # Kept by the browser but always asked again, so it can send If-None-Match.
    assert response["Cache-Control"] == "private, no-cache"


def test_it_answers_an_unchanged_poll_with_304_and_one_query(
    john_client: Client, job: Job, django_assert_max_num_queries
) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    with django_assert_max_num_queries(1):
        response = john_client.get(status_url(job), headers={"If-None-Match": etag, "HX-Request": "true"})
    assert response.status_code == 304
    assert response["ETag"] == etag
    assert response.content == b""


def test_it_gives_the_page_and_the_poll_the_same_version(john_client: Client, job: Job) -> None:
    page = john_client.get(reverse("portal:job", args=[job.public_id])).text
    etag = john_client.get(status_url(job))["ETag"]
    assert f'data-live-etag="{etag.replace(chr(34), "&quot;")}"' in page


def test_it_shows_a_staff_change_at_the_next_poll(john_client: Client, job: Job, time_machine) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    time_machine.shift(60)
    advance(job, "Installation scheduled")
    response = john_client.get(status_url(job), headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert '<p class="status-headline">Installation scheduled</p>' in response.text


def test_it_shows_a_moved_date_at_the_next_poll(john_client: Client, job: Job, time_machine) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    time_machine.shift(60)
    milestone = job.milestones.get(stage__name="Installed")
    milestone_move(milestone=milestone, new_date=date(2026, 4, 2), reason="Parts", actor=job.owner, tell_customer=True)
    response = john_client.get(status_url(job), headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert "Was 30 March, now 2 April — we told you on 2 March." in response.text


def test_it_gives_another_language_another_version(client: Client, john: Contact, job: Job) -> None:
    sign_in(client, john)
    english = client.get(status_url(job))["ETag"]
    client.post(reverse("portal:language"), {"language": "fr"})
    response = client.get(status_url(job), headers={"If-None-Match": english})
    assert response.status_code == 200
    assert response["ETag"] != english
    assert "lundi 2 mars" in response.text


def test_it_is_404_for_another_customers_job(john_client: Client, stranger_job: Job) -> None:
    assert john_client.get(status_url(stranger_job)).status_code == 404


def test_it_is_404_with_another_customers_etag_too(
    john_client: Client, client: Client, stranger: Contact, stranger_job: Job
) -> None:
    other = Client()
    sign_in(other, stranger)
    etag = other.get(status_url(stranger_job))["ETag"]
    assert john_client.get(status_url(stranger_job), headers={"If-None-Match": etag}).status_code == 404


def test_it_sends_an_anonymous_poll_to_the_new_link_page(client: Client, job: Job) -> None:
    response = client.get(status_url(job), headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == f"{reverse('portal:signed_out')}?job={job.public_id}"
    response = client.get(status_url(job))
    assert response.status_code == 302


def test_it_signs_out_at_the_next_change_when_the_contact_is_gone(
    john_client: Client, job: Job, john: Contact, time_machine
) -> None:
    etag = john_client.get(status_url(job))["ETag"]
    time_machine.shift(60)
    advance(job, "Order confirmed")
    john.delete()
    response = john_client.get(status_url(job), headers={"If-None-Match": etag})
    assert response.status_code == 302
