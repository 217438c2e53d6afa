"""What the portal pages read. Every query starts from the signed-in contact's customer.

Each function returns what one page (or fragment) shows, prefetched for it, so a page costs the
same few queries whether a job has five milestones and messages or a hundred.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from django.contrib.auth.models import User
from django.db.models import Case, F, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone, translation

from crm import selectors as crm_selectors
from crm.models import Commitment, Contact, Job, JobEvent, JobFile, Message, Milestone, Question, Visit
from crm.people import PersonCard, person_card
from crm.workdays import business_today, business_zone

if TYPE_CHECKING:
    import uuid


# Closed jobs stay in the calendar feed this long (then their events leave the calendar).
CALENDAR_KEEPS_CLOSED_DAYS = 90


# --- Jobs ---------------------------------------------------------------------------------------


def customer_jobs(customer_id: int) -> QuerySet[Job]:
    """The customer's jobs: the only place portal job reads start from."""
    return Job.objects.filter(customer_id=customer_id)


def job_for_customer(customer_id: int, public_id: uuid.UUID) -> Job | None:
    """One job of the customer, with what its page shows about it; None for anyone else's."""
    return (
        customer_jobs(customer_id)
        .select_related("current_stage", "pipeline", "owner", "owner__staff_profile")
        .filter(public_id=public_id)
        .first()
    )


def job_public_id(customer_id: int, job_id: int) -> uuid.UUID | None:
    """The public id of the customer's job with this row id (a short link names the row id);
    None for anyone else's."""
    return customer_jobs(customer_id).filter(pk=job_id).values_list("public_id", flat=True).first()


def job_updated_at(customer_id: int, public_id: uuid.UUID) -> datetime | None:
    """The version of one of the customer's jobs (None for anyone else's)."""
    return customer_jobs(customer_id).filter(public_id=public_id).values_list("updated_at", flat=True).first()


def visible_milestones() -> QuerySet[Milestone]:
    return Milestone.objects.filter(stage__customer_visible=True).select_related("stage").order_by("stage__position")


@dataclass(frozen=True)
class JobCard:
    """One job on "My jobs": where it stands and what comes next."""

    job: Job
    reached: Milestone | None
    next: Milestone | None

    @property
    def next_is_overdue(self) -> bool:
        forecast = self.next.forecast_date if self.next else None
        return forecast is not None and forecast < business_today() and self.job.status == Job.Status.ACTIVE


