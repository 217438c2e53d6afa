"""What the API reads and writes, as typed schemas (the OpenAPI document is made from them).

Inputs forbid unknown fields and bound every text, so a typo is a 400 naming the field instead of
a value silently ignored."""

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from crm.workdays import business_zone


def _storable(value: str) -> str:
    """Text every database stores: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Not valid text: it holds a lone surrogate (\\ud800-\\udfff).") from None
    return value


Storable = AfterValidator(_storable)


Text = Annotated[str, StringConstraints(max_length=5000), Storable]
Line = Annotated[str, StringConstraints(max_length=200), Storable]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), Storable]
Id = Annotated[int, Field(ge=1, le=2**62)]


def _aware(moment: datetime) -> datetime:
    """A time without a zone (``2026-03-01`` or ``2026-03-01T08:00``) is the business's local time."""
    return timezone.make_aware(moment, business_zone()) if timezone.is_naive(moment) else moment


# ``updated_since``: any ISO 8601 date or time; one without a zone is in the business's time zone.
Since = Annotated[datetime, AfterValidator(_aware)]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


# --- Read ---------------------------------------------------------------------------------------


class Ref(Schema):
    id: int
    name: str


class ContactOut(Schema):
    id: int
    customer_id: int
    name: str
    email: str
    phone: str
    language: str
    preferred_channel: str
    sms_consent: bool
    opted_out: bool
    created_at: datetime
    updated_at: datetime


class CustomerOut(Schema):
    id: int
    name: str
    kind: str
    address: str
    created_at: datetime
    updated_at: datetime
    contacts: list[ContactOut]


class StageOut(Schema):
    id: int
    position: int
    name: str
    name_fr: str
    customer_visible: bool
    default_duration_days: int


class PipelineOut(Schema):
    id: int
    name: str
    description: str
    is_active: bool
    stages: list[StageOut]


class StageRef(Schema):
    id: int
    name: str
    position: int


class Person(Schema):
    id: int
    name: str
    email: str


class JobOut(Schema):
    id: UUID
    reference: str
    title: str
    status: str
    customer: Ref
    pipeline: Ref
    stage: StageRef
    owner: Person
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    staff_url: str


class MilestoneOut(Schema):
    stage: StageRef
    planned_date: date | None
    forecast_date: date | None
    reached_at: datetime | None


class PromiseOut(Schema):
    id: int
    kind: str
    title: str
    state: str
    first_due_at: datetime
    due_at: datetime
    kept_at: datetime | None
    broken_at: datetime | None


class QuestionOut(Schema):
    id: int
    job_id: UUID
    source: str
    body: str
    contact_id: int | None
    received_at: datetime
    answer_due_on: date
    answered_at: datetime | None


class MessageOut(Schema):
    id: int
    job_id: UUID | None
    contact_id: int | None
    channel: str
    direction: str
    kind: str
    status: str
    to: str
    subject: str
    body: str
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    error: str


class VisitOut(Schema):
    id: UUID
    job_id: UUID
    kind: str
    status: str
    window_start: datetime
    window_end: datetime
    all_day: bool
    duration_minutes: int
    address: str
    installers: list[str]
    subcontractor: str
    confirmed_at: datetime | None
    on_the_way_at: datetime | None
    expected_at: datetime | None
    arrived_at: datetime | None
    done_at: datetime | None
    closed_at: datetime | None
    close_reason: str
    updated_at: datetime


class JobDetailOut(JobOut):
    contact_ids: list[int]
    milestones: list[MilestoneOut]
    promises: list[PromiseOut]
    open_questions: list[QuestionOut]
    visits: list[VisitOut]
    recent_messages: list[MessageOut]


class SurveyOut(Schema):
    id: int
    job_id: UUID
    contact_id: int | None
    invited_at: datetime
    answered_at: datetime | None
    updated_at: datetime | None
    product_quality: int | None
    workmanship: int | None
    installer_conduct: int | None
    recommend: int | None
    comment: str
    low: bool


class Page(Schema):
    next_cursor: str | None


class CustomerPage(Page):
    results: list[CustomerOut]


class ContactPage(Page):
    results: list[ContactOut]


class JobPage(Page):
    results: list[JobOut]


class MessagePage(Page):
    results: list[MessageOut]


class SurveyPage(Page):
    results: list[SurveyOut]


class VisitPage(Page):
    results: list[VisitOut]


class QuestionPage(Page):
    results: list[QuestionOut]


class Figure(Schema):
    name: str
    value: float | None
    counted_from: int | None = None


class ReportOut(Schema):
    first_day: date
    last_day: date
    figures: list[Figure]


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


# --- Write --------------------------------------------------------------------------------------


class CustomerIn(In):
    name: Name
    kind: Literal["household", "company"] = "household"
    address: Text = ""
    notes: Text = ""


class ContactIn(In):
    name: Name
    email: Annotated[str, StringConstraints(max_length=254), Storable] = ""
    phone: Annotated[str, StringConstraints(max_length=32), Storable] = ""
    language: Literal["en", "fr"] = "en"
    preferred_channel: Literal["email", "sms", "phone"] = "email"
    sms_consent: bool = Field(False, description="They agreed to texts (recorded as given through the API).")


class JobIn(In):
    customer_id: Id
    pipeline_id: Id
    title: Name
    owner_id: Id | None = Field(None, description="Default: the key's owner.")
    contact_ids: list[Id] | None = Field(None, max_length=50, description="Default: every contact of the customer.")
    start_date: date | None = None
    reference: Annotated[str, StringConstraints(max_length=32), Storable] | None = None
    welcome: bool = Field(True, description="Send the welcome message (as the staff page does).")
    not_welcomed_reason: Line = ""


class AdvanceIn(In):
    to_stage_id: Id
    expected_stage_id: Id | None = Field(
        None, description="The stage you last saw: if the job has moved since, 409 with who moved it."
    )
    backwards_reason: Line = ""
    note: Text = ""
    notify_customer: bool = True


class MilestoneMoveIn(In):
    new_date: date
    reason: Annotated[str, StringConstraints(max_length=300), Storable]
    tell_customer: bool = False
    note: Text = ""


class CallIn(In):
    contact_id: Id
    outcome: Literal["reached", "voicemail", "no_answer"]
    notes: Text = ""
    callback_on: date | None = None
    asked: Text = Field("", description="What they asked for on the call: becomes a request, acknowledged.")


class MessageIn(In):
    body: Annotated[str, StringConstraints(min_length=1, max_length=5000), Storable]
    contact_ids: list[Id] | None = Field(None, max_length=50, description="Default: every contact of the job.")


class AnswerIn(In):
    body: Annotated[str, StringConstraints(min_length=1, max_length=5000), Storable]
