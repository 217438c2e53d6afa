"""portal.views.ask: a question is recorded on the job and acknowledged at once with the date
the answer will come by (2 business days: asked Monday 2 March, answered by Wednesday 4 March)."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from crm.errors import DomainError
from crm.models import Contact, Job, Message, Question
from portal import views

from .conftest import advance


def ask_url(job: Job) -> str:
    return reverse("portal:ask", args=[job.public_id])


def test_it_records_the_question_and_queues_the_acknowledgement(john_client: Client, job: Job, john: Contact) -> None:
    response = john_client.post(ask_url(job), {"body": "Can the installer park in the yard?"})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:job", args=[job.public_id]) + "#question"
    question = Question.objects.get()
    assert (question.job, question.contact, question.source) == (job, john, Question.Source.PORTAL)
    assert question.body == "Can the installer park in the yard?"
    assert question.answer_due_on == date(2026, 3, 4)
    ack = Message.objects.get(kind=Message.Kind.ACKNOWLEDGEMENT)
    assert (ack.contact, ack.job, ack.status, ack.channel) == (john, job, Message.Status.QUEUED, "email")
    assert "Wednesday 4 March 2026" in ack.body_text


def test_it_shows_the_acknowledgement_with_its_date_after_the_redirect(john_client: Client, job: Job) -> None:
    page = john_client.post(ask_url(job), {"body": "Parking?"}, follow=True).text
    assert "Thank you: we have your question. You will have our answer by Wednesday 4 March at the latest." in page
    assert "Answer promised by Wednesday 4 March." in page


def test_it_answers_htmx_in_place(john_client: Client, job: Job) -> None:
    response = john_client.post(ask_url(job), {"body": "Parking?"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert '<section id="question"' in response.text
    assert "<html" not in response.text
    assert "You will have our answer by <strong>Wednesday 4 March</strong> at the latest." in response.text
    # A fresh, empty form for the next question.
    assert "Parking?" not in response.text


def test_it_refuses_an_empty_question(john_client: Client, job: Job) -> None:
    response = john_client.post(ask_url(job), {"body": "   "})
    assert response.status_code == 200
    assert "Write your question first." in response.text
    assert 'aria-invalid="true"' in response.text
    assert not Question.objects.exists()


def test_it_refuses_an_empty_question_in_place(john_client: Client, job: Job) -> None:
    response = john_client.post(ask_url(job), {"body": ""}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Write your question first." in response.text
    assert not Question.objects.exists()


def test_it_shows_a_refusal_of_the_service_as_a_form_error(
    john_client: Client, job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: object) -> Question:
        raise DomainError("We cannot take questions on this job right now.")

    monkeypatch.setattr(views, "question_create", refuse)
    response = john_client.post(ask_url(job), {"body": "Hello?"})
    assert response.status_code == 200
    assert "We cannot take questions on this job right now." in response.text


def test_it_refuses_a_very_long_question(john_client: Client, job: Job) -> None:
    response = john_client.post(ask_url(job), {"body": "x" * 5001})
    assert "Please keep your question under 5000 characters." in response.text
    assert not Question.objects.exists()


def test_it_keeps_the_question_typed_when_it_is_refused(john_client: Client, job: Job, monkeypatch) -> None:
    monkeypatch.setattr(views, "QUESTIONS_PER_CONTACT", (0, 3600))
    response = john_client.post(ask_url(job), {"body": "My carefully typed question"})
    assert "You have sent us many questions in a short time" in response.text
    assert "My carefully typed question" in response.text
    assert not Question.objects.exists()


def test_it_takes_questions_on_a_finished_job(john_client: Client, job: Job) -> None:
    from crm.services.jobs import job_complete

    advance(job, "Follow-up")
    job_complete(job=job, actor=job.owner)
    assert john_client.post(ask_url(job), {"body": "The unit is noisy"}).status_code == 302
    assert Question.objects.filter(job=job).exists()


def test_it_is_404_for_another_customers_job(john_client: Client, stranger_job: Job) -> None:
    assert john_client.post(ask_url(stranger_job), {"body": "Hello"}).status_code == 404
    assert not Question.objects.exists()


def test_it_changes_nothing_on_get_and_goes_on_to_the_question_form(john_client: Client, job: Job) -> None:
    response = john_client.get(ask_url(job), {"body": "Hello"})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:job", args=[job.public_id]) + "#question"
    assert not Question.objects.exists()


def test_switching_language_after_a_refused_question_is_no_dead_end(john_client: Client, job: Job) -> None:
    # Without JavaScript, the refused question leaves the browser at .../questions/; the language
    # switcher sends it back to that address, which a browser then GETs.
    refused = john_client.post(ask_url(job), {"body": ""})
    assert refused.status_code == 200
    assert f'name="next" value="{ask_url(job)}"' in refused.text
    switched = john_client.post(reverse("portal:language"), {"language": "fr", "next": ask_url(job)}, follow=True)
    assert switched.status_code == 200
    assert switched.redirect_chain[-1][0] == reverse("portal:job", args=[job.public_id]) + "#question"
    assert '<html lang="fr">' in switched.text
    assert 'id="question"' in switched.text
    assert not Question.objects.exists()


def test_another_customers_job_is_404_on_get_too(john_client: Client, stranger_job: Job) -> None:
    assert john_client.get(ask_url(stranger_job)).status_code == 404


def test_it_needs_the_csrf_token(john: Contact, job: Job) -> None:
    from .conftest import sign_in

    client = sign_in(Client(enforce_csrf_checks=True), john)
    assert client.post(ask_url(job), {"body": "Hello"}).status_code == 403
    assert not Question.objects.exists()