def contact_jobs(contact: Contact) -> list[JobCard]:
    """ "My jobs": open ones first (newest first), then finished ones, most recently closed first;
    three queries however many jobs and milestones."""
    jobs = (
        customer_jobs(contact.customer_id)
        .prefetch_related(Prefetch("milestones", queryset=visible_milestones(), to_attr="visible_milestones"))
        .annotate(
            closed_rank=Case(
                When(status__in=Job.OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("closed_rank", F("closed_at").desc(nulls_first=True), "-created_at", "-pk")
    )
    cards = []
    for job in jobs:
        milestones: list[Milestone] = job.visible_milestones  # type: ignore[attr-defined]
        reached = [m for m in milestones if m.completed_at is not None]
        upcoming = [m for m in milestones if m.completed_at is None]
        cards.append(
            JobCard(
                job=job,
                reached=reached[-1] if reached else None,
                next=upcoming[0] if upcoming and job.is_open else None,
            )
        )
    return cards


# --- Status and timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class DateMove:
    """One change of a stage's expected date, as the customer is told about it."""

    old_date: date | None
    new_date: date
    at: datetime
    # When the customer was sent the new date; None when it moved without a message (a stage
    # reached late pushed it out, or staff chose not to tell).
    told_at: datetime | None
    reason: str


@dataclass
class TimelineEntry:
    milestone: Milestone
    state: Literal["done", "next", "upcoming"]
    moves: list[DateMove] = field(default_factory=list)

    @property
    def stage(self) -> Any:
        return self.milestone.stage

    @property
    def reached_on(self) -> date | None:
        """The day it was reached, in the active (the contact's) time zone."""
        completed_at = self.milestone.completed_at
        return timezone.localdate(completed_at) if completed_at is not None else None

    @property
    def first_planned_differs(self) -> bool:
        """Reached, or expected, on another day than first promised."""
        planned = self.milestone.planned_date
        shown = self.reached_on or self.milestone.forecast_date
        return planned is not None and shown is not None and shown != planned


@dataclass
class JobStatus:
    """Where the job stands, for the status card and the timeline (the live fragment)."""

    job: Job
    entries: list[TimelineEntry]
    today: date

    @property
    def reached(self) -> TimelineEntry | None:
        """The last stage the customer has seen reached."""
        done = [e for e in self.entries if e.state == "done"]
        return done[-1] if done else None

    @property
    def next(self) -> TimelineEntry | None:
        return next((e for e in self.entries if e.state == "next"), None)

    @property
    def asks_for_files(self) -> bool:
        """The next step's "what to prepare" asks for photos or documents (the box offers to send
        them, and thanks for what came)."""
        entry = self.next
        return entry is not None and entry.stage.asks_for_files and self.job.is_open

    @property
    def next_is_overdue(self) -> bool:
        """The next step's date has passed without it being reached: say so, do not pretend."""
        entry = self.next
        forecast = entry.milestone.forecast_date if entry else None
        return forecast is not None and forecast < self.today and self.job.status == Job.Status.ACTIVE


def _parse_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _moves_by_milestone(milestones: list[Milestone], events: list[JobEvent]) -> dict[int, list[DateMove]]:
    """Every change of each milestone's forecast date, oldest first, read from the event log.

    A date moved on purpose is a ``date_moved`` event (told to the customer when
    ``tell_customer``); the later dates it pushes out are listed under ``rolled`` in the same
    event, and so are those a stage reached late pushes out (``stage_advanced``, told when its
    message went out: ``told_customer``). A ``dates_told`` event tells, at its time, every date
    of the stages it lists that had moved without the customer hearing.
    """
    by_id = {m.pk: m for m in milestones}
    by_stage_name = {m.stage.name: m for m in milestones}
    moves: dict[int, list[DateMove]] = {m.pk: [] for m in milestones}
    for event in events:
        data: dict[str, Any] = event.data or {}
        if event.kind == JobEvent.Kind.DATES_TOLD:
            for change in data.get("changes") or []:
                milestone = by_stage_name.get(change.get("stage"))
                if milestone is not None:
                    moves[milestone.pk] = [
                        move if move.told_at is not None else replace(move, told_at=event.created_at)
                        for move in moves[milestone.pk]
                    ]
            continue
        told = bool(data.get("tell_customer"))
        # Dates pushed out were told with the message since these keys exist (older events: never).
        rolled_told = bool(data.get("rolled_told") or data.get("told_customer"))
        if event.kind == JobEvent.Kind.DATE_MOVED:
            milestone = by_id.get(data.get("milestone_id"))  # type: ignore[arg-type]
            new_date = _parse_date(data.get("new_date"))
            if milestone is not None and new_date is not None:
                moves[milestone.pk].append(
                    DateMove(
                        old_date=_parse_date(data.get("old_date")),
                        new_date=new_date,
                        at=event.created_at,
                        told_at=event.created_at if told else None,
                        # The reason is the customer's to read only when it was sent to them.
                        reason=str(data.get("reason") or "") if told else "",
                    )
                )
        for rolled in data.get("rolled") or []:
            milestone = by_stage_name.get(rolled.get("stage"))
            new_date = _parse_date(rolled.get("new_date"))
            if milestone is not None and new_date is not None:
                moves[milestone.pk].append(
                    DateMove(
                        old_date=_parse_date(rolled.get("old_date")),
                        new_date=new_date,
                        at=event.created_at,
                        told_at=event.created_at if rolled_told else None,
                        reason="",
                    )
                )
    return moves


def job_status(job: Job) -> JobStatus:
    """The customer-visible milestones with their dates and date changes: two queries."""
    milestones = list(visible_milestones().filter(job=job))
    events = list(
        job.events.filter(kind__in=[JobEvent.Kind.DATE_MOVED, JobEvent.Kind.STAGE_ADVANCED, JobEvent.Kind.DATES_TOLD])
        .order_by("created_at", "pk")
        .only("job_id", "kind", "created_at", "data")
    )
    moves = _moves_by_milestone(milestones, events)
    entries = []
    next_found = False
    for milestone in milestones:
        if milestone.completed_at is not None:
            state: Literal["done", "next", "upcoming"] = "done"
        elif not next_found and job.is_open:
            state, next_found = "next", True
        else:
            state = "upcoming"
        entries.append(TimelineEntry(milestone=milestone, state=state, moves=moves[milestone.pk]))
    return JobStatus(job=job, entries=entries, today=business_today())


def status_etag(*, updated_at: datetime, language: str, time_zone: str) -> str:
    """The live fragment's version: every service that changes a job bumps ``updated_at``; the
    same job reads differently in another language or time zone, and "late" depends on the day."""
    source = f"{updated_at.isoformat()}|{language}|{time_zone}|{business_today().isoformat()}"
    return '"' + hashlib.sha256(source.encode()).hexdigest()[:24] + '"'


# --- Message history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem:
    """One entry of the conversation on a job: a message either way, or a question asked."""

    at: datetime
    direction: str  # Message.Direction
    kind: Literal["message", "question"]
    channel: str = ""
    channel_label: str = ""
    subject: str = ""
    body: str = ""
    status: str = ""
    answer_due_on: date | None = None
    answered_at: datetime | None = None
    # What came with it: photos and documents they sent with the message.
    files: tuple[JobFile, ...] = ()

    @property
    def from_us(self) -> bool:
        return self.direction == Message.Direction.OUT

    @property
    def not_delivered(self) -> bool:
        return self.status in (Message.Status.BOUNCED, Message.Status.FAILED)

    @property
    def on_its_way(self) -> bool:
        return self.status in (Message.Status.QUEUED, Message.Status.SENDING)


def history_messages(job: Job, contact: Contact) -> QuerySet[Message]:
    """Messages between this contact and us about this job.

    Only the contact's own: the same stage change goes to each contact (no duplicates), and each
    copy carries that contact's own sign-in link. Never the internal rows: call tasks (a script
    for staff) and sign-in links.
    """
    return (
        Message.objects.filter(job=job, contact=contact)
        .exclude(channel=Message.Channel.PHONE)
        .exclude(kind=Message.Kind.PORTAL_LINK)
        .exclude(status=Message.Status.CALL_PENDING)
    )


def job_history(job: Job, contact: Contact, files: JobFiles | None = None) -> list[HistoryItem]:
    """The conversation, newest first: two queries however long it is (plain rows, no models:
    a long history stays cheap), with the files each message brought (``files``: read once for
    the page)."""
    channel_labels = dict(Message.Channel.choices)
    attached = files.by_message() if files is not None else {}
    items = [
        HistoryItem(
            at=sent_at or created_at,
            direction=direction,
            kind="message",
            channel=channel,
            channel_label=str(channel_labels.get(channel, channel)),
            # An SMS has no subject of its own (the stored one is the email's, never seen).
            subject=subject if channel != Message.Channel.SMS else "",
            body=body_text,
            status=status,
            files=tuple(attached.get(pk, ())),
        )
        for pk, created_at, sent_at, direction, channel, status, subject, body_text in history_messages(
            job, contact
        ).values_list("pk", "created_at", "sent_at", "direction", "channel", "status", "subject", "body_text")
    ]
    # Questions asked on the portal, by phone or noted by staff; an emailed question is already
    # in the list as the message it came in. The answer date is the one last told to the contact
    # (its promise's, when a new date was given), read in the same query.
    questions = Question.objects.filter(job=job, contact=contact, message__isnull=True).values_list(
        "received_at", "body", "answer_due_on", "answered_at", "commitments__due_at"
    )
    items += [
        HistoryItem(
            at=received_at,
            direction=Message.Direction.IN,
            kind="question",
            body=body,
            answer_due_on=business_day_of(promised_at) if promised_at else answer_due_on,
            answered_at=answered_at,
        )
        for received_at, body, answer_due_on, answered_at, promised_at in questions
    ]
    items.sort(key=lambda item: item.at, reverse=True)
    return items


# --- Promises -----------------------------------------------------------------------------------


def business_day_of(moment: datetime) -> date:
    """The day a promise "by <day>" names: its due time falls at closing time that day, where the
    team works (the same day whichever time zone the contact reads it in)."""
    return moment.astimezone(business_zone()).date()


@dataclass(frozen=True)
class PromiseMove:
    """One change of a promise's date, as the customer is shown it."""

    old_due_at: datetime
    new_due_at: datetime
    at: datetime
    # When the customer was given the new date; None when it moved without a word to them.
    told_at: datetime | None
    # Only what was said to the customer: a reason is never shown when they were not told.
    reason: str

    @property
    def old_day(self) -> date:
        return business_day_of(self.old_due_at)

    @property
    def new_day(self) -> date:
        return business_day_of(self.new_due_at)


@dataclass
class PromiseItem:
    """One promise made to the contact (or to everyone on the job) and what became of it."""

    kind: str  # Commitment.Kind
    state: str  # Commitment.State
    title: str
    stage_name: str
    stage_name_fr: str
    asked_at: datetime | None
    first_due_at: datetime
    due_at: datetime
    kept_at: datetime | None
    now: datetime
    moves: list[PromiseMove] = field(default_factory=list)

    @property
    def what(self) -> str:
        """A stage in the reader's language, or what staff wrote for a document. (Answers and
        call backs are named by the template, in the reader's language, never from the stored
        title, which is in the language of whoever made the promise.)"""
        if self.kind == Commitment.Kind.MILESTONE:
            return self.stage_name_fr if translation.get_language() == "fr" and self.stage_name_fr else self.stage_name
        return self.title

    @property
    def due_day(self) -> date:
        return business_day_of(self.due_at)

    @property
    def first_day(self) -> date:
        return business_day_of(self.first_due_at)

    @property
    def outcome(self) -> Literal["kept", "missed", "open"]:
        if self.state == Commitment.State.KEPT:
            return "kept"
        # Broken, or past its time and not yet marked so: either way, say it plainly.
        if self.state == Commitment.State.BROKEN or self.due_at <= self.now:
            return "missed"
        return "open"

    @property
    def kept_day(self) -> date | None:
        """The day it was done, in the active (the contact's) time zone: the day the page shows."""
        return timezone.localdate(self.kept_at) if self.kept_at is not None else None

    @property
    def timing(self) -> Literal["early", "on_time", "late", ""]:
        """Kept against the date first promised (a moved date explains itself below it).

        Days against days, as the page shows them: the day it was done where the contact is
        against the promised day. Done on the promised day is on time, even after closing time
        there or in the evening in the team's time zone.
        """
        kept_day = self.kept_day
        if kept_day is None:
            return ""
        if kept_day > self.first_day:
            return "late"
        return "early" if kept_day < self.first_day else "on_time"


def job_promises(job: Job, contact: Contact) -> list[PromiseItem]:
    """Every date we gave this contact (or everyone on the job) and what became of it, oldest
    due first; withdrawn promises (a cancelled job's) and other contacts' are left out.

    One query however many promises and moves: the moves come joined, one row each."""
    rows = (
        Commitment.objects.filter(job=job)
        .filter(Q(contact_id=contact.pk) | Q(contact__isnull=True))
        .exclude(state=Commitment.State.WITHDRAWN)
        .order_by("due_at", "pk", "renegotiations__created_at", "renegotiations__pk")
        .values_list(
            "pk",
            "kind",
            "state",
            "title",
            "milestone__stage__name",
            "milestone__stage__name_fr",
            "question__received_at",
            "first_due_at",
            "due_at",
            "kept_at",
            "renegotiations__old_due_at",
            "renegotiations__new_due_at",
            "renegotiations__created_at",
            "renegotiations__told_customer_at",
            "renegotiations__reason",
        )
    )
    now = timezone.now()
    items: dict[int, PromiseItem] = {}
    for (
        pk,
        kind,
        state,
        title,
        stage_name,
        stage_name_fr,
        asked_at,
        first_due_at,
        due_at,
        kept_at,
        old_due_at,
        new_due_at,
        moved_at,
        told_at,
        reason,
    ) in rows:
        item = items.get(pk)
        if item is None:
            item = items[pk] = PromiseItem(
                kind=kind,
                state=state,
                title=title,
                stage_name=stage_name or "",
                stage_name_fr=stage_name_fr or "",
                asked_at=asked_at,
                first_due_at=first_due_at,
                due_at=due_at,
                kept_at=kept_at,
                now=now,
            )
        if moved_at is not None:
            item.moves.append(
                PromiseMove(
                    old_due_at=old_due_at,
                    new_due_at=new_due_at,
                    at=moved_at,
                    told_at=told_at,
                    reason=(reason or "") if told_at else "",
                )
            )
    return list(items.values())


# --- Visits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveRequest:
    """The question a customer's "I need another time" opened (crm.services.visits)."""

    asked_at: datetime
    contact_id: int | None
    contact_name: str
    answer_by: date
    answered_at: datetime | None


VisitState = Literal[
    "to_confirm", "move_asked", "confirmed", "on_the_way", "arrived", "done", "missed", "cancelled", "passed"
]


@dataclass(frozen=True)
class VisitCard:
    """One visit as the customer sees it: when, who, where, and where it stands."""

    visit: Visit
    crew: list[PersonCard]
    now: datetime
    move_request: MoveRequest | None = None

    @property
    def state(self) -> VisitState:
        visit = self.visit
        if visit.status in Visit.UPCOMING_STATUSES and not _is_current(visit, self.now):
            # The window ended and nobody came (nor said so): never pretend it is still to come.
            return "passed"
        if visit.status == Visit.Status.PLANNED:
            return "move_asked" if visit.move_asked_at else "to_confirm"
        return visit.status  # type: ignore[return-value]

    @property
    def ends_another_day(self) -> bool:
        """The window runs past midnight where the contact is (said with both days)."""
        return timezone.localdate(self.visit.window_start) != timezone.localdate(self.visit.window_end)

    @property
    def minutes_away(self) -> int | None:
        """ "About 25 min": the crew's expected arrival from now, to the nearest 5 minutes (0: any
        minute now). None unless they are on their way."""
        expected = self.visit.expected_at
        if self.visit.status != Visit.Status.ON_THE_WAY or expected is None:
            return None
        seconds = max(0.0, (expected - self.now).total_seconds())
        return int(seconds // 300 + (1 if seconds % 300 >= 150 else 0)) * 5

    @property
    def hours_away(self) -> tuple[int, int] | None:
        """ "About 1 h 35": the same, in hours and minutes, from an hour away."""
        minutes = self.minutes_away
        return divmod(minutes, 60) if minutes is not None and minutes >= 60 else None

    @property
    def running_late(self) -> bool:
        """The crew told us they will arrive after the window."""
        expected = self.visit.expected_at
        return expected is not None and expected > self.visit.window_end and self.visit.arrived_at is None

    @property
    def arrival(self) -> Literal["early", "in_window", "late", ""]:
        arrived_at = self.visit.arrived_at
        if arrived_at is None:
            return ""
        if arrived_at < self.visit.window_start:
            return "early"
        return "late" if arrived_at > self.visit.window_end else "in_window"


@dataclass(frozen=True)
class JobVisits:
    """The visit that leads the job page (the next one, or the one under way), the ones booked
    after it, and those that are over, most recent first."""

    next: VisitCard | None
    later: list[VisitCard]
    past: list[VisitCard]


def visit_current_until(visit: Visit) -> datetime | None:
    """Until when a visit is still ahead or under way: an upcoming one until its window is over
    (or the later time the crew said they would come, running late); one on the way or arrived
    while the crew could still be coming or be there (a late arrival, a long stay). None for a
    visit that is over (done, missed, cancelled)."""
    if visit.status in (Visit.Status.PLANNED, Visit.Status.CONFIRMED):
        return max(visit.window_end, visit.expected_at or visit.window_end)
    if visit.status in (Visit.Status.ON_THE_WAY, Visit.Status.ARRIVED):
        latest = max(visit.window_end, visit.expected_at or visit.window_end, visit.arrived_at or visit.window_end)
        return latest + visit.duration
    return None


def _is_current(visit: Visit, now: datetime) -> bool:
    until = visit_current_until(visit)
    return until is not None and until > now


def job_visit(job: Job, public_id: uuid.UUID) -> Visit | None:
    """One visit of ``job`` (a job found by ``job_for_customer``: the customer's); None for any
    other visit, another customer's or another job's."""
    return job.visits.select_related("job", "kind").filter(public_id=public_id).first()


def _move_request(job: Job, visit: Visit) -> MoveRequest | None:
    """The question visit_ask_to_move opened with the visit's ``move_asked_at``: asked on the
    portal in the same transaction, a moment before. Its answer date is the one last told (its
    promise's, when a new date was given)."""
    asked_at = visit.move_asked_at
    if asked_at is None:
        return None
    row = (
        Question.objects.filter(
            job=job,
            source=Question.Source.PORTAL,
            received_at__lte=asked_at,
            received_at__gte=asked_at - timedelta(minutes=1),
        )
        .order_by("-received_at", "-pk")
        .values_list(
            "received_at", "contact_id", "contact__name", "answer_due_on", "answered_at", "commitments__due_at"
        )
        .first()
    )
    if row is None:
        return None
    received_at, contact_id, contact_name, answer_due_on, answered_at, promised_at = row
    return MoveRequest(
        asked_at=received_at,
        contact_id=contact_id,
        contact_name=contact_name or "",
        answer_by=business_day_of(promised_at) if promised_at else answer_due_on,
        answered_at=answered_at,
    )


def _visits_with_crew(job: Job) -> QuerySet[Visit]:
    crew = User.objects.select_related("staff_profile").order_by("first_name", "last_name", "pk")
    return job.visits.select_related("kind__stage").prefetch_related(Prefetch("installers", queryset=crew))


def visit_card(job: Job, public_id: uuid.UUID) -> VisitCard | None:
    """One visit of ``job`` (the customer's: see ``job_visit``) as its answer page shows it."""
    visit = _visits_with_crew(job).filter(public_id=public_id).first()
    if visit is None:
        return None
    crew = [person_card(u) for u in visit.installers.all()]
    return VisitCard(visit=visit, crew=crew, now=timezone.now(), move_request=_move_request(job, visit))


def job_visits(job: Job) -> JobVisits:
    """The job's visits for its page and its live fragment: one query when there are none, two
    (the crew with their profiles) otherwise, three when the customer asked to move the next."""
    now = timezone.now()
    visits = list(_visits_with_crew(job).order_by("window_start", "pk"))
    # A closed job's visits to come were cancelled with it (crm.services.jobs).
    current = [v for v in visits if _is_current(v, now)]
    past = [v for v in reversed(visits) if not _is_current(v, now)]

    def card(visit: Visit, move: MoveRequest | None = None) -> VisitCard:
        return VisitCard(visit=visit, crew=[person_card(u) for u in visit.installers.all()], now=now, move_request=move)

    return JobVisits(
        next=card(current[0], _move_request(job, current[0])) if current else None,
        later=[card(v) for v in current[1:]],
        past=[card(v) for v in past],
    )


# --- Files --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobFiles:
    """A job's files as its customer sees them: the documents we shared (a withdrawn one stays as
    a note saying so, without its file) and what they sent us. One query however many."""

    documents: list[JobFile]
    sent: list[JobFile]

    def by_message(self) -> dict[int, list[JobFile]]:
        """What came with each message (a portal upload, an email's attachments)."""
        found: dict[int, list[JobFile]] = {}
        for f in self.sent:
            if f.message_id is not None:
                found.setdefault(f.message_id, []).append(f)
        return found

    @property
    def received(self) -> list[JobFile]:
        """What they sent that we still keep (the "to prepare" box thanks them for it)."""
        return [f for f in self.sent if f.is_stored]


def job_files(job: Job) -> JobFiles:
    """``job`` is one found by ``job_for_customer`` (the customer's): its files, newest first."""
    rows = list(
        JobFile.objects.filter(job=job)
        .only(
            "public_id",
            "job_id",
            "direction",
            "title",
            "original_name",
            "content_type",
            "size",
            "thumbnail",
            "message_id",
            "created_at",
            "withdrawn_at",
            "withdrawn_reason",
            "removed_at",
        )
        .order_by("-created_at", "-pk")
    )
    return JobFiles(
        documents=[f for f in rows if f.direction == JobFile.Direction.OUT],
        sent=[f for f in rows if f.direction == JobFile.Direction.IN],
    )


def job_file(job: Job, public_id: uuid.UUID) -> JobFile | None:
    """One file of ``job`` (the customer's) the customer may open: not withdrawn, not removed.
    None for any other (another job's, another customer's): the view answers 404."""
    files = JobFile.objects.select_related("job").filter(job=job, public_id=public_id, removed_at__isnull=True)
    return files.filter(withdrawn_at__isnull=True).first()


# --- Calendar -----------------------------------------------------------------------------------


def calendar_milestones(contact: Contact) -> list[Milestone]:
    """Dated customer-visible milestones of the customer's open and recently closed jobs.

    Open jobs: every milestone with a date (reached or expected). Closed jobs: only what was
    reached, so a cancelled job's future dates leave the calendar.
    """
    cutoff = timezone.now() - timedelta(days=CALENDAR_KEEPS_CLOSED_DAYS)
    return list(
        visible_milestones()
        .filter(job__customer_id=contact.customer_id)
        .filter(
            Q(job__status__in=Job.OPEN_STATUSES, forecast_date__isnull=False)
            | Q(job__status__in=Job.OPEN_STATUSES, completed_at__isnull=False)
            | Q(job__closed_at__gte=cutoff, completed_at__isnull=False)
        )
        .select_related("job")
        .order_by("job__created_at", "job_id", "stage__position")
    )


def customer_calendar_visits(customer_id: int, *, since: datetime) -> list[Visit]:
    """The customer's calendar feed: the visits of the customer's jobs whose window ends after
    ``since``, cancelled ones too (the feed cancels them in the contact's calendar)."""
    return list(crm_selectors.calendar_visits().filter(job__customer_id=customer_id, window_end__gte=since))


def customer_calendar_visit(customer_id: int, public_id: Any) -> Visit | None:
    """A visit's own .ics: the visit, if it is one of the customer's jobs' (None otherwise)."""
    return crm_selectors.calendar_visits().filter(job__customer_id=customer_id, public_id=public_id).first()
