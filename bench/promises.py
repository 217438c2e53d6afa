"""Promise-scan benchmark (``make bench-promises``): the at-risk scan over 1,000,000 commitments.

Not a test. It needs PostgreSQL, and it owns what it is given: the database in DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/portal_bench_promises; its name must contain "bench")
is dropped, created again and migrated. It is left behind for inspection; the last lines of the
output say how to drop it. No Redis: the staff alerts the first scan queues go to django-q2's ORM
broker in that database, and nothing runs them.

1. Setup, not timed: 4 staff users, one pipeline, 1,000 jobs with ``job_create`` (their stage
   promises come with them). Then the load generator fills crm_commitment up to N rows with
   ``INSERT ... SELECT generate_series(...)`` (not the services), as the scan leaves a team's
   history when it runs every few minutes. Promises fall due at closing time on business days:
   - 88 % kept or withdrawn and 2 % broken, due over the last two years;
   - 10 % open (a fifth of them renegotiated), due over the next 60 days. Those inside the
     warning window were nudged already, except a few hundred (at most one batch) not yet;
   - a few hundred more (at most one batch) still open at the last closing time: they fell due
     since the scan last ran.
   Then VACUUM ANALYZE (the whole database, as autovacuum would have).
2. Baselines, same connection: a ``SELECT 1`` round trip, and a full sequential count of
   crm_commitment (index scans off).
3. The scan's two SELECTs, built with the ORM from ``crm.services.promises`` exactly as
   ``scan()`` builds them (checked against the SQL a real ``scan()`` sends): the at-risk one
   (``select_related``, ``ORDER BY due_at``, ``LIMIT batch``) and the broken one; and the at-risk
   one again with index scans switched off, to show what the index is worth. Then
   ``EXPLAIN (ANALYZE, BUFFERS)`` of each.
4. ``scan()`` itself: the first run, once (it nudges and breaks what step 1 left for it), then
   runs on the state it leaves, where nothing is due to change: each must change nothing. The
   at-risk SELECT is explained again on that state.

Every timing is wall-clock (``time.perf_counter``) in this process, one warm-up then 5 runs; the
best and the median are printed, and ratios to the baselines. PASS needs the at-risk plans to use
commitment_open_due_idx, every scan run on the settled state to change nothing and take under a
second, the first run to change exactly what was loaded for it, and the timed SELECTs to be the
scan's own SQL; the exit code is 1 otherwise. With a full-size run, this benchmark's section of
docs/performance.md (between its markers, if the file has them) is rewritten.
``BENCH_COMMITMENTS=100000 make bench-promises`` is a quick try.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common
from bench.common import DOC_PATH, ROOT, int_env, log, other_cpu_share, share_text

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from crm.models import Commitment

DOC_START = "<!-- bench-promises:start -->"
DOC_END = "<!-- bench-promises:end -->"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_promises"
FULL_SIZE = 1_000_000
JOBS = 1_000
REPEATS = 5
GOAL_SECONDS = 1.0
INDEX = "commitment_open_due_idx"
TABLE = "crm_commitment"
CHUNK = 100_000

# Shares of all commitments.
OPEN_SHARE = 0.10
KEPT_SHARE = 0.80
WITHDRAWN_SHARE = 0.08
BROKEN_SHARE = 0.02
RENEGOTIATED_SHARE_OF_OPEN = 0.2
HISTORY_DAYS = 730
HORIZON_DAYS = 60

# (name, business days from the previous stage): every job promises three stage dates, the first
# five business days out, so none falls in the warning window.
STAGES = [("Request received", 0), ("Site survey", 5), ("Works", 10), ("Handover", 5)]
OWNERS = [("camille", "Camille"), ("noah", "Noah"), ("ines", "Inès"), ("hugo", "Hugo")]
MANAGER = ("alex", "Alex")


# --- Environment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    database_url: str
    database_name: str


def choose_target() -> Target:
    """The database the run will drop and fill, refusing one that does not look like a bench's."""
    database_url, name = common.bench_database(DEFAULT_DATABASE_URL, program="bench.promises")
    return Target(database_url=database_url, database_name=name)


def prepare_environment(target: Target) -> None:
    """Production settings, DEBUG off (no query log kept in memory); no Redis: the ORM broker."""
    for key in [k for k in os.environ if k.startswith("ANYMAIL_")]:
        del os.environ[key]
    for key in ("REDIS_URL", "EMAIL_BACKEND", "COMMITMENT_WARNING_BUSINESS_DAYS"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": target.database_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LOG_LEVEL": "WARNING",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
    )


