"""Moving several jobs of one pipeline to a stage at once, from the jobs list.

Three steps, each a plain form (htmx is not needed): the list's tick boxes and stage (a POST, so a
long selection fits) → the review page, which runs the real service in a rolled-back transaction
and shows what the customers will receive → the go-ahead, which moves the jobs and goes back to
the same list. The review carries the stage each job was at: if a colleague moved one since, the
go-ahead is refused and the review shown again as things now are.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet, prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.access import StaffRequest, staff_required
from crm.errors import DomainError
from crm.forms.jobs_bulk import BulkConfirmForm, BulkMoveForm
from crm.models import Job, Message, Pipeline, StageTemplate
from crm.services import jobs as job_services
from crm.services import outbox

# --- Lookup -------------------------------------------------------------------------------------


def get_jobs(public_ids: list[uuid.UUID]) -> list[Job]:
    """Every bulk view finds its jobs here, by public id, in the order given (staff see every job,
    as on the job page). One that does not exist is a DomainError, shown on the review page."""
    found = {
        job.public_id: job
        for job in Job.objects.select_related("customer", "pipeline", "current_stage", "owner").filter(
            public_id__in=public_ids
        )
    }
    missing = [public_id for public_id in public_ids if public_id not in found]
    if missing:
        raise DomainError(
            ngettext(
                "%(count)s of the selected jobs no longer exists. Go back to the list and select again.",
                "%(count)s of the selected jobs no longer exist. Go back to the list and select again.",
                len(missing),
            )
            % {"count": len(missing)}
        )
    return [found[public_id] for public_id in public_ids]


# --- The jobs list's form ------------------------------------------------------------------------


def bulk_move_form(request: HttpRequest, *, pipeline: Pipeline, stage_id: int | None) -> BulkMoveForm:
    """The jobs list's "move selected jobs" form, shown when the list is filtered to one pipeline.
    Filtered to one stage as well, it offers the stage after it."""
    stages = list(pipeline.stages.all())
    current = next((stage for stage in stages if stage.pk == stage_id), None)
    following = [stage for stage in stages if current and stage.position > current.position]
    initial: dict[str, Any] = {"back": request.GET.urlencode()}
    if following:
        initial["to_stage"] = min(following, key=lambda stage: stage.position).pk
    return BulkMoveForm(pipeline=pipeline, initial=initial)


# --- Review -------------------------------------------------------------------------------------


def _review_page(
    request: StaffRequest,
    *,
    back_url: str,
    jobs: list[Job] | None = None,
    data: dict[str, Any] | None = None,
    refused: str = "",
    conflict: str = "",
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The review as things are now: each job from where it is to the stage, what the customers
    would receive (the real service, rolled back), and the go-ahead — or what stands in the way.

    ``errors``: what was wrong with the request itself (no jobs, unknown ones); ``refused``: why
    the service said no (then it is not run again)."""
    jobs = jobs or []
    context: dict[str, Any] = {
        "nav": "jobs",
        "back_url": back_url,
        "jobs": jobs,
        "rows": [(job, None) for job in jobs],
        "refused": refused,
        "conflict": conflict,
        "errors": errors or [],
    }
    if data:
        context.update(to_stage=data["to_stage"], notify_customer=data["notify_customer"])
    if jobs and data and not refused:
        try:
            drafts = outbox.preview(
                lambda: job_services.jobs_advance(
                    jobs=jobs,
                    to_stage=data["to_stage"],
                    actor=request.user,
                    note=data["note"],
                    notify_customer=data["notify_customer"],
                )
            )
        except DomainError as error:
            context["refused"] = error.message
        else:
            context.update(_what_will_be_sent(jobs, drafts))
            context["form"] = BulkConfirmForm.for_review(
                jobs=jobs,
                to_stage=data["to_stage"],
                note=data["note"],
                notify_customer=data["notify_customer"],
                back=data["back"],
            )
    if jobs and data and context["refused"]:
        context["narrowed"] = _narrowed(jobs, data)
    return render(request, "crm/jobs/bulk_review.html", context, status=status)


def _what_will_be_sent(jobs: list[Job], drafts: list[Message]) -> dict[str, Any]:
    """Messages per job, how many customers hear from us, and the first job's messages in full."""
    per_job: dict[int | None, list[Message]] = {}
    for draft in drafts:
        per_job.setdefault(draft.job_id, []).append(draft)
    first = next((job for job in jobs if job.pk in per_job), None)
    first_drafts = per_job[first.pk] if first else []
    prefetch_related_objects(first_drafts, "contact")
    return {
        "rows": [(job, len(per_job.get(job.pk, []))) for job in jobs],
        "drafts": drafts,
        "customers": len({job.customer_id for job in jobs if job.pk in per_job}),
        "first_job": first,
        "first_preview": {"drafts": first_drafts},
    }


