"""Files both ways: what a customer sends (photos, documents: from the portal or attached to an
email) and the documents the team shares (a quote, a certificate: the promise of it kept when it
is shared).

Every file is inspected first (crm.uploads: type from the content, size, pixels, EXIF stripped);
the bytes are written to storage, then the rows, in one transaction; if anything in it fails, its
commit included, the bytes it wrote are deleted again (stored_files_undone_on_failure), so nothing
is ever half-stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Commitment, Contact, Job, JobEvent, JobFile, Message
from crm.notify import document_drafts
from crm.services.alerts import alert_owner
from crm.services.events import record_event
from crm.services.guards import ensure_contacts_of, lock_job
from crm.services.outbox import messages_queue
from crm.services.promises import KEEPABLE_STATES, commitments_keep
from crm.services.versions import next_version
from crm.text import clean_text
from crm.uploads import Inspected

logger = logging.getLogger(__name__)

MAX_NOTE_LENGTH = 2000
MAX_TITLE_LENGTH = 200


def job_bytes_stored(job: Job) -> int:
    """What the job's files take in storage now (removed ones no longer count)."""
    # Thumbnails are small and ours: they do not count against the customer.
    return int(job.files.filter(removed_at__isnull=True).aggregate(n=Sum("size"))["n"] or 0)


def room_left(job: Job) -> int:
    return max(0, settings.FILE_JOB_MAX_MB * 1024 * 1024 - job_bytes_stored(job))


def ensure_room(job: Job, files: Iterable[Inspected]) -> None:
    """Refuse a set of files that would take the job past FILE_JOB_MAX_MB."""
    adding = sum(f.size for f in files)
    left = room_left(job)
    if adding > left:
        raise DomainError(
            _(
                "These files take %(adding)s and this job has room for %(left)s more (%(limit)s in all). "
                "Send fewer files, or smaller ones."
            )
            % {
                "adding": filesizeformat(adding),
                "left": filesizeformat(left),
                "limit": filesizeformat(settings.FILE_JOB_MAX_MB * 1024 * 1024),
            }
        )


# The names written to storage by the transaction being run, so that they can be deleted if it
# does not commit. Storage is not transactional: a row rolled back must not leave its bytes.
_written_names: ContextVar[list[str] | None] = ContextVar("files_written", default=None)


@contextmanager
def stored_files_undone_on_failure() -> Iterator[None]:
    """Wrap a service's whole transaction (put it outside ``transaction.atomic``, so a failed
    commit counts too): the bytes every ``_stored`` inside wrote are deleted again if anything
    fails. Nested, the outermost one decides."""
    if _written_names.get() is not None:
        yield
        return
    names: list[str] = []
    token = _written_names.set(names)
    try:
        yield
    except BaseException:
        for name in names:
            try:
                JobFile.file.field.storage.delete(name)
            except Exception:
                logger.warning("Could not delete %s after a failed upload", name, exc_info=True)
        raise
    finally:
        _written_names.reset(token)


def _write(row: JobFile, inspected: Inspected) -> None:
    """Write a file's bytes (and thumbnail) to storage, each name noted for the undoing."""
    names = _written_names.get()
    if names is None:
        raise RuntimeError("Files are stored inside stored_files_undone_on_failure()")
    row.file.save(inspected.extension, ContentFile(inspected.data), save=False)
    names.append(row.file.name)
    if inspected.thumbnail:
        row.thumbnail.save(".jpg", ContentFile(inspected.thumbnail), save=False)
        names.append(row.thumbnail.name)


def _row(job: Job, inspected: Inspected, **fields: Any) -> JobFile:
    return JobFile(
        public_id=uuid.uuid4(),
        job=job,
        title=fields.pop("title", None) or inspected.name,
        original_name=inspected.name,
        content_type=inspected.content_type,
        size=inspected.size,
        width=inspected.width,
        height=inspected.height,
        sha256=inspected.sha256,
        **fields,
    )


def _stored(job: Job, files: list[Inspected], **fields: Any) -> list[JobFile]:
    rows = [(_row(job, f, **dict(fields)), f) for f in files]
    for row, inspected in rows:
        _write(row, inspected)
    return JobFile.objects.bulk_create([row for row, _inspected in rows])


def _touch(job: Job) -> None:
    """The portal's live page and its cache key follow ``updated_at``."""
    job.updated_at = next_version(job.updated_at)
    job.save(update_fields=["updated_at"])


# --- From the customer --------------------------------------------------------------------------


