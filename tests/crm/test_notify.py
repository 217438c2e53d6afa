"""crm.notify: what each contact is told, in which language, on which channel; and the stage changes
and date moves (crm.services.jobs) that store it in the outbox and send it after commit.

Time is frozen on Monday 2 March 2026, 10:00 in Paris: the conftest job starts that day, so after
reaching "Proposal sent" the next step is "Order confirmed", expected on Thursday 12 March 2026.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone, translation

from crm.links import make_unsubscribe_token, portal_url, read_unsubscribe_token, short_portal_url
from crm.models import Contact, Customer, Job, JobEvent, Message, Milestone, StaffProfile, StageTemplate
from crm.notify import (
    SMS_MIN_CUT,
    SMS_PART,
    SMS_PART_CUT,
    reachable_channel,
    recipients,
    render_draft,
    stage_change_drafts,
)
from crm.notify import (
    sms_text as _sms_text,
)
from crm.services.delivery import build_email
from crm.services.jobs import job_advance, milestone_move
from crm.sms import MemorySmsBackend, SentSms
from crm.sms_segments import measure
from crm.tasks import send_message

PARIS = ZoneInfo("Europe/Paris")
MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _monday_morning(time_machine) -> None:
    time_machine.move_to(MONDAY_MORNING, tick=False)


@pytest.fixture(autouse=True)
def sms_outbox() -> Iterator[list[SentSms]]:
    MemorySmsBackend.outbox.clear()
    yield MemorySmsBackend.outbox
    MemorySmsBackend.outbox.clear()


@pytest.fixture
def bob_profile(bob: User) -> StaffProfile:
    return StaffProfile.objects.create(user=bob, phone="+33 1 23 45 67 89", job_title="Production manager")


# --- Helpers ------------------------------------------------------------------------------------


def stage(job: Job, name: str) -> StageTemplate:
    return job.pipeline.stages.get(name=name)


def advance(job: Job, to: str, *, note: str = "") -> Job:
    return job_advance(job=job, to_stage=stage(job, to), actor=job.owner, note=note)


def new_contact(customer: Customer, **fields: object) -> Contact:
    values: dict[str, object] = {"name": "John Smith", "email": "john@example.com", "language": "en", **fields}
    return Contact.objects.create(customer=customer, **values)


def texting_contact(customer: Customer, **fields: object) -> Contact:
    values: dict[str, object] = {
        "name": "Sam Texter",
        "email": "",
        "phone": "+33 6 12 34 56 78",
        "preferred_channel": Contact.Channel.SMS,
        "sms_consent_at": timezone.now(),
        "sms_consent_source": "signed order form",
        **fields,
    }
    return new_contact(customer, **values)


def only(job: Job, *contacts: Contact) -> Job:
    job.contacts.set(contacts)
    return job


def messages(job: Job) -> list[Message]:
    return list(Message.objects.filter(job=job).select_related("contact").order_by("id"))


def html_of(email: mail.EmailMultiAlternatives) -> str:
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    return str(html)


# --- Language -----------------------------------------------------------------------------------


def test_it_writes_to_a_french_contact_in_french(
    job: Job, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent")

    [email] = mail.outbox
    assert email.to == [contact.email]
    assert "votre dossier" in email.subject
    assert email.body.startswith("Bonjour Marie Dupont,")
    assert "Bonjour Marie Dupont," in html_of(email)
    assert "Prochaine étape" in email.body
    assert "Hello" not in email.body


def test_it_writes_dates_in_the_contacts_language(job: Job, contact: Contact) -> None:
    john = new_contact(job.customer)
    job.contacts.add(john)

    advance(job, "Proposal sent")

    by_contact = {m.contact: m for m in messages(job)}
    assert by_contact[contact].language == "fr"
    assert "jeudi 12 mars 2026" in by_contact[contact].body_text
    assert "jeudi 12 mars 2026" in by_contact[contact].body_html
    assert "Thursday 12 March 2026" not in by_contact[contact].body_text
    assert by_contact[john].language == "en"
    assert "Thursday 12 March 2026" in by_contact[john].body_text
    assert "Thursday 12 March 2026" in by_contact[john].body_html


def test_it_names_the_stage_in_the_contacts_language(job: Job, contact: Contact) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Proposal sent").update(name_fr="Devis envoyé")
    john = new_contact(job.customer)
    job.contacts.add(john)

    advance(job, "Proposal sent")

    by_contact = {m.contact: m for m in messages(job)}
    assert by_contact[contact].subject.startswith("Devis envoyé")
    assert "Devis envoyé" in by_contact[contact].body_text
    assert by_contact[john].subject.startswith("Proposal sent")


def test_it_leaves_the_active_language_as_it_found_it(job: Job) -> None:
    with translation.override("en"):
        stage_change_drafts(job, stage=stage(job, "Proposal sent"))

        assert translation.get_language() == "en"


# --- Channel ------------------------------------------------------------------------------------


def test_it_emails_by_default(job: Job, contact: Contact, sms_outbox, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent")

    [message] = messages(job)
    assert (message.channel, message.status, message.to_address) == ("email", "sent", "marie@example.com")
    assert [e.to for e in mail.outbox] == [["marie@example.com"]]
    assert sms_outbox == []


def test_it_never_texts_a_contact_without_recorded_consent(customer: Customer, job: Job, sms_outbox) -> None:
    # The database refuses SMS as preferred channel without consent; a contact held in memory (an
    # admin form, an import) must still not be texted.
    no_consent = Contact(
        customer=customer, name="Ann", email="ann@example.com", phone="+33 6 00 00 00 01", preferred_channel="sms"
    )

    draft = render_draft(
        contact=no_consent, job=job, kind=Message.Kind.STAGE_CHANGE, extra={"stage": job.current_stage}
    )

    assert reachable_channel(no_consent) == Message.Channel.EMAIL
    assert (draft.channel, draft.to_address) == ("email", "ann@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        no_consent.save()
    assert sms_outbox == []


def test_it_emails_a_contact_who_consented_to_sms_but_prefers_email(
    job: Job, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    both = texting_contact(job.customer, email="sam@example.com")
    Contact.objects.filter(pk=both.pk).update(preferred_channel=Contact.Channel.EMAIL)
    only(job, both)

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent")

    assert [e.to for e in mail.outbox] == [["sam@example.com"]]
    assert sms_outbox == []


def test_it_texts_a_consenting_contact_in_at_most_sms_max_segments_with_the_portal_link(
    job: Job, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    sam = texting_contact(job.customer)
    only(job, sam)
    long_name = "Proposal sent, " + "with every option, drawing and warranty detail spelled out " * 2
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Proposal sent").update(name=long_name[:100])

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, long_name[:100], note="A very long personal word. " * 80)

    [sms] = sms_outbox
    link = short_portal_url(sam, job)
    assert sms.to == "+33612345678"  # handed over in E.164, however it was stored
    assert measure(sms.text).segments <= settings.SMS_MAX_SEGMENTS
    assert sms.text.endswith(" " + link)  # never the link
    assert "A very long personal word. A very long..." in sms.text  # the note was shortened, at a word
    assert measure(sms.text).encoding == "GSM-7"  # "..." rather than "…": still GSM-7
    assert len(link) == len("http://testserver/portal/s//") + 36  # a short link: room for the words
    [message] = messages(job)
    assert (message.channel, message.status, message.provider_message_id) == ("sms", "sent", sms.provider_id)
    assert mail.outbox == []


def sms_body(*parts: tuple[str, str]) -> str:
    """A rendered SMS template: its first sentence, then (marker, text) parts."""
    return "".join(marker + text for marker, text in parts)


LINK_120 = "https://portal.example.com/portal/enter/" + "x" * 80


@pytest.fixture
def two_segments(settings) -> None:
    """Text messages of at most 2 segments: 306 characters of plain text (GSM-7)."""
    settings.SMS_MAX_SEGMENTS = 2


@pytest.mark.usefixtures("two_segments")
def test_an_sms_leaves_out_a_part_that_does_not_fit_rather_than_cut_a_phone_number() -> None:
    first = "Brightside: your job J-2026-0042 has moved on: " + "Installation scheduled and confirmed" * 3 + "."
    body = sms_body(
        ("", first),
        (SMS_PART, "Next: Installed, 12 March."),
        (SMS_PART, "Questions: Bob +33 1 99 00 12 02"),
    )

    text = _sms_text(body, LINK_120)

    assert measure(text).segments <= settings.SMS_MAX_SEGMENTS
    assert text.endswith(" " + LINK_120)
    assert "Next: Installed, 12 March." in text
    assert "+33" not in text  # no room for the whole number: the part is left out, not cut


@pytest.mark.usefixtures("two_segments")
def test_an_sms_gives_a_persons_words_the_room_the_facts_leave() -> None:
    note = "We will come with the ladder, so please clear the way to the attic before nine in the morning."
    body = sms_body(
        ("", "Brightside: your job J-2026-0042 has moved on: Installation scheduled."),
        (SMS_PART_CUT, note),
        (SMS_PART, "Next: Installed, 12 March."),
        (SMS_PART, "Questions: Bob +33 1 99 00 12 02"),
    )

    text = _sms_text(body, LINK_120)

    assert measure(text).segments <= settings.SMS_MAX_SEGMENTS
    facts = "Next: Installed, 12 March. Questions: Bob +33 1 99 00 12 02 " + LINK_120
    assert text.endswith(facts)
    kept = text.removesuffix(" " + facts).removeprefix(
        "Brightside: your job J-2026-0042 has moved on: Installation scheduled. "
    )
    assert kept.endswith("...") and note.startswith(kept.removesuffix("..."))  # cut at a word
    assert note[len(kept.removesuffix("..."))] == " "
    assert len(kept) >= SMS_MIN_CUT


@pytest.mark.usefixtures("two_segments")
def test_an_sms_leaves_out_a_persons_words_when_only_a_scrap_would_fit() -> None:
    body = sms_body(
        ("", "Brightside: your job J-2026-0042 has moved on: " + "a stage with a very long name " * 3 + "."),
        (SMS_PART_CUT, "A personal word that would be cut down to a few letters."),
        (SMS_PART, "Questions: Bob +33 1 99 00 12 02"),
    )
    assert "personal" not in _sms_text(body, LINK_120)


def test_a_short_note_goes_in_the_text_message(job: Job, sms_outbox, django_capture_on_commit_callbacks) -> None:
    sam = texting_contact(job.customer)
    only(job, sam)

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent", note="Bring the gate key")

    [sms] = sms_outbox
    assert "Bring the gate key." in sms.text  # and ended as a sentence
    assert measure(sms.text).segments <= settings.SMS_MAX_SEGMENTS


def test_a_reason_that_ends_its_sentence_gets_no_second_full_stop(job: Job) -> None:
    with translation.override("en"):
        text = render_to_string(
            "sms/date-moved.txt",
            {
                "company": "Brightside",
                "stage": stage(job, "Proposal sent"),
                "new_date": date(2026, 3, 12),
                "reason": "The parts come tomorrow.",
                "owner": {"first_name": "Bob", "phone": "+33 1"},
            },
        )
    assert "tomorrow.." not in text
    assert "The parts come tomorrow." in text


def test_it_leaves_a_call_to_make_for_a_contact_who_prefers_the_phone(
    job: Job, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    caller = new_contact(
        job.customer, name="Paul Caller", email="", phone="+33 6 98 76 54 32", preferred_channel="phone"
    )
    only(job, caller)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        advance(job, "Proposal sent")

    [message] = messages(job)
    assert (message.channel, message.status, message.to_address) == ("phone", "call_pending", "+33 6 98 76 54 32")
    assert "Paul Caller" in message.body_text
    assert "06 98 76 54 32" in message.body_text  # the team reads a French number in its national form
    assert "Order confirmed" in message.body_text
    assert message.sent_at is None
    assert callbacks == []
    assert mail.outbox == []
    assert sms_outbox == []


def test_it_keeps_a_portal_note_for_a_contact_with_no_address(customer: Customer, job: Job) -> None:
    # Not storable (a contact needs an email or a phone), but a draft must still go somewhere.
    nowhere = Contact(customer=customer, name="Nobody", language="en")

    draft = render_draft(contact=nowhere, job=job, kind=Message.Kind.STAGE_CHANGE, extra={"stage": job.current_stage})

    assert reachable_channel(nowhere) == Message.Channel.PORTAL
    assert (draft.channel, draft.status, draft.to_address) == ("portal", "sent", "")
    assert draft.body_text


# --- What every draft says ----------------------------------------------------------------------


def test_it_puts_the_portal_link_the_owner_and_the_next_step_in_every_email(
    job: Job, bob_profile: StaffProfile, django_capture_on_commit_callbacks
) -> None:
    john = new_contact(job.customer)
    only(job, john)

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent")

    [email] = mail.outbox
    link = portal_url(john, job)
    html = html_of(email)
    for part in (email.body, html):
        assert link in part
        assert "Bob Durand" in part
        assert "+33 1 23 45 67 89" in part
        assert "Order confirmed" in part
        assert "Thursday 12 March 2026" in part
    assert "What happens next: Order confirmed, expected on Thursday 12 March 2026." in email.body
    assert email.subject == f"Proposal sent — your job {job.reference}"
    # A phone link a mail client can dial: no spaces in the tel: URI.
    assert 'href="tel:+33123456789"' in html


def test_it_puts_the_portal_link_the_owner_and_the_next_step_in_every_sms(
    job: Job, bob_profile: StaffProfile, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    sam = texting_contact(job.customer)
    only(job, sam)

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent")

    [sms] = sms_outbox
    assert sms.text.endswith(" " + short_portal_url(sam, job))
    assert "Questions: Bob +33 1 23 45 67 89" in sms.text
    assert "Next: Order confirmed, 12 March." in sms.text
    assert f"your job {job.reference} has moved on: Proposal sent." in sms.text


def test_it_puts_the_portal_link_the_owner_and_the_next_step_in_a_portal_note(customer: Customer, job: Job) -> None:
    nowhere = Contact(customer=customer, name="Nobody", language="en")
    advance(job, "Proposal sent")

    draft = render_draft(contact=nowhere, job=job, kind=Message.Kind.STAGE_CHANGE, extra={"stage": job.current_stage})

    assert portal_url(nowhere, job) in draft.body_text
    assert "Bob Durand" in draft.body_text
    assert "Order confirmed" in draft.body_text


def test_it_escapes_the_note_in_html_and_keeps_it_verbatim_in_text(
    job: Job, django_capture_on_commit_callbacks
) -> None:
    note = "<script>alert('x')</script> Tom & Jerry's \"quote\"\nSecond line"

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent", note=note)

    [message] = messages(job)
    [email] = mail.outbox
    for html in (message.body_html, html_of(email)):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Tom &amp; Jerry&#x27;s &quot;quote&quot;<br>" in html
    assert note in message.body_text
    assert note in email.body


def test_it_keeps_the_subject_free_of_html_entities(job: Job, contact: Contact) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Proposal sent").update(
        name="Survey & design", name_fr="Visite d'évaluation"
    )
    john = new_contact(job.customer)
    job.contacts.add(john)

    advance(job, "Survey & design")

    by_contact = {m.contact: m for m in messages(job)}
    assert by_contact[john].subject.startswith("Survey & design")
    assert by_contact[contact].subject.startswith("Visite d'évaluation")


# --- Who hears about what -----------------------------------------------------------------------


def test_it_tells_nobody_when_the_job_reaches_an_internal_stage(
    job: Job, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    job.contacts.add(texting_contact(job.customer))
    follow_up = stage(job, "Follow-up")

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Follow-up")

    assert stage_change_drafts(job, stage=follow_up) == []
    assert messages(job) == []
    assert mail.outbox == []
    assert sms_outbox == []
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.STAGE_ADVANCED).count() == 1


def test_it_skips_opted_out_contacts_for_non_essential_messages_only(job: Job, contact: Contact) -> None:
    john = new_contact(job.customer)
    job.contacts.add(john)
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=timezone.now())

    assert recipients(job, kind=Message.Kind.CHECK_IN) == [john]
    assert recipients(job, kind=Message.Kind.TIP) == [john]
    assert recipients(job, kind=Message.Kind.SURVEY_INVITATION) == [john]
    assert sorted(c.pk for c in recipients(job, kind=Message.Kind.STAGE_CHANGE)) == sorted([contact.pk, john.pk])
    assert sorted(c.pk for c in recipients(job, kind=Message.Kind.DATE_MOVED)) == sorted([contact.pk, john.pk])


def test_it_still_tells_an_opted_out_contact_about_their_job(
    job: Job, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        advance(job, "Proposal sent")

    assert [e.to for e in mail.outbox] == [[contact.email]]


# --- One-click unsubscribe ----------------------------------------------------------------------


def check_in(job: Job, contact: Contact) -> Message:
    return Message.objects.create(
        job=job,
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=Message.Kind.CHECK_IN,
        to_address=contact.email,
        from_address=settings.DEFAULT_FROM_EMAIL,
        subject="How is your heat pump doing?",
        body_text="A month on: is everything working as it should?",
        idempotency_key=f"check-in:{job.pk}:{contact.pk}",
        email_message_id=make_msgid(domain="reply.example.com"),
    )


def test_it_adds_one_click_unsubscribe_headers_to_non_essential_email(job: Job, contact: Contact, settings) -> None:
    settings.SITE_URL = "https://portal.example.com"
    message = check_in(job, contact)

    headers = build_email(message).message()

    token = make_unsubscribe_token(contact)
    assert headers["List-Unsubscribe"] == f"<https://portal.example.com/portal/unsubscribe/{token}/>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert read_unsubscribe_token(token) == {"c": contact.pk}


def test_it_sends_the_unsubscribe_headers_with_the_email(job: Job, contact: Contact, settings) -> None:
    settings.SITE_URL = "https://portal.example.com"
    message = check_in(job, contact)

    assert send_message(message.pk) == "sent"

    [email] = mail.outbox
    assert email.message()["List-Unsubscribe"].startswith("<https://portal.example.com/portal/unsubscribe/")
    assert email.message()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_it_leaves_essential_email_without_unsubscribe_headers(job: Job, bob: User, settings) -> None:
    settings.SITE_URL = "https://portal.example.com"
    advance(job, "Proposal sent")
    milestone_move(
        milestone=Milestone.objects.get(job=job, stage__name="Installed"),
        new_date=date(2026, 4, 2),
        reason="The heat pump arrives late",
        actor=bob,
        tell_customer=True,
    )

    kinds = []
    for message in messages(job):
        email = build_email(message).message()
        kinds.append(message.kind)
        assert email["List-Unsubscribe"] is None
        assert email["List-Unsubscribe-Post"] is None
        assert "/portal/unsubscribe/" not in message.body_text + message.body_html
    assert sorted(kinds) == ["date_moved", "stage_change"]


def test_it_asks_before_unsubscribing_on_get(contact: Contact, client: Client) -> None:
    response = client.get(f"/portal/unsubscribe/{make_unsubscribe_token(contact)}/")

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    contact.refresh_from_db()
    assert contact.opted_out_at is None


def test_it_unsubscribes_on_a_post_without_a_csrf_token(contact: Contact) -> None:
    one_click = Client(enforce_csrf_checks=True)
    url = f"/portal/unsubscribe/{make_unsubscribe_token(contact)}/"

    response = one_click.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.opted_out_at == timezone.now()


def test_it_keeps_the_first_unsubscribe_time(contact: Contact, client: Client, time_machine) -> None:
    url = f"/portal/unsubscribe/{make_unsubscribe_token(contact)}/"
    client.post(url)
    first = Contact.objects.get(pk=contact.pk).opted_out_at

    time_machine.shift(3600)
    client.post(url)

    assert Contact.objects.get(pk=contact.pk).opted_out_at == first


def test_it_unsubscribes_through_the_link_in_the_header(job: Job, contact: Contact, settings) -> None:
    settings.SITE_URL = "https://portal.example.com"
    header = build_email(check_in(job, contact)).message()["List-Unsubscribe"]
    path = header.strip("<>").removeprefix("https://portal.example.com")

    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Contact.objects.get(pk=contact.pk).opted_out_at is not None


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_answers_404_to_a_tampered_token(contact: Contact, client: Client, method: str) -> None:
    token = make_unsubscribe_token(contact)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = getattr(client, method)(f"/portal/unsubscribe/{tampered}/")

    assert response.status_code == 404
    assert Contact.objects.get(pk=contact.pk).opted_out_at is None


def test_it_does_not_take_a_portal_link_token_for_an_unsubscribe_token(contact: Contact, client: Client) -> None:
    portal_token = portal_url(contact).split("/portal/enter/")[1].rstrip("/")

    response = client.post(f"/portal/unsubscribe/{portal_token}/")

    assert response.status_code == 404
    assert Contact.objects.get(pk=contact.pk).opted_out_at is None


# --- Stage changes and date moves queue their messages ------------------------------------------


def test_it_queues_one_message_per_contact_with_the_stage_change(
    job: Job, contact: Contact, django_capture_on_commit_callbacks
) -> None:
    john = new_contact(job.customer)
    job.contacts.add(john)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        advance(job, "Proposal sent")

        rows = messages(job)
        assert mail.outbox == []  # nothing leaves before commit

    assert sorted(m.contact_id for m in rows) == sorted([contact.pk, john.pk])
    assert {(m.kind, m.status, m.direction) for m in rows} == {("stage_change", "queued", "out")}
    assert len({m.idempotency_key for m in rows}) == 2
    assert len(callbacks) == 1

    callbacks[0]()

    assert sorted(e.to[0] for e in mail.outbox) == ["john@example.com", "marie@example.com"]
    assert {m.status for m in messages(job)} == {"sent"}


def test_it_gives_every_stage_change_its_own_keys(job: Job) -> None:
    advance(job, "Proposal sent")
    advance(job, "Order confirmed")

    keys = [m.idempotency_key for m in messages(job)]
    assert len(keys) == len(set(keys)) == 2


def test_it_leaves_no_message_and_sends_nothing_when_the_transaction_rolls_back(
    job: Job, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    job.contacts.add(texting_contact(job.customer))

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        advance(job, "Proposal sent")
        assert len(messages(job)) == 2
        raise RuntimeError("what came after the stage change failed")

    assert callbacks == []
    assert messages(job) == []
    assert Job.objects.get(pk=job.pk).current_stage.name == "Request received"
    assert mail.outbox == []
    assert sms_outbox == []


def test_it_sends_nothing_when_asked_not_to_notify(job: Job, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        job_advance(job=job, to_stage=stage(job, "Proposal sent"), actor=job.owner, notify_customer=False)

    assert messages(job) == []
    assert mail.outbox == []


def test_it_tells_the_customer_a_date_moved_when_asked(
    job: Job, contact: Contact, bob: User, django_capture_on_commit_callbacks
) -> None:
    installed = Milestone.objects.get(job=job, stage__name="Installed")

    with django_capture_on_commit_callbacks(execute=True):
        milestone_move(
            milestone=installed,
            new_date=date(2026, 4, 2),
            reason="The heat pump arrives late",
            actor=bob,
            tell_customer=True,
        )

    [message] = messages(job)
    assert (message.kind, message.contact, message.status) == ("date_moved", contact, "sent")
    [email] = mail.outbox
    assert "lundi 30 mars 2026" in email.body
    assert "jeudi 2 avril 2026" in email.body
    assert "The heat pump arrives late" in email.body
    assert "jeudi 2 avril 2026" in html_of(email)
    assert portal_url(contact, job) in email.body


def test_it_keeps_a_date_move_internal_unless_asked(job: Job, bob: User, django_capture_on_commit_callbacks) -> None:
    installed = Milestone.objects.get(job=job, stage__name="Installed")

    with django_capture_on_commit_callbacks(execute=True):
        milestone_move(milestone=installed, new_date=date(2026, 4, 2), reason="Supplier delay", actor=bob)

    assert messages(job) == []
    assert mail.outbox == []
    assert JobEvent.objects.filter(job=job, kind=JobEvent.Kind.DATE_MOVED).count() == 1
