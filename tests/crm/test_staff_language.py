"""One language per reader: the staff read every item in their words and language; what the
customer wrote or will read is quoted, marked with its own language (``lang``)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Job, Message, StaffProfile
from crm.services.jobs import job_advance
from crm.services.questions import question_answer, question_create

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Outside(HTMLParser):
    """The page's text outside any element marked with another language than its own."""

    def __init__(self) -> None:
        super().__init__()
        self.page_lang = ""
        self.stack: list[bool] = []  # per open element: is it (or an ancestor) in another language
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        lang = dict(attrs).get("lang")
        if tag == "html":
            self.page_lang = lang or ""
        foreign = bool(self.stack and self.stack[-1]) or (tag != "html" and lang not in (None, self.page_lang))
        if tag not in VOID:
            self.stack.append(foreign)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.text.append(data)


def outside_other_languages(html: str) -> str:
    parser = _Outside()
    parser.feed(html)
    return " ".join(parser.text)


def stage(job: Job, name: str):
    return job.pipeline.stages.get(name=name)


@pytest.fixture
def told(job: Job, contact: Contact, bob: User) -> Message:
    """The French contact told of "Proposal sent", by email, and a call to make to a French
    contact reached by phone."""
    Contact.objects.create(
        customer=job.customer, name="Luc Dupont", phone="06 12 34 56 78", language="fr", preferred_channel="phone"
    )
    job.contacts.add(*job.customer.contacts.all())
    job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=bob)
    message = Message.objects.get(job=job, contact=contact, kind=Message.Kind.STAGE_CHANGE)
    assert message.language == "fr"
    return message


def test_english_staff_read_no_french_outside_the_quotations(
    staff: Client, job: Job, contact: Contact, told: Message
) -> None:
    call = Message.objects.get(job=job, status=Message.Status.CALL_PENDING)
    question = question_create(job=job, contact=contact, body="Quand passez-vous ?", source="portal")
    question_answer(question=question, body="Mardi.", actor=job.owner)

    for url in (reverse("crm:home"), reverse("crm:job", args=[job.public_id])):
        html = staff.get(url).content.decode()
        assert told.subject in html or call.subject in html  # the customer's words are there, quoted…
        outside = outside_other_languages(html)
        for french in (told.subject, call.subject, "Une réponse à votre question", "Quand passez-vous"):
            assert french not in outside, (url, french)  # …and nowhere else
    page = staff.get(reverse("crm:job", args=[job.public_id])).content.decode()
    assert "Reached “Proposal sent”" in page
    assert f'<q class="customer-words" lang="fr">{told.subject}</q>' in page
    # The history says what was kept in the team's words.
    assert "Answer the customer&#x27;s question" in page or "Answer the customer's question" in page
    home = staff.get(reverse("crm:home")).content.decode()
    assert "Reached “Proposal sent”" in home  # under "Calls to make"


def test_french_staff_read_no_english_outside_the_quotations(
    client: Client, job: Job, contact: Contact, bob: User
) -> None:
    StaffProfile.objects.update_or_create(user=bob, defaults={"language": "fr"})
    Contact.objects.filter(pk=contact.pk).update(language="en")
    job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=bob)
    message = Message.objects.get(job=job, contact=contact, kind=Message.Kind.STAGE_CHANGE)
    assert message.language == "en"
    client.force_login(bob)
    html = client.get(reverse("crm:job", args=[job.public_id]), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="fr"' in html
    assert f'lang="en">{message.subject}</q>' in html
    assert message.subject not in outside_other_languages(html)
    assert "Étape «\u00a0Proposal sent\u00a0» atteinte" in html  # the stage has no French name here


def test_french_staff_read_the_stage_names_the_pipeline_has_in_french(
    client: Client, job: Job, contact: Contact, bob: User
) -> None:
    StaffProfile.objects.update_or_create(user=bob, defaults={"language": "fr"})
    proposal = stage(job, "Proposal sent")
    proposal.name_fr = "Proposition envoyée"
    proposal.save()
    job_advance(job=job, to_stage=proposal, actor=bob)
    client.force_login(bob)
    for url in (reverse("crm:job", args=[job.public_id]), reverse("crm:jobs"), reverse("crm:job_board")):
        html = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
        assert "Proposition envoyée" in html, url
    page = client.get(reverse("crm:job", args=[job.public_id]), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Étape «\u00a0Proposition envoyée\u00a0» atteinte" in page
