"""Retention: the bytes of a closed job's files are removed FILE_RETENTION_MONTHS calendar months
after the job closed (done or cancelled); empty (None) keeps them for ever.

What the schedule (``crm.tasks.expire_files``, daily) removes is the bytes — the file and its
thumbnail in storage. The JobFile row stays, with ``removed_at`` set, so the job's page and the
portal still say what was there and when it went; the job's log gets one FILES_REMOVED event (the
system's: no actor) naming the files and the months setting.

Each job is done in its own transaction, its row locked (as crm.services.guards.lock_job does)
and checked again: a job re-opened, or closed again more recently, since the list was read is not
touched. Its files are claimed by a conditional UPDATE (``removed_at IS NULL``) before any byte is
deleted, so two runs at once never remove (or record) a file twice. A file whose bytes storage
would not delete is logged and given back (``removed_at`` empty again): the next run tries it
again, the others go now. Deleting bytes that are already gone is no error (neither the
filesystem nor S3 storage raises), so a run that dies half-way is finished by the next one.

A run removes at most ``batch`` files, oldest closed jobs first, and a job's files together (one
event) — unless one job alone has more than ``batch`` files, which then take several runs.
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.models import Job, JobEvent, JobFile
from crm.services.events import record_event
from crm.services.versions import next_version
from crm.sql import update_returning_pks

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 500
CLOSED_STATUSES = (Job.Status.DONE, Job.Status.CANCELLED)


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` this many calendar months earlier; a day the month has not (31 March − 1 month)
    becomes its last day (28 or 29 February), as dateutil's relativedelta does."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def retention_cutoff(*, now: datetime | None = None) -> datetime | None:
    """Files of jobs closed before this moment are due for removal (None: files are kept)."""
    months = settings.FILE_RETENTION_MONTHS
    if not months:
        return None
    return months_before(now or timezone.now(), months)


def files_due(*, cutoff: datetime, batch: int = DEFAULT_BATCH) -> dict[int, list[int]]:
    """The files to remove in one run, by job id: still stored, of jobs closed before ``cutoff``,
    oldest closed jobs first, at most ``batch`` files and each job's files whole (one query)."""
    rows = list(
        JobFile.objects.filter(removed_at__isnull=True, job__status__in=CLOSED_STATUSES, job__closed_at__lt=cutoff)
        .order_by("job__closed_at", "job_id", "pk")
        .values_list("job_id", "pk")[: batch + 1]
    )
    due: dict[int, list[int]] = {}
    for job_id, file_id in rows[:batch]:
        due.setdefault(job_id, []).append(file_id)
    if len(rows) > batch and len(due) > 1 and rows[batch][0] == rows[batch - 1][0]:
        # The last job does not fit whole: the next run removes all its files, in one event.
        del due[rows[batch - 1][0]]
    return due


def files_expire(*, now: datetime | None = None, batch: int = DEFAULT_BATCH) -> int:
    """The schedule: remove the bytes of the files whose retention has passed. Returns how many
    files were removed. Safe to run any number of times, concurrently too."""
    months = settings.FILE_RETENTION_MONTHS
    if not months:
        return 0
    now = now or timezone.now()
    cutoff = months_before(now, months)
    removed = 0
    for job_id, file_ids in files_due(cutoff=cutoff, batch=batch).items():
        try:
            removed += _job_files_remove(job_id, file_ids, cutoff=cutoff, now=now, months=months)
        except Exception:
            # Rolled back: its files are still listed as stored, and the next run tries again.
            logger.exception("Could not remove the expired files of job %s", job_id)
    return removed


def _job_files_remove(job_id: int, file_ids: list[int], *, cutoff: datetime, now: datetime, months: int) -> int:
    with transaction.atomic():
        # The job row alone, locked and read afresh (see lock_job): a re-opening waits for us, or
        # we see it.
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in CLOSED_STATUSES or job.closed_at is None or job.closed_at >= cutoff:
            return 0
        # The ids were listed for this job (a file never changes job): own columns only, so the
        # UPDATE is one statement under the database's row locks.
        claimed = update_returning_pks(JobFile.objects.filter(pk__in=file_ids, removed_at__isnull=True), removed_at=now)
        if not claimed:
            return 0  # another run has them
        files = list(JobFile.objects.filter(pk__in=claimed).order_by("pk"))
        gone = [document for document in files if _bytes_delete(document)]
        left = [document.pk for document in files if document not in gone]
        if left:
            JobFile.objects.filter(pk__in=left).update(removed_at=None)
        if not gone:
            return 0
        record_event(
            job=job,
            kind=JobEvent.Kind.FILES_REMOVED,
            actor=None,
            names=[document.title for document in gone],
            file_ids=[str(document.public_id) for document in gone],
            size=sum(document.size for document in gone),
            months=months,
        )
        # The portal's live page and its cache key follow ``updated_at``.
        job.updated_at = next_version(job.updated_at, now)
        job.save(update_fields=["updated_at"])
    return len(gone)


def _bytes_delete(document: JobFile) -> bool:
    """Delete the file's bytes, then its thumbnail's; False (logged) if storage refused."""
    try:
        for field in (document.file, document.thumbnail):
            if field.name:
                field.storage.delete(field.name)
    except Exception:
        logger.warning(
            "Could not delete the bytes of file %s (job %s): the next run tries again",
            document.pk,
            document.job_id,
            exc_info=True,
        )
        return False
    return True
