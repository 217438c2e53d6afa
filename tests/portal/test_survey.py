"""The survey and check-in pages (portal.views_after): opened from a link without signing in, for
that job and contact only; GET never changes anything (a score in the link is only pre-selected);
answering again updates; an answered link, however old, shows the answer and how to change it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.links import checkin_url, make_checkin_token, make_survey_token, survey_url
from crm.models import CheckIn, Commitment, Contact, Job, JobEvent, Message, Question, Survey
from crm.services.checkins import check_in_send
from crm.services.jobs import job_complete
from crm.services.surveys import survey_answer, survey_invite

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey(job: Job, john: Contact) -> Survey:
    created = survey_invite(job=job, contact=john)
    assert created is not None
    return created


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


@pytest.fixture
def survey_path(job: Job, john: Contact, survey: Survey) -> str:
    return path_of(survey_url(job, john))


def fingerprint() -> tuple:
    """Everything a visit could change."""
    return (
        list(Survey.objects.values_list("product_quality", "recommend", "comment", "answered_at", "updated_at")),
        JobEvent.objects.count(),
        Commitment.objects.count(),
        Question.objects.count(),
        list(CheckIn.objects.values_list("answer", "answered_at")),
        Message.objects.count(),
    )


SCORES = {"product_quality": "5", "workmanship": "4", "installer_conduct": "5", "recommend": "9", "comment": "Tidy."}


# --- The survey ---------------------------------------------------------------------------------


def test_it_opens_without_signing_in(client: Client, survey_path: str, job: Job) -> None:
    response = client.get(survey_path)
    assert response.status_code == 200
    assert "How did we do?" in response.text
    assert job.title in response.text
    assert job.reference in response.text
    assert response["Cache-Control"].startswith("max-age=0")
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Language"] == "en"


def test_it_does_not_sign_anyone_in(client: Client, survey_path: str) -> None:
    client.get(survey_path)
    assert client.get(reverse("portal:home"))["Location"] == reverse("portal:signed_out")


def test_a_score_in_the_link_is_chosen_but_not_saved(client: Client, survey_path: str, survey: Survey) -> None:
    before = fingerprint()
    response = client.get(survey_path + "?product=5")
    assert response.status_code == 200
    assert fingerprint() == before
    assert response.context["form"]["product_quality"].value() == 5
    assert 'value="5" id="id_product_quality_4" checked' in response.text
    assert "It is saved when you press “Send”" in response.text


def test_a_link_scanner_changes_nothing(client: Client, survey_path: str, checkin_path: str) -> None:
    before = fingerprint()
    for url in (survey_path + "?product=1", survey_path + "?recommend=0", checkin_path + "?answer=problem"):
        assert client.head(url).status_code == 200
        assert client.get(url).status_code == 200
    assert fingerprint() == before


@pytest.mark.parametrize("query", ["?product=9", "?product=abc", "?product=", "?recommend=11", "?conduct=0"])
def test_a_bad_score_in_the_link_is_ignored(client: Client, survey_path: str, query: str) -> None:
    response = client.get(survey_path + query)
    assert response.status_code == 200
    assert "checked" not in response.text


def test_sending_saves_and_shows_the_answer(client: Client, survey_path: str, survey: Survey) -> None:
    response = client.post(survey_path, SCORES)
    assert response.status_code == 302
    assert response["Location"] == survey_path

    survey.refresh_from_db()
    assert (survey.product_quality, survey.workmanship, survey.installer_conduct, survey.recommend) == (5, 4, 5, 9)
    assert survey.comment == "Tidy."
    thanks = client.get(survey_path)
    assert "Thank you for your answer" in thanks.text
    assert "9 out of 10" in thanks.text
    assert "Tidy." in thanks.text
    assert "Change my answer" in thanks.text
    assert f'href="{survey_path}?edit=1"' in thanks.text


def test_answering_twice_updates_one_row(client: Client, survey_path: str, survey: Survey) -> None:
    client.post(survey_path, SCORES)
    edit = client.get(survey_path + "?edit=1")
    assert edit.context["form"]["recommend"].value() == 9
    assert "Sending this form replaces your answer" in edit.text
    client.post(survey_path, {**SCORES, "recommend": "10", "comment": "Even better."})

    assert Survey.objects.filter(job=survey.job, contact=survey.contact).count() == 1
    survey.refresh_from_db()
    assert (survey.recommend, survey.comment) == (10, "Even better.")


def test_a_score_link_on_an_answered_survey_opens_the_form_with_that_score(
    client: Client, survey_path: str, survey: Survey
) -> None:
    client.post(survey_path, SCORES)
    before = fingerprint()
    response = client.get(survey_path + "?product=2")
    assert fingerprint() == before
    assert response.context["form"]["product_quality"].value() == 2
    assert response.context["form"]["recommend"].value() == 9


def test_sending_nothing_says_what_is_missing(client: Client, survey_path: str, survey: Survey) -> None:
    response = client.post(survey_path, {"comment": "Hmm"})
    assert response.status_code == 400
    assert "Choose at least one score" in response.text
    assert not Survey.objects.get(pk=survey.pk).is_answered


def test_a_low_score_says_who_will_call_and_when(client: Client, survey_path: str, survey: Survey) -> None:
    client.post(survey_path, {"product_quality": "1", "comment": "Scratched casing."})
    recovery = Commitment.objects.get(kind=Commitment.Kind.RECOVERY)
    thanks = client.get(survey_path)
    assert "We are sorry it was not as it should be." in thanks.text
    assert "Bob Durand will call you by" in thanks.text
    assert recovery.due_at > timezone.now()


def test_the_promised_call_shows_among_the_customers_promises(
    client: Client, survey_path: str, survey: Survey, job: Job, john_client: Client
) -> None:
    client.post(survey_path, {"recommend": "2"})
    page = john_client.get(reverse("portal:job", args=[job.public_id]))
    assert "A call from us about your survey answer" in page.text
    assert "low survey score" not in page.text  # the staff's wording stays with the staff


def test_what_people_typed_is_escaped(client: Client, survey_path: str, survey: Survey, job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(title="<img src=x onerror=alert(1)>")
    client.post(survey_path, {"product_quality": "4", "comment": "<script>alert('hi')</script>"})
    thanks = client.get(survey_path).text
    assert "<script>alert" not in thanks
    assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt;" in thanks
    assert "<img src=x" not in thanks
    form = client.get(survey_path + "?edit=1").text
    assert "<script>alert" not in form
    assert "<img src=x" not in form


def test_an_old_link_still_opens_and_shows_the_answer(
    client: Client, survey_path: str, survey: Survey, time_machine
) -> None:
    client.post(survey_path, SCORES)
    time_machine.move_to(timezone.now() + timedelta(days=800), tick=False)
    response = Client().get(survey_path)
    assert response.status_code == 200
    assert "Thank you for your answer" in response.text
    assert "Tidy." in response.text


def test_a_survey_token_for_another_job_is_404(
    client: Client, survey: Survey, john: Contact, stranger_job: Job
) -> None:
    url = reverse("portal:survey", args=[make_survey_token(job_id=stranger_job.public_id, contact_id=john.pk)])
    before = fingerprint()
    assert client.get(url).status_code == 404
    assert client.post(url, SCORES).status_code == 404
    assert fingerprint() == before


def test_a_token_for_another_contacts_survey_is_404(client: Client, job: Job, contact: Contact, survey: Survey) -> None:
    # Marie was not invited (only John was): her token for this job names no survey.
    url = reverse("portal:survey", args=[make_survey_token(job_id=job.public_id, contact_id=contact.pk)])
    assert client.get(url).status_code == 404


def test_a_stranger_contact_with_a_real_job_is_404(client: Client, job: Job, stranger: Contact) -> None:
    Survey.objects.create(job=job, contact=stranger)  # should never exist; the link still refuses it
    url = reverse("portal:survey", args=[make_survey_token(job_id=job.public_id, contact_id=stranger.pk)])
    assert client.get(url).status_code == 404


def test_a_broken_link_says_what_to_do(client: Client, survey_path: str) -> None:
    response = client.get(survey_path[:-6] + "xx/")
    assert response.status_code == 404
    assert "We could not open this survey" in response.text


def test_a_check_in_token_does_not_open_a_survey(client: Client, job: Job, john: Contact, survey: Survey) -> None:
    token = make_checkin_token(job_id=job.public_id, contact_id=john.pk)
    assert client.get(reverse("portal:survey", args=[token])).status_code == 404


def test_it_follows_the_contacts_language(client: Client, job: Job, contact: Contact) -> None:
    survey_invite(job=job, contact=contact)
    response = client.get(path_of(survey_url(job, contact)))
    assert response["Content-Language"] == "fr"


def test_a_french_contact_reads_it_in_french(client: Client, job: Job, contact: Contact) -> None:
    survey_invite(job=job, contact=contact)
    response = client.get(path_of(survey_url(job, contact)))
    assert "Comment nous sommes-nous débrouillés ?" in response.text
    assert "Envoyer" in response.text


def test_the_survey_was_answered_by_the_service(client: Client, survey_path: str, survey: Survey) -> None:
    # The page and the service agree: the page's answer is the one the service recorded.
    survey_answer(
        survey=survey, product_quality=3, workmanship=None, installer_conduct=None, recommend=None, comment=""
    )
    assert "3 out of 5" in client.get(survey_path).text


# --- The check-in -------------------------------------------------------------------------------


@pytest.fixture
def check_in(job: Job, john: Contact, bob) -> CheckIn:
    job_complete(job=job, actor=bob)
    created = check_in_send(job=job, contact=john)
    assert created is not None
    return created


@pytest.fixture
def checkin_path(job: Job, john: Contact, check_in: CheckIn) -> str:
    return path_of(checkin_url(job, john))


def test_all_good_asks_to_confirm_then_records(client: Client, checkin_path: str, check_in: CheckIn) -> None:
    before = fingerprint()
    page = client.get(checkin_path + "?answer=all_good")
    assert page.status_code == 200
    assert fingerprint() == before
    assert "Yes, everything works" in page.text
    assert 'name="details"' not in page.text

    response = client.post(checkin_path, {"answer": "all_good"})
    assert response.status_code == 302
    check_in.refresh_from_db()
    assert check_in.answer == CheckIn.Answer.ALL_GOOD
    done = client.get(checkin_path)
    assert "glad everything works" in done.text
    assert "report a problem" in done.text


def test_a_problem_opens_an_acknowledged_question(
    client: Client, checkin_path: str, check_in: CheckIn, john: Contact
) -> None:
    before = fingerprint()
    page = client.get(checkin_path + "?answer=problem")
    assert fingerprint() == before
    assert 'name="details"' in page.text

    client.post(checkin_path, {"answer": "problem", "details": "Water under the unit."})
    question = Question.objects.get(job=check_in.job)
    assert (question.contact, question.source, question.body) == (john, Question.Source.PORTAL, "Water under the unit.")
    assert Message.objects.filter(kind=Message.Kind.ACKNOWLEDGEMENT, contact=john).exists()
    done = client.get(checkin_path)
    assert "we have your report" in done.text
    assert "at the latest" in done.text
    assert "Water under the unit." in done.text


def test_a_check_in_link_without_an_answer_offers_both(client: Client, checkin_path: str) -> None:
    page = client.get(checkin_path)
    assert "Yes, everything works" in page.text
    assert "Send: there is a problem" in page.text


def test_a_check_in_token_for_another_job_is_404(client: Client, check_in: CheckIn, john: Contact, stranger_job: Job):
    url = reverse("portal:checkin", args=[make_checkin_token(job_id=stranger_job.public_id, contact_id=john.pk)])
    assert client.get(url).status_code == 404
    assert client.post(url, {"answer": "problem"}).status_code == 404
    assert not Question.objects.exists()


def test_a_bad_answer_is_refused(client: Client, checkin_path: str, check_in: CheckIn) -> None:
    assert client.post(checkin_path, {"answer": "maybe"}).status_code == 400
    check_in.refresh_from_db()
    assert check_in.answer == ""


def test_the_check_in_page_escapes_what_people_typed(client: Client, checkin_path: str, check_in: CheckIn) -> None:
    client.post(checkin_path, {"answer": "problem", "details": "<b>broken</b>"})
    page = client.get(checkin_path).text
    assert "<b>broken</b>" not in page
    assert "&lt;b&gt;broken&lt;/b&gt;" in page
