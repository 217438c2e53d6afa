"""Campaigns (crm.models.Campaign): positive contact with a segment of customers — a tip, a
training invitation, an event — sent once, in batches, within the frequency cap.

A campaign goes draft → sending → sent:

- ``campaign_create`` / ``campaign_update`` write a draft, validated by the model's rules (dates in
  order, the text written for the languages it targets). Once sending has started it is the
  record of what was sent, and cannot change.
- ``campaign_send_start`` moves draft → sending with a conditional UPDATE (a double click, or two
  people at once, send it once), fixes the audience (how many, up to which contact), and
  enqueues ``crm.tasks.send_campaign`` after commit.
- ``campaign_send_batch`` works through the next contacts of the audience in ONE transaction:
  opted out → skipped; neither an email address nor SMS consent → skipped; held back by the
  frequency cap (crm.services.cadence) → skipped; everyone else gets one message in the outbox
  (kind TIP, no job, idempotency key ``campaign:<id>:<contact>``). The counters and the cursor
  move in the same transaction as the messages, so a batch run twice, or a task restarted, never
  sends twice nor counts twice.
- ``campaign_send_run`` (the task's body) runs batches for up to TASK_SECONDS, then hands the rest
  to a new task: django-q2 kills a task after a minute, and does not retry it.
- ``campaign_send_resume`` enqueues again a sending that has stood still (its worker was stopped);
  the cursor makes it go on where it stopped.

The segment is every contact of the customers it selects (a job in the pipeline, a completed
job), in its language. Campaigns are not about a job, so no JobEvent is written: the campaign row
records who wrote it and who sent it, and its counters what the sending did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_q.tasks import async_task

from crm.errors import DomainError
from crm.models import Campaign, Contact, Job, Pipeline
from crm.notify import Draft
from crm.notify_campaigns import campaign_channel, campaign_draft
from crm.services.cadence import filter_capped
from crm.services.outbox import messages_queue
from crm.sms_segments import SmsLength, measure
from crm.workdays import business_today

# Contacts per transaction: the contacts' rows stay locked for one batch, a fraction of a second.
BATCH_SIZE = 200
# A task hands the rest of the audience to a new task after this long (django-q2's timeout is 60 s).
TASK_SECONDS = 20
# A batch takes well under a second: a sending that has not moved for this long has lost its worker.
STALLED_AFTER = timedelta(seconds=90)
# Customers can open a campaign's page once it has started going out.
PUBLIC_STATUSES = (Campaign.Status.SENDING, Campaign.Status.SENT)

# A contact we can reach without a phone call: an email address, or a phone with SMS consent
# (the SQL twin of crm.notify_campaigns.campaign_channel).
REACHABLE = ~Q(email="") | (Q(sms_consent_at__isnull=False) & ~Q(phone=""))
# Those of them who get it by text (campaign_channel): their consented choice, or their only way.
BY_TEXT = Q(sms_consent_at__isnull=False) & ~Q(phone="") & (Q(preferred_channel=Contact.Channel.SMS) | Q(email=""))


@dataclass(frozen=True)
class CampaignDetails:
    """Everything staff write on a campaign (the form's fields)."""

    title: str
    kind: str
    starts_on: date
    ends_on: date
    subject_en: str = ""
    body_en: str = ""
    subject_fr: str = ""
    body_fr: str = ""
    link_url: str = ""
    link_label_en: str = ""
    link_label_fr: str = ""
    pipeline: Pipeline | None = None
    completed_jobs_only: bool = False
    language: str = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CampaignDetails:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def apply(self, campaign: Campaign) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            setattr(campaign, f.name, value.strip() if isinstance(value, str) else value)


EDITABLE_FIELDS = [f.name for f in fields(CampaignDetails)]


def campaign_message_key(campaign: Campaign, contact: Contact) -> str:
    return f"campaign:{campaign.pk}:{contact.pk}"


# --- Who receives it ----------------------------------------------------------------------------


def segment_contacts(campaign: Campaign) -> QuerySet[Contact]:
    """The contacts the campaign's filters select, in id order (opted out or not: the sending counts them)."""
    contacts = Contact.objects.all()
    if campaign.language:
        contacts = contacts.filter(language=campaign.language)
    if campaign.pipeline_id or campaign.completed_jobs_only:
        jobs = Job.objects.filter(customer=OuterRef("customer_id"))
        if campaign.pipeline_id:
            jobs = jobs.filter(pipeline_id=campaign.pipeline_id)
        if campaign.completed_jobs_only:
            jobs = jobs.filter(status=Job.Status.DONE)
        contacts = contacts.filter(Exists(jobs))
    return contacts.order_by("pk")


@dataclass(frozen=True)
class Audience:
    """Who the campaign would reach if it were sent now."""

    total: int
    by_language: list[tuple[str, str, int]]  # (code, name, contacts)
    opted_out: int
    unreachable: int
    capped: int

    @property
    def receiving(self) -> int:
        return self.total - self.opted_out - self.unreachable - self.capped


@dataclass(frozen=True)
class TextsByLanguage:
    code: str
    name: str
    contacts: int
    length: SmsLength  # of the text in this language (one contact's links: the others' are as long)


@dataclass(frozen=True)
class Texts:
    """What the campaign costs in text messages: by language, who gets it by text and in how many
    segments; ``total`` the text messages in all (what the provider bills)."""

    by_language: list[TextsByLanguage]

    @property
    def contacts(self) -> int:
        return sum(row.contacts for row in self.by_language)

    @property
    def total(self) -> int:
        return sum(row.contacts * row.length.segments for row in self.by_language)


def texts(campaign: Campaign) -> Texts:
    """The text messages sending the campaign now would take (before the frequency cap holds some
    contacts back: at most this many)."""
    by_text = segment_contacts(campaign).filter(BY_TEXT, opted_out_at__isnull=True)
    counts = dict(by_text.order_by().values_list("language").annotate(n=Count("pk")))
    rows = []
    for code, name in settings.LANGUAGES:
        if counts.get(code):
            _contact, (_email, sms) = preview_drafts(campaign, language=code)
            rows.append(TextsByLanguage(code, str(name), counts[code], measure(sms.body_text)))
    return Texts(rows)


def audience(campaign: Campaign, *, at: datetime | None = None) -> Audience:
    """The segment's size and breakdown: by language, and who would be skipped and why."""
    at = at or timezone.now()
    segment = segment_contacts(campaign)
    counts = dict(segment.order_by().values_list("language").annotate(n=Count("pk")))
    by_language = [(code, str(name), counts.get(code, 0)) for code, name in settings.LANGUAGES]
    opted_out = segment.filter(opted_out_at__isnull=False).count()
    candidates = segment.filter(opted_out_at__isnull=True)
    unreachable = candidates.exclude(REACHABLE).count()
    capped = 0
    chunk: list[Contact] = []
    for contact in candidates.filter(REACHABLE).only("pk", "opted_out_at").iterator(chunk_size=BATCH_SIZE):
        chunk.append(contact)
        if len(chunk) == BATCH_SIZE:
            capped += len(chunk) - len(filter_capped(chunk, at=at))
            chunk = []
    if chunk:
        capped += len(chunk) - len(filter_capped(chunk, at=at))
    return Audience(
        total=sum(counts.values()),
        by_language=by_language,
        opted_out=opted_out,
        unreachable=unreachable,
        capped=capped,
    )


def preview_contact(campaign: Campaign, *, language: str) -> Contact:
    """Whom the preview in ``language`` is for: the first contact of the segment who reads it and
    will receive the campaign, else an example contact (not saved)."""
    contact = (
        segment_contacts(campaign)
        .filter(REACHABLE, language=language, opted_out_at__isnull=True)
        .select_related("customer")
        .first()
    )
    if contact is not None:
        return contact
    return Contact(name=_("Sam Example"), email="sam@example.com", language=language)


def preview_drafts(campaign: Campaign, *, language: str) -> tuple[Contact, list[Draft]]:
    """Exactly what a contact who reads ``language`` receives, by email and by SMS, rendered by the
    function that renders what is sent."""
    contact = preview_contact(campaign, language=language)
    channels = ["email", "sms"]
    return contact, [campaign_draft(contact, campaign, channel=channel) for channel in channels]


# --- Writing a draft ----------------------------------------------------------------------------


def _validated(campaign: Campaign) -> Campaign:
    campaign.full_clean(exclude=["created_by", "sent_by"])
    return campaign


@transaction.atomic
def campaign_create(*, details: CampaignDetails, actor: User) -> Campaign:
    """A new draft. Raises ValidationError (by field) when a rule is broken."""
    campaign = Campaign(created_by_id=actor.pk)
    details.apply(campaign)
    _validated(campaign).save()
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, details: CampaignDetails) -> Campaign:
    """Change a draft. A campaign that has started sending is the record of what was sent."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        raise DomainError(_("This campaign has been sent: it can no longer be changed."))
    details.apply(campaign)
    campaign.updated_at = timezone.now()
    _validated(campaign).save()
    return campaign


# --- Sending ------------------------------------------------------------------------------------


def _enqueue(campaign_id: int) -> None:
    # Outside a transaction on_commit runs at once (the task handing over to the next one).
    transaction.on_commit(
        lambda: async_task("crm.tasks.send_campaign", campaign_id, task_name=f"send-campaign-{campaign_id}")
    )


@transaction.atomic
def campaign_send_start(*, campaign: Campaign, actor: User, texts_confirmed: int | None = None) -> Campaign:
    """Start sending, once: draft → sending, then the task after commit. Sending a campaign that is
    already sending or sent does nothing (a double click lands on its progress). A campaign that
    goes out by text too is sent only once the sender has confirmed how many text messages it
    takes (``texts_confirmed``): the count they saw, still the count now."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.DRAFT:
        return campaign
    cost = texts(campaign).total
    if cost and texts_confirmed != cost:
        raise DomainError(
            ngettext(
                "This campaign takes %(n)s text message: tick the box that confirms it, then send.",
                "This campaign takes %(n)s text messages: tick the box that confirms it, then send.",
                cost,
            )
            % {"n": cost}
        )
    try:
        _validated(campaign)
    except ValidationError as error:
        raise DomainError(
            _("Correct the campaign before sending it: %(problems)s") % {"problems": " ".join(error.messages)}
        ) from error
    today = business_today()
    if campaign.ends_on < today:
        raise DomainError(
            _("This campaign ended on %(date)s: change its dates before sending it.")
            % {"date": date_format(campaign.ends_on, "DATE_FORMAT")}
        )
    segment = segment_contacts(campaign)
    found = segment.aggregate(total=Count("pk"), last=Max("pk"))
    if not found["total"]:
        raise DomainError(_("No contact is in this campaign's audience: change who receives it."))
    now = timezone.now()
    # The claim: of two requests racing here (PostgreSQL's lock above serialises them anyway), one
    # moves the row out of "draft"; the other sends nothing.
    claimed = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(
        status=Campaign.Status.SENDING,
        total=found["total"],
        last_contact_id=found["last"],
        cursor=0,
        queued=0,
        skipped_capped=0,
        skipped_opted_out=0,
        skipped_unreachable=0,
        sent_by_id=actor.pk,
        send_started_at=now,
        updated_at=now,
    )
    if claimed:
        _enqueue(campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


def _finish(campaign_id: int, now: datetime) -> None:
    # The audience was fixed at the start; a contact deleted since was never reached. The total
    # becomes what was worked through, so the counters always add up.
    Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.SENT,
        total=F("queued") + F("skipped_capped") + F("skipped_opted_out") + F("skipped_unreachable"),
        sent_at=now,
        updated_at=now,
    )


