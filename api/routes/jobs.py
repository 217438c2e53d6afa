"""Pipelines (read), jobs (read, open, move on, dates) — the staff pages' own services."""

from typing import Literal
from uuid import UUID

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from api import selectors
from api.auth import acting, key_of, needs
from api.idempotency import idempotent
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, page
from api.problems import Problem, field_error, rules_about
from api.responses import json_response
from api.routes.common import found, job_pk, referenced
from api.schemas import AdvanceIn, Id, JobDetailOut, JobIn, JobPage, MilestoneMoveIn, PipelineOut, Since, VisitPage
from crm.models import Customer, Job, Milestone, Pipeline, StageTemplate
from crm.services import jobs as services

router = Router(tags=["jobs"])

JobStatus = Literal["active", "on_hold", "done", "cancelled"]


@router.get(
    "/pipelines/", response=list[PipelineOut], summary="Every pipeline with its stages in order", **needs("jobs:read")
)
def pipeline_list(request: HttpRequest) -> list[dict[str, object]]:
    return [selectors.pipeline_row(p) for p in selectors.pipelines()]


@router.get("/jobs/", response=JobPage, summary="List jobs, oldest change first", **needs("jobs:read"))
def job_list(
    request: HttpRequest,
    status: JobStatus | None = None,
    stage_id: Id | None = None,
    owner_id: Id | None = None,
    pipeline_id: Id | None = None,
    customer_id: Id | None = None,
    updated_since: Since | None = None,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = selectors.jobs(
        status=status,
        stage_id=stage_id,
        owner_id=owner_id,
        pipeline_id=pipeline_id,
        customer_id=customer_id,
        updated_since=updated_since,
    )
    return page(rows, cursor=cursor, limit=limit, by="updated_at", row=selectors.job_row)


def _detail(request: HttpRequest, public_id: UUID) -> dict[str, object]:
    job = selectors.job_detail(public_id)
    if job is None:
        raise Problem(404, "No job with this id.")
    return selectors.job_detail_row(job, messages_shown=key_of(request).has_scope("messages:read"))


@router.get("/visits/", response=VisitPage, summary="Visits: windows, crews and how each went", **needs("jobs:read"))
def visit_list(
    request: HttpRequest,
    job_id: UUID | None = None,
    updated_since: Since | None = None,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = selectors.visits(job_id=job_pk(job_id), updated_since=updated_since)
    return page(rows, cursor=cursor, limit=limit, by="updated_at", row=selectors.visit_row)


@router.get(
    "/jobs/{job_id}/",
    response=JobDetailOut,
    summary="One job: milestones, promises, open questions, messages",
    **needs("jobs:read"),
)
def job_get(request: HttpRequest, job_id: UUID) -> dict[str, object]:
    return _detail(request, job_id)


@router.post(
    "/jobs/",
    response={201: JobDetailOut},
    summary="Open a job (its welcome is sent as on the staff page)",
    **needs("jobs:write"),
)
@acting
@idempotent
def job_create(request: HttpRequest, body: JobIn) -> HttpResponse:
    customer = referenced(Customer.objects.all(), body.customer_id, field="customer_id", what="customer")
    pipeline = referenced(Pipeline.objects.all(), body.pipeline_id, field="pipeline_id", what="pipeline")
    owner = (
        referenced(User.objects.filter(is_active=True), body.owner_id, field="owner_id", what="active staff member")
        if body.owner_id
        else key_of(request).owner
    )
    contacts = None
    if body.contact_ids is not None:
        contacts = list(customer.contacts.filter(pk__in=body.contact_ids))
        missing = sorted(set(body.contact_ids) - {c.pk for c in contacts})
        if missing:
            raise Problem(
                422,
                f"These contacts are not {customer.name}'s: {', '.join(map(str, missing))}.",
                errors=[field_error("contact_ids", "not a contact of this customer")],
            )
    if not body.title.strip():
        raise Problem(422, "A job needs a title.", errors=[field_error("title", "blank")])
    if not body.welcome and not body.not_welcomed_reason.strip():
        raise Problem(
            422,
            "Say why the customer is not welcomed: they will hear nothing until the next stage.",
            errors=[field_error("not_welcomed_reason", "required when welcome is false")],
        )
    # What job_create may refuse, most specific first: the reference given, the start date, the owner.
    field = (
        "reference" if body.reference else "start_date" if body.start_date else "owner_id" if body.owner_id else None
    )
    with rules_about(field or "pipeline_id"):
        job = services.job_create(
            customer=customer,
            pipeline=pipeline,
            owner=owner,
            title=body.title,
            actor=key_of(request).owner,
            contacts=contacts,
            start_date=body.start_date,
            reference=body.reference,
            notify_customer=body.welcome,
            not_told_reason=body.not_welcomed_reason,
        )
    return json_response(_detail(request, job.public_id), status=201)


@router.post(
    "/jobs/{job_id}/advance/",
    response={200: JobDetailOut},
    summary="Move a job to another stage (409 if it moved since expected_stage_id)",
    **needs("jobs:write"),
)
@acting
@idempotent
def job_advance(request: HttpRequest, job_id: UUID, body: AdvanceIn) -> HttpResponse:
    job = found(Job.objects.select_related("current_stage"), what="job", public_id=job_id)
    stages = StageTemplate.objects.filter(pipeline_id=job.pipeline_id)
    to_stage = referenced(stages, body.to_stage_id, field="to_stage_id", what="stage in this job's pipeline")
    expected = (
        referenced(stages, body.expected_stage_id, field="expected_stage_id", what="stage in this job's pipeline")
        if body.expected_stage_id
        else None
    )
    with rules_about("to_stage_id"):
        services.job_advance(
            job=job,
            to_stage=to_stage,
            actor=key_of(request).owner,
            expected_stage=expected,
            backwards_reason=body.backwards_reason,
            note=body.note,
            notify_customer=body.notify_customer,
        )
    return json_response(_detail(request, job.public_id))


@router.post(
    "/jobs/{job_id}/milestones/{stage_id}/move/",
    response={200: JobDetailOut},
    summary="Move the date a stage is expected (and tell the customer, or not)",
    **needs("jobs:write"),
)
@acting
@idempotent
def milestone_move(request: HttpRequest, job_id: UUID, stage_id: Id, body: MilestoneMoveIn) -> HttpResponse:
    job = found(Job.objects.all(), what="job", public_id=job_id)
    milestone = found(Milestone.objects.filter(job=job).select_related("job"), what="milestone", stage_id=stage_id)
    field = "reason" if not body.reason.strip() else "new_date"
    with rules_about(field):
        services.milestone_move(
            milestone=milestone,
            new_date=body.new_date,
            reason=body.reason,
            actor=key_of(request).owner,
            tell_customer=body.tell_customer,
            note=body.note,
        )
    return json_response(_detail(request, job.public_id))
