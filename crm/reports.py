"""The communication-health report: did we keep our promises, did we tell the customer before a
date slipped, how fast did we acknowledge and answer, did any customer go without news too long.

Every figure is computed here, at the time of asking, from the promises (Commitment and their
Renegotiations), the requests and the messages that went out; nothing is stored or typed in. A
report is a fixed number of queries however much data there is: the promises kept and the nudges
are counted by the database per person and per day, the slips (``slips``), requests and silences
are a small Python pass over one query each. Weeks are 7-day steps from the period's first day,
counted in BUSINESS_TIME_ZONE, so the default period (the last eight weeks) is eight whole weeks.

Each fact is credited to whoever held it: a promise kept (or not) to its owner (a promise no
longer moves once it is decided, crm.services.promises.commitments_follow_owner), a slip to who
held the promise when it first slipped (``Slip.holder_id``), a request to who held its answer
promise (whoever answered it, or holds it now while it waits), a nudge to the person it was sent
to. Only the silence figure counts for the job's current owner (a job keeps no holder per moment).
"""

from __future__ import annotations

import csv
import io
import statistics
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import BigIntegerField, CharField, Count, Exists, F, Func, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Commitment, Job, Message, Pipeline, Question, Renegotiation, Visit
from crm.services.nudges import STORED_KEY_PREFIX
from crm.text import person_name, spreadsheet_safe
from crm.workdays import business_today, business_zone

DEFAULT_WEEKS = 8
# A longer period would make weekly charts unreadable and the silence pass long.
MAX_PERIOD_DAYS = 366
# Outbound messages that reached the customer's channel (the same rule as the silence alarm).
WENT_OUT = [Message.Status.SENT, Message.Status.DELIVERED]
# Decided: kept, broken or moved. Withdrawn promises (a cancelled job) are left out, and so are
# open ones whose first date is still ahead. An open one whose first date has passed is not kept
# on time whatever happens next (the scan marks it broken within minutes).
DECIDED_STATES = [Commitment.State.KEPT, Commitment.State.BROKEN, Commitment.State.RENEGOTIATED]
TEAM = None


# --- Periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole days, first and last included, where the team works."""

    first_day: date
    last_day: date

    @classmethod
    def last_weeks(cls, weeks: int = DEFAULT_WEEKS, *, today: date | None = None) -> Period:
        """The ``weeks`` weeks up to and including today."""
        last = today or business_today()
        return cls(first_day=last - timedelta(days=7 * weeks - 1), last_day=last)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=business_zone())

    @property
    def end(self) -> datetime:
        """The moment just after the period (midnight after its last day): ranges are start <= t < end."""
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=business_zone())

    def weeks(self) -> list[Period]:
        """7-day steps from the first day; the last one may be shorter."""
        weeks = []
        first = self.first_day
        while first <= self.last_day:
            weeks.append(Period(first, min(first + timedelta(days=6), self.last_day)))
            first += timedelta(days=7)
        return weeks

    def week_of(self, day: date) -> int:
        return (day - self.first_day).days // 7

    def local_day(self, moment: datetime) -> date:
        return timezone.localtime(moment, business_zone()).date()


# --- Figures ------------------------------------------------------------------------------------


@dataclass
class Ratio:
    numerator: int = 0
    denominator: int = 0

    @property
    def percent(self) -> float | None:
        return 100 * self.numerator / self.denominator if self.denominator else None


@dataclass
class Durations:
    """How long things took (seconds), and how many never happened (not acknowledged, unanswered)."""

    seconds: list[float] = field(default_factory=list)
    missing: int = 0

    @property
    def count(self) -> int:
        return len(self.seconds)

    @property
    def total(self) -> int:
        return self.count + self.missing

    @property
    def median(self) -> timedelta | None:
        return timedelta(seconds=statistics.median(self.seconds)) if self.seconds else None


@dataclass
class Figures:
    # Promises first due in the period and decided: kept by their first date ÷ all.
    kept_on_time: Ratio = field(default_factory=Ratio)
    # Promises that first slipped in the period (``slips``): told in time ÷ all, each counted once.
    proactive_notice: Ratio = field(default_factory=Ratio)
    # Requests received in the period: received → acknowledgement sent; missing = not acknowledged.
    acknowledge: Durations = field(default_factory=Durations)
    # Requests received in the period: received → answered; missing = not answered.
    answer: Durations = field(default_factory=Durations)
    # Jobs active in the period: those left without news longer than their pipeline allows ÷ all.
    silent_jobs: Ratio = field(default_factory=Ratio)
    # "Promises about to slip" digest emails the scan created in the period for the person.
    nudges: int = 0
    # Visits whose window first ended in the period, decided: the crew arrived by its first end ÷ all.
    windows_kept: Ratio = field(default_factory=Ratio)


