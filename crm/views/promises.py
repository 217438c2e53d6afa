"""Promises on a job: the one-click "new date, tell them now" flow, staff promises, the ready
status update for a silent job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from crm.access import StaffRequest, staff_required
from crm.errors import DomainError
from crm.forms.jobs import CommitmentMoveForm
from crm.models import Commitment, Job
from crm.redirects import next_page
from crm.services import jobs as job_services
from crm.services import messages as message_services
from crm.services import outbox
from crm.services import promises as promise_services
from crm.views.jobs import act_on_job, back_to_job, get_job


def _get_commitment(job: Job, commitment_id: int) -> Commitment:
    return get_object_or_404(
        Commitment.objects.select_related("job", "contact", "milestone__stage"), pk=commitment_id, job=job
    )


@staff_required
@require_http_methods(["GET", "POST"])
def commitment_move(request: StaffRequest, public_id: Any, commitment_id: int) -> HttpResponse:
    """Get in front of it: pick the new date and the reason, see exactly what the customer will
    read, send it now. GET with ?preview=1 shows the preview; only POST changes anything."""
    job = get_job(public_id)
    commitment = _get_commitment(job, commitment_id)
    data = request.POST if request.method == "POST" else (request.GET if "new_date" in request.GET else None)
    form = CommitmentMoveForm(data)
    preview: list[Any] = []
    problem = ""
    if data is not None and form.is_valid():

        def act() -> Commitment:
            return job_services.commitment_move_and_tell(
                commitment=commitment,
                new_date=form.cleaned_data["new_date"],
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                actor=request.user,
            )

        try:
            if request.method == "POST":
                act()
                messages.success(request, _("New date given; the customer is being told now."))
                return redirect("crm:job", job.public_id)
            preview = outbox.preview(act)
        except DomainError as error:
            problem = error.message
    template = "crm/job/_preview.html" if request.htmx and request.method == "GET" else "crm/promises/move.html"
    context = {
        "nav": "jobs",
        "job": job,
        "commitment": commitment,
        "form": form,
        "preview": (
            {"name": "commitment", "drafts": preview, "problem": problem, "errors": form.errors}
            if data is not None
            else {}
        ),
    }
    return render(request, template, context, status=400 if request.method == "POST" else 200)


@staff_required
@require_POST
def commitment_kept(request: StaffRequest, public_id: Any, commitment_id: int) -> HttpResponse:
    job = get_job(public_id)
    try:
        promise_services.commitment_mark_kept(commitment=_get_commitment(job, commitment_id), actor=request.user)
    except DomainError as error:
        return back_to_job(request, job, error=error.message)
    return back_to_job(request, job, done=_("Promise kept."))


@staff_required
@require_POST
def promise_new(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(job: Job, data: dict[str, Any]) -> str:
        promise_services.document_promise(
            job=job, title=data["title"], due_on=data["due_on"], contact=data["contact"], actor=request.user
        )
        return _("Promise recorded: you will be reminded before it is due.")

    return act_on_job(request, public_id, "promise", perform)


def _status_update(request: StaffRequest) -> Callable[[Job, dict[str, Any]], str]:
    def perform(job: Job, data: dict[str, Any]) -> str:
        rows = message_services.status_update_send(job=job, actor=request.user, note=data["note"])
        return ngettext("Update queued for %(n)s contact.", "Update queued for %(n)s contacts.", len(rows)) % {
            "n": len(rows)
        }

    return perform


@staff_required
@require_POST
def status_update(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_job(request, public_id, "update", _status_update(request))


@staff_required
@require_POST
def dates_tell(request: StaffRequest, public_id: Any) -> HttpResponse:
    """One click: every date of the job that moved without the customer being told, in one
    message. Back to where it was clicked (the dashboard, or the job page)."""
    job = get_job(public_id)
    try:
        changes = job_services.dates_tell(job=job, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            ngettext(
                "%(ref)s: the customer is being told the new date.",
                "%(ref)s: the customer is being told the %(n)s new dates.",
                len(changes),
            )
            % {"ref": job.reference, "n": len(changes)},
        )
    return redirect(next_page(request, request.POST.get("next"), home=job.get_absolute_url()))


urlpatterns: list[URLPattern] = [
    path("jobs/<uuid:public_id>/dates/tell/", dates_tell, name="dates_tell"),
    path("jobs/<uuid:public_id>/promises/<int:commitment_id>/move/", commitment_move, name="commitment_move"),
    path("jobs/<uuid:public_id>/promises/<int:commitment_id>/kept/", commitment_kept, name="commitment_kept"),
    path("jobs/<uuid:public_id>/promises/new/", promise_new, name="promise_new"),
    path("jobs/<uuid:public_id>/status-update/", status_update, name="status_update"),
]