def drop_command(target: Target) -> str:
    params = common.server_params(target.database_url)
    parts = ["psql"]
    if "host" in params:
        parts += ["-h", params["host"]]
    if "port" in params:
        parts += ["-p", params["port"]]
    if "user" in params:
        parts += ["-U", params["user"]]
    return " ".join([*parts, "-d", "postgres", "-c", f"'DROP DATABASE {target.database_name} WITH (FORCE)'"])


@dataclass(frozen=True)
class Machine(common.Machine):
    postgres_settings: str


PG_SETTINGS = [
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "random_page_cost",
    "max_parallel_workers_per_gather",
    "jit",
]


def describe_machine() -> Machine:
    from django.db import connection

    settings = []
    with connection.cursor() as cursor:
        for name in PG_SETTINGS:
            cursor.execute(f"SHOW {name}")
            settings.append(f"{name} {cursor.fetchone()[0]}")
    return Machine(**asdict(common.describe_machine()), postgres_settings=", ".join(settings))


def _ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


# --- The data -----------------------------------------------------------------------------------


@dataclass
class World:
    at: datetime  # "now" when the commitments were generated
    threshold: datetime  # warning_threshold() then
    last_closing: datetime  # the latest closing time before ``at``: the backlog fell due then
    at_risk: int  # open, inside the warning window, not nudged yet: the first scan nudges them
    backlog: int  # open and past due: the first scan breaks them
    window: int = 0  # open commitments inside the warning window, nudged or not
    rows: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    jobs_seconds: float = 0.0
    load_seconds: float = 0.0
    analyze_seconds: float = 0.0
    table_mb: float = 0.0
    index_mb: float = 0.0
    index_rows: int = 0
    index_definition: str = ""


def build_jobs() -> tuple[list[int], list[int]]:
    """Staff, a pipeline and JOBS jobs through the services; the jobs' ids and their owners' ids."""
    from django.contrib.auth.models import Group, User
    from django.db import transaction

    from crm.access import MANAGERS_GROUP
    from crm.models import Contact, Customer, Pipeline, StaffProfile, StageTemplate
    from crm.services.jobs import job_create

    owners = []
    for username, first_name in OWNERS:
        user = User.objects.create_user(
            f"bench-{username}", f"{username}@bench.example", first_name=first_name, last_name="Bench", is_staff=True
        )
        StaffProfile.objects.create(user=user, phone="+33 1 99 00 12 09", job_title="Project manager")
        owners.append(user)
    manager = User.objects.create_user(
        f"bench-{MANAGER[0]}", f"{MANAGER[0]}@bench.example", first_name=MANAGER[1], last_name="Bench", is_staff=True
    )
    manager.groups.add(Group.objects.get_or_create(name=MANAGERS_GROUP)[0])

    pipeline = Pipeline.objects.create(name="Bench renovation")
    for position, (name, days) in enumerate(STAGES, start=1):
        StageTemplate.objects.create(
            pipeline=pipeline, position=position, name=name, customer_visible=True, default_duration_days=days
        )
    customers = Customer.objects.bulk_create([Customer(name=f"Bench household {i:05d}") for i in range(JOBS)])
    contacts = Contact.objects.bulk_create(
        [
            Contact(customer=customer, name=f"Client {i:05d}", email=f"client{i:05d}@bench.example")
            for i, customer in enumerate(customers)
        ]
    )
    jobs = []
    for start in range(0, JOBS, 250):
        with transaction.atomic():
            for i in range(start, min(start + 250, JOBS)):
                jobs.append(
                    job_create(
                        customer=customers[i],
                        pipeline=pipeline,
                        owner=owners[i % len(owners)],
                        title=f"Renovation {i:05d}",
                        actor=owners[i % len(owners)],
                        contacts=[contacts[i]],
                        # The welcome is not what this measures.
                        notify_customer=False,
                        not_told_reason="Benchmark data.",
                    )
                )
    return [job.pk for job in jobs], [job.owner_id for job in jobs]


def closing_times(first: date, last: date) -> list[datetime]:
    """Closing time of every business day from ``first`` to ``last``: when promises fall due."""
    from crm.workdays import end_of_business_day, is_business_day

    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [end_of_business_day(day) for day in days if is_business_day(day)]


