"""The board: a pipeline's open jobs in columns by stage, and a card moved to another column.

A move on the board is the job page's "move to stage" (crm.views.jobs.advance_job: the same service,
the same rolled-back preview of what each contact will receive, the same "tell the customer"):
a card dragged to another column (static/js/board.js) or sent there from the stage chosen under it
(a plain GET form: keyboard and no-JS) opens the move's page with its preview; confirming it
moves the job and returns to the board. The card carries the stage the board showed: if a
colleague moved the job since, the move is refused (409) with who moved it where.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from crm import selectors
from crm.access import StaffRequest, staff_required
from crm.errors import ConflictError, DomainError
from crm.forms.fields import search_text
from crm.forms.jobs import AdvanceForm
from crm.ids import id_from_input
from crm.models import AccessRecord, Pipeline
from crm.views.access_log import seen
from crm.views.jobs import advance_job, get_job, preview_of
from crm.workdays import business_today


def _board_filters(params: Any) -> dict[str, str]:
    """The board's own filters as its URL carries them: the pipeline (an id that names nothing is
    none) and whose jobs ("mine", an owner's id; anything else is everyone's, as on the list)."""
    pipeline = id_from_input(params.get("pipeline"), Pipeline)
    return {
        **({"pipeline": str(pipeline)} if pipeline is not None else {}),
        "owner": search_text(params.get("owner", "mine")),
    }


def board_url(params: Any) -> str:
    return f"{reverse('crm:job_board')}?{urlencode(_board_filters(params))}"


@staff_required
@require_GET
def job_board(request: StaffRequest) -> HttpResponse:
    pipelines = list(Pipeline.objects.filter(is_active=True).order_by("name"))
    if not pipelines:
        return render(request, "crm/jobs/board.html", {"nav": "jobs", "pipelines": [], "columns": []})
    filters = _board_filters(request.GET)
    pipeline = next((p for p in pipelines if str(p.pk) == filters.get("pipeline")), pipelines[0])
    owner = filters["owner"]
    columns = selectors.board(request.user, pipeline=pipeline, owner=owner)
    return render(
        request,
        "crm/jobs/board.html",
        {
            "nav": "jobs",
            "pipelines": pipelines,
            "pipeline": pipeline,
            "columns": columns,
            "stages": [stage for stage, _jobs in columns],
            "owner": owner,
            "today": business_today(),
        },
    )


def _move_page(request: HttpRequest, job: Any, form: AdvanceForm, preview: Any, status: int = 200) -> HttpResponse:
    to_stage = form.cleaned_data.get("to_stage") if hasattr(form, "cleaned_data") else None
    params = request.GET if request.method == "GET" else request.POST
    return render(
        request,
        "crm/jobs/board_move.html",
        {
            "nav": "jobs",
            "job": job,
            "form": form,
            "to_stage": to_stage,
            "backwards": to_stage is not None and to_stage.position < job.current_stage.position,
            "preview": preview,
            "filters": _board_filters(params),
            "back": board_url(params),
        },
        status=status,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def job_board_move(request: StaffRequest, public_id: Any) -> HttpResponse:
    """GET ``?to=<stage>&expected=<stage the board showed>``: the move and its preview. POST: the
    move, then back to the board (or this page again with what stopped it)."""
    job = get_job(public_id)
    perform = advance_job(request)
    if request.method == "POST":
        form = AdvanceForm(request.POST, job=job)
        status = 400
        if form.is_valid():
            try:
                done = perform(job, form.cleaned_data)
            except ConflictError as error:
                form.add_error(None, error.message)
                status = 409
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, done)
                return redirect(board_url(request.POST))
        return _move_page(request, job, form, None, status=status)
    seen(request, AccessRecord.Kind.JOB, customer_id=job.customer_id, subject=job.reference)
    form = AdvanceForm(
        {
            "advance-to_stage": request.GET.get("to", ""),
            "advance-expected_stage": request.GET.get("expected", ""),
            "advance-notify_customer": "on",
        },
        job=job,
    )
    preview = preview_of(form, lambda data: perform(job, data), name="advance")
    conflict = form.is_valid() and job.current_stage_id != form.cleaned_data["expected_stage"]
    return _move_page(request, job, form, preview, status=409 if conflict else 200)


urlpatterns: list[URLPattern] = [
    path("jobs/board/", job_board, name="job_board"),
    path("jobs/<uuid:public_id>/board-move/", job_board_move, name="job_board_move"),
]
