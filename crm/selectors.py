"""Reads for the staff pages: each returns what one page needs, scoped and prefetched, in a fixed
number of queries however many rows there are.

A read of one row returns it or None (an empty result for a list): the view decides that nothing
found is a 404. Nothing here knows HTTP or forms; ids from a page are read by crm.ids."""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connections
from django.db.models import BooleanField as BooleanFieldType
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.access import MANAGERS_GROUP
from crm.ids import id_from_input
from crm.models import (
    Commitment,
    Contact,
    Job,
    JobEvent,
    JobFile,
    JobRole,
    Message,
    Milestone,
    Pipeline,
    Question,
    Renegotiation,
    SmsOptOut,
    StageTemplate,
    Survey,
    Visit,
)
from crm.search import jobs_matching
from crm.sql import count_of
from crm.workdays import add_business_days, business_today, business_zone, end_of_business_day

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

# How much history the job page shows at once; older entries are one click away.
JOB_PAGE_EVENTS = 50
JOB_PAGE_MESSAGES = 50
DUE_SOON_BUSINESS_DAYS = 2


# --- Building blocks ----------------------------------------------------------------------------


def late_milestones(today: date) -> QuerySet[Milestone]:
    """Open milestones expected later than first promised, or whose date has passed."""
    return Milestone.objects.filter(completed_at__isnull=True, forecast_date__isnull=False).filter(
        Q(forecast_date__gt=F("planned_date")) | Q(forecast_date__lt=today)
    )


def running_late(today: date) -> Case:
    """Annotation: the job is open and one of its milestones is late."""
    return Case(
        When(
            Q(status__in=Job.OPEN_STATUSES) & Exists(late_milestones(today).filter(job=OuterRef("pk"))),
            then=Value(True),
        ),
        default=Value(False),
        output_field=BooleanFieldType(),
    )


def next_open_milestone(field: str) -> Subquery:
    """Annotation: a field of the job's next open milestone (by stage order)."""
    return Subquery(
        Milestone.objects.filter(job=OuterRef("pk"), completed_at__isnull=True)
        .order_by("stage__position")
        .values(field)[:1]
    )