# One statement makes every kind of row, driven by its parameters: rows g = start..stop pick their
# job (and so its owner) and a kind; a state by the shares given (kept, withdrawn, broken,
# renegotiated, else open); a due time from the closing times given, in order of g (the history,
# appended as it was made) or at random (open promises, made at any time). Open ones due by
# nudged_until were nudged already. random() is seeded once per run (setseed).
LOAD_SQL = """
INSERT INTO crm_commitment (
    job_id, kind, title, owner_id, state, first_due_at, due_at, created_at,
    kept_at, broken_at, withdrawn_at, nudged_at, escalated_at
)
SELECT job_id, kind,
    CASE kind WHEN 'document' THEN 'Quote for the works' WHEN 'callback' THEN 'Call back about the visit'
        ELSE 'An answer to the question' END,
    owner_id, state,
    CASE WHEN state = 'renegotiated' THEN due_at - (due_at - made) * r3 ELSE due_at END,
    due_at, made,
    CASE WHEN state = 'kept' THEN due_at - (due_at - made) * r3 END,
    CASE WHEN state = 'broken' THEN due_at + interval '4 minutes' END,
    CASE WHEN state = 'withdrawn' THEN due_at - (due_at - made) * r3 END,
    CASE
        WHEN state IN ('open', 'renegotiated') THEN
            CASE WHEN due_at <= %(nudged_until)s THEN %(at)s::timestamptz - interval '1 hour' * (1 + 20 * r3) END
        WHEN state = 'broken' OR r3 < 0.3 THEN due_at - interval '1 day'
    END,
    CASE WHEN state = 'broken' THEN due_at + interval '4 minutes' END
FROM (
    SELECT *, least(due_at, %(at)s::timestamptz) - interval '1 day' * (1 + 20 * r1) AS made
    FROM (
        SELECT *,
            CASE
                WHEN r2 < %(kept)s THEN 'kept'
                WHEN r2 < %(withdrawn)s THEN 'withdrawn'
                WHEN r2 < %(broken)s THEN 'broken'
                WHEN r2 < %(renegotiated)s THEN 'renegotiated'
                ELSE 'open'
            END AS state,
            (%(due)s::timestamptz[])[
                CASE WHEN %(in_order)s THEN 1 + floor((g - 1)::float8 * %(n_due)s / %(stop_all)s)::int
                ELSE 1 + floor(random() * %(n_due)s)::int END
            ] AS due_at
        FROM (
            SELECT g,
                (%(job_ids)s::bigint[])[1 + mod(g, %(jobs)s)] AS job_id,
                (%(owner_ids)s::integer[])[1 + mod(g, %(jobs)s)] AS owner_id,
                (ARRAY['document', 'callback', 'answer'])[1 + floor(random() * 3)::int] AS kind,
                random() AS r1, random() AS r2, random() AS r3
            FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
        ) AS picked
    ) AS decided
) AS timed
"""


@dataclass(frozen=True)
class Batch:
    """``count`` rows of one kind for LOAD_SQL."""

    label: str
    count: int
    due: list[datetime]
    in_order: bool = False
    kept: float = 0.0
    withdrawn: float = 0.0
    broken: float = 0.0
    renegotiated: float = 0.0
    nudged_until: datetime | None = None


def load_commitments(world: World, *, total: int, job_ids: list[int], owner_ids: list[int]) -> None:
    """Fill crm_commitment up to ``total`` rows (the jobs' stage promises count)."""
    from django.db import connection

    from crm.models import Commitment

    existing = Commitment.objects.count()
    existing_open = Commitment.objects.filter(state__in=Commitment.OPEN_STATES).count()
    today = world.at.date()
    history = [t for t in closing_times(today - timedelta(days=HISTORY_DAYS), today) if t < world.at]
    future = [t for t in closing_times(today, today + timedelta(days=HORIZON_DAYS)) if t > world.at]
    window = [t for t in future if t <= world.threshold]
    world.last_closing = history[-1]
    n_open = max(0, round(OPEN_SHARE * total) - existing_open - world.at_risk - world.backlog)
    n_history = max(0, total - existing - n_open - world.at_risk - world.backlog)
    terminal = KEPT_SHARE + WITHDRAWN_SHARE + BROKEN_SHARE
    batches = [
        Batch(
            "kept, withdrawn or broken",
            n_history,
            history,
            in_order=True,
            kept=KEPT_SHARE / terminal,
            withdrawn=(KEPT_SHARE + WITHDRAWN_SHARE) / terminal,
            broken=1.0,
        ),
        Batch("open", n_open, future, renegotiated=RENEGOTIATED_SHARE_OF_OPEN, nudged_until=world.threshold),
        Batch("open, at risk, not nudged yet", world.at_risk, window),
        Batch("open, past due, not broken yet", world.backlog, [world.last_closing], nudged_until=world.last_closing),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        for batch in batches:
            for start in range(1, batch.count + 1, CHUNK):
                stop = min(start + CHUNK - 1, batch.count)
                params: dict[str, Any] = {
                    "start": start,
                    "stop": stop,
                    "stop_all": batch.count,
                    "job_ids": job_ids,
                    "owner_ids": owner_ids,
                    "jobs": len(job_ids),
                    "at": world.at,
                    "due": batch.due,
                    "n_due": len(batch.due),
                    "in_order": batch.in_order,
                    "kept": batch.kept,
                    "withdrawn": batch.withdrawn,
                    "broken": batch.broken,
                    "renegotiated": batch.renegotiated,
                    "nudged_until": batch.nudged_until,
                }
                cursor.execute(LOAD_SQL, params)
                log(f"    {stop:>9,} of {batch.count:,} {batch.label}")


def analyze(world: World) -> None:
    from django.db import connection

    from crm.models import Commitment

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    world.analyze_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, count(*) FROM crm_commitment GROUP BY state")
        world.by_state = {str(state): int(n) for state, n in cursor.fetchall()}
    world.rows = sum(world.by_state.values())
    world.window = Commitment.objects.filter(
        state__in=Commitment.OPEN_STATES, due_at__gt=world.at, due_at__lte=world.threshold
    ).count()
    world.index_rows = Commitment.objects.filter(state__in=Commitment.OPEN_STATES).count()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(%s::regclass), pg_relation_size(%s::regclass), pg_get_indexdef(%s::regclass)",
            [TABLE, INDEX, INDEX],
        )
        table, index, definition = cursor.fetchone()
    world.table_mb, world.index_mb, world.index_definition = table / 2**20, index / 2**20, str(definition)