@dataclass
class OwnerHealth:
    """One owner's figures (or the team's: ``owner_id`` None) for the period and for each week."""

    owner_id: int | None
    name: str
    total: Figures
    weeks: list[Figures]

    @classmethod
    def empty(cls, owner_id: int, name: str, weeks: int) -> OwnerHealth:
        """Someone with nothing to count in the period."""
        return cls(owner_id, name, Figures(), [Figures() for _ in range(weeks)])

    @property
    def is_team(self) -> bool:
        return self.owner_id is TEAM


@dataclass
class HealthReport:
    period: Period
    weeks: list[Period]
    owners: list[OwnerHealth]
    # None when the report was asked for one owner only.
    team: OwnerHealth | None
    # (pipeline name, days without news before an alert), for saying what "too long" means.
    silence_days: list[tuple[str, int]]

    @property
    def rows(self) -> list[OwnerHealth]:
        """The table: each owner, then the team."""
        return [*self.owners, *([self.team] if self.team else [])]

    def for_owner(self, owner_id: int | None) -> OwnerHealth | None:
        return next((row for row in self.rows if row.owner_id == owner_id), None)


class _Tally:
    """Figures per owner and for the team, for the whole period and per week."""

    def __init__(self, weeks: int) -> None:
        self.total: dict[int | None, Figures] = defaultdict(Figures)
        self.weekly: dict[int | None, list[Figures]] = defaultdict(lambda: [Figures() for _ in range(weeks)])
        self.weeks = weeks

    def figures(self, owner_id: int, week: int) -> Iterator[Figures]:
        """The figures a fact counts in: its owner's and the team's, overall and in its week."""
        yield from self.slot(owner_id, None)
        if 0 <= week < self.weeks:
            yield from self.slot(owner_id, week)

    def slot(self, owner_id: int, week: int | None) -> Iterator[Figures]:
        """The owner's and the team's figures for one week, or for the whole period (None)."""
        for key in (owner_id, TEAM):
            yield self.total[key] if week is None else self.weekly[key][week]


# --- Slips: each promise that slipped, counted once --------------------------------------------

# The "promises about to slip" digest the scan sends an owner (at most one a business morning) is
# the staff alert keyed by this prefix (crm.services.nudges).
NUDGES_KEY_PREFIX = STORED_KEY_PREFIX


@dataclass(frozen=True)
class Slip:
    """One promise that slipped (see ``slips``)."""

    commitment_id: int
    # Its first slip moment: the earlier of its first move to a later time and its break.
    at: datetime
    # Who held the promise at that moment.
    holder_id: int
    # Every move to a later time told before the time then promised, and never broken.
    proactive: bool


def later_moves() -> QuerySet[Renegotiation]:
    """The moves of the outer query's promise (``OuterRef("pk")``) to a later time. A move to an
    earlier time is good news, not a slip."""
    return Renegotiation.objects.filter(commitment=OuterRef("pk"), new_due_at__gt=F("old_due_at"))