def last_outbound_at() -> Subquery:
    """Annotation: when the job last said something to the customer (a message that went out)."""
    return Subquery(
        Message.objects.filter(
            job=OuterRef("pk"),
            direction=Message.Direction.OUT,
            status__in=[Message.Status.SENT, Message.Status.DELIVERED],
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )


class SilentJobAnnotations(TypedDict):
    last_out: datetime | None  # last_outbound_at()


def silent_jobs(*, now: Any = None) -> QuerySet[WithAnnotations[Job, SilentJobAnnotations]]:
    """Active jobs whose customer has heard nothing (nothing at all since the job began) for
    their pipeline's silence_days."""
    now = now or timezone.now()
    # The types said at each step: SQLite's duration arithmetic (Django's) multiplies a duration by
    # an IntegerField only, and needs to be told the product is one.
    days = ExpressionWrapper(F("pipeline__silence_days"), output_field=IntegerField())
    silence = ExpressionWrapper(Value(timedelta(days=1)) * days, output_field=DurationField())
    cutoff = ExpressionWrapper(Value(now) - silence, output_field=DateTimeField())
    return (
        Job.objects.filter(status=Job.Status.ACTIVE)
        .annotate(last_out=last_outbound_at())
        .filter(Q(last_out__lt=cutoff) | Q(last_out__isnull=True, created_at__lt=cutoff))
    )


def broken_promise(now: Any) -> Q:
    return Q(state=Commitment.State.BROKEN) | Q(state__in=Commitment.OPEN_STATES, due_at__lte=now)


def _ordered(ordering: tuple[str, ...]) -> list[Any]:
    return [F(field[1:]).desc() if field.startswith("-") else F(field).asc() for field in ordering]


def firsts_of_each(
    queryset: QuerySet[Any],
    groups: dict[str, tuple[Q, tuple[str, ...]]],
    *,
    limit: int,
    per_job: tuple[str, ...] = (),
) -> dict[str, list[Any]]:
    """The first ``limit`` rows of each group of ``queryset`` — a group is a condition and the
    order of its rows (field names, "-" for descending) — in one query: each group's rows are
    numbered in its own order (a window function) and only the first ``limit`` of each are read.
    A row in several groups is read once and listed in each. Every candidate is numbered: it suits
    groups of a few rows each (the messages a partial index holds), not of thousands (first_rows).

    A group named in ``per_job`` lists each job once, as first_per_job does: the first row of each
    of its first ``limit`` jobs (chosen among the bare rows), with ``job_rows``, how many rows of
    the group its job has."""
    wanted = Q(pk__in=[])
    flags: dict[str, Any] = {}
    ranks: dict[str, Any] = {}
    for name, (condition, ordering) in groups.items():
        partition = [F(f"in_{name}")]
        if name in per_job:
            condition = condition & Q(job__in=_first_jobs(queryset.filter(condition), ordering[0], limit))
            partition.append(F("job_id"))
            ranks[f"rows_{name}"] = Window(Count("pk"), partition_by=partition)
        wanted |= condition
        flags[f"in_{name}"] = Case(
            When(condition, then=Value(True)), default=Value(False), output_field=BooleanFieldType()
        )
        ranks[f"rank_{name}"] = Window(RowNumber(), partition_by=partition, order_by=_ordered(ordering))
    first = Q(pk__in=[])
    for name in groups:
        first |= Q(**{f"in_{name}": True, f"rank_{name}__lte": 1 if name in per_job else limit})
    rows = list(queryset.filter(wanted).annotate(**flags).annotate(**ranks).filter(first))
    lists: dict[str, list[Any]] = {}
    for name, (_condition, ordering) in groups.items():
        if name in per_job:
            firsts = [copy(row) for row in rows if getattr(row, f"in_{name}") and getattr(row, f"rank_{name}") == 1]
            for row in firsts:
                row.job_rows = getattr(row, f"rows_{name}")
            lists[name] = _in_job_order(firsts, ordering[0])
        else:
            lists[name] = sorted(
                (row for row in rows if getattr(row, f"in_{name}") and getattr(row, f"rank_{name}") <= limit),
                key=lambda row, name=name: getattr(row, f"rank_{name}"),  # type: ignore[misc]
            )
    return lists


def first_rows(queryset: QuerySet[Any], ordering: tuple[Any, ...], limit: int) -> QuerySet[Any]:
    """The first ``limit`` rows of ``queryset`` in ``ordering``, found among the bare rows before
    the related ones are joined in (select_related): where a list takes 26 rows of thousands,
    the database joins 26."""
    firsts = queryset.order_by(*ordering).values("pk")[:limit]
    return queryset.filter(pk__in=firsts).order_by(*ordering)


def _first_jobs(queryset: QuerySet[Any], first_field: str, limit: int) -> QuerySet[Any]:
    """The ids of the first ``limit`` jobs of ``queryset``'s rows, by each job's first value of
    ``first_field`` ("-" for the greatest first; a job without one last), then by id: a subquery."""
    descending = first_field.startswith("-")
    name = first_field.removeprefix("-")
    first = F("first").desc(nulls_last=True) if descending else F("first").asc(nulls_last=True)
    return (
        queryset.order_by()
        .values("job_id")
        .annotate(first=Max(name) if descending else Min(name))
        .order_by(first, "job_id")
        .values("job_id")[:limit]
    )


def _in_job_order(rows: list[Any], first_field: str) -> list[Any]:
    """Each job's first row in the order of _first_jobs."""
    name = first_field.removeprefix("-")
    rows = sorted(rows, key=lambda row: row.job_id)
    known = sorted(
        (row for row in rows if getattr(row, name) is not None),
        key=lambda row: getattr(row, name),
        reverse=first_field.startswith("-"),
    )
    return known + [row for row in rows if getattr(row, name) is None]


def first_per_job(queryset: QuerySet[Any], ordering: tuple[str, ...], limit: int) -> list[Any]:
    """One row per job — each job's first row in ``ordering``, whose first field is one of the
    row's own ("-" for descending) — for at most ``limit`` jobs, in the order of their first rows;
    each row with ``job_rows``, how many rows its job has: a dashboard list names each job once,
    "+2 more". The jobs are chosen among bare rows (grouped by job) before any row is joined or
    numbered."""
    jobs = _first_jobs(queryset, ordering[0], limit)
    chosen = queryset.filter(job__in=jobs).annotate(job_rows=Window(Count("pk"), partition_by=[F("job_id")]))
    if connections[queryset.db].features.can_distinct_on_fields:
        # PostgreSQL: DISTINCT ON, the database's own "first per group", built in Python in half
        # the time of the numbered rows below.
        rows = list(chosen.order_by("job_id", *ordering).distinct("job_id"))
    else:
        rank = Window(RowNumber(), partition_by=[F("job_id")], order_by=_ordered(ordering))
        rows = list(chosen.annotate(job_rank=rank).filter(job_rank=1))
    return _in_job_order(rows, ordering[0])


def jobs_for(user: User, *, scope: str) -> QuerySet[Job]:
    jobs = Job.objects.all()
    return jobs.filter(owner=user) if scope == "mine" else jobs


# --- Dashboard ----------------------------------------------------------------------------------


@dataclass
class Section:
    """One list on the "Needs attention" page. New lists are new sections, not a new page."""

    key: str
    title: Any
    rows: list[Any]
    empty: Any
    count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def recovery_calls_owed() -> QuerySet[Commitment]:
    """Calls owed to unhappy customers and not made yet (open, or past due and broken)."""
    return Commitment.objects.filter(
        kind=Commitment.Kind.RECOVERY, state__in=[*Commitment.OPEN_STATES, Commitment.State.BROKEN]
    )


def unhappy_customers(job_ids: Any) -> QuerySet[Survey]:
    """Low survey answers whose recovery call is still owed, the most overdue first: the answer,
    who gave it and by when the owner must call."""
    return (
        Survey.objects.select_related("job__customer", "job__owner", "contact", "recovery")
        .filter(job__in=job_ids, recovery__in=recovery_calls_owed())
        .order_by("recovery__due_at", "pk")
    )


def visits_at_risk(user: User, *, scope: str, now: datetime) -> list[Visit]:
    """Today's visits whose crew will miss the window (Visit.at_risk), soonest first: the visits of
    the person's jobs and the ones they go on ("mine"), or the team's; one query."""
    zone = business_zone()
    day_end = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), tzinfo=zone)
    visits = Visit.objects.filter(
        status__in=Visit.UPCOMING_STATUSES, window_start__lt=day_end, window_end__gt=now
    ).select_related("job__customer", "job__pipeline", "kind")
    if scope == "mine":
        visits = visits.filter(Q(job__owner=user) | Q(installers=user)).distinct()
    at_risk = [visit for visit in visits.order_by("window_start", "pk") if visit.at_risk(now)]
    for visit in at_risk:
        visit.nobody_left = visit.nobody_on_the_way(now)  # type: ignore[attr-defined]
    return at_risk