def _narrowed(jobs: list[Job], data: dict[str, Any]) -> BulkMoveForm | None:
    """When some of the jobs cannot move, the same move for the others (the service moves all or
    none, so the person chooses to leave those out)."""
    movable = []
    for job in jobs:
        try:
            job_services.ensure_can_advance(job, data["to_stage"])
        except DomainError:
            continue
        movable.append(job)
    if not movable or len(movable) == len(jobs):
        return None
    return BulkMoveForm.narrowed(
        jobs=movable,
        to_stage=data["to_stage"],
        note=data["note"],
        notify_customer=data["notify_customer"],
        back=data["back"],
    )


def _form_errors(form: BulkMoveForm | BulkConfirmForm) -> list[str]:
    return [str(error) for errors in form.errors.values() for error in errors]


@staff_required
@require_POST
def jobs_bulk_review(request: StaffRequest) -> HttpResponse:
    form = BulkMoveForm(request.POST)
    if not form.is_valid():
        return _review_page(request, back_url=form.back_url, errors=_form_errors(form), status=400)
    try:
        jobs = get_jobs(form.cleaned_data["selected"])
    except DomainError as error:
        return _review_page(request, back_url=form.back_url, errors=[error.message], status=400)
    return _review_page(request, back_url=form.back_url, jobs=jobs, data=form.cleaned_data)


# --- Go-ahead -----------------------------------------------------------------------------------


def _moved_since(jobs: list[Job], seen: dict[uuid.UUID, int]) -> list[Job]:
    """Jobs no longer at the stage the person reviewed. Checked here, before the service locks the
    rows: the service's own checks (already there, past it, closed, on hold) cover the moment
    between this read and its lock."""
    return [job for job in jobs if job.current_stage_id != seen[job.public_id]]


def _done(jobs: list[Job], to_stage: StageTemplate, *, told: int) -> str:
    moved = ngettext(
        "Moved %(count)s job to “%(stage)s”",
        "Moved %(count)s jobs to “%(stage)s”",
        len(jobs),
    ) % {"count": len(jobs), "stage": to_stage.name}
    if told:
        telling = ngettext("%(count)s customer will be told.", "%(count)s customers will be told.", told) % {
            "count": told
        }
    else:
        telling = _("no customer is told.")
    return _("%(moved)s; %(telling)s") % {"moved": moved, "telling": telling}


def _customers_told(jobs: list[Job], *, since: Any) -> int:
    """How many customers got a stage-change message from this move (on any channel)."""
    told: QuerySet[Message] = Message.objects.filter(
        job__in=[job.pk for job in jobs], kind=Message.Kind.STAGE_CHANGE, created_at__gte=since
    )
    return told.values("job__customer_id").distinct().count()


@staff_required
@require_POST
def jobs_bulk_move(request: StaffRequest) -> HttpResponse:
    form = BulkConfirmForm(request.POST)
    if not form.is_valid():
        return _review_page(request, back_url=form.back_url, errors=_form_errors(form), status=400)
    data = form.cleaned_data
    try:
        jobs = get_jobs(list(data["seen"]))
    except DomainError as error:
        return _review_page(request, back_url=form.back_url, errors=[error.message], status=400)

    moved = _moved_since(jobs, data["seen"])
    if moved:
        conflict = ngettext(
            "%(refs)s was moved by someone else since your review, so nothing was changed. "
            "Here is the move as things are now: check it and confirm again.",
            "%(refs)s were moved by someone else since your review, so nothing was changed. "
            "Here is the move as things are now: check it and confirm again.",
            len(moved),
        ) % {"refs": ", ".join(job.reference for job in moved)}
        return _review_page(request, back_url=form.back_url, jobs=jobs, data=data, conflict=conflict, status=409)

    started = timezone.now()
    try:
        job_services.jobs_advance(
            jobs=jobs,
            to_stage=data["to_stage"],
            actor=request.user,
            note=data["note"],
            notify_customer=data["notify_customer"],
        )
    except DomainError as error:
        return _review_page(request, back_url=form.back_url, jobs=jobs, data=data, refused=error.message, status=400)
    messages.success(request, _done(jobs, data["to_stage"], told=_customers_told(jobs, since=started)))
    return redirect(form.back_url)


urlpatterns: list[URLPattern] = [
    path("jobs/move/review/", jobs_bulk_review, name="jobs_bulk_review"),
    path("jobs/move/", jobs_bulk_move, name="jobs_bulk_move"),
]
