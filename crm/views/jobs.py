"""Jobs: the list, the job page and its actions (the board: crm.views.board).

Every action is a POST through a service. With htmx the job's detail block is swapped in place
(the same partial the page includes); without JavaScript the action redirects back to the page
(post/redirect/get), or shows the page again with the form's errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from crm import job_actions, selectors
from crm.access import StaffRequest, is_manager, staff_required
from crm.errors import DomainError
from crm.forms.fields import search_text
from crm.forms.files import DocumentShareForm
from crm.forms.jobs import (
    AdvanceForm,
    AnswerForm,
    AssignForm,
    CallForm,
    DetailsForm,
    JobForm,
    MessageForm,
    MoveDateForm,
    OwnerForm,
    PromiseForm,
    RolesForm,
    StatusForm,
    StatusUpdateForm,
    TextForm,
)
from crm.forms.questions import JobQuestionForm
from crm.forms.visits import VisitBookForm, VisitRows
from crm.ids import id_from_input
from crm.models import AccessRecord, Job, Message, Pipeline, Question, StageTemplate
from crm.selectors import JobFilters
from crm.services import jobs as job_services
from crm.services import messages as message_services
from crm.services import outbox
from crm.services.questions import question_answer
from crm.text import person_name
from crm.views.access_log import seen
from crm.views.jobs_bulk import bulk_move_form
from crm.workdays import business_today

ACTION_FORMS: dict[str, type[JobForm]] = {
    "advance": AdvanceForm,
    "move": MoveDateForm,
    "call": CallForm,
    "message": MessageForm,
    "text": TextForm,
    "owner": OwnerForm,
    "status": StatusForm,
    "promise": PromiseForm,
    "update": StatusUpdateForm,
    "details": DetailsForm,
    "roles": RolesForm,
    # "Log a request": its view is in crm.views.questions.
    "request": JobQuestionForm,
    # The visits section (its views are in crm.views.visits): the book form, and each visit's
    # Move and Cancel forms (VisitRows is no action: it builds them from the page's prefetch).
    "visit_book": VisitBookForm,
    "visits": VisitRows,
    # Share a document (its views are in crm.views.files).
    "document": DocumentShareForm,
}


# --- Lookup -------------------------------------------------------------------------------------


def get_job(public_id: Any) -> Job:
    """Every job view finds its job here (staff see every job; a bad id is a 404)."""
    return get_object_or_404(
        Job.objects.select_related("customer", "pipeline", "current_stage", "owner"), public_id=public_id
    )


# --- List and board -----------------------------------------------------------------------------


def _filters(request: HttpRequest) -> JobFilters:
    # An id that names nothing (junk, out of range) is no filter at all.
    return JobFilters(
        q=search_text(request.GET.get("q")),
        owner=request.GET.get("owner", "mine"),
        pipeline=id_from_input(request.GET.get("pipeline"), Pipeline),
        stage=id_from_input(request.GET.get("stage"), StageTemplate),
        status=request.GET.get("status", "open"),
        late=request.GET.get("late") == "1",
        sort=request.GET.get("sort", "due"),
    )


@staff_required
@require_GET
def job_list(request: StaffRequest) -> HttpResponse:
    filters = _filters(request)
    page = Paginator(selectors.job_list(request.user, filters), 25).get_page(request.GET.get("page"))
    pipelines = list(Pipeline.objects.prefetch_related("stages").order_by("name"))
    query = request.GET.copy()
    query.pop("page", None)
    # Several jobs move at once only within one pipeline: the stages to offer are that pipeline's.
    pipeline = next((p for p in pipelines if p.pk == filters.pipeline), None)
    context = {
        "nav": "jobs",
        "page": page,
        "bulk_form": bulk_move_form(request, pipeline=pipeline, stage_id=filters.stage) if pipeline else None,
        "filters": filters,
        "pipelines": pipelines,
        "staff": selectors.staff_users(),
        "statuses": Job.Status.choices,
        "query": query.urlencode(),
        "sorts": [
            ("due", _("Next date")),
            ("reference", _("Reference")),
            ("customer", _("Customer")),
            ("stage", _("Stage")),
            ("-created", _("Newest")),
        ],
    }
    template = "crm/jobs/_results.html" if request.htmx else "crm/jobs/list.html"
    return render(request, template, context)


# --- The job page -------------------------------------------------------------------------------


def job_response(
    request: StaffRequest,
    job: Job,
    *,
    bound: dict[str, JobForm] | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The job page (or, for htmx, its detail block) as it is now, with any bound forms kept."""
    detail = selectors.job_detail(job.public_id)
    if detail is None:
        raise Http404("No such job")
    job = detail
    forms = {name: form_class(job=job) for name, form_class in ACTION_FORMS.items()}
    forms.update(bound or {})
    milestones = list(job.milestones.all())
    now = timezone.now()
    primary = job_actions.next_actions(job, milestones, now)
    context = {
        "nav": "jobs",
        "job": job,
        "forms": forms,
        "preview": preview or {},
        "can_reassign": is_manager(request.user),
        "answer_form": AnswerForm(),
        "milestones": milestones,
        "today": business_today(),
        "next_actions": primary,
        # The forms the page opens: the primary actions', and any with errors or a preview.
        "open_forms": {a.key for a in primary} | set(bound or {}) | {(preview or {}).get("name", "")},
        "next_promise": job_actions.next_promise(job),
        "next_visit": job_actions.next_visit(job, now),
    }
    template = "crm/job/_detail.html" if request.htmx else "crm/job/page.html"
    return render(request, template, context, status=status)