def attention(user: User, *, scope: str = "mine", limit: int = 25) -> list[Section]:
    """What needs doing now, most urgent first: an unhappy customer to call; the customer did not
    get a message; the customer is waiting for us; a call to make; a promise slipping; a promise
    due soon; silence."""
    today = business_today()
    now = timezone.now()
    soon = add_business_days(today, DUE_SOON_BUSINESS_DAYS)
    soon_warning = add_business_days(today, settings.COMMITMENT_WARNING_BUSINESS_DAYS)
    jobs = jobs_for(user, scope=scope)
    job_ids = jobs.values("pk")
    # The messages of the person's jobs, or of every job (a condition on the row itself: each of
    # the lists below is held by a partial index of crm_message).
    of_jobs = Q(job__owner=user) if scope == "mine" else Q(job__isnull=False)
    failed_statuses = [Message.Status.FAILED, Message.Status.BOUNCED]
    waiting_questions = first_per_job(
        Question.objects.select_related("job", "contact").filter(job__in=job_ids, answered_at__isnull=True),
        ("answer_due_on", "received_at"),
        limit + 1,
    )
    later_call = Message.objects.filter(
        job=OuterRef("job"), contact=OuterRef("contact"), kind=Message.Kind.CALL, created_at__gt=OuterRef("created_at")
    )
    alerts = Q(kind=Message.Kind.STAFF_ALERT, status__in=failed_statuses, handled_at__isnull=True)
    # The lists of messages, in one query (firsts_of_each): the customer's messages name each job
    # once, by its most urgent one ("+2 more": the rest are on the job page, where each is resent,
    # answered or called); the team's alerts and the callbacks promised are each their own row.
    message_lists = firsts_of_each(
        Message.objects.select_related("job", "contact", "staff", "stage").defer("body_html"),
        {
            "failed": (
                of_jobs & Q(direction=Message.Direction.OUT, status__in=failed_statuses, handled_at__isnull=True),
                ("-failed_at", "-pk"),
            ),
            "alerts": (alerts & Q(staff=user) if scope == "mine" else alerts, ("-failed_at", "-pk")),
            "replies": (
                of_jobs & Q(direction=Message.Direction.IN, handled_at__isnull=True, question__isnull=True),
                ("created_at", "pk"),
            ),
            "calls": (of_jobs & Q(status=Message.Status.CALL_PENDING), ("created_at", "pk")),
            "callbacks": (
                of_jobs
                & Q(
                    ~Exists(later_call),
                    kind=Message.Kind.CALL,
                    callback_due_on__isnull=False,
                    callback_due_on__lte=soon,
                ),
                ("callback_due_on", "pk"),
            ),
        },
        limit=limit + 1,
        per_job=("failed", "replies", "calls"),
    )
    open_jobs = jobs.filter(status=Job.Status.ACTIVE).select_related("customer", "current_stage", "owner")
    late = open_jobs.filter(Exists(late_milestones(today).filter(job=OuterRef("pk")))).annotate(
        late_stage=Subquery(
            late_milestones(today).filter(job=OuterRef("pk")).order_by("stage__position").values("stage__name")[:1]
        ),
        late_forecast=Subquery(
            late_milestones(today).filter(job=OuterRef("pk")).order_by("stage__position").values("forecast_date")[:1]
        ),
        late_planned=Subquery(
            late_milestones(today).filter(job=OuterRef("pk")).order_by("stage__position").values("planned_date")[:1]
        ),
    )
    late = first_rows(late, ("late_forecast", "pk"), limit + 1)
    due_soon = first_per_job(
        Milestone.objects.select_related("job__customer", "stage")
        .filter(
            job__in=open_jobs.values("pk"),
            completed_at__isnull=True,
            forecast_date__gte=today,
            forecast_date__lte=soon,
        )
        .filter(forecast_date__lte=F("planned_date")),
        ("forecast_date", "stage__position"),
        limit + 1,
    )
    silent = first_rows(
        silent_jobs(now=now).filter(pk__in=open_jobs.values("pk")).select_related("customer", "current_stage", "owner"),
        (F("last_out").asc(nulls_first=True), "created_at", "pk"),
        limit + 1,
    )
    promises = Commitment.objects.select_related("job__customer", "contact", "milestone__stage").filter(job__in=job_ids)
    # Calls owed to unhappy customers have their own section (first), with the answer that
    # caused them: not listed again among the other promises.
    promises = promises.exclude(kind=Commitment.Kind.RECOVERY)
    # Dates that moved (a late stage, a move not told) without the customer hearing: one click tells them all.
    untold = (
        open_jobs.filter(Exists(Renegotiation.objects.untold(OuterRef("pk"))))
        .annotate(
            untold_count=Subquery(
                Renegotiation.objects.untold(OuterRef("pk"))
                .order_by()
                .values("commitment__job")
                .annotate(n=Count("commitment", distinct=True))
                .values("n")[:1]
            ),
            untold_stage=Subquery(
                Renegotiation.objects.untold(OuterRef("pk"))
                .order_by("commitment__milestone__stage__position")
                .values("commitment__milestone__stage__name")[:1]
            ),
        )
        .order_by("updated_at")
    )
    at_risk = first_per_job(
        promises.filter(
            state__in=Commitment.OPEN_STATES, due_at__gt=now, due_at__lte=end_of_business_day(soon_warning)
        ),
        ("due_at", "pk"),
        limit + 1,
    )
    # Broken, or past due and not yet marked so by the scan: either way the customer was let down.
    broken = first_per_job(
        promises.filter(broken_promise(now), job__status__in=Job.OPEN_STATUSES), ("due_at", "pk"), limit + 1
    )
    unhappy = unhappy_customers(job_ids)

    sections = [
        Section("visits", _("Visits at risk today"), [], _("Every crew is on time.")),
        Section("unhappy", _("Unhappy customers to call"), [], _("No unhappy customer is waiting for a call.")),
        Section("broken", _("Promises broken"), [], _("No promise was broken.")),
        Section("at_risk", _("Get in front of it"), [], _("No promise is about to slip.")),
        Section("untold", _("New dates the customer was not told"), [], _("The customer knows every date.")),
        Section("failed", _("Messages that did not reach the customer"), [], _("Every message got through.")),
        Section("alerts", _("Alerts that did not reach the team"), [], _("Every alert got through.")),
        Section("questions", _("Questions waiting for an answer"), [], _("No question is waiting.")),
        Section("replies", _("Replies not yet answered"), [], _("No reply is waiting.")),
        Section("calls", _("Calls to make"), [], _("No call to make.")),
        Section("late", _("Running late"), [], _("Nothing is running late.")),
        Section("due_soon", _("Due within two business days"), [], _("Nothing is due in the next two business days.")),
        Section("silent", _("No news sent for too long"), [], _("Every customer heard from us recently.")),
    ]
    querysets: dict[str, QuerySet[Any] | list[Any]] = {
        "visits": visits_at_risk(user, scope=scope, now=now),
        "unhappy": unhappy,
        "broken": broken,
        "at_risk": at_risk,
        "untold": untold,
        "failed": message_lists["failed"],
        "alerts": message_lists["alerts"],
        "questions": waiting_questions,
        "replies": message_lists["replies"],
        "calls": message_lists["calls"],
        "late": late,
        "due_soon": due_soon,
        "silent": silent,
    }
    for section in sections:
        rows = list(querysets[section.key][: limit + 1])
        section.rows = rows[:limit]
        section.count = len(rows)
        section.extra["more"] = len(rows) > limit
    # An alert that could not be sent, a crew about to miss a window: sections that show only
    # while there is one (the visits, then, at the very top).
    sections = [s for s in sections if s.count or s.key not in ("alerts", "visits")]
    # Callbacks we promised are calls to make too.
    calls_section = next(s for s in sections if s.key == "calls")
    calls_section.extra["callbacks"] = message_lists["callbacks"][:limit]
    calls_section.count += len(calls_section.extra["callbacks"])
    return sections


