"""What the customer is told, to whom, and on which channel.

Nothing here writes: it renders drafts (for a preview, or for crm.services.outbox to store and
send). Every draft is rendered inside ``translation.override(contact.language)`` from template
files — ``templates/emails/<kind>-subject.txt``, ``-body.txt``, ``-body.html`` (extending
``emails/base.html``), ``templates/sms/<kind>.txt`` and ``templates/calls/<kind>.txt`` — and every
draft carries the portal link, the owner's name and direct contact, and what happens next.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string, select_template
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm import phones
from crm.links import (
    checkin_url,
    portal_url,
    short_portal_url,
    survey_url,
    unsubscribe_url,
    visit_answer_url,
    visit_calendar_url,
)
from crm.models import Contact, Job, Message, Milestone, StageTemplate
from crm.people import person_card
from crm.sms_segments import fit, fits, plain_punctuation
from crm.workdays import business_zone, customer_zone


@dataclass(frozen=True)
class Draft:
    """One message as it would go out to one contact."""

    contact: Contact
    kind: str
    channel: str
    to_address: str
    language: str
    subject: str
    body_text: str
    body_html: str = ""
    # Kind-specific parts of the idempotency key (e.g. the event that caused it).
    meta: dict[str, Any] = field(default_factory=dict)
    # The stage a stage-change message announces (kept on the message: the staff read its name).
    stage: StageTemplate | None = None

    @property
    def status(self) -> str:
        if self.channel == Message.Channel.PHONE:
            return Message.Status.CALL_PENDING
        if self.channel == Message.Channel.PORTAL:
            return Message.Status.SENT
        return Message.Status.QUEUED


def reachable_channel(contact: Contact, *, written: bool = False) -> str:
    """The contact's preferred channel when we may use it, else the next best.

    SMS only with recorded consent, to a number that takes texts (crm.phones.can_text);
    "phone" means the owner calls (a call task, nothing is sent);
    with no address at all the message still exists, as a note on the portal. ``written``: never
    a call task (what the contact must be able to find again, in writing).
    """
    preferred = contact.preferred_channel
    calls = contact.phone and not written
    # A consent on record for a number that cannot take texts (a landline, one never understood).
    texts = contact.has_sms_consent and phones.can_text(contact.phone)
    if preferred == Contact.Channel.SMS and texts:
        return Message.Channel.SMS
    if preferred == Contact.Channel.PHONE and calls:
        return Message.Channel.PHONE
    if contact.email:
        return Message.Channel.EMAIL
    if texts:
        return Message.Channel.SMS
    if calls:
        return Message.Channel.PHONE
    return Message.Channel.PORTAL


def recipients(job: Job, *, kind: str) -> list[Contact]:
    """The job's contacts who should hear about ``kind``: everyone for what the job needs, only
    those who have not opted out for the rest."""
    contacts = list(job.contacts.all())
    if kind in Message.NON_ESSENTIAL_KINDS:
        contacts = [c for c in contacts if c.opted_out_at is None]
    return contacts


def next_step(job: Job, *, milestones: Iterable[Milestone] | None = None) -> Milestone | None:
    """The next stage the customer will see reached, with its expected date; from ``milestones``
    (the job's, with their stages) when the caller has them already, else from the database."""
    if milestones is not None:
        ahead = [m for m in milestones if m.completed_at is None and m.stage.customer_visible]
        return min(ahead, key=lambda m: m.stage.position, default=None)
    return (
        job.milestones.select_related("stage")
        .filter(completed_at__isnull=True, stage__customer_visible=True)
        .order_by("stage__position")
        .first()
    )


def _sign_in_url(contact: Contact, job: Job | None, channel: str) -> str:
    """The portal link a message carries: the short one in a text message (its few segments are
    for the words), the signed one elsewhere."""
    return short_portal_url(contact, job) if channel == Message.Channel.SMS else portal_url(contact, job)


@dataclass(frozen=True)
class DateChange:
    """A customer-visible date that changes: the stage, the date the customer knew, the new one."""

    milestone: Milestone
    old_date: date | None
    new_date: date

    @property
    def stage(self) -> StageTemplate:
        return self.milestone.stage

    @property
    def sooner(self) -> bool:
        """Good news: earlier than the date the customer knew."""
        return self.old_date is not None and self.new_date < self.old_date

    def as_data(self) -> dict[str, Any]:
        """What a JobEvent records of it."""
        return {
            "stage": self.milestone.stage.name,
            "old_date": self.old_date,
            "new_date": self.new_date,
        }


def _context(
    job: Job, contact: Contact, kind: str, extra: dict[str, Any], *, channel: str, author: Any = None
) -> dict[str, Any]:
    owner = person_card(job.owner)
    context = {
        "company": settings.COMPANY_NAME,
        "contact": contact,
        "customer": job.customer,
        "job": job,
        "owner": owner,
        # Who wrote the personal note a message carries: it is signed with their name.
        "author": person_card(author) if author is not None and author.pk != job.owner_id else owner,
        "portal_url": _sign_in_url(contact, job, channel),
        "unsubscribe_url": unsubscribe_url(contact) if kind in Message.NON_ESSENTIAL_KINDS else "",
    }
    context.update(extra)
    if "next_step" not in context:
        context["next_step"] = next_step(job)
    return context


def _slug(kind: str) -> str:
    return kind.replace("_", "-")


def _names(folder: str, kind: str, suffix: str, variant: str) -> list[str]:
    slug = _slug(kind)
    names = [f"{folder}/{slug}-{variant}{suffix}"] if variant else []
    return [*names, f"{folder}/{slug}{suffix}"]


def tidy_text(text: str) -> str:
    """Plain text as a person would type it: no trailing spaces, at most one blank line."""
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"


def one_line(text: str) -> str:
    """``text`` on one line, its runs of whitespace one space: a subject, a part of a text message."""
    return re.sub(r"\s+", " ", text).strip()


# An SMS template is its first sentence (what happened: always sent, shortened only if it alone is
# too long), then parts that follow {{ sms_part }} — sent whole or left out, never cut in the
# middle of a date or a phone number — or {{ sms_part_cut }}: a person's own words, shortened to
# fit when they must (at least SMS_MIN_CUT characters of them, else left out). What fits is
# counted in text messages (settings.SMS_MAX_SEGMENTS), as the network counts them: crm.sms_segments.
SMS_PART = "\x1e"
SMS_PART_CUT = "\x1f"
SMS_MARKERS = {"sms_part": SMS_PART, "sms_part_cut": SMS_PART_CUT}
SMS_MIN_CUT = 40


def _joined(*texts: str) -> str:
    return " ".join(text for text in texts if text)


def sms_text(body: str, link: str) -> str:
    """Fit the message and its link in settings.SMS_MAX_SEGMENTS text messages: the link whole,
    the first sentence, the whole parts that fit (in their order), then a person's words in the
    room left (see SMS_PART); written in the template's order. Typographic punctuation is sent as
    its GSM-7 twin (crm.sms_segments.plain_punctuation): a curly quote does not halve the room."""
    max_segments = settings.SMS_MAX_SEGMENTS
    first, *rest = re.split(f"([{SMS_PART}{SMS_PART_CUT}])", plain_punctuation(body))
    text = fit(_joined(one_line(first), link), max_segments, keep=[link]).removesuffix(link).strip()
    parts = [(marker, one_line(part)) for marker, part in zip(rest[::2], rest[1::2], strict=True)]
    parts = [(marker, part) for marker, part in parts if part]
    kept: dict[int, str] = {}

    def around(index: int) -> tuple[str, str]:
        """The message before and after part ``index``, with the parts kept so far."""
        before = _joined(text, *(kept[i] for i in sorted(kept) if i < index))
        return before, _joined(*(kept[i] for i in sorted(kept) if i > index), link)

    for index, (marker, part) in enumerate(parts):
        if marker == SMS_PART:
            before, after = around(index)
            if fits(_joined(before, part, after), max_segments):
                kept[index] = part
    for index, (marker, part) in enumerate(parts):
        if marker != SMS_PART_CUT:
            continue
        before, after = around(index)
        message = fit(_joined(before, part, after), max_segments, keep=[before, after])
        if message.startswith(before) and message.endswith(after):
            words = message.removeprefix(before).removesuffix(after).strip()
            if len(words) >= min(len(part), SMS_MIN_CUT):
                kept[index] = words
    return _joined(text, *(kept[index] for index in sorted(kept)), link)


def render_draft(
    *,
    contact: Contact,
    job: Job,
    kind: str,
    extra: dict[str, Any] | None = None,
    variant: str = "",
    channel: str | None = None,
    meta: dict[str, Any] | None = None,
    sms_link: str | None = None,
    author: Any = None,
) -> Draft:
    """Render one message for one contact, in their language, on their channel.

    An SMS ends with one link: the portal's short sign-in link, or ``sms_link`` when the message is
    about another page (a survey, a check-in)."""
    channel = channel or reachable_channel(contact)
    with translation.override(contact.language):
        context = _context(job, contact, kind, extra or {}, channel=channel, author=author)
        subject = one_line(select_template(_names("emails", kind, "-subject.txt", variant)).render(context))
        html = ""
        if channel == Message.Channel.SMS:
            text = sms_text(
                select_template(_names("sms", kind, ".txt", variant)).render({**context, **SMS_MARKERS}),
                sms_link or context["portal_url"],
            )
            to_address = contact.phone
        elif channel == Message.Channel.PHONE:
            text = tidy_text(select_template(_names("calls", kind, ".txt", variant)).render(context))
            to_address = contact.phone
        else:
            text = tidy_text(select_template(_names("emails", kind, "-body.txt", variant)).render(context))
            html = select_template(_names("emails", kind, "-body.html", variant)).render(context)
            to_address = contact.email if channel == Message.Channel.EMAIL else ""
    return Draft(
        contact=contact,
        kind=kind,
        channel=channel,
        to_address=to_address,
        language=contact.language,
        subject=subject,
        body_text=text,
        body_html=html,
        meta=meta or {},
    )


def stage_change_drafts(
    job: Job,
    *,
    stage: StageTemplate,
    note: str = "",
    milestones: Iterable[Milestone] | None = None,
    author: Any = None,
    changes: Iterable[DateChange] = (),
    handed_over: bool = False,
) -> list[Draft]:
    """What each contact will receive when ``job`` reaches ``stage`` (nothing for internal stages).

    ``milestones``: the job's milestones with their stages, as they are after the change, when
    the caller has them (then the next step costs no query). ``changes``: later dates this stage
    pushed out (it was reached late), each told old → new. ``handed_over``: the stage brings a new
    contact person (the job's owner now), introduced with their card."""
    if not stage.customer_visible:
        return []
    extra = {
        "stage": stage,
        "note": note.strip(),
        "next_step": next_step(job, milestones=milestones),
        "changes": [c for c in changes if c.stage.customer_visible],
        "handed_over": handed_over,
    }
    return [
        replace(
            render_draft(
                contact=c,
                job=job,
                kind=Message.Kind.STAGE_CHANGE,
                extra=extra,
                variant=stage.message_key,
                author=author,
            ),
            stage=stage,
        )
        for c in recipients(job, kind=Message.Kind.STAGE_CHANGE)
    ]


def date_moved_drafts(
    job: Job, *, changes: Iterable[DateChange], reason: str, note: str = "", author: Any = None
) -> list[Draft]:
    """Every customer-visible date that changes, in one message: the one moved first, then the
    later ones it pushes out. Sooner than the customer knew is said as good news."""
    changes = [c for c in changes if c.stage.customer_visible]
    if not changes:
        return []
    first = changes[0]
    extra = {
        "changes": changes,
        "change": first,
        "milestone": first.milestone,
        "stage": first.stage,
        "old_date": first.old_date,
        "new_date": first.new_date,
        "sooner": all(c.sooner for c in changes),
        "reason": reason.strip(),
        "note": note.strip(),
    }
    return [
        render_draft(contact=c, job=job, kind=Message.Kind.DATE_MOVED, extra=extra, author=author)
        for c in recipients(job, kind=Message.Kind.DATE_MOVED)
    ]


def welcome_drafts(job: Job, *, milestones: Iterable[Milestone]) -> list[Draft]:
    """ "Thank you for your order": what was ordered, the stages ahead with their dates, what to
    prepare for the first, who their person is and the portal — from the first contact on."""
    milestones = list(milestones)
    ahead = sorted(
        (m for m in milestones if m.completed_at is None and m.stage.customer_visible and m.forecast_date),
        key=lambda m: m.stage.position,
    )
    extra = {"stages_ahead": ahead, "next_step": next_step(job, milestones=milestones)}
    return [
        render_draft(contact=c, job=job, kind=Message.Kind.WELCOME, extra=extra)
        for c in recipients(job, kind=Message.Kind.WELCOME)
    ]


def contact_changed_drafts(job: Job, *, previous: Any, author: Any = None) -> list[Draft]:
    """ "From now on <name> is your contact": the new person's card, after a reassignment."""
    extra = {"previous": person_card(previous) if previous is not None else None}
    return [
        render_draft(contact=c, job=job, kind=Message.Kind.CONTACT_CHANGED, extra=extra, author=author)
        for c in recipients(job, kind=Message.Kind.CONTACT_CHANGED)
    ]


def free_message_drafts(
    job: Job, *, body: str, contacts: Iterable[Contact] | None = None, author: Any = None
) -> list[Draft]:
    contacts = list(contacts) if contacts is not None else recipients(job, kind=Message.Kind.FREE)
    return [
        render_draft(contact=c, job=job, kind=Message.Kind.FREE, extra={"body": body.strip()}, author=author)
        for c in contacts
    ]


def promise_moved_drafts(
    job: Job,
    *,
    commitment: Any,
    old_due_at: Any,
    reason: str,
    note: str = "",
    contacts: Iterable[Contact],
    author: Any = None,
) -> list[Draft]:
    """ "We need a little longer: you will have <it> by <new date> (not <old date>)"."""
    extra = {
        "commitment": commitment,
        "old_date": old_due_at.astimezone(business_zone()).date() if old_due_at else None,
        "new_date": commitment.due_at.astimezone(business_zone()).date(),
        "reason": reason.strip(),
        "note": note.strip(),
    }
    return [
        render_draft(contact=c, job=job, kind=Message.Kind.PROMISE_MOVED, extra=extra, author=author) for c in contacts
    ]


def document_attached(document: Any, channel: str) -> bool:
    """Whether a shared document's email carries the file too: a PDF no bigger than
    FILE_EMAIL_ATTACH_MAX_KB (0, the default: never — the portal link always)."""
    limit = settings.FILE_EMAIL_ATTACH_MAX_KB * 1024
    return (
        channel == Message.Channel.EMAIL
        and limit > 0
        and document.content_type == "application/pdf"
        and document.size <= limit
    )


def document_drafts(job: Job, *, document: Any, contacts: Iterable[Contact], author: Any = None) -> list[Draft]:
    """ "<The quote> for your job is on your page", to each contact on their channel."""
    drafts = []
    for contact in contacts:
        channel = reachable_channel(contact, written=True)
        extra = {"document": document, "attached": document_attached(document, channel)}
        drafts.append(
            render_draft(
                contact=contact, job=job, kind=Message.Kind.DOCUMENT_SHARED, extra=extra, channel=channel, author=author
            )
        )
    return drafts


def status_update_drafts(job: Job, *, note: str = "", author: Any = None) -> list[Draft]:
    """ "No news yet — here is where we are": the stage, the next step and its date, written for
    each contact in their language (the silence alarm's ready update)."""
    extra = {"stage": job.current_stage, "note": note.strip()}
    return [
        render_draft(contact=c, job=job, kind=Message.Kind.STATUS_UPDATE, extra=extra, author=author)
        for c in recipients(job, kind=Message.Kind.STATUS_UPDATE)
    ]


def acknowledgement_drafts(job: Job, *, question: Any, contact: Contact) -> list[Draft]:
    """ "We have your question; you will have our answer by <date>" to the contact who asked.

    A request staff logged (a call, a visit, a colleague passing it on) is thanked for as it came
    (the template variant ``phone``, ``in-person`` or ``staff``) and always acknowledged in
    writing: a contact who prefers calls has just spoken with us, and a call task would leave
    them with no date they can find again."""
    variant = {"phone": "phone", "in_person": "in-person", "staff": "staff"}.get(question.source, "")
    channel = reachable_channel(contact, written=bool(variant))
    zone = customer_zone(contact.time_zone)
    received_on = question.received_at.astimezone(zone).date()
    extra = {
        "question": question,
        "received_on": received_on,
        "received_today": received_on == timezone.now().astimezone(zone).date(),
    }
    return [
        render_draft(
            contact=contact, job=job, kind=Message.Kind.ACKNOWLEDGEMENT, extra=extra, variant=variant, channel=channel
        )
    ]


def visit_window(visit: Any, zone: Any) -> dict[str, Any]:
    """The visit's window as the reader's clock says it: the day, the start and end times, and
    whether it is the whole day (said honestly rather than as "08:00–18:00")."""
    start, end = visit.window_start.astimezone(zone), visit.window_end.astimezone(zone)
    expected = visit.expected_at.astimezone(zone) if visit.expected_at else None
    return {"day": start.date(), "start": start, "end": end, "all_day": visit.all_day, "expected": expected}


def crew_names(visit: Any, crew: list[Any]) -> str:
    """Who is coming, as one phrase in the active language: "Luc, Sam and Acme Roofing"."""
    names = [person.first_name or person.name for person in crew]
    if visit.subcontractor:
        names.append(visit.subcontractor)
    if len(names) < 2:
        return "".join(names)
    return _("%(names)s and %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


# The messages about a visit that ask the customer whether its time suits them.
VISIT_KINDS_ASKING_AN_ANSWER = (Message.Kind.VISIT_BOOKED, Message.Kind.VISIT_MOVED, Message.Kind.VISIT_REMINDER)


def visit_drafts(visit: Any, *, kind: str, extra: dict[str, Any], author: Any = None) -> list[Draft]:
    """A message about one visit to each of the job's contacts, in their language and time zone:
    booked, moved, reminder, on the way, running late, cancelled. The context: ``visit``,
    ``window`` (see visit_window), ``old_window`` for a move, ``crew`` (the person cards of who is
    going), ``crew_names`` (them and the subcontractor, as one phrase), ``prepare`` (in the
    contact's language), ``reason``; ``confirm_url`` and ``another_time_url`` where the message
    asks whether the time suits, and ``self_booking`` (the customer may choose another time).
    Rendered in the contact's time zone: times print as their clock says."""
    job = visit.job
    crew = [person_card(person) for person in visit.installers.all()]
    asks_answer = kind in VISIT_KINDS_ASKING_AN_ANSWER
    drafts = []
    for contact in recipients(job, kind=kind):
        zone = customer_zone(contact.time_zone)
        with translation.override(contact.language):
            context = {
                "visit": visit,
                "window": visit_window(visit, zone),
                "crew": crew,
                "crew_names": crew_names(visit, crew),
                "subcontractor": visit.subcontractor,
                "prepare": visit.what_to_prepare,
                # The window as one calendar event, to add to their own calendar.
                "visit_calendar_url": visit_calendar_url(contact, visit),
                # Its two one-click answers (where the message asks for one), each its own page.
                "confirm_url": visit_answer_url(contact, visit, "confirm") if asks_answer else "",
                "another_time_url": visit_answer_url(contact, visit, "another-time") if asks_answer else "",
                "self_booking": job.pipeline.visit_self_booking,
                "reason": "",
                # The visit is the news: no "what happens next" box beside it.
                "next_step": None,
                **extra,
            }
        if "old_start" in extra:
            context["old_window"] = {
                "day": extra["old_start"].astimezone(zone).date(),
                "start": extra["old_start"].astimezone(zone),
                "end": extra["old_end"].astimezone(zone),
                "all_day": extra.get("old_all_day", False),
            }
        with timezone.override(zone):
            drafts.append(render_draft(contact=contact, job=job, kind=kind, extra=context, author=author))
    return drafts


def staff_alert(*, name: str, context: dict[str, Any], language: str) -> tuple[str, str]:
    """Subject and text of an email to a staff member, in ``language`` and the team's time zone,
    from ``templates/emails/staff/<name>-subject.txt`` and ``-body.txt``."""
    context = {"company": settings.COMPANY_NAME, "site_url": settings.SITE_URL, **context}
    with translation.override(language), timezone.override(business_zone()):
        subject = one_line(render_to_string(f"emails/staff/{name}-subject.txt", context))
        return subject, render_to_string(f"emails/staff/{name}-body.txt", context).strip() + "\n"


def portal_link_drafts(contact: Contact, *, job: Job | None = None) -> list[Draft]:
    """A fresh sign-in link for ``contact``, who asked for one (their old link had expired).

    Not about a job's progress, so it may have no job; with one, the link opens it. Email, or SMS
    when that is the contact's consented choice (a call task would be no use for a link).
    """
    channel = Message.Channel.SMS if reachable_channel(contact) == Message.Channel.SMS else Message.Channel.EMAIL
    if channel == Message.Channel.EMAIL and not contact.email:
        return []
    # The person to ask for help: this job's owner, else the owner of the customer's latest job.
    about = job or contact.customer.jobs.select_related("owner__staff_profile").order_by("-created_at").first()
    with translation.override(contact.language):
        link = _sign_in_url(contact, job, channel)
        context = {
            "company": settings.COMPANY_NAME,
            "contact": contact,
            "customer": contact.customer,
            "job": job,
            "owner": person_card(about.owner) if about is not None else None,
            "portal_url": link,
            "link_days": settings.PORTAL_LINK_MAX_AGE_DAYS,
            "next_step": next_step(job) if job is not None else None,
            "unsubscribe_url": "",
        }
        subject = one_line(render_to_string("emails/portal-link-subject.txt", context))
        html = ""
        if channel == Message.Channel.SMS:
            text = sms_text(render_to_string("sms/portal-link.txt", context), link)
            to_address = contact.phone
        else:
            text = tidy_text(render_to_string("emails/portal-link-body.txt", context))
            html = render_to_string("emails/portal-link-body.html", context)
            to_address = contact.email
    return [
        Draft(
            contact=contact,
            kind=Message.Kind.PORTAL_LINK,
            channel=channel,
            to_address=to_address,
            language=contact.language,
            subject=subject,
            body_text=text,
            body_html=html,
        )
    ]


# --- After the job: surveys and check-ins -------------------------------------------------------

# The scores a survey email offers for its first question, each one click from the inbox.
SURVEY_FIRST_SCORES = (1, 2, 3, 4, 5)


def survey_invitation_drafts(job: Job, *, contacts: Iterable[Contact]) -> list[Draft]:
    """ "How did it go?": the first question's scores one click away (each opens the survey with
    that score chosen, to send with one more click), then the other questions on the page."""
    installers = [person_card(user) for user in job.installers.all()]
    drafts = []
    for contact in contacts:
        url = survey_url(job, contact)
        extra = {
            "survey_url": url,
            "scores": [(score, f"{url}?product={score}") for score in SURVEY_FIRST_SCORES],
            "installer_names": ", ".join(person.first_name for person in installers),
            "stage": job.pipeline.survey_stage,
            # One thing to do in this message: answer. (The job is done or nearly.)
            "next_step": None,
        }
        drafts.append(
            render_draft(contact=contact, job=job, kind=Message.Kind.SURVEY_INVITATION, extra=extra, sms_link=url)
        )
    return drafts


def check_in_drafts(job: Job, *, contacts: Iterable[Contact]) -> list[Draft]:
    """ "Has everything kept working?" with "all good" and "there is a problem" one click away
    (each opens a page that asks to confirm: a link scanner must not answer for the customer)."""
    drafts = []
    for contact in contacts:
        url = checkin_url(job, contact)
        extra = {
            "checkin_url": url,
            "all_good_url": f"{url}?answer=all_good",
            "problem_url": f"{url}?answer=problem",
            # The day it was finished, as the contact's calendar says.
            "completed_on": (
                job.closed_at.astimezone(customer_zone(contact.time_zone)).date() if job.closed_at else None
            ),
            "next_step": None,
        }
        drafts.append(render_draft(contact=contact, job=job, kind=Message.Kind.CHECK_IN, extra=extra, sms_link=url))
    return drafts
