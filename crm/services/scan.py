"""The scan, run every few minutes by django-q2 (``crm.tasks.scan_commitments``): the owners'
morning digests of promises about to slip (crm.services.nudges), promises whose time passed
broken and told to the managers, owners of silent jobs told.

Above promises and nudges (it imports both; neither imports it), so nudges → promises stays
one-way.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Job
from crm.selectors import silent_jobs
from crm.services.alerts import alert_staff, managers
from crm.services.nudges import digests_send
from crm.services.promises import commitment_break, past_due


def scan(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Send each owner their morning digest of promises about to slip (the first run of a business
    day from opening time; each promise in one digest), mark promises whose time passed as broken
    and tell the managers (once each), and tell owners of silent jobs (once per silence). Safe to
    run any number of times, from any number of processes: every step is a conditional UPDATE that
    only one run can win. Counts: promises ``nudged``, ``digests`` sent, promises ``broken``,
    ``silent`` jobs."""
    now = now or timezone.now()
    counts = {"nudged": 0, "digests": 0, "broken": 0, "silent": 0}

    counts["nudged"], counts["digests"] = digests_send(now=now, batch=batch)

    due = past_due(now=now, batch=batch)
    told = managers() if due else []
    for commitment in due:
        with transaction.atomic():
            if not commitment_break(commitment, at=now):
                continue
            counts["broken"] += 1
            alert_staff(
                [*told, commitment.owner],
                name="promise-broken",
                context={"commitment": commitment, "job": commitment.job},
                key=f"commitment:{commitment.pk}:{commitment.due_at.isoformat()}",
            )

    counts["silent"] = _silence_alarm(now)
    return counts


def _silence_alarm(now: datetime) -> int:
    """Jobs the customer has heard nothing about for their pipeline's silence_days: tell the owner
    once, with a ready status update one click away."""
    sent = 0
    for job in silent_jobs(now=now).select_related("owner__staff_profile"):
        last = job.last_out or job.created_at
        with transaction.atomic():
            claimed = (
                Job.objects.filter(pk=job.pk)
                .filter(Q(silence_nudged_at__isnull=True) | Q(silence_nudged_at__lt=last))
                .update(silence_nudged_at=now)
            )
            if not claimed:
                continue
            sent += 1
            alert_staff(
                [job.owner],
                name="silence",
                context={"job": job, "last": last, "days": (now - last).days},
                key=f"job:{job.pk}:{last.isoformat()}",
            )
    return sent