def attention_counts(user: User) -> dict[str, int]:
    """The numbers in the navigation (on every staff page), in one query: each count a subquery
    that a small index holds — the messages' partial indexes (message_unhandled_failed_idx,
    _unhandled_in_idx, _call_pending_idx), the open milestones' and promises' — so no big table
    is ever scanned whole."""
    today = business_today()
    now = timezone.now()
    failed_statuses = [Message.Status.FAILED, Message.Status.BOUNCED]
    threshold = end_of_business_day(add_business_days(today, settings.COMMITMENT_WARNING_BUSINESS_DAYS))
    messages, promises = Message.objects.all(), Commitment.objects.exclude(kind=Commitment.Kind.RECOVERY)
    promises = promises.filter(owner=user, job__status__in=Job.OPEN_STATUSES)
    counted = {
        "alerts": messages.filter(
            staff=user, kind=Message.Kind.STAFF_ALERT, status__in=failed_statuses, handled_at__isnull=True
        ),
        "failed": messages.filter(
            job__owner=user, direction=Message.Direction.OUT, status__in=failed_statuses, handled_at__isnull=True
        ),
        "replies": messages.filter(
            job__owner=user, direction=Message.Direction.IN, handled_at__isnull=True, question__isnull=True
        ),
        "calls": messages.filter(job__owner=user, status=Message.Status.CALL_PENDING),
        "late": Job.objects.filter(owner=user, status=Job.Status.ACTIVE).filter(
            Exists(late_milestones(today).filter(job=OuterRef("pk")))
        ),
        "questions": Question.objects.filter(job__owner=user, answered_at__isnull=True),
        "unassigned": messages.filter(job__isnull=True, direction=Message.Direction.IN, handled_at__isnull=True),
        "at_risk": promises.filter(state__in=Commitment.OPEN_STATES, due_at__gt=now, due_at__lte=threshold),
        "broken": promises.filter(broken_promise(now)),
        "unhappy": recovery_calls_owed().filter(job__owner=user),
    }
    # Whether they manage, in the same query: the navigation's manager menu asks (crm.access.is_manager).
    manager = Exists(User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name=MANAGERS_GROUP))
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .values(**{k: count_of(q) for k, q in counted.items()}, manager=manager)
        .first()
    )
    found: dict[str, Any] = dict(row) if row else {}
    if not hasattr(user, "_is_manager"):
        user._is_manager = bool(found.get("manager"))  # type: ignore[attr-defined]
    counts: dict[str, int] = {key: int(found.get(key) or 0) for key in counted}
    counts["total"] = sum(
        counts[key]
        for key in ("unhappy", "broken", "at_risk", "failed", "alerts", "replies", "calls", "late", "questions")
    )
    return counts


