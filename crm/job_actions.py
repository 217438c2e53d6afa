"""What a job's page puts first: the facts the header gives (the next promise, the next visit)
and the one or two actions the job's situation calls for — answer the waiting question; give a
new date and tell the customer now, when a promise is slipping or broken or a stage runs late;
else move it on. Every other action stays one click away on the page (crm/job/_detail.html).

Read from the job as crm.selectors.job_detail loads it (no query of its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from crm.models import Commitment, Job, Milestone, StageTemplate, Visit
from crm.workdays import add_business_days, business_today, end_of_business_day

# At most this many primary buttons: more, and none of them is primary.
MOST = 2


@dataclass(frozen=True)
class NextAction:
    key: str  # "answer", "new_date" or "advance": the page opens that action's form
    label: str
    href: str


def slipping_promise(job: Job, now: datetime) -> Commitment | None:
    """The job's most urgent promise that is broken, past due or about to slip (due within
    COMMITMENT_WARNING_BUSINESS_DAYS), if any."""
    soon = end_of_business_day(add_business_days(business_today(), settings.COMMITMENT_WARNING_BUSINESS_DAYS))
    candidates: list[Any] = getattr(job, "all_commitments", [])
    for commitment in candidates:  # by due time
        if commitment.kind in (Commitment.Kind.RECOVERY, Commitment.Kind.VISIT):
            continue  # a call to make, a visit to move: their own actions
        if commitment.state == Commitment.State.BROKEN or (
            commitment.state in Commitment.OPEN_STATES and commitment.due_at <= soon
        ):
            return commitment
    return None


def next_promise(job: Job) -> Commitment | None:
    """The next open promise, by due time."""
    return next((c for c in getattr(job, "all_commitments", []) if c.state in Commitment.OPEN_STATES), None)


def next_visit(job: Job, now: datetime) -> Visit | None:
    """The next visit not over yet."""
    return next(
        (v for v in getattr(job, "all_visits", []) if v.status in Visit.UPCOMING_STATUSES and v.window_end > now),
        None,
    )


def next_stage(job: Job) -> StageTemplate | None:
    return next((s for s in job.pipeline.stages.all() if s.position > job.current_stage.position), None)


def next_actions(job: Job, milestones: list[Milestone], now: datetime) -> list[NextAction]:
    """The primary actions, most pressing first."""
    actions: list[NextAction] = []
    if getattr(job, "open_questions", None):
        actions.append(NextAction("answer", _("Answer the waiting question"), "#questions"))
    if job.is_open:
        slipping = slipping_promise(job, now)
        if slipping is not None:
            href = reverse("crm:commitment_move", args=[job.public_id, slipping.pk])
            actions.append(NextAction("new_date", _("New date, tell them now"), href))
        elif any(m.is_late for m in milestones):
            actions.append(NextAction("new_date", _("New date, tell them now"), "#action-move"))
        stage = next_stage(job)
        if stage is not None:
            actions.append(NextAction("advance", _("Move to “%(stage)s”") % {"stage": stage.label}, "#action-advance"))
    return actions[:MOST]
