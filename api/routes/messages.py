"""Messages and questions: read their statuses; send a message, log a call, answer a question —
the staff pages' own services."""

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from api import selectors
from api.auth import acting, key_of, needs
from api.idempotency import idempotent
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, page
from api.problems import Problem, field_error, rules_about
from api.responses import json_response
from api.routes.common import found, job_pk, referenced
from api.schemas import (
    AnswerIn,
    CallIn,
    Id,
    MessageIn,
    MessageOut,
    MessagePage,
    QuestionOut,
    QuestionPage,
    Since,
    SurveyPage,
)
from crm.models import Job, Question
from crm.services import messages as services
from crm.services.questions import question_answer

router = Router(tags=["messages"])

MESSAGES_SINCE = Query(None, description="Created, sent, delivered or failed since.")
QUESTIONS_SINCE = Query(None, description="Received or answered since.")
SURVEYS_SINCE = Query(None, description="Sent or answered since.")


@router.get(
    "/messages/", response=MessagePage, summary="Messages in and out, with their statuses", **needs("messages:read")
)
def message_list(
    request: HttpRequest,
    job_id: UUID | None = None,
    updated_since: Since | None = MESSAGES_SINCE,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = selectors.messages(job_id=job_pk(job_id), updated_since=updated_since)
    return page(rows, cursor=cursor, limit=limit, by="pk", row=selectors.message_row)


@router.post(
    "/jobs/{job_id}/messages/",
    response={201: list[MessageOut]},
    summary="Send a message to the job's contacts",
    **needs("messages:write"),
)
@acting
@idempotent
def message_send(request: HttpRequest, job_id: UUID, body: MessageIn) -> HttpResponse:
    job = found(Job.objects.select_related("customer"), what="job", public_id=job_id)
    contacts = None
    if body.contact_ids is not None:
        contacts = list(job.contacts.filter(pk__in=body.contact_ids))
        if len(contacts) != len(set(body.contact_ids)):
            raise Problem(
                422,
                "Some of these contacts are not on this job.",
                errors=[field_error("contact_ids", "not on this job")],
            )
    with rules_about("body"):
        sent = services.free_message_send(job=job, actor=key_of(request).owner, body=body.body, contacts=contacts)
    for message in sent:
        message.job = job
    return json_response([selectors.message_row(m) for m in sent], status=201)


@router.post(
    "/jobs/{job_id}/calls/",
    response={201: MessageOut},
    summary="Log a phone call (what they asked becomes a request)",
    **needs("messages:write"),
)
@acting
@idempotent
def call_log(request: HttpRequest, job_id: UUID, body: CallIn) -> HttpResponse:
    job = found(Job.objects.select_related("customer"), what="job", public_id=job_id)
    contact = referenced(
        job.customer.contacts.all(), body.contact_id, field="contact_id", what="contact of this customer"
    )
    with rules_about("callback_on" if body.callback_on else "outcome"):
        call = services.call_log(
            job=job,
            contact=contact,
            actor=key_of(request).owner,
            outcome=body.outcome,
            notes=body.notes,
            callback_on=body.callback_on,
            asked=body.asked,
        )
    call.job = job
    return json_response(selectors.message_row(call), status=201)


@router.get(
    "/questions/",
    response=QuestionPage,
    summary="Customers' requests (open ones with open=true)",
    **needs("messages:read"),
)
def question_list(
    request: HttpRequest,
    open: bool = False,
    updated_since: Since | None = QUESTIONS_SINCE,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = selectors.questions(open_only=open, updated_since=updated_since)
    return page(rows, cursor=cursor, limit=limit, by="pk", row=selectors.question_row)


@router.post(
    "/questions/{question_id}/answer/",
    response={200: QuestionOut},
    summary="Answer a customer's request",
    **needs("messages:write"),
)
@acting
@idempotent
def question_answer_view(request: HttpRequest, question_id: Id, body: AnswerIn) -> HttpResponse:
    question = found(Question.objects.select_related("job"), what="question", pk=question_id)
    with rules_about("body"):
        answered = question_answer(question=question, body=body.body, actor=key_of(request).owner)
    answered.job = question.job
    return json_response(selectors.question_row(answered))


@router.get(
    "/surveys/", response=SurveyPage, summary="Satisfaction surveys and their answers", **needs("messages:read")
)
def survey_list(
    request: HttpRequest,
    updated_since: Since | None = SURVEYS_SINCE,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = selectors.surveys(updated_since=updated_since)
    return page(rows, cursor=cursor, limit=limit, by="pk", row=selectors.survey_row)