@transaction.atomic
def campaign_send_batch(*, campaign_id: int, size: int | None = None) -> bool:
    """Send to the next ``size`` contacts of the audience; False once the campaign is sent (or was
    not sending)."""
    size = size or BATCH_SIZE
    campaign = Campaign.objects.select_for_update().filter(pk=campaign_id, status=Campaign.Status.SENDING).first()
    if campaign is None:
        return False
    ids = list(
        segment_contacts(campaign)
        .filter(pk__gt=campaign.cursor, pk__lte=campaign.last_contact_id)
        .values_list("pk", flat=True)[:size]
    )
    now = timezone.now()
    if not ids:
        _finish(campaign.pk, now)
        return False
    # Locking the contacts makes a check-in queued for one of them at this moment wait for this
    # batch, so the frequency cap sees one message or the other, never neither (crm.services.cadence).
    contacts = list(Contact.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    opted_out = [c for c in contacts if c.opted_out_at is not None]
    reachable = [c for c in contacts if c.opted_out_at is None and campaign_channel(c) is not None]
    allowed = filter_capped(reachable, at=now)
    messages_queue(
        drafts=[campaign_draft(contact, campaign) for contact in allowed],
        job=None,
        key=lambda draft: campaign_message_key(campaign, draft.contact),
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        queued=F("queued") + len(allowed),
        skipped_capped=F("skipped_capped") + len(reachable) - len(allowed),
        skipped_opted_out=F("skipped_opted_out") + len(opted_out),
        skipped_unreachable=F("skipped_unreachable") + len(contacts) - len(opted_out) - len(reachable),
        cursor=ids[-1],
        updated_at=now,
    )
    if len(ids) < size:
        _finish(campaign.pk, now)
        return False
    return True


def campaign_send_run(*, campaign_id: int, seconds: float | None = None) -> str:
    """The sending (the task): batches until the audience is done, or for ``seconds``, after which a
    new task goes on from where this one stopped. The campaign's status when it returns."""
    deadline = time.monotonic() + (TASK_SECONDS if seconds is None else seconds)
    while campaign_send_batch(campaign_id=campaign_id):
        if time.monotonic() >= deadline:
            _enqueue(campaign_id)
            return "continued"
    return Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first() or "missing"


def is_stalled(campaign: Campaign) -> bool:
    return campaign.status == Campaign.Status.SENDING and campaign.updated_at < timezone.now() - STALLED_AFTER


@transaction.atomic
def campaign_send_resume(*, campaign: Campaign) -> Campaign:
    """Go on with a sending whose worker stopped. Does nothing to a sending that is moving, is
    finished, or was resumed a moment ago; if the first task was only late, both run and the row
    lock hands each batch to one of them."""
    now = timezone.now()
    resumed = Campaign.objects.filter(
        pk=campaign.pk, status=Campaign.Status.SENDING, updated_at__lt=now - STALLED_AFTER
    ).update(updated_at=now)
    if resumed:
        _enqueue(campaign.pk)
    return Campaign.objects.get(pk=campaign.pk)


# --- What customers can read --------------------------------------------------------------------


def public_campaign(public_id: Any) -> Campaign | None:
    """The campaign behind a durable link, if customers may read it."""
    return Campaign.objects.filter(public_id=public_id, status__in=PUBLIC_STATUSES).first()


def current_campaigns(*, language: str, today: date | None = None, exclude: Campaign | None = None) -> list[Campaign]:
    """Campaigns customers who read ``language`` can read now (sent, not ended), soonest end first."""
    today = today or business_today()
    campaigns = Campaign.objects.filter(status__in=PUBLIC_STATUSES, ends_on__gte=today).filter(
        Q(language="") | Q(language=language)
    )
    if exclude is not None:
        campaigns = campaigns.exclude(pk=exclude.pk)
    return list(campaigns.order_by("ends_on", "pk")[:10])