# --- Jobs list ----------------------------------------------------------------------------------

SORTS = {
    "due": ("next_due", "reference"),
    "-due": ("-next_due", "reference"),
    "reference": ("reference",),
    "-reference": ("-reference",),
    "customer": ("customer__name", "reference"),
    "-customer": ("-customer__name", "reference"),
    "stage": ("current_stage__position", "reference"),
    "-stage": ("-current_stage__position", "reference"),
    "created": ("created_at",),
    "-created": ("-created_at",),
}


@dataclass(frozen=True)
class JobFilters:
    q: str = ""
    owner: str = "mine"  # "mine", "all", or a user id (anything else, or an id out of range: all)
    pipeline: int | None = None
    stage: int | None = None
    status: str = "open"  # "open", "all", or a Job.Status value
    late: bool = False
    sort: str = "due"


def job_list(user: User, filters: JobFilters) -> QuerySet[Job]:
    today = business_today()
    jobs = Job.objects.select_related("customer", "pipeline", "current_stage", "owner").annotate(
        is_late=running_late(today),
        next_due=next_open_milestone("forecast_date"),
    )
    owner_id = id_from_input(filters.owner, get_user_model())
    if filters.owner == "mine":
        jobs = jobs.filter(owner=user)
    elif owner_id is not None:
        jobs = jobs.filter(owner_id=owner_id)
    if filters.pipeline:
        jobs = jobs.filter(pipeline_id=filters.pipeline)
    if filters.stage:
        jobs = jobs.filter(current_stage_id=filters.stage)
    if filters.status == "open":
        jobs = jobs.filter(status__in=Job.OPEN_STATUSES)
    elif filters.status in Job.Status.values:
        jobs = jobs.filter(status=filters.status)
    if filters.late:
        jobs = jobs.filter(is_late=True)
    if filters.q:
        jobs = jobs_matching(jobs, filters.q.strip())
    return jobs.order_by(*SORTS.get(filters.sort, SORTS["due"]))


