"""The API's reads: querysets with what each representation needs joined or prefetched (a fixed
number of queries per page, pinned in tests), and the representations themselves (plain dicts in
the shapes of api.schemas)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from crm.links import absolute
from crm.models import (
    Commitment,
    Contact,
    Customer,
    Job,
    Message,
    Pipeline,
    Question,
    StageTemplate,
    Survey,
    Visit,
)
from crm.text import person_name

RECENT_MESSAGES = 20
# The customer's own links in a message (sign-in, unsubscribe, survey, calendar...): each signs
# someone in or acts for them, so none leaves through the API.
CUSTOMER_LINK = re.compile(r"https?://[^\s<>\"]+/portal/[^\s<>\"]+")
CUSTOMER_LINK_SHOWN = "[customer link]"


def without_customer_links(text: str) -> str:
    return CUSTOMER_LINK.sub(CUSTOMER_LINK_SHOWN, text)


def contact_row(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "customer_id": contact.customer_id,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "language": contact.language,
        "preferred_channel": contact.preferred_channel,
        "sms_consent": contact.sms_consent_at is not None,
        "opted_out": contact.opted_out_at is not None,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


def customers() -> QuerySet[Customer]:
    return Customer.objects.prefetch_related(Prefetch("contacts", queryset=Contact.objects.order_by("pk")))


def customer_row(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "name": customer.name,
        "kind": customer.kind,
        "address": customer.address,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "contacts": [contact_row(c) for c in customer.contacts.all()],
    }


def pipelines() -> QuerySet[Pipeline]:
    return Pipeline.objects.order_by("name").prefetch_related(
        Prefetch("stages", queryset=StageTemplate.objects.order_by("position"))
    )


def pipeline_row(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": pipeline.pk,
        "name": pipeline.name,
        "description": pipeline.description,
        "is_active": pipeline.is_active,
        "stages": [
            {
                "id": s.pk,
                "position": s.position,
                "name": s.name,
                "name_fr": s.name_fr,
                "customer_visible": s.customer_visible,
                "default_duration_days": s.default_duration_days,
            }
            for s in pipeline.stages.all()
        ],
    }


def jobs(
    *,
    status: str | None = None,
    stage_id: int | None = None,
    owner_id: int | None = None,
    pipeline_id: int | None = None,
    customer_id: int | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Job]:
    rows = Job.objects.select_related("customer", "pipeline", "current_stage", "owner")
    if status:
        rows = rows.filter(status=status)
    if stage_id:
        rows = rows.filter(current_stage_id=stage_id)
    if owner_id:
        rows = rows.filter(owner_id=owner_id)
    if pipeline_id:
        rows = rows.filter(pipeline_id=pipeline_id)
    if customer_id:
        rows = rows.filter(customer_id=customer_id)
    if updated_since:
        rows = rows.filter(updated_at__gte=updated_since)
    return rows


def job_row(job: Job) -> dict[str, Any]:
    stage = job.current_stage
    return {
        "id": job.public_id,
        "reference": job.reference,
        "title": job.title,
        "status": job.status,
        "customer": {"id": job.customer_id, "name": job.customer.name},
        "pipeline": {"id": job.pipeline_id, "name": job.pipeline.name},
        "stage": {"id": stage.pk, "name": stage.name, "position": stage.position},
        "owner": {"id": job.owner_id, "name": person_name(job.owner), "email": job.owner.email},
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "closed_at": job.closed_at,
        "staff_url": absolute(job.get_absolute_url()),
    }


def messages(*, job_id: int | None = None, updated_since: datetime | None = None) -> QuerySet[Message]:
    rows = Message.objects.exclude(kind=Message.Kind.STAFF_ALERT).select_related("job")
    if job_id:
        rows = rows.filter(job_id=job_id)
    if updated_since:
        rows = rows.filter(
            Q(created_at__gte=updated_since)
            | Q(sent_at__gte=updated_since)
            | Q(delivered_at__gte=updated_since)
            | Q(failed_at__gte=updated_since)
        )
    return rows


def message_row(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "job_id": message.job.public_id if message.job is not None else None,
        "contact_id": message.contact_id,
        "channel": message.channel,
        "direction": message.direction,
        "kind": message.kind,
        "status": message.status,
        "to": message.to_address,
        "subject": message.subject,
        "body": without_customer_links(message.body_text),
        "created_at": message.created_at,
        "sent_at": message.sent_at,
        "delivered_at": message.delivered_at,
        "failed_at": message.failed_at,
        "error": message.last_error,
    }


def question_row(question: Question) -> dict[str, Any]:
    return {
        "id": question.pk,
        "job_id": question.job.public_id,
        "source": question.source,
        "body": question.body,
        "contact_id": question.contact_id,
        "received_at": question.received_at,
        "answer_due_on": question.answer_due_on,
        "answered_at": question.answered_at,
    }


def questions(*, open_only: bool = False, updated_since: datetime | None = None) -> QuerySet[Question]:
    rows = Question.objects.select_related("job")
    if open_only:
        rows = rows.filter(answered_at__isnull=True)
    if updated_since:
        rows = rows.filter(Q(received_at__gte=updated_since) | Q(answered_at__gte=updated_since))
    return rows


def visits(*, job_id: int | None = None, updated_since: datetime | None = None) -> QuerySet[Visit]:
    rows = Visit.objects.select_related("job", "kind").prefetch_related("installers")
    if job_id:
        rows = rows.filter(job_id=job_id)
    if updated_since:
        rows = rows.filter(updated_at__gte=updated_since)
    return rows


def visit_row(visit: Visit) -> dict[str, Any]:
    return {
        "id": visit.public_id,
        "job_id": visit.job.public_id,
        "kind": visit.kind.name,
        "status": visit.status,
        "window_start": visit.window_start,
        "window_end": visit.window_end,
        "all_day": visit.all_day,
        "duration_minutes": visit.duration_minutes,
        "address": visit.address,
        "installers": sorted(person_name(person) for person in visit.installers.all()),
        "subcontractor": visit.subcontractor,
        "confirmed_at": visit.confirmed_at,
        "on_the_way_at": visit.on_the_way_at,
        "expected_at": visit.expected_at,
        "arrived_at": visit.arrived_at,
        "done_at": visit.done_at,
        "closed_at": visit.closed_at,
        "close_reason": visit.close_reason,
        "updated_at": visit.updated_at,
    }


def job_detail(public_id: Any) -> Job | None:
    """One job with its milestones, promises, open questions, visits and latest messages."""
    return (
        jobs()
        .prefetch_related(
            "contacts",
            "milestones__stage",
            Prefetch("commitments", queryset=Commitment.objects.order_by("due_at", "pk")),
            Prefetch(
                "questions",
                queryset=Question.objects.filter(answered_at__isnull=True).order_by("received_at"),
                to_attr="open_questions",
            ),
            Prefetch(
                "visits",
                queryset=Visit.objects.select_related("kind").prefetch_related("installers").order_by("window_start"),
            ),
        )
        .filter(public_id=public_id)
        .first()
    )


def job_detail_row(job: Job, *, messages_shown: bool) -> dict[str, Any]:
    """The job's page; its latest messages and open questions only for a key that may read
    messages (``messages_shown``: the scope messages:read), else empty."""
    recent = (
        list(
            Message.objects.filter(job=job)
            .exclude(kind=Message.Kind.STAFF_ALERT)
            .order_by("-created_at", "-pk")[:RECENT_MESSAGES]
        )
        if messages_shown
        else []
    )
    for message in recent:
        message.job = job
    for question in job.open_questions:  # type: ignore[attr-defined]
        question.job = job
    job_visits = list(job.visits.all())
    for visit in job_visits:
        visit.job = job
    return {
        **job_row(job),
        "contact_ids": sorted(c.pk for c in job.contacts.all()),
        "milestones": [
            {
                "stage": {"id": m.stage_id, "name": m.stage.name, "position": m.stage.position},
                "planned_date": m.planned_date,
                "forecast_date": m.forecast_date,
                "reached_at": m.completed_at,
            }
            for m in sorted(job.milestones.all(), key=lambda m: m.stage.position)
        ],
        "promises": [
            {
                "id": c.pk,
                "kind": c.kind,
                "title": c.title,
                "state": c.state,
                "first_due_at": c.first_due_at,
                "due_at": c.due_at,
                "kept_at": c.kept_at,
                "broken_at": c.broken_at,
            }
            for c in job.commitments.all()
        ],
        "open_questions": [question_row(q) for q in job.open_questions] if messages_shown else [],  # type: ignore[attr-defined]
        "visits": [visit_row(v) for v in job_visits],
        "recent_messages": [message_row(m) for m in recent],
    }


def surveys(*, updated_since: datetime | None = None) -> QuerySet[Survey]:
    rows = Survey.objects.select_related("job")
    if updated_since:
        rows = rows.filter(Q(invited_at__gte=updated_since) | Q(updated_at__gte=updated_since))
    return rows


def survey_row(survey: Survey) -> dict[str, Any]:
    return {
        "id": survey.pk,
        "job_id": survey.job.public_id,
        "contact_id": survey.contact_id,
        "invited_at": survey.invited_at,
        "answered_at": survey.answered_at,
        "updated_at": survey.updated_at,
        "product_quality": survey.product_quality,
        "workmanship": survey.workmanship,
        "installer_conduct": survey.installer_conduct,
        "recommend": survey.recommend,
        "comment": survey.comment,
        "low": survey.is_low,
    }