# --- The scan's queries -------------------------------------------------------------------------


def at_risk_query(now: datetime, batch: int) -> QuerySet[Commitment]:
    """The at-risk SELECT, built by the function crm.services.scan.scan() uses for the morning
    digests (crm.services.nudges): the promises already in the window at opening time. Outside a
    business morning's hours the scan sends no digest and runs no such SELECT; the same query as of
    the last opening is measured then."""
    from crm.services.nudges import digest_morning
    from crm.services.promises import about_to_slip

    morning = digest_morning(now)
    return about_to_slip(now=now, batch=batch, entered_before=morning[1] if morning else None)


def digests_due(now: datetime) -> bool:
    """Whether a scan at ``now`` sends the morning digests (a business day, from opening time)."""
    from crm.services.nudges import digest_morning

    return digest_morning(now) is not None


def broken_query(now: datetime, batch: int) -> QuerySet[Commitment]:
    """The SELECT of promises whose time passed, built by the function scan() uses."""
    from crm.services.promises import past_due

    return past_due(now=now, batch=batch)


def scan_batch() -> int:
    import inspect

    from crm.services.scan import scan

    default = inspect.signature(scan).parameters["batch"].default
    return int(default)


@contextlib.contextmanager
def index_scans_off() -> Iterator[None]:
    """Inside a transaction: the planner may not use any index (a sequential scan of the table)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for name in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            cursor.execute(f"SET LOCAL {name} = off")
        yield


def captured(action: Callable[[], object]) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        action()
    return [q["sql"] for q in queries.captured_queries]


@dataclass
class QueryCheck:
    at_risk_is_scans: bool
    broken_is_scans: bool
    scan_queries: int  # in a run that changes nothing
    scan_sql: list[str]


def check_queries(batch: int) -> QueryCheck:
    """Run scan() (on a state where it changes nothing) and our two querysets with the same "now":
    their SQL must be among the statements scan() sent."""
    from django.utils import timezone

    from crm.services.scan import scan

    now = timezone.now()
    scan_sql = captured(lambda: scan(now=now))
    at_risk = captured(lambda: list(at_risk_query(now, batch)))
    broken = captured(lambda: list(broken_query(now, batch)))
    return QueryCheck(
        # Outside a business morning the scan sends no digest, so it has no at-risk SELECT to match.
        at_risk_is_scans=len(at_risk) == 1 and (at_risk[0] in scan_sql or not digests_due(now)),
        broken_is_scans=len(broken) == 1 and broken[0] in scan_sql,
        scan_queries=len(scan_sql),
        scan_sql=scan_sql,
    )


# --- Timing -------------------------------------------------------------------------------------


@dataclass
class Timing:
    label: str
    runs: list[float]  # seconds
    note: str = ""

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def worst(self) -> float:
        return max(self.runs)


def timed(label: str, action: Callable[[], object], *, repeats: int = REPEATS, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        action()
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        runs.append(time.perf_counter() - began)
    return Timing(label, runs)


def select_one() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def count_all_sequentially() -> int:
    from django.db import connection

    with index_scans_off(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_commitment")
        return int(cursor.fetchone()[0])


def explain(queryset: QuerySet[Commitment], *, index_scans: bool = True) -> str:
    if index_scans:
        return queryset.explain(analyze=True, buffers=True)
    with index_scans_off():
        return queryset.explain(analyze=True, buffers=True)


def count_plan() -> str:
    from django.db import connection

    with index_scans_off(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM crm_commitment")
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def uses_index(plan: str) -> bool:
    return bool(re.search(rf"(Index Scan|Index Only Scan) using {INDEX}\b|Bitmap Index Scan on {INDEX}\b", plan))


def plan_summary(plan: str) -> str:
    """The scan nodes of a plan and the execution time, on one line."""
    nodes = re.findall(
        r"((?:Parallel )?(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan) (?:on|using) \S+)", plan
    )
    execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
    text = "; ".join(dict.fromkeys(nodes))
    return f"{text} (execution {execution.group(1)} ms)" if execution else text


@dataclass
class ScanRuns:
    first_seconds: float
    first_counts: dict[str, int]
    digests_due: bool
    second: Timing
    second_counts: list[dict[str, int]]

    @property
    def second_changed_nothing(self) -> bool:
        return all(not any(counts.values()) for counts in self.second_counts)


def run_scans() -> ScanRuns:
    from django.utils import timezone

    from crm.services.scan import scan

    due = digests_due(timezone.now())
    began = time.perf_counter()
    first = scan()
    first_seconds = time.perf_counter() - began
    counts: list[dict[str, int]] = []
    second = timed("scan(), nothing to change", lambda: counts.append(scan()))
    return ScanRuns(
        first_seconds=first_seconds, first_counts=first, digests_due=due, second=second, second_counts=counts
    )


# --- The report ---------------------------------------------------------------------------------


@dataclass
class Report:
    machine: Machine
    world: World
    batch: int
    setup_seconds: float
    other_cpu: float | None
    round_trip: Timing
    full_count: Timing
    at_risk: Timing
    at_risk_no_index: Timing
    broken: Timing
    scans: ScanRuns
    at_risk_rows: int
    broken_rows: int
    plan: str
    plan_no_index: str
    plan_broken: str
    plan_count: str
    plan_after: str  # the at-risk SELECT once the first scan has nudged everything
    check: QueryCheck

    @property
    def index_used(self) -> bool:
        return uses_index(self.plan) and uses_index(self.plan_after)

    @property
    def scan_fast(self) -> bool:
        return self.scans.second.worst < GOAL_SECONDS

    @property
    def first_as_expected(self) -> bool:
        c = self.scans.first_counts
        # The digests go from a business day's opening time; outside it the promises wait.
        nudged = self.world.at_risk if self.scans.digests_due else 0
        return c.get("nudged") == nudged and c.get("broken") == self.world.backlog

    @property
    def same_sql(self) -> bool:
        return self.check.at_risk_is_scans and self.check.broken_is_scans

    @property
    def passed(self) -> bool:
        return (
            self.index_used
            and self.scan_fast
            and self.scans.second_changed_nothing
            and self.first_as_expected
            and self.same_sql
        )

    def table(self) -> list[tuple[str, str, str, str, str]]:
        rt, count = self.round_trip.median, self.full_count.median

        def row(label: str, t: Timing, *, once: bool = False) -> tuple[str, str, str, str, str]:
            value = t.runs[0] if once else t.median
            best = "" if once else f"{1000 * t.best:,.2f}"
            return (label, best, f"{1000 * value:,.2f}", _ratio(value / rt), _ratio(value / count))

        s = self.scans
        return [
            row("`SELECT 1` round trip (baseline)", self.round_trip),
            row(f"Full sequential count of {TABLE} ({self.world.rows:,} rows; baseline)", self.full_count),
            row(
                f"At-risk SELECT as `scan()` sends it (`ORDER BY due_at LIMIT {self.batch}`, {self.at_risk_rows} rows)",
                self.at_risk,
            ),
            row(f"The same with index scans off (what `{INDEX}` saves)", self.at_risk_no_index),
            row(f"Broken SELECT as `scan()` sends it ({self.broken_rows} rows)", self.broken),
            row(f"`scan()`, a run with nothing to change ({self.check.scan_queries} queries)", s.second),
            row(
                f"`scan()`, first run, once (nudged {s.first_counts.get('nudged')}, broke "
                f"{s.first_counts.get('broken')}, silence alarms {s.first_counts.get('silent')})",
                Timing("first", [s.first_seconds]),
                once=True,
            ),
        ]

    def goals(self) -> list[tuple[str, str, bool]]:
        s = self.scans
        return [
            (
                f"the at-risk SELECT's plan uses `{INDEX}`",
                "yes" if self.index_used else "NO",
                self.index_used,
            ),
            (
                f"every `scan()` run with nothing to change under {GOAL_SECONDS:.0f} s ({REPEATS} runs)",
                f"slowest {1000 * s.second.worst:.1f} ms",
                self.scan_fast,
            ),
            (
                "those runs changed nothing",
                "yes"
                if s.second_changed_nothing
                else f"NO: {s.second_counts} (did a closing time pass during the run? run it again)",
                s.second_changed_nothing,
            ),
            (
                f"the first run nudged {self.world.at_risk} and broke {self.world.backlog}, as loaded",
                f"nudged {s.first_counts.get('nudged')}, broke {s.first_counts.get('broken')}",
                self.first_as_expected,
            ),
            (
                "the timed SELECTs are the SQL `scan()` sends",
                "yes" if self.same_sql else "NO",
                self.same_sql,
            ),
        ]

    def data_text(self) -> str:
        w = self.world
        states = ", ".join(f"{state} {n:,}" for state, n in sorted(w.by_state.items(), key=lambda kv: -kv[1]))
        return (
            f"{w.rows:,} commitments on {JOBS:,} jobs of {len(OWNERS)} owners ({states}); "
            f"{w.index_rows:,} open rows in `{INDEX}` ({w.index_mb:.1f} MB; table {w.table_mb:.0f} MB); "
            f"{w.window:,} open ones due inside the warning window (until {w.threshold:%Y-%m-%d %H:%M %Z})"
        )

    def print(self) -> None:
        m, w = self.machine, self.world
        log()
        log(f"Promise-scan benchmark — {w.rows:,} commitments, {m.date}")
        log(
            f"  {m.nproc} CPUs ({m.cpu}), {m.ram_gb:.0f} GB RAM; Python {m.python}, Django {m.django}, "
            f"psycopg {m.psycopg}; PostgreSQL {m.postgres} ({m.postgres_settings})"
        )
        log(f"  data: {self.data_text()}")
        log(
            f"  setup (not timed): jobs {w.jobs_seconds:.0f} s, loading commitments {w.load_seconds:.0f} s, "
            f"VACUUM ANALYZE {w.analyze_seconds:.1f} s; other CPU use with the benchmark idle "
            f"{share_text(self.other_cpu)}"
        )
        if self.other_cpu is not None and self.other_cpu > 0.1:
            log("  WARNING: other work was running on the machine; these figures are pessimistic.")
        log()
        rows = [("", "best ms", "median ms", "× SELECT 1", "× full count"), *self.table()]
        width = max(len(r[0].replace("`", "")) for r in rows)
        for label, best, median, ratio_rt, ratio_count in rows:
            log(f"  {label.replace('`', ''):<{width}}  {best:>8}  {median:>9}  {ratio_rt:>10}  {ratio_count:>12}")
        log()
        log(f"EXPLAIN (ANALYZE, BUFFERS) of the at-risk SELECT before the first scan ({self.batch} = scan()'s batch):")
        for line in self.plan.splitlines():
            log(f"  {line}")
        log()
        log(f"  after the first scan:  {plan_summary(self.plan_after)}")
        log(f"  with index scans off:  {plan_summary(self.plan_no_index)}")
        log(f"  the broken SELECT:     {plan_summary(self.plan_broken)}")
        log(f"  the full count:        {plan_summary(self.plan_count)}")
        log()
        for goal, value, ok in self.goals():
            log(f"  {'PASS' if ok else 'FAIL'}  {goal.replace('`', '')}: {value}")
        log()
        log(f"{'PASS' if self.passed else 'FAIL'}: bench-promises ({w.rows:,} commitments)")

    def markdown(self) -> str:
        m, w = self.machine, self.world
        lines = [
            DOC_START,
            f"## Promises: the at-risk scan over {w.rows:,} commitments",
            "",
            f"Latest run: **{m.date}**, `make bench-promises` ({w.rows:,} commitments).",
            "",
            f"- Machine: {m.nproc} CPUs ({m.cpu}), {m.ram_gb:.0f} GB RAM, {m.system}.",
            f"- Versions: Python {m.python}, Django {m.django}, psycopg {m.psycopg}; PostgreSQL {m.postgres} "
            f"({m.postgres_settings}).",
            f"- Data: {self.data_text()}.",
            f"- CPU used by other work, measured for 2 s with the benchmark idle: {share_text(self.other_cpu)}."
            + (
                " **Other work was running on the machine: these figures are pessimistic.**"
                if self.other_cpu is not None and self.other_cpu > 0.1
                else ""
            ),
            "",
            "| Measured in the same run | best ms | median ms | × `SELECT 1` | × full count |",
            "|---|---:|---:|---:|---:|",
            *(f"| {label} | {best} | {median} | {rt} | {count} |" for label, best, median, rt, count in self.table()),
            "",
            "| Goal | Measured | |",
            "|---|---:|---|",
            *(f"| {goal} | {value} | **{'met' if ok else 'NOT met'}** |" for goal, value, ok in self.goals()),
            "",
            f"The at-risk SELECT's plan (`EXPLAIN (ANALYZE, BUFFERS)`, right after its timed runs, before the "
            f"first scan; {self.batch} is `scan()`'s batch):",
            "",
            "```",
            *self.plan.splitlines(),
            "```",
            "",
            f"- The same SELECT once the first scan has nudged them (nothing left to find): "
            f"{plan_summary(self.plan_after)}.",
            f"- With index scans off, the same SELECT: {plan_summary(self.plan_no_index)}.",
            f"- The broken SELECT: {plan_summary(self.plan_broken)}.",
            f"- The full count: {plan_summary(self.plan_count)}.",
            f"- The index: `{w.index_definition}`.",
            f"- Not timed: creating the jobs {w.jobs_seconds:.0f} s, loading the commitments {w.load_seconds:.0f} s, "
            f"`VACUUM ANALYZE` {w.analyze_seconds:.1f} s.",
            "",
            *METHOD,
            DOC_END,
        ]
        return "\n".join(lines) + "\n"


METHOD = [
    "### How it is measured",
    "",
    "`make bench-promises` runs `python -m bench.promises`. It needs PostgreSQL (no Redis). It drops and "
    "recreates the database in `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/portal_bench_promises`; "
    "the name must contain `bench`), migrates it, and leaves it behind for inspection (drop it with "
    "`psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE portal_bench_promises'`). Settings are the production ones "
    "(`DJANGO_DEBUG=0`, a random `SECRET_KEY`) with the django-q2 ORM broker: the alerts the first scan queues are "
    "stored, nobody sends them.",
    "",
    f"Setup (not timed): {len(OWNERS)} owners and a manager, {JOBS:,} jobs created with `job_create` (each brings "
    "its 3 stage promises, due 5 business days out or later). A load generator (`INSERT … SELECT "
    "generate_series(…)`, not the services) then fills `crm_commitment` up to N rows the way the scan leaves a "
    "team's history when it runs every few minutes. Promises fall due at closing time (18:00 Europe/Paris) on "
    "business days. 88 % are kept or withdrawn and 2 % broken, due over the last two years; 10 % are open (a fifth "
    "of them renegotiated), due over the next 60 days — those inside the warning window (until closing time of the "
    "next business day) were nudged already, except a few hundred; and a few hundred more are still open at the "
    "last closing time (they fell due since the scan last ran). Both few hundreds stay within one batch "
    "of the scan (500). Then `VACUUM ANALYZE` of the whole database (as autovacuum would have).",
    "",
    "Timing is wall-clock (`time.perf_counter`) in the benchmark process through Django's connection: one warm-up "
    f"run, then {REPEATS} runs; best and median are shown, and the median as a ratio to the two baselines measured "
    "in the same run: a `SELECT 1` round trip, and a full sequential count of `crm_commitment` (index scans off "
    "with `SET LOCAL` in a transaction, whose few round trips are timed with it).",
    "",
    "1. **The scan's SELECTs.** The at-risk and the broken SELECT are built with the ORM from "
    "`crm.services.promises` (`open_commitments()`, `warning_threshold()`) exactly as `scan()` builds them, "
    "`select_related`, `ORDER BY due_at` and the batch's `LIMIT` included, and evaluated into model instances. "
    "The benchmark checks that their SQL is what a real `scan()` sends (same `now`). The at-risk SELECT is timed "
    "again with `enable_indexscan`, `enable_indexonlyscan` and `enable_bitmapscan` off, to show what the index "
    "saves.",
    "2. **`scan()` itself.** The first run, timed once, nudges and breaks what the setup left for it (and checks it "
    "did exactly that). The runs after it find nothing to change: that is the scan every few minutes. Each must "
    "change nothing and take under a second.",
    "3. **The plan.** `EXPLAIN (ANALYZE, BUFFERS)` of the at-risk SELECT, before the first scan (with rows to "
    "find) and after it (none left), must use `commitment_open_due_idx`.",
    "",
    "The benchmark prints PASS or FAIL and exits non-zero on FAIL. `BENCH_COMMITMENTS=100000 make bench-promises` "
    "is a quick try; only a full-size run (1,000,000) rewrites this section.",
]


def write_doc(report: Report) -> bool:
    """Refresh this benchmark's own section of docs/performance.md; False when it has none yet."""
    return common.replace_doc_section(DOC_PATH, DOC_START, DOC_END, report.markdown(), create=False)