def board(user: User, *, pipeline: Pipeline, owner: str) -> list[tuple[StageTemplate, list[Job]]]:
    """Open jobs of one pipeline in columns by stage (two queries)."""
    stages = list(pipeline.stages.order_by("position"))
    jobs = job_list(user, JobFilters(owner=owner, pipeline=pipeline.pk, status="open", sort="due"))
    by_stage: dict[int, list[Job]] = {stage.pk: [] for stage in stages}
    for job in jobs:
        by_stage.setdefault(job.current_stage_id, []).append(job)
    return [(stage, by_stage[stage.pk]) for stage in stages]


def staff_users() -> QuerySet[Any]:
    return get_user_model().objects.filter(is_active=True, is_staff=True).order_by("first_name", "username")


# --- Job page -----------------------------------------------------------------------------------


def job_detail(public_id: Any) -> Job | None:
    """The job page: the job with its customer, contacts, installers, milestones, latest events
    messages, files, and open questions, in a fixed number of queries (None: no such job). Staff see
    every job."""
    events = JobEvent.objects.select_related("actor").order_by("-created_at", "-id")
    messages = Message.objects.select_related("contact", "author", "stage").order_by("-created_at", "-id")
    return (
        Job.objects.select_related("customer", "pipeline", "current_stage", "owner__staff_profile")
        .prefetch_related(
            Prefetch("contacts", queryset=Contact.objects.order_by("name")),
            Prefetch("installers", queryset=get_user_model().objects.order_by("first_name", "last_name", "username")),
            Prefetch("milestones", queryset=Milestone.objects.select_related("stage").order_by("stage__position")),
            Prefetch("pipeline__stages", queryset=StageTemplate.objects.order_by("position")),
            "pipeline__roles",
            Prefetch(
                "roles",
                queryset=JobRole.objects.select_related("role", "holder").order_by("role__name"),
                to_attr="role_holders",
            ),
            Prefetch("events", queryset=events[:JOB_PAGE_EVENTS], to_attr="recent_events"),
            Prefetch("messages", queryset=messages[:JOB_PAGE_MESSAGES], to_attr="recent_messages"),
            Prefetch(
                "commitments",
                queryset=Commitment.objects.select_related("contact", "milestone__stage").order_by("due_at", "id"),
                to_attr="all_commitments",
            ),
            Prefetch(
                "questions",
                queryset=Question.objects.select_related("contact").filter(answered_at__isnull=True),
                to_attr="open_questions",
            ),
            Prefetch(
                "visits",
                queryset=Visit.objects.select_related("kind__stage")
                .prefetch_related("installers")
                .order_by("window_start"),
                to_attr="all_visits",
            ),
            Prefetch(
                "files",
                queryset=JobFile.objects.select_related("contact", "shared_by", "commitment").order_by(
                    "-created_at", "-id"
                ),
                to_attr="all_files",
            ),
        )
        .filter(public_id=public_id)
        .first()
    )