def files_receive(*, job: Job, contact: Contact, files: list[Inspected], note: str = "") -> Message:
    """Photos or documents a contact sent from the portal, with a note: one inbound message on the
    job (it waits in "Replies not yet answered" until someone answers or deals with it), the files
    attached to it, the owner alerted."""
    if not files:
        raise DomainError(_("Choose at least one photo or document."))
    if len(files) > settings.FILES_PER_UPLOAD:
        raise DomainError(_("Send at most %(n)s files at once.") % {"n": settings.FILES_PER_UPLOAD})
    note = clean_text(note).strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise DomainError(_("Keep the note under %(n)s characters.") % {"n": MAX_NOTE_LENGTH})
    with stored_files_undone_on_failure(), transaction.atomic():
        job = lock_job(job)
        ensure_contacts_of(job.customer, [contact])
        ensure_room(job, files)
        message = Message.objects.create(
            job=job,
            contact=contact,
            channel=Message.Channel.PORTAL,
            direction=Message.Direction.IN,
            kind=Message.Kind.REPLY,
            status=Message.Status.RECEIVED,
            language=contact.language,
            from_address=contact.email[:254],
            subject=_files_subject(len(files)),
            body_text=note,
            idempotency_key=f"upload:{uuid.uuid4().hex}",
        )
        stored = _stored(job, files, direction=JobFile.Direction.IN, contact=contact, message=message)
        record_event(
            job=job,
            kind=JobEvent.Kind.FILES_RECEIVED,
            actor=None,
            message_id=message.pk,
            contact=contact.name,
            names=[f.title for f in stored],
            note=note[:300],
        )
        alert_owner(
            job,
            name="files-received",
            context={"contact": contact, "files": stored, "note": note},
            key=f"message:{message.pk}",
        )
        _touch(job)
    return message


def _files_subject(count: int) -> str:
    # Stored once and read by staff: in the team's language.
    with translation.override(settings.LANGUAGE_CODE):
        return (_("%(n)s file sent from the portal") if count == 1 else _("%(n)s files sent from the portal")) % {
            "n": count
        }


def email_files_keep(*, message: Message, files: list[Inspected]) -> list[JobFile]:
    """The files that came with a customer's email, kept on its job like a portal upload. The
    caller, inbound_receive, runs inside stored_files_undone_on_failure and its transaction, has
    locked the job, chosen the files within its room and filed the message."""
    assert message.job is not None
    ensure_room(message.job, files)
    stored = _stored(message.job, files, direction=JobFile.Direction.IN, contact=message.contact, message=message)
    _touch(message.job)
    return stored


# --- From the team ------------------------------------------------------------------------------


def document_share(
    *,
    job: Job,
    actor: User,
    document: Inspected,
    title: str,
    keeps: Commitment | None = None,
    contacts: Iterable[Contact] | None = None,
) -> JobFile:
    """Put a document in front of the customer: on their portal, each contact told on their
    channel with a link to it, and the promise of it (``keeps``) kept at this moment — early, on
    time or late, as any promise."""
    title = clean_text(title).strip() or document.name
    if len(title) > MAX_TITLE_LENGTH:
        raise DomainError(_("Keep the title under %(n)s characters.") % {"n": MAX_TITLE_LENGTH})
    with stored_files_undone_on_failure(), transaction.atomic():
        job = lock_job(job)
        if job.status == Job.Status.CANCELLED:
            raise DomainError(_("This job was cancelled: there is nobody to share a document with."))
        if keeps is not None:
            keeps = Commitment.objects.select_for_update().filter(pk=keeps.pk, job=job).first()
            if keeps is None or keeps.kind != Commitment.Kind.DOCUMENT:
                raise DomainError(_("Choose a promised document of this job."))
            if keeps.state not in KEEPABLE_STATES:
                raise DomainError(_("That promise is no longer open: reload the page."))
        chosen = ensure_contacts_of(job.customer, contacts) if contacts is not None else list(job.contacts.all())
        ensure_room(job, [document])
        (shared,) = _stored(
            job, [document], direction=JobFile.Direction.OUT, title=title, shared_by=actor, commitment=keeps
        )
        rows = messages_queue(
            drafts=document_drafts(job, document=shared, contacts=chosen, author=actor),
            job=job,
            key=lambda d: f"document:{shared.public_id}:{d.contact.pk}:{d.channel}",
            author=actor,
        )
        Message.objects.filter(pk__in=[m.pk for m in rows]).update(document=shared)
        record_event(
            job=job,
            kind=JobEvent.Kind.DOCUMENT_SHARED,
            actor=actor,
            **shared.summary_data(),
            promise=keeps.title if keeps else "",
            told=[c.name for c in chosen],
        )
        if keeps is not None:
            commitments_keep(Commitment.objects.filter(pk=keeps.pk), actor=actor, at=shared.created_at)
        _touch(job)
    return shared


@transaction.atomic
def document_withdraw(*, document: JobFile, actor: User, reason: str) -> JobFile:
    """Take a shared document off the customer's portal (a quote replaced by a new one). The file
    is kept for the record; the portal says it was withdrawn, when, and why."""
    reason = clean_text(reason).strip()
    if not reason:
        raise DomainError(_("Say why it is withdrawn: the customer reads it."))
    job = lock_job(document.job)
    document = JobFile.objects.select_for_update().get(pk=document.pk)
    if document.direction != JobFile.Direction.OUT:
        raise DomainError(_("Only a document the team shared can be withdrawn."))
    if document.withdrawn_at is not None:
        raise DomainError(_("This document was already withdrawn."))
    document.withdrawn_at = timezone.now()
    document.withdrawn_by = actor
    document.withdrawn_reason = reason[:300]
    document.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawn_reason"])
    record_event(job=job, kind=JobEvent.Kind.DOCUMENT_WITHDRAWN, actor=actor, **document.summary_data(), reason=reason)
    _touch(job)
    return document