# --- Main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.promises", description=__doc__.split("\n")[0] if __doc__ else ""
    )
    parser.add_argument(
        "--commitments",
        type=int,
        default=int_env("BENCH_COMMITMENTS", FULL_SIZE),
        help=f"rows in crm_commitment (env BENCH_COMMITMENTS, default {FULL_SIZE:,})",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=float(int_env("BENCH_WAIT_QUIET", 0)),
        metavar="SECONDS",
        help="before the timed part, wait up to this long for other work on the machine to stop (env BENCH_WAIT_QUIET)",
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown section to FILE")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--write-docs",
        dest="docs",
        action="store_true",
        default=None,
        help="refresh this benchmark's section of docs/performance.md even for a scaled-down run",
    )
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="leave docs/performance.md alone")
    args = parser.parse_args(argv)
    if args.commitments < 20 * JOBS:
        parser.error(f"--commitments must be at least {20 * JOBS:,}")
    return args


def run(args: argparse.Namespace) -> tuple[Report, Target]:
    total: int = args.commitments
    target = choose_target()
    prepare_environment(target)
    log(f"Setup (not timed): recreating {target.database_name}, migrating")
    began = time.perf_counter()
    common.recreate_database(target.database_url, target.database_name)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from crm.services.promises import warning_threshold

    # django-q2 logs every enqueue at INFO; keep the output to the figures.
    logging.getLogger("django-q").setLevel(logging.WARNING)
    call_command("migrate", interactive=False, verbosity=0)
    machine = describe_machine()
    batch = scan_batch()
    cap = batch - 50
    world = World(
        at=timezone.now(),
        threshold=warning_threshold(),
        last_closing=timezone.now(),
        at_risk=min(cap, max(1, total // 3_333)),
        backlog=min(cap, max(1, total // 5_000)),
    )
    log(f"  {JOBS:,} jobs with job_create")
    step = time.perf_counter()
    job_ids, owner_ids = build_jobs()
    world.jobs_seconds = time.perf_counter() - step
    log(f"  filling {TABLE} up to {total:,} rows")
    step = time.perf_counter()
    world.at = timezone.now()
    world.threshold = warning_threshold()
    load_commitments(world, total=total, job_ids=job_ids, owner_ids=owner_ids)
    world.load_seconds = time.perf_counter() - step
    log("  VACUUM ANALYZE")
    analyze(world)
    setup_seconds = time.perf_counter() - began
    log(f"  setup took {setup_seconds:.0f} s: {world.rows:,} commitments, {world.index_rows:,} open")

    if args.wait_quiet > 0:
        common.wait_for_quiet(args.wait_quiet)
    other_cpu = other_cpu_share()
    log(f"Baselines (other CPU use, benchmark idle: {share_text(other_cpu)})")
    round_trip = timed("SELECT 1", select_one)
    full_count = timed("count", count_all_sequentially)

    log("The scan's SELECTs")
    now = timezone.now()
    at_risk_rows = len(list(at_risk_query(now, batch)))
    broken_rows = len(list(broken_query(now, batch)))
    at_risk = timed("at-risk", lambda: list(at_risk_query(now, batch)))

    def at_risk_without_index() -> None:
        with index_scans_off():
            list(at_risk_query(now, batch))

    at_risk_no_index = timed("at-risk, no index", at_risk_without_index)
    broken = timed("broken", lambda: list(broken_query(now, batch)))
    plan = explain(at_risk_query(now, batch))
    plan_no_index = explain(at_risk_query(now, batch), index_scans=False)
    plan_broken = explain(broken_query(now, batch))
    plan_count = count_plan()

    log("scan(): the first run, then runs with nothing to change")
    scans = run_scans()
    log(f"  first run {scans.first_seconds:.2f} s: {scans.first_counts}")
    log("Checking the SQL, EXPLAIN")
    check = check_queries(batch)
    plan_after = explain(at_risk_query(timezone.now(), batch))
    connection.close()
    return (
        Report(
            machine=machine,
            world=world,
            batch=batch,
            setup_seconds=setup_seconds,
            other_cpu=other_cpu,
            round_trip=round_trip,
            full_count=full_count,
            at_risk=at_risk,
            at_risk_no_index=at_risk_no_index,
            broken=broken,
            scans=scans,
            at_risk_rows=at_risk_rows,
            broken_rows=broken_rows,
            plan=plan,
            plan_no_index=plan_no_index,
            plan_broken=plan_broken,
            plan_count=plan_count,
            plan_after=plan_after,
            check=check,
        ),
        target,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report, target = run(args)
    report.print()
    if args.markdown:
        args.markdown.write_text(report.markdown())
        log(f"\n  wrote the Markdown section to {args.markdown}")
    write = args.docs if args.docs is not None else report.world.rows == FULL_SIZE
    if write and write_doc(report):
        log(f"  refreshed its section of {DOC_PATH.relative_to(ROOT)}")
    elif write:
        log(f"  {DOC_PATH.relative_to(ROOT)} has no {DOC_START} section yet: not written (--markdown FILE saves it)")
    log(f"\n  {target.database_name} is left for inspection; drop it with: {drop_command(target)}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