@staff_required
@require_GET
def job_page(request: StaffRequest, public_id: Any) -> HttpResponse:
    job = get_job(public_id)
    # The page shows the job's messages and files: one record says who saw them.
    seen(request, AccessRecord.Kind.JOB, customer_id=job.customer_id, subject=job.reference)
    return job_response(request, job)


def act_on_job(
    request: StaffRequest,
    public_id: Any,
    name: str,
    perform: Callable[[Job, dict[str, Any]], str],
) -> HttpResponse:
    """Validate the named form, call the service, and answer with the page as it now is."""
    job = get_job(public_id)
    form = ACTION_FORMS[name](request.POST, request.FILES, job=job)
    if form.is_valid():
        try:
            done = perform(job, form.cleaned_data)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, done)
            if request.htmx:
                return job_response(request, job)
            return redirect("crm:job", job.public_id)
    return job_response(request, job, bound={name: form}, status=200 if request.htmx else 400)


def advance_job(request: StaffRequest) -> Callable[[Job, dict[str, Any]], str]:
    def perform(job: Job, data: dict[str, Any]) -> str:
        expected = job.pipeline.stages.filter(pk=data["expected_stage"]).first()
        if expected is None:
            raise DomainError(_("Reload the page: the stage you saw is no longer part of this pipeline."))
        job_services.job_advance(
            job=job,
            to_stage=data["to_stage"],
            actor=request.user,
            expected_stage=expected,
            backwards_reason=data["backwards_reason"],
            note=data["note"],
            notify_customer=data["notify_customer"],
        )
        return _("%(ref)s is now at “%(stage)s”.") % {"ref": job.reference, "stage": data["to_stage"].name}

    return perform