def slips(*, period: Period, holder_id: int | None = None) -> list[Slip]:
    """The promises that slipped in ``period``, each once: the one definition behind the
    proactive-notice figure (team, owners, weeks and CSV alike). One query.

    - A **slip** is a promise (withdrawn ones left out) whose time passed (``broken_at`` set) or
      that was moved to a later time (a Renegotiation with ``new_due_at > old_due_at``). It counts
      once however many times it moved afterwards.
    - It is **proactive** when the customer was told of every move to a later time before the
      time then promised (each such Renegotiation ``proactive``) and the promise never broke. So
      broken then moved (told late) is reactive; moved twice, told in time both times, is
      proactive; told in time once and then moved again silently is reactive.
    - It belongs to its **first slip moment** (``Slip.at``), the earlier of its first move to a
      later time and its break: that moment's period and week (in BUSINESS_TIME_ZONE), and the
      person who **held** the promise then: ``Renegotiation.holder`` for a move,
      ``Commitment.broken_holder`` for a break, the promise's owner if neither was recorded.

    The whole history known now decides whether a slip was proactive, so a slip of a past period
    turns reactive if the promise is later moved again without telling the customer.
    ``holder_id``: only the slips credited to that person.
    """
    start, end = period.start, period.end
    later = Renegotiation.objects.filter(new_due_at__gt=F("old_due_at"))
    first_move = later_moves().order_by("created_at", "pk")
    candidates = Commitment.objects.exclude(state=Commitment.State.WITHDRAWN).filter(
        # The first slip moment can only be in the period if the break or a later move is (each
        # found by its index); which one came first, and when, is decided below.
        Q(broken_at__gte=start, broken_at__lt=end)
        | Q(pk__in=later.filter(created_at__gte=start, created_at__lt=end).values("commitment_id"))
    )
    if holder_id is not None:
        candidates = candidates.filter(
            Q(owner_id=holder_id)
            | Q(broken_holder_id=holder_id)
            | Q(pk__in=later.filter(holder_id=holder_id).values("commitment_id"))
        )
    rows = (
        candidates.annotate(
            first_moved_at=Subquery(first_move.values("created_at")[:1]),
            first_move_holder_id=Subquery(first_move.values("holder_id")[:1]),
            told_late=Exists(later_moves().filter(proactive=False)),
        )
        .values_list(
            "pk", "owner_id", "broken_at", "broken_holder_id", "first_moved_at", "first_move_holder_id", "told_late"
        )
        .order_by()
    )
    found = []
    for pk, owner_id, broken_at, broken_holder_id, moved_at, move_holder_id, told_late in rows:
        if broken_at is not None and (moved_at is None or broken_at <= moved_at):
            at, holder = broken_at, broken_holder_id
        else:
            at, holder = moved_at, move_holder_id
        holder = holder or owner_id
        if not start <= at < end or (holder_id is not None and holder != holder_id):
            continue
        found.append(Slip(pk, at, holder, proactive=broken_at is None and not told_late))
    return found


# --- The report ---------------------------------------------------------------------------------


def acknowledgement_sent_at() -> Subquery:
    """Annotation on Question: when its acknowledgement went out (the first one, on any channel).

    The acknowledgement is the message question_create queued for the request's contact, whose
    idempotency key starts "ack:<request id>:"."""
    return Subquery(
        Message.objects.filter(
            job=OuterRef("job"),
            contact=OuterRef("contact"),
            direction=Message.Direction.OUT,
            kind=Message.Kind.ACKNOWLEDGEMENT,
            status__in=WENT_OUT,
            sent_at__isnull=False,
            idempotency_key__startswith=Concat(
                Value("ack:"), Cast(OuterRef("pk"), CharField()), Value(":"), output_field=CharField()
            ),
        )
        .order_by("sent_at")
        .values("sent_at")[:1]
    )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """A moment as whole microseconds since 1970, UTC: what Silences counts in."""
    return (moment - EPOCH) // MICROSECOND