# --- Visits -------------------------------------------------------------------------------------


def visits_today(user: User, day: date) -> QuerySet[Visit]:
    """The "Today" page: the visits ``user`` goes on whose window starts on ``day`` (the team's
    calendar day), in window order, with the job's customer and contacts (their phones) and who
    else is going — three queries however many visits."""
    zone = business_zone()
    starts = datetime.combine(day, time.min, tzinfo=zone)
    ends = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return (
        Visit.objects.filter(installers=user, window_start__gte=starts, window_start__lt=ends)
        .select_related("job__customer", "kind__stage")
        .prefetch_related(
            Prefetch("installers", queryset=get_user_model().objects.order_by("first_name", "last_name", "username")),
            Prefetch("job__contacts", queryset=Contact.objects.order_by("name")),
        )
        .order_by("window_start", "id")
    )


def with_sms_opt_outs(contacts: list[Contact]) -> list[Contact]:
    """The contacts, each with ``sms_opt_out``: their number's STOP on record, or None (one query)."""
    numbers = {contact.phone for contact in contacts if contact.phone}
    stops = {row.number: row for row in SmsOptOut.objects.filter(number__in=numbers)} if numbers else {}
    for contact in contacts:
        contact.sms_opt_out = stops.get(contact.phone)  # type: ignore[attr-defined]
    return contacts


def unassigned_inbound() -> QuerySet[Message]:
    """Emails that matched no job, or could not be filed (their ``last_error`` says why), newest
    first. The inbox shows their text, never their HTML, which can be large."""
    return (
        Message.objects.select_related("contact__customer")
        .filter(job__isnull=True, direction=Message.Direction.IN, handled_at__isnull=True)
        .defer("body_html")
        .order_by("-created_at")
    )


