"""Emails to the team (a message that did not reach its customer, a reply, a question, a promise
about to slip or broken, a silent job, an unhappy customer). Each is an outbox row — kind
``staff_alert``, the staff member as recipient, in their language — sent, retried and failed
like any message, so an outage delays an alert but never loses it.

Failures are digested: the first message of a burst that does not reach its customer opens the
owner's digest, due ``STAFF_ALERT_DIGEST_SECONDS`` later; every failure until it is sent joins
it, so a burst of failures is one email listing them. The dashboard keeps the complete list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.access import MANAGERS_GROUP
from crm.errors import DomainError
from crm.models import Job, Message
from crm.notify import staff_alert
from crm.people import staff_language
from crm.services.outbox import message_id_header, message_send_again, rows_store

# A digest names at most this many failed messages; the dashboard lists them all.
DIGEST_LISTED = 50
DIGEST_KEY = "alert:messages-failed:"
DIGEST_TEMPLATE = "messages-failed"


def staff_url(path: str) -> str:
    """A staff page's address for an email: the site's address, then ``path``."""
    return f"{settings.SITE_URL}{path}"


def job_staff_url(job: Job) -> str:
    return staff_url(job.get_absolute_url())


def _alert_row(
    person: User, *, key: str, subject: str, body: str, language: str, now: datetime, due: datetime | None = None
) -> Message:
    return Message(
        idempotency_key=key[:200],
        staff=person,
        channel=Message.Channel.EMAIL,
        direction=Message.Direction.OUT,
        kind=Message.Kind.STAFF_ALERT,
        status=Message.Status.QUEUED,
        language=language,
        to_address=person.email,
        from_address=settings.DEFAULT_FROM_EMAIL,
        subject=subject[:300],
        body_text=body,
        email_message_id=message_id_header(),
        created_at=now,
        next_attempt_at=due,
    )


def alert_key(name: str, key: str) -> str:
    """The start of the idempotency key of an alert ``name`` about ``key`` (the person's id ends it)."""
    return f"alert:{name}:{key}"


def alert_row_key(name: str, key: str, person_id: int) -> str:
    """The idempotency key of the row alert_staff stores for one person."""
    return f"{alert_key(name, key)}:{person_id}"


def alert_staff(people: Iterable[User], *, name: str, context: dict[str, Any], key: str) -> list[Message]:
    """Queue ``emails/staff/<name>-…`` to each person with an address, in their own language.

    ``key`` names what the alert is about (``request:12``): the same alert about the same thing is
    stored once per person, however often the service that raises it runs."""
    job = context.get("job")
    extra = {"job_url": job_staff_url(job)} if job is not None else {}
    now = timezone.now()
    by_address = {person.email: person for person in people if person.email}
    rows = []
    for _address, person in sorted(by_address.items()):
        language = staff_language(person)
        subject, body = staff_alert(name=name, context={**extra, **context}, language=language)
        rows.append(
            _alert_row(
                person,
                key=alert_row_key(name, key, person.pk),
                subject=subject,
                body=body,
                language=language,
                now=now,
            )
        )
    # Not what the customer is sent: previews leave them out.
    return rows_store(rows, shown_in_previews=False)


def managers() -> list[User]:
    """The managers to alert (active staff of the group, and superusers), with their profiles for
    their language."""
    return list(
        User.objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name=MANAGERS_GROUP))
        .exclude(email="")
        .select_related("staff_profile")
        .distinct()
        .order_by("pk")
    )


def alert_owner(job: Job, *, name: str, context: dict[str, Any], key: str) -> list[Message]:
    """Queue an alert to the job's owner (the dashboard shows the same thing durably)."""
    return alert_staff([job.owner], name=name, context={"job": job, **context}, key=key)