class EpochMicros(Func):
    """A timestamp column as whole microseconds since 1970 (UTC), computed by the database: tens
    of thousands of rows come back as integers, without a timestamp made for each.

    PostgreSQL's EXTRACT(EPOCH …) is exact (numeric); SQLite keeps timestamps as UTC text, read as
    whole seconds (julianday of the first 19 characters) plus the six digits after the point.
    Columns only: the SQLite form names its expression three times."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = (
            "(CAST(ROUND((julianday(substr(%(expressions)s, 1, 19)) - 2440587.5) * 86400) AS INTEGER) * 1000000"
            " + CAST(substr(%(expressions)s || '.000000', 21, 6) AS INTEGER))"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)


@dataclass(frozen=True)
class Silences:
    """One job's silences: the stretches of its active time when it had gone more than ``limit``
    without a message out (its creation starts the first count) — built once, then asked about
    each window of a report. Moments in microseconds since 1970 (``micros``).

    After each mark (the job's creation, each message out) the silence grows until the next one:
    it is too long from ``mark + limit`` until that next mark (or for good). A window holds a
    silence when one of those stretches overlaps it.
    """

    active_from: int
    active_until: int
    # Where each stretch begins and ends, in order: both lists grow (the marks are sorted).
    begins: list[int]
    ends: list[int]

    @classmethod
    def of(cls, sent: list[int], *, active_from: int, active_until: int, limit: int) -> Silences:
        """``sent``: the moments messages went out, sorted."""
        marks = [active_from, *(moment for moment in sent if active_from <= moment < active_until)]
        ends = [*marks[1:], active_until]
        stretches = [(mark + limit, end) for mark, end in zip(marks, ends, strict=True) if end - mark > limit]
        return cls(active_from, active_until, [begins for begins, _ in stretches], [end for _, end in stretches])

    def silent_in(self, window_start: int, window_end: int) -> bool | None:
        """Whether the job went more than ``limit`` without a message out at some moment of the
        window while it was active; None when it was not active in the window at all."""
        stop = window_end if window_end < self.active_until else self.active_until
        if self.active_from >= stop or stop <= window_start:
            return None
        # The first stretch still going after the window starts is the earliest to begin of those
        # that could overlap it.
        first = bisect_right(self.ends, window_start)
        return first < len(self.ends) and self.begins[first] < stop


def health_report(
    *, period: Period, owner: AbstractBaseUser | None = None, now: datetime | None = None
) -> HealthReport:
    """The figures of ``period`` per owner and for the team (or for ``owner`` only), overall and
    week by week. Eight queries (seven for one owner), whatever the amount of data."""
    now = now or timezone.now()
    zone = business_zone()
    start, end = period.start, period.end
    weeks = period.weeks()
    tally = _Tally(len(weeks))
    week = period.week_of

    commitments = Commitment.objects.all()
    # A request counts for who holds its answer promise: it stops following the job's owner
    # once answered (kept), so an answer stays with who gave it.
    questions = Question.objects.annotate(holder_id=Coalesce("commitments__owner_id", "job__owner_id"))
    jobs = Job.objects.all()
    nudges = Message.objects.filter(
        kind=Message.Kind.STAFF_ALERT, staff__isnull=False, idempotency_key__startswith=NUDGES_KEY_PREFIX
    )
    if owner is not None:
        commitments = commitments.filter(owner_id=owner.pk)
        questions = questions.filter(holder_id=owner.pk)
        jobs = jobs.filter(owner_id=owner.pk)
        nudges = nudges.filter(staff_id=owner.pk)

    # 1. Promises first due in the period: decided, and kept by their first date.
    decided = Q(state__in=DECIDED_STATES) | Q(state=Commitment.State.OPEN, first_due_at__lte=now)
    promised = (
        commitments.filter(first_due_at__gte=start, first_due_at__lt=end)
        .annotate(day=TruncDate("first_due_at", tzinfo=zone))
        .values("owner_id", "day")
        .annotate(
            decided=Count("pk", filter=decided),
            kept=Count("pk", filter=Q(state=Commitment.State.KEPT, kept_at__lte=F("first_due_at"))),
            windows=Count("pk", filter=decided & Q(kind=Commitment.Kind.VISIT)),
            windows_kept=Count(
                "pk",
                filter=Q(kind=Commitment.Kind.VISIT, state=Commitment.State.KEPT, kept_at__lte=F("first_due_at")),
            ),
        )
        .order_by()
    )
    for row in promised:
        for figures in tally.figures(row["owner_id"], week(row["day"])):
            figures.kept_on_time.numerator += row["kept"]
            figures.kept_on_time.denominator += row["decided"]
            figures.windows_kept.numerator += row["windows_kept"]
            figures.windows_kept.denominator += row["windows"]

    # 2. Promises that slipped in the period, each once, for who held it then.
    for slip in slips(period=period, holder_id=owner.pk if owner is not None else None):
        for figures in tally.figures(slip.holder_id, week(period.local_day(slip.at))):
            figures.proactive_notice.denominator += 1
            figures.proactive_notice.numerator += int(slip.proactive)

    # 3. Requests received in the period: acknowledged when, answered when.
    received = (
        questions.filter(received_at__gte=start, received_at__lt=end)
        .annotate(acknowledged_at=acknowledgement_sent_at())
        .values_list("holder_id", "received_at", "answered_at", "acknowledged_at")
        .order_by()
    )
    for owner_id, received_at, answered_at, acknowledged_at in received:
        for figures in tally.figures(owner_id, week(period.local_day(received_at))):
            if acknowledged_at is None:
                figures.acknowledge.missing += 1
            else:
                figures.acknowledge.seconds.append((acknowledged_at - received_at).total_seconds())
            if answered_at is None:
                figures.answer.missing += 1
            else:
                figures.answer.seconds.append((answered_at - received_at).total_seconds())

    # 4. The "about to slip" digests each person was sent.
    nudged = (
        nudges.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("staff_id", "day")
        .annotate(total=Count("pk"))
        .order_by()
    )
    for row in nudged:
        for figures in tally.figures(row["staff_id"], week(row["day"])):
            figures.nudges += row["total"]

    # 5. Pipelines (how long a silence may last), 6. jobs open at some time in the period, and
    # 7. when messages went out to them.
    pipelines = list(Pipeline.objects.order_by("name").values_list("name", "silence_days"))
    longest = max((days for _name, days in pipelines), default=0)
    horizon = min(end, now)
    active = jobs.filter(created_at__lt=horizon).filter(Q(closed_at__isnull=True) | Q(closed_at__gte=start))
    job_rows = list(
        active.values_list("pk", "owner_id", "created_at", "closed_at", "pipeline__silence_days").order_by()
    )
    sent: dict[int, list[int]] = defaultdict(list)
    went_out = (
        Message.objects.filter(job__in=active.values("pk"), direction=Message.Direction.OUT, status__in=WENT_OUT)
        .annotate(at=Coalesce("sent_at", "created_at"))
        # Messages older than the longest allowed silence before the period cannot end one in it.
        .filter(at__lt=horizon, at__gte=start - timedelta(days=longest))
        .values_list("job_id", EpochMicros("at"))
        .order_by()
    )
    for job_id, at in went_out:
        sent[job_id].append(at)
    slots: list[tuple[int | None, int, int]] = [(None, micros(start), micros(end))]
    slots += [(index, micros(w.start), micros(w.end)) for index, w in enumerate(weeks)]
    day = timedelta(days=1) // MICROSECOND
    # Jobs active and jobs silent, per owner and slot, then added to the figures once each.
    active_in: Counter[tuple[int, int | None]] = Counter()
    silent_in_slot: Counter[tuple[int, int | None]] = Counter()
    for job_id, owner_id, created_at, closed_at, silence_days in job_rows:
        silences = Silences.of(
            sorted(sent.get(job_id, [])),
            active_from=micros(created_at),
            active_until=micros(min(closed_at or horizon, horizon)),
            limit=silence_days * day,
        )
        for slot, window_start, window_end in slots:
            silent = silences.silent_in(window_start, window_end)
            if silent is not None:
                active_in[owner_id, slot] += 1
                silent_in_slot[owner_id, slot] += silent
    for (owner_id, slot), jobs_active in active_in.items():
        for figures in tally.slot(owner_id, slot):
            figures.silent_jobs.denominator += jobs_active
            figures.silent_jobs.numerator += silent_in_slot[owner_id, slot]

    # 8. Who the owners are.
    owner_ids = [key for key in tally.total if key is not TEAM]
    if owner is not None:
        names = {owner.pk: person_name(owner)}
        owner_ids = [owner.pk]
    else:
        names = {user.pk: person_name(user) for user in get_user_model().objects.filter(pk__in=owner_ids)}
    rows = sorted(
        (OwnerHealth(key, names.get(key, "?"), tally.total[key], tally.weekly[key]) for key in owner_ids),
        key=lambda row: (row.name.casefold(), row.owner_id),
    )
    team = None if owner is not None else OwnerHealth(TEAM, _("Team"), tally.total[TEAM], tally.weekly[TEAM])
    return HealthReport(period=period, weeks=weeks, owners=rows, team=team, silence_days=pipelines)


# --- CSV ----------------------------------------------------------------------------------------


# --- Arrival windows, per person who went --------------------------------------------------------


@dataclass
class InstallerWindows:
    """One installer's arrival windows in the period."""

    installer_id: int
    name: str
    # Windows first due (ending) in the period and decided: arrived by their first end ÷ all.
    kept: Ratio = field(default_factory=Ratio)
    # Windows that slipped in the period (``slips``): told in time ÷ all, each counted once.
    notice: Ratio = field(default_factory=Ratio)


def windows_by_installer(
    *, period: Period, installer: AbstractBaseUser | None = None, now: datetime | None = None
) -> list[InstallerWindows]:
    """The health page's "Arrival windows, by who went": each person who went on visits whose
    window first ended in the period (or slipped in it), by name; ``installer``: theirs only.
    Counted by the same rules as the owners' figures; a visit with two installers counts for
    both. Four queries."""
    now = now or timezone.now()
    through = Visit.installers.through.objects.filter(visit__commitment__kind=Commitment.Kind.VISIT)
    if installer is not None:
        through = through.filter(user_id=installer.pk)
    state = "visit__commitment__state"
    decided = Q(**{f"{state}__in": DECIDED_STATES}) | Q(
        **{state: Commitment.State.OPEN, "visit__commitment__first_due_at__lte": now}
    )
    kept = Q(**{state: Commitment.State.KEPT, "visit__commitment__kept_at__lte": F("visit__commitment__first_due_at")})
    rows: dict[int, InstallerWindows] = {}

    def row(user_id: int) -> InstallerWindows:
        return rows.setdefault(user_id, InstallerWindows(user_id, ""))

    counted = (
        through.filter(
            visit__commitment__first_due_at__gte=period.start, visit__commitment__first_due_at__lt=period.end
        )
        .values("user_id")
        .annotate(decided=Count("pk", filter=decided), kept=Count("pk", filter=kept))
        .order_by()
    )
    for counts in counted:
        figures = row(counts["user_id"])
        figures.kept.numerator += counts["kept"]
        figures.kept.denominator += counts["decided"]
    slipped = {slip.commitment_id: slip for slip in slips(period=period)}
    if slipped:
        for commitment_id, user_id in through.filter(visit__commitment_id__in=list(slipped)).values_list(
            "visit__commitment_id", "user_id"
        ):
            figures = row(user_id)
            figures.notice.denominator += 1
            figures.notice.numerator += int(slipped[commitment_id].proactive)
    names = {user.pk: person_name(user) for user in get_user_model().objects.filter(pk__in=list(rows))}
    for user_id, figures in rows.items():
        figures.name = names.get(user_id, "?")
    return sorted(rows.values(), key=lambda figures: figures.name.casefold())


def _number(value: float | None) -> str:
    if value is None:
        return ""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def _minutes(value: timedelta | None) -> str:
    return _number(value.total_seconds() / 60 if value is not None else None)


def _hours(value: timedelta | None) -> str:
    return _number(value.total_seconds() / 3600 if value is not None else None)


def health_csv(report: HealthReport) -> str:
    """The table as CSV: one row per owner and one for the team, each figure with what it is
    counted from. Numbers with a dot, percentages 0-100, empty when there is nothing to count."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            _("Owner"),
            _("From"),
            _("To"),
            _("Promises kept on time"),
            _("Promises decided"),
            _("Kept on time (%)"),
            _("Slips told in time"),
            _("Promises that slipped (moved later or broken)"),
            _("Proactive notice (%)"),
            _("Requests acknowledged"),
            _("Requests not acknowledged"),
            _("Median time to acknowledge (minutes)"),
            _("Requests answered"),
            _("Requests not answered"),
            _("Median time to first answer (hours)"),
            _("Jobs silent too long"),
            _("Jobs active"),
            _("Nudges (digests of promises about to slip)"),
            _("Arrival windows kept"),
            _("Arrival windows decided"),
            _("Windows kept (%)"),
        ]
    )
    for row in report.rows:
        figures = row.total
        writer.writerow(
            [
                spreadsheet_safe(row.name),
                report.period.first_day.isoformat(),
                report.period.last_day.isoformat(),
                figures.kept_on_time.numerator,
                figures.kept_on_time.denominator,
                _number(figures.kept_on_time.percent),
                figures.proactive_notice.numerator,
                figures.proactive_notice.denominator,
                _number(figures.proactive_notice.percent),
                figures.acknowledge.count,
                figures.acknowledge.missing,
                _minutes(figures.acknowledge.median),
                figures.answer.count,
                figures.answer.missing,
                _hours(figures.answer.median),
                figures.silent_jobs.numerator,
                figures.silent_jobs.denominator,
                figures.nudges,
                figures.windows_kept.numerator,
                figures.windows_kept.denominator,
                _number(figures.windows_kept.percent),
            ]
        )
    return out.getvalue()