def assignment_choices(messages: Any) -> list[tuple[Message, list[Job]]]:
    """Each unassigned email with the jobs it could be filed on: its sender's customer's open jobs
    when the sender is known, every open job otherwise (one query for the whole page)."""
    open_jobs = list(
        Job.objects.select_related("customer").filter(status__in=Job.OPEN_STATUSES).order_by("-created_at")
    )
    rows = []
    for message in messages:
        customer_id = message.contact.customer_id if message.contact_id else None
        mine = [job for job in open_jobs if job.customer_id == customer_id]
        rows.append((message, mine or open_jobs))
    return rows


# --- The schedule and the calendar feeds --------------------------------------------------------

# The team's schedule has a row for everyone booked on a visit this close to the days it shows,
# so a free day shows as a free row rather than as nobody.
SCHEDULE_TEAM_REACH = timedelta(days=28)


@dataclass
class ScheduleRow:
    """One person's visits on the schedule; ``person`` None: visits nobody of the team is booked
    on (a subcontractor's, or nobody chosen yet)."""

    person: User | None
    visits: list[Visit]


def _schedule_visits(day_start: datetime, day_end: datetime) -> QuerySet[Visit]:
    return (
        Visit.objects.filter(window_start__gte=day_start, window_start__lt=day_end)
        .exclude(status=Visit.Status.CANCELLED)
        # job__pipeline: Visit.at_risk reads its threshold.
        .select_related("job__customer", "job__pipeline", "kind")
        .prefetch_related(
            Prefetch("installers", queryset=get_user_model().objects.order_by("first_name", "last_name", "username"))
        )
        .order_by("window_start", "id")
    )


def schedule(day_start: datetime, day_end: datetime, who: User | None) -> list[ScheduleRow]:
    """The schedule page: the visits whose window starts in [day_start, day_end), cancelled ones
    left out, one row per person going — ``who`` alone (two queries), or with None the team
    (three): every active staff member booked on a visit within SCHEDULE_TEAM_REACH of those days
    and anyone else booked on one of them, by name, then a row for the visits nobody of the team
    is on. A visit with two people on it is in both rows."""
    if who is not None:
        return [ScheduleRow(person=who, visits=list(_schedule_visits(day_start, day_end).filter(installers=who)))]
    visits = list(_schedule_visits(day_start, day_end))
    team = {
        person.pk: person
        for person in get_user_model()
        .objects.filter(
            is_active=True,
            is_staff=True,
            visits__window_start__gte=day_start - SCHEDULE_TEAM_REACH,
            visits__window_start__lt=day_end + SCHEDULE_TEAM_REACH,
        )
        .distinct()
    }
    by_person: dict[int, list[Visit]] = {pk: [] for pk in team}
    nobody: list[Visit] = []
    for visit in visits:
        crew = visit.installers.all()
        for person in crew:
            team.setdefault(person.pk, person)
            by_person.setdefault(person.pk, []).append(visit)
        if not crew:
            nobody.append(visit)
    people = sorted(team.values(), key=lambda p: ((p.get_full_name() or p.get_username()).casefold(), p.pk))
    rows = [ScheduleRow(person=person, visits=by_person[person.pk]) for person in people]
    if nobody:
        rows.append(ScheduleRow(person=None, visits=nobody))
    return rows


def calendar_visits() -> QuerySet[Visit]:
    """Visits with what a calendar event of them needs (the staff feed, the customer's)."""
    # kind__stage: Visit.what_to_prepare falls back on the stage's instructions; the crew's
    # profiles make their person cards.
    crew = get_user_model().objects.select_related("staff_profile").order_by("first_name", "last_name", "username")
    return (
        Visit.objects.select_related("job__customer", "kind__stage")
        .prefetch_related(Prefetch("installers", queryset=crew))
        .order_by("window_start", "id")
    )


def staff_calendar_visits(user: User, *, since: datetime, until: datetime) -> list[Visit]:
    """An installer's private calendar feed: the visits ``user`` is booked on whose window starts
    in [since, until), cancelled ones too (the feed cancels them in the person's calendar)."""
    return list(calendar_visits().filter(installers=user, window_start__gte=since, window_start__lt=until))