@transaction.atomic
def alert_message_failed(message: Message) -> Message | None:
    """Tell the job's owner that ``message`` did not reach its customer, in the owner's digest.

    The owner's row is locked first, so two workers failing messages of the same owner at once
    add to one digest instead of opening two."""
    if message.job_id is None or message.kind == Message.Kind.STAFF_ALERT:
        return None
    owner = Job.objects.filter(pk=message.job_id).values("owner_id")
    person = User.objects.select_for_update(of=("self",)).select_related("staff_profile").filter(pk__in=owner).first()
    if person is None or not person.email:
        return None
    digest = (
        Message.objects.select_for_update()
        .filter(
            kind=Message.Kind.STAFF_ALERT,
            staff=person,
            status=Message.Status.QUEUED,
            idempotency_key__startswith=DIGEST_KEY,
        )
        .order_by("pk")
        .first()
    )
    if digest is None:
        now = timezone.now()
        [digest] = rows_store(
            [
                _alert_row(
                    person,
                    key=f"{DIGEST_KEY}{person.pk}:{message.pk}:{now.timestamp():.6f}",
                    subject="",
                    body="",
                    language=staff_language(person),
                    now=now,
                    due=now + timedelta(seconds=settings.STAFF_ALERT_DIGEST_SECONDS),
                )
            ],
            shown_in_previews=False,
        )
    Message.objects.filter(pk=message.pk).update(alerted_in=digest)
    _write_digest(digest, person)
    return digest


@transaction.atomic
def digest_absorb(digest: Message) -> None:
    """A digest whose send failed is queued again: the failures that came while it was being sent
    (they could not join it, and opened a newer digest) join it now, and the newer digest, never
    sent, goes. So an outage, however many times the digest is tried, ends in one email."""
    if digest.staff_id is None or not digest.idempotency_key.startswith(DIGEST_KEY):
        return
    owner = User.objects.select_for_update(of=("self",)).select_related("staff_profile").get(pk=digest.staff_id)
    newer = list(
        Message.objects.select_for_update()
        .filter(
            kind=Message.Kind.STAFF_ALERT,
            staff=owner,
            status=Message.Status.QUEUED,
            idempotency_key__startswith=DIGEST_KEY,
        )
        .exclude(pk=digest.pk)
        .values_list("pk", flat=True)
    )
    if not newer:
        return
    Message.objects.filter(alerted_in__in=newer).update(alerted_in=digest)
    # Their schedules find nothing to claim when they come.
    Message.objects.filter(pk__in=newer).delete()
    _write_digest(digest, owner)


def _write_digest(digest: Message, person: User) -> None:
    """The digest's text, as it now stands: every failure it holds, the first DIGEST_LISTED named."""
    failures = Message.objects.filter(alerted_in=digest).select_related("job__customer").order_by("pk")
    count = failures.count()
    listed = list(failures[:DIGEST_LISTED])
    language = staff_language(person)
    subject, body = staff_alert(
        name=DIGEST_TEMPLATE,
        context={
            "failures": [(m, job_staff_url(m.job)) for m in listed if m.job is not None],
            "count": count,
            "more": count - len(listed),
            "first": listed[0],
            "dashboard_url": staff_url(reverse("crm:home")),
        },
        language=language,
    )
    Message.objects.filter(pk=digest.pk).update(subject=subject[:300], body_text=body, language=language)


def alert_address(to: str, *, subject: str, body: str) -> Message:
    """An alert already written, for an address (the task that sent alerts before they were rows):
    stored once per content, to the staff member with that address when there is one."""
    person = User.objects.filter(email__iexact=to, is_active=True).order_by("pk").first()
    digest = hashlib.sha256("\n".join((to, subject, body)).encode("utf-8", "replace")).hexdigest()
    row = _alert_row(
        person or User(email=to),
        key=f"alert:written:{digest}",
        subject=subject,
        body=body,
        language=staff_language(person) if person else settings.LANGUAGE_CODE,
        now=timezone.now(),
    )
    row.staff = person
    [stored] = rows_store([row], shown_in_previews=False)
    return stored


@transaction.atomic
def alert_send_again(*, message: Message, actor: User) -> Message:
    """A staff alert that could not be sent: try again, to the person's current address."""
    message = Message.objects.select_for_update(of=("self",)).select_related("staff").get(pk=message.pk)
    if message.kind != Message.Kind.STAFF_ALERT or message.status not in (
        Message.Status.FAILED,
        Message.Status.BOUNCED,
    ):
        raise DomainError(_("Only an alert that could not be sent can be sent again."))
    address = message.staff.email if message.staff is not None else message.to_address
    if not address:
        raise DomainError(_("This person has no email address: add one first."))
    if message.status == Message.Status.BOUNCED and address == message.to_address:
        raise DomainError(_("This address bounced: correct the person's address first."))
    message_send_again(message, to_address=address)
    message.refresh_from_db()
    return message