@staff_required
@require_POST
def job_advance(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_job(request, public_id, "advance", advance_job(request))


def _move_date(request: StaffRequest) -> Callable[[Job, dict[str, Any]], str]:
    def perform(job: Job, data: dict[str, Any]) -> str:
        milestone = job_services.milestone_move(
            milestone=data["milestone"],
            new_date=data["new_date"],
            reason=data["reason"],
            actor=request.user,
            tell_customer=data["tell_customer"],
            note=data["note"],
        )
        if data["tell_customer"]:
            return _("The date of “%(stage)s” moved; the customer is being told now.") % {"stage": milestone.stage.name}
        return _("The date of “%(stage)s” moved.") % {"stage": milestone.stage.name}

    return perform


@staff_required
@require_POST
def job_move_date(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_job(request, public_id, "move", _move_date(request))


@staff_required
@require_POST
def job_log_call(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(job: Job, data: dict[str, Any]) -> str:
        message_services.call_log(
            job=job,
            contact=data["contact"],
            actor=request.user,
            outcome=data["outcome"],
            notes=data["notes"],
            callback_on=data["callback_on"],
            asked=data["asked"],
        )
        if data["asked"]:
            return _(
                "Call with %(name)s logged; what they asked is acknowledged in writing with an answer-by date."
            ) % {"name": data["contact"].name}
        return _("Call with %(name)s logged.") % {"name": data["contact"].name}

    return act_on_job(request, public_id, "call", perform)


def _send_message(request: StaffRequest) -> Callable[[Job, dict[str, Any]], str]:
    def perform(job: Job, data: dict[str, Any]) -> str:
        rows = message_services.free_message_send(
            job=job, actor=request.user, body=data["body"], contacts=data["contacts"]
        )
        return ngettext("Message queued for %(n)s contact.", "Message queued for %(n)s contacts.", len(rows)) % {
            "n": len(rows)
        }

    return perform


@staff_required
@require_POST
def job_send_message(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_job(request, public_id, "message", _send_message(request))


def _send_text(request: StaffRequest) -> Callable[[Job, dict[str, Any]], str]:
    def perform(job: Job, data: dict[str, Any]) -> str:
        message_services.text_send(job=job, contact=data["contact"], actor=request.user, body=data["body"])
        return _("Text to %(name)s queued.") % {"name": data["contact"].name}

    return perform


@staff_required
@require_POST
def job_send_text(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_job(request, public_id, "text", _send_text(request))


def _managers_only(request: StaffRequest, public_id: Any, refusal: str) -> HttpResponse:
    """The job page as it is, saying why this person may not do that."""
    messages.error(request, refusal)
    return job_response(request, get_job(public_id), status=200 if request.htmx else 403)


@staff_required
@require_POST
def job_reassign(request: StaffRequest, public_id: Any) -> HttpResponse:
    if not is_manager(request.user):
        return _managers_only(request, public_id, _("Only a manager can hand a job to someone else."))

    def perform(job: Job, data: dict[str, Any]) -> str:
        job_services.job_reassign(
            job=job,
            owner=data["owner"],
            actor=request.user,
            reason=data["reason"],
            tell_customer=data["tell_customer"],
        )
        owner = data["owner"]
        return _("%(name)s now owns the job.") % {"name": person_name(owner)}

    return act_on_job(request, public_id, "owner", perform)


@staff_required
@require_POST
def job_roles(request: StaffRequest, public_id: Any) -> HttpResponse:
    if not is_manager(request.user):
        return _managers_only(request, public_id, _("Only a manager can say who answers for each stage."))

    def perform(job: Job, data: dict[str, Any]) -> str:
        job_services.job_roles_set(job=job, holders=RolesForm.holders(job, data), actor=request.user)
        return _("Who answers for each stage of %(ref)s is saved.") % {"ref": job.reference}

    return act_on_job(request, public_id, "roles", perform)


STATUS_SERVICES: dict[str, Callable[..., Job]] = {
    "hold": job_services.job_hold,
    "resume": job_services.job_resume,
    "cancel": job_services.job_cancel,
    "complete": job_services.job_complete,
}


@staff_required
@require_POST
def job_change_status(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(job: Job, data: dict[str, Any]) -> str:
        job = STATUS_SERVICES[data["action"]](job=job, actor=request.user, reason=data["reason"])
        return _("Job %(ref)s is now %(status)s.") % {"ref": job.reference, "status": job.get_status_display().lower()}

    return act_on_job(request, public_id, "status", perform)


@staff_required
@require_POST
def job_edit_details(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(job: Job, data: dict[str, Any]) -> str:
        if not data["changed"]:
            return _("Nothing to save: the details are as they were.")
        job_services.job_update_details(
            job=job, actor=request.user, title=data["title"], contacts=data["contacts"], installers=data["installers"]
        )
        return _("The details of %(ref)s are saved.") % {"ref": job.reference}

    return act_on_job(request, public_id, "details", perform)


# --- Previews: exactly what each contact would receive (nothing is kept) -----------------------


def preview_of(form: BaseForm, perform: Callable[[dict[str, Any]], Any], *, name: str) -> dict[str, Any]:
    """What the previews show (crm/job/_preview.html): the drafts the action would queue when
    the form is valid, the service's refusal, or the form's errors."""
    result: dict[str, Any] = {"name": name}
    if form.is_valid():
        try:
            result["drafts"] = outbox.preview(lambda: perform(form.cleaned_data))
        except DomainError as error:
            result["problem"] = error.message
    else:
        result["errors"] = form.errors
    return result


def action_preview(
    request: StaffRequest, public_id: Any, name: str, perform: Callable[[Job, dict[str, Any]], str]
) -> HttpResponse:
    """Run the action's service in a transaction that is rolled back, and show the messages it
    queued: the preview is what will be sent, by construction."""
    job = get_job(public_id)
    form = ACTION_FORMS[name](request.GET, job=job)
    return preview_response(request, job, form, lambda data: perform(job, data), bound_as=name, name=name)


def preview_response(
    request: StaffRequest,
    job: Job,
    form: JobForm,
    perform: Callable[[dict[str, Any]], Any],
    *,
    bound_as: str,
    name: str,
) -> HttpResponse:
    """The preview of ``form``'s action: the fragment alone for htmx, else the job page with the
    form kept (as ``bound_as``) and the preview under it (matched by ``name``, the form's prefix)."""
    result = preview_of(form, perform, name=name)
    if request.htmx:
        return render(request, "crm/job/_preview.html", {"preview": result, "job": job})
    return job_response(request, job, bound={bound_as: form}, preview=result)


@staff_required
@require_GET
def job_advance_preview(request: StaffRequest, public_id: Any) -> HttpResponse:
    return action_preview(request, public_id, "advance", advance_job(request))


@staff_required
@require_GET
def job_move_date_preview(request: StaffRequest, public_id: Any) -> HttpResponse:
    return action_preview(request, public_id, "move", _move_date(request))


@staff_required
@require_GET
def job_message_preview(request: StaffRequest, public_id: Any) -> HttpResponse:
    return action_preview(request, public_id, "message", _send_message(request))


@staff_required
@require_GET
def job_text_preview(request: StaffRequest, public_id: Any) -> HttpResponse:
    return action_preview(request, public_id, "text", _send_text(request))


# --- Questions and messages on the job ----------------------------------------------------------


def back_to_job(request: StaffRequest, job: Job, *, done: str | None = None, error: str | None = None) -> HttpResponse:
    if error:
        messages.error(request, error)
    elif done:
        messages.success(request, done)
    if request.htmx:
        return job_response(request, job)
    return redirect("crm:job", job.public_id)


@staff_required
@require_POST
def question_answer_view(request: StaffRequest, public_id: Any, request_id: int) -> HttpResponse:
    job = get_job(public_id)
    question = get_object_or_404(Question, pk=request_id, job=job)
    form = AnswerForm(request.POST)
    if not form.is_valid():
        # The field's own message: nothing written, too long, or a character that cannot be kept.
        return back_to_job(request, job, error=str(form.errors["body"][0]))
    try:
        question_answer(question=question, body=form.cleaned_data["body"], actor=request.user)
    except DomainError as error:
        return back_to_job(request, job, error=error.message)
    return back_to_job(request, job, done=_("Answer queued."))


def _job_message(job: Job, message_id: int) -> Message:
    return get_object_or_404(Message.objects.select_related("contact", "job"), pk=message_id, job=job)


def _on_job_message(
    request: StaffRequest, public_id: Any, message_id: int, service: Callable[..., Message], done: str
) -> HttpResponse:
    job = get_job(public_id)
    try:
        service(message=_job_message(job, message_id), actor=request.user)
    except DomainError as error:
        return back_to_job(request, job, error=error.message)
    return back_to_job(request, job, done=done)


@staff_required
@require_POST
def message_handled(request: StaffRequest, public_id: Any, message_id: int) -> HttpResponse:
    return _on_job_message(
        request, public_id, message_id, message_services.message_mark_handled, _("Marked as dealt with.")
    )


@staff_required
@require_POST
def message_retry(request: StaffRequest, public_id: Any, message_id: int) -> HttpResponse:
    return _on_job_message(request, public_id, message_id, message_services.message_retry, _("Sending again."))


# --- Unassigned mail ----------------------------------------------------------------------------


@staff_required
@require_GET
def inbox(request: StaffRequest) -> HttpResponse:
    page = Paginator(selectors.unassigned_inbound(), 25).get_page(request.GET.get("page"))
    seen(request, AccessRecord.Kind.INBOX, subject=str(page.number))
    return render(request, "crm/inbox.html", {"nav": "inbox", "page": page, "rows": selectors.assignment_choices(page)})


@staff_required
@require_POST
def inbox_assign(request: StaffRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(selectors.unassigned_inbound(), pk=message_id)
    jobs: QuerySet[Job] = Job.objects.select_related("customer").filter(status__in=Job.OPEN_STATUSES)
    form = AssignForm(request.POST, jobs=jobs)
    if not form.is_valid():
        messages.error(request, _("Choose the job this email is about."))
        return redirect("crm:inbox")
    try:
        message_services.inbound_assign(message=message, job=form.cleaned_data["job"], actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("crm:inbox")
    messages.success(request, _("Filed on %(ref)s.") % {"ref": form.cleaned_data["job"].reference})
    return redirect("crm:inbox")


@staff_required
@require_POST
def inbox_dismiss(request: StaffRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(selectors.unassigned_inbound(), pk=message_id)
    message_services.message_mark_handled(message=message, actor=request.user)
    messages.success(request, _("Set aside: it no longer shows here."))
    return redirect("crm:inbox")


urlpatterns: list[URLPattern] = [
    path("jobs/", job_list, name="jobs"),
    path("jobs/<uuid:public_id>/", job_page, name="job"),
    path("jobs/<uuid:public_id>/advance/", job_advance, name="job_advance"),
    path("jobs/<uuid:public_id>/advance/preview/", job_advance_preview, name="job_advance_preview"),
    path("jobs/<uuid:public_id>/roles/", job_roles, name="job_roles"),
    path("jobs/<uuid:public_id>/move-date/", job_move_date, name="job_move_date"),
    path("jobs/<uuid:public_id>/move-date/preview/", job_move_date_preview, name="job_move_date_preview"),
    path("jobs/<uuid:public_id>/call/", job_log_call, name="job_log_call"),
    path("jobs/<uuid:public_id>/message/", job_send_message, name="job_send_message"),
    path("jobs/<uuid:public_id>/message/preview/", job_message_preview, name="job_message_preview"),
    path("jobs/<uuid:public_id>/text/", job_send_text, name="job_send_text"),
    path("jobs/<uuid:public_id>/text/preview/", job_text_preview, name="job_text_preview"),
    path("jobs/<uuid:public_id>/owner/", job_reassign, name="job_reassign"),
    path("jobs/<uuid:public_id>/status/", job_change_status, name="job_change_status"),
    path("jobs/<uuid:public_id>/details/", job_edit_details, name="job_edit_details"),
    path("jobs/<uuid:public_id>/requests/<int:request_id>/answer/", question_answer_view, name="question_answer"),
    path("jobs/<uuid:public_id>/messages/<int:message_id>/handled/", message_handled, name="message_handled"),
    path("jobs/<uuid:public_id>/messages/<int:message_id>/retry/", message_retry, name="message_retry"),
    path("inbox/", inbox, name="inbox"),
    path("inbox/<int:message_id>/assign/", inbox_assign, name="inbox_assign"),
    path("inbox/<int:message_id>/dismiss/", inbox_dismiss, name="inbox_dismiss"),
]
