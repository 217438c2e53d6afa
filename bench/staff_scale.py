"""Staff pages at scale (``make bench-staff``): the dashboard, the jobs list, a job page and the
health report on 10,000 jobs, 200,000 events and some 90,000 messages.

Not a test. It needs PostgreSQL and owns the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/portal_bench_staff; its name must contain "bench"): dropped,
created again and migrated, left behind for inspection. ``BENCH_REUSE=1`` keeps the database
already loaded (it only applies new migrations and runs ANALYZE), so that a change of indexes is
measured on the same rows.

1. Setup, not timed, with ``bulk_create`` in batches (not the services, as a team's history would
   be): a manager and 10 owners, one pipeline of 6 stages, ``BENCH_JOBS`` jobs (default 10,000)
   created over the last 18 months — the newest 30 % active, 3 % on hold, the rest done or
   cancelled — each with its customer, contact, 6 milestones (a few late) and their promises,
   20 events and 9 messages (sent and delivered mostly; a few failed or bounced and not seen to,
   inbound replies, calls to make), a question for one job in four with its acknowledgement, a
   daily digest per owner, and a few unassigned inbound emails. Then VACUUM ANALYZE.
2. Each page, in process with Django's test client (``force_login``; production settings, DEBUG
   off): the owner's dashboard, the manager's team dashboard, the owner's jobs list, one of the
   owner's job pages, and the manager's health report over the last quarter (91 days). 3 warm-ups,
   then 15 requests: the median wall time, the queries (``connection.execute_wrapper``) and the
   median of their summed SQL time. Then the navigation's search (10,000 customers and contacts,
   each contact with a mobile number): a contact's name as live results, a number typed in the
   international format, a job's reference, and "Contact 1", which 1,111 contacts match.
3. The top 3 slowest queries of both dashboards (median over the 15 requests) and of the health
   report, each with ``EXPLAIN (ANALYZE, BUFFERS)``; and every query's plan (``EXPLAIN``) searched
   for sequential scans of the big tables.

PASS needs the goals: dashboard ≤ 12 queries and ≤ 150 ms median, health report ≤ 500 ms median,
each search ≤ 5 queries and ≤ 100 ms median.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench import common
from bench.common import log

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_staff"
OWNERS = 10
STAGES = ["Survey", "Quote", "Order", "Delivery", "Installation", "Handover"]
EVENTS_PER_JOB = 20
MESSAGES_PER_JOB = 9
HISTORY_DAYS = 540
BATCH = 10_000
WARMUPS = 3
REQUESTS = 15
DASHBOARD_QUERIES = 12
DASHBOARD_MS = 150.0
HEALTH_MS = 500.0
SEARCH_QUERIES = 5
SEARCH_MS = 100.0
SEARCH_LIVE_NAME = "Search, live: a contact's name"
SEARCH_PHONE = "Search page: a number typed +33 6 …"
SEARCH_REFERENCE = "Search page: a job's reference"
SEARCH_COMMON = "Search page: 'Contact 1' (1,111 contacts match)"
SEARCHES = (SEARCH_LIVE_NAME, SEARCH_PHONE, SEARCH_REFERENCE, SEARCH_COMMON)
BIG_TABLES = ("crm_message", "crm_jobevent", "crm_job", "crm_milestone", "crm_commitment", "crm_question")


def prepare_environment(database_url: str) -> None:
    """Production settings, DEBUG off; no Redis (local-memory cache, the ORM broker); no
    two-factor step: the client signs in with force_login."""
    for key in [k for k in os.environ if k.startswith("ANYMAIL_")]:
        del os.environ[key]
    os.environ.pop("REDIS_URL", None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.staff_settings",
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "STAFF_2FA_REQUIRED": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LOG_LEVEL": "WARNING",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
    )


# --- The world ----------------------------------------------------------------------------------


def bulk(model: Any, rows: list[Any]) -> list[Any]:
    created: list[Any] = []
    for start in range(0, len(rows), BATCH):
        created += model.objects.bulk_create(rows[start : start + BATCH])
    return created


def build(jobs_wanted: int, now: datetime) -> dict[str, int]:
    """The world; how many rows of each big table."""
    from django.contrib.auth.models import Group, User

    from crm.models import (
        Commitment,
        Contact,
        Customer,
        Job,
        JobEvent,
        Message,
        Milestone,
        Pipeline,
        Question,
        StageTemplate,
    )
    from crm.reports import NUDGES_KEY_PREFIX

    managers, _ = Group.objects.get_or_create(name="Managers")
    manager = User.objects.create_user("manager", "manager@example.com", is_staff=True, first_name="Alice")
    manager.groups.add(managers)
    owners = [
        User.objects.create_user(f"owner{i}", f"owner{i}@example.com", is_staff=True, first_name=f"Owner {i}")
        for i in range(OWNERS)
    ]
    pipeline = Pipeline.objects.create(name="Installation")
    stages = [
        StageTemplate.objects.create(pipeline=pipeline, position=position, name=name, default_duration_days=7)
        for position, name in enumerate(STAGES, start=1)
    ]
    customers = bulk(
        Customer, [Customer(name=f"Customer {i}", address=f"{i} rue des Lilas, Lyon") for i in range(jobs_wanted)]
    )
    contacts = bulk(
        Contact,
        [
            Contact(
                customer=customer,
                name=f"Contact {i}",
                email=f"c{i}@example.com",
                phone="06 " + " ".join(f"{i:08d}"[k : k + 2] for k in range(0, 8, 2)),
                language=("en", "fr")[i % 2],
            )
            for i, customer in enumerate(customers)
        ],
    )
    # The newest jobs are the open ones: job i was created i/N of the history ago.
    active_until, held_until = int(jobs_wanted * 0.30), int(jobs_wanted * 0.33)
    jobs: list[Any] = []
    for i, customer in enumerate(customers):
        created = now - timedelta(days=HISTORY_DAYS * i / jobs_wanted, hours=i % 7)
        if i < active_until:
            status, closed, stage = Job.Status.ACTIVE, None, stages[i % 5]
        elif i < held_until:
            status, closed, stage = Job.Status.ON_HOLD, None, stages[i % 3]
        elif i % 10:
            status, closed, stage = Job.Status.DONE, created + timedelta(days=60), stages[-1]
        else:
            status, closed, stage = Job.Status.CANCELLED, created + timedelta(days=20), stages[1]
        jobs.append(
            Job(
                reference=f"B-{i:06d}",
                public_id=uuid.uuid4(),
                reply_token=secrets.token_hex(12),
                title=f"Heat pump {i}",
                customer=customer,
                pipeline=pipeline,
                current_stage=stage,
                owner=owners[i % OWNERS],
                status=status,
                created_at=created,
                updated_at=closed or created,
                closed_at=closed,
            )
        )
    jobs = bulk(Job, jobs)
    through = Job.contacts.through
    bulk(through, [through(job_id=job.pk, contact_id=contact.pk) for job, contact in zip(jobs, contacts, strict=True)])

    milestones: list[Any] = []
    for i, job in enumerate(jobs):
        for stage in stages:
            planned = (job.created_at + timedelta(days=10 * stage.position)).date()
            done = job.closed_at is not None or stage.position < job.current_stage.position
            late = not done and i % 20 == 0
            milestones.append(
                Milestone(
                    job=job,
                    stage=stage,
                    planned_date=planned,
                    forecast_date=planned + timedelta(days=5) if late else planned,
                    completed_at=job.created_at + timedelta(days=10 * stage.position) if done else None,
                )
            )
    milestones = bulk(Milestone, milestones)
    commitments = []
    for milestone in milestones:
        job = milestone.job
        due = datetime.combine(milestone.planned_date, datetime.min.time(), tzinfo=now.tzinfo) + timedelta(hours=17)
        open_ = milestone.completed_at is None and job.closed_at is None
        commitments.append(
            Commitment(
                job=job,
                kind=Commitment.Kind.MILESTONE,
                title=f"{milestone.stage.name} by {milestone.planned_date}",
                owner_id=job.owner_id,
                state=Commitment.State.OPEN if open_ else Commitment.State.KEPT,
                first_due_at=due,
                due_at=due + timedelta(days=5) if milestone.forecast_date != milestone.planned_date else due,
                created_at=job.created_at,
                kept_at=None if open_ else milestone.completed_at or job.closed_at,
                milestone=milestone,
            )
        )
    # A cancelled job's open promises were withdrawn; here they are simply kept at closing.
    bulk(Commitment, commitments)

    kinds = [
        JobEvent.Kind.STAGE_ADVANCED,
        JobEvent.Kind.MESSAGE_SENT,
        JobEvent.Kind.PROMISE_MADE,
        JobEvent.Kind.PROMISE_KEPT,
        JobEvent.Kind.DETAILS_CHANGED,
        JobEvent.Kind.MESSAGE_RECEIVED,
        JobEvent.Kind.CALL_LOGGED,
        JobEvent.Kind.DATE_MOVED,
    ]
    events = []
    for i, job in enumerate(jobs):
        span = ((job.closed_at or now) - job.created_at) / EVENTS_PER_JOB
        events.append(JobEvent(job=job, kind=JobEvent.Kind.CREATED, actor=job.owner, created_at=job.created_at))
        for n in range(1, EVENTS_PER_JOB):
            events.append(
                JobEvent(
                    job=job,
                    kind=kinds[(i + n) % len(kinds)],
                    actor=job.owner if n % 3 else None,
                    created_at=job.created_at + span * n,
                    data={"n": n},
                )
            )
    bulk(JobEvent, events)

    questions = []
    for i, job in enumerate(jobs):
        if i % 4 == 0:
            received = job.created_at + timedelta(days=3)
            questions.append(
                Question(
                    job=job,
                    contact=contacts[i],
                    source=Question.Source.PORTAL,
                    body="When do you come?",
                    received_at=received,
                    answer_due_on=(received + timedelta(days=2)).date(),
                    answered_at=None if i % 40 == 0 and job.closed_at is None else received + timedelta(hours=20),
                )
            )
    questions = bulk(Question, questions)
    question_of = {question.job_id: question for question in questions}

    messages = []
    key = 0

    def message(*, idempotency_key: str = "", channel: str = Message.Channel.EMAIL, **fields: Any) -> None:
        nonlocal key
        key += 1
        messages.append(Message(idempotency_key=idempotency_key or f"bench:{key}", channel=channel, **fields))

    for i, job in enumerate(jobs):
        contact = contacts[i]
        span = ((job.closed_at or now) - job.created_at) / MESSAGES_PER_JOB
        for n in range(MESSAGES_PER_JOB):
            at = job.created_at + span * n
            common_fields = {"job": job, "contact": contact, "created_at": at, "language": contact.language}
            if n == 4:  # the customer writes: handled, except a few
                unhandled = i % 50 == 0 and job.closed_at is None
                message(
                    **common_fields,
                    direction=Message.Direction.IN,
                    kind=Message.Kind.REPLY,
                    status=Message.Status.RECEIVED,
                    from_address=contact.email,
                    subject="Re: your installation",
                    body_text="Thanks!",
                    handled_at=None if unhandled else at + timedelta(hours=4),
                )
            elif n == 6 and i % 60 == 0 and job.closed_at is None:  # a call to make
                message(
                    **common_fields,
                    channel=Message.Channel.PHONE,
                    kind=Message.Kind.CALL,
                    status=Message.Status.CALL_PENDING,
                    to_address="+33 1 23 45 67 89",
                )
            else:
                failed = n == 7 and i % 100 == 0
                sent_status = Message.Status.DELIVERED if n % 2 else Message.Status.SENT
                failed_status = Message.Status.BOUNCED if i % 200 else Message.Status.FAILED
                message(
                    **common_fields,
                    kind=Message.Kind.WELCOME if n == 0 else Message.Kind.STAGE_CHANGE,
                    status=failed_status if failed else sent_status,
                    to_address=contact.email,
                    subject="News about your installation",
                    body_text="Your installation moved on.",
                    sent_at=at + timedelta(seconds=5),
                    failed_at=at + timedelta(minutes=1) if failed else None,
                    handled_at=at + timedelta(days=1) if failed and job.closed_at is not None else None,
                    last_error="mailbox unknown" if failed else "",
                )
        question = question_of.get(job.pk)
        if question is not None:
            at = question.received_at + timedelta(seconds=30)
            message(
                job=job,
                contact=contact,
                created_at=at,
                language=contact.language,
                kind=Message.Kind.ACKNOWLEDGEMENT,
                status=Message.Status.SENT,
                to_address=contact.email,
                subject="We got your question",
                body_text="We answer by…",
                sent_at=at,
                idempotency_key=f"ack:{question.pk}:{contact.pk}",
            )
    for day in range(HISTORY_DAYS):
        at = now - timedelta(days=day, hours=2)
        if at.weekday() >= 5:
            continue
        for owner in owners:
            message(
                job=None,
                staff=owner,
                created_at=at,
                kind=Message.Kind.STAFF_ALERT,
                status=Message.Status.SENT,
                to_address=owner.email,
                subject="About to slip",
                body_text="…",
                sent_at=at,
                idempotency_key=f"{NUDGES_KEY_PREFIX}{owner.pk}:{at.date()}",
            )
    for n in range(40):
        at = now - timedelta(days=n)
        message(
            job=None,
            created_at=at,
            direction=Message.Direction.IN,
            kind=Message.Kind.REPLY,
            status=Message.Status.RECEIVED,
            from_address=f"someone{n}@example.net",
            subject="Hello",
            body_text="Who do I ask?",
            handled_at=at if n % 4 else None,
        )
    bulk(Message, messages)
    return {
        "jobs": len(jobs),
        "events": len(events),
        "messages": len(messages),
        "milestones": len(milestones),
        "commitments": len(commitments),
        "questions": len(questions),
    }


# --- Measuring ----------------------------------------------------------------------------------


@dataclass
class Query:
    sql: str
    params: Any
    ms: float


@dataclass
class PageResult:
    label: str
    url: str
    wall_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    # Per position in the request's queries: (sql, params) and each request's time.
    by_position: dict[int, tuple[str, Any]] = field(default_factory=dict)
    times_by_position: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def median_ms(self) -> float:
        return statistics.median(self.wall_ms)

    @property
    def fastest_ms(self) -> float:
        return min(self.wall_ms)

    @property
    def median_sql_ms(self) -> float:
        return statistics.median(self.sql_ms)

    def slowest(self, count: int) -> list[tuple[float, str, Any]]:
        ranked = [
            (statistics.median(times), *self.by_position[position])
            for position, times in self.times_by_position.items()
        ]
        return sorted(ranked, key=lambda row: -row[0])[:count]


def measure(label: str, client: Any, url: str, headers: dict[str, str] | None = None) -> PageResult:
    from django.db import connection

    result = PageResult(label, url)

    def run(record: bool) -> None:
        captured: list[Query] = []

        def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                captured.append(Query(sql, params, (time.perf_counter() - began) * 1000))

        began = time.perf_counter()
        with connection.execute_wrapper(wrapper):
            response = client.get(url, secure=True, headers=headers)
        wall = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{label}: {url} answered {response.status_code}")
        if not record:
            return
        result.wall_ms.append(wall)
        result.sql_ms.append(sum(q.ms for q in captured))
        result.queries.append(len(captured))
        for position, query in enumerate(captured):
            result.by_position.setdefault(position, (query.sql, query.params))
            result.times_by_position[position].append(query.ms)

    for _ in range(WARMUPS):
        run(False)
    for _ in range(REQUESTS):
        run(True)
    return result


def explain(sql: str, params: Any, *, analyze: bool) -> str:
    from django.db import connection

    options = "ANALYZE, BUFFERS" if analyze else "COSTS OFF"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}", params)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def seq_scans(plan: str) -> list[str]:
    """The big tables a plan reads whole."""
    found = re.findall(r"Seq Scan on (\w+)", plan)
    return sorted({table for table in found if table in BIG_TABLES})


def short_sql(sql: str, width: int = 150) -> str:
    text = re.sub(r"\s+", " ", sql)
    return text if len(text) <= width else text[: width - 1] + "…"


def main() -> int:
    jobs_wanted = common.int_env("BENCH_JOBS", 10_000)
    reuse = os.environ.get("BENCH_REUSE", "") not in ("", "0")
    database_url, name = common.bench_database(DEFAULT_DATABASE_URL, program="bench.staff_scale")
    prepare_environment(database_url)
    if not reuse:
        log(f"Setup (not timed): recreating {name}, migrating")
        common.recreate_database(database_url, name)

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from crm.models import Contact, Job, JobEvent, Message
    from crm.workdays import business_today

    logging.getLogger("django-q").setLevel(logging.WARNING)
    call_command("migrate", interactive=False, verbosity=0)
    now = timezone.now()
    began = time.perf_counter()
    if reuse:
        log(f"Reusing {name} (new migrations applied)")
    else:
        counts = build(jobs_wanted, now)
        log(f"  built {', '.join(f'{v:,} {k}' for k, v in counts.items())} in {time.perf_counter() - began:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(
        f"  {Job.objects.count():,} jobs, {JobEvent.objects.count():,} events, {Message.objects.count():,} messages;"
        f" PostgreSQL {common.postgres_version()}"
    )
    log(f"  other CPU use while idle: {common.share_text(common.other_cpu_share())}")
    log(f"  the machine's own spread (a fixed loop, median ÷ fastest of 30): {common.cpu_spread():.2f}")

    owner = User.objects.get(username="owner0")
    manager = User.objects.get(username="manager")
    job = Job.objects.filter(owner=owner, status=Job.Status.ACTIVE).order_by("-created_at").first()
    assert job is not None
    today = business_today()
    quarter = f"?from={today - timedelta(days=90)}&to={today}"
    owner_client, manager_client = Client(), Client()
    owner_client.force_login(owner)
    manager_client.force_login(manager)
    pages = [
        ("Owner's dashboard", owner_client, reverse("crm:home")),
        ("Manager's team dashboard", manager_client, reverse("crm:home") + "?scope=team"),
        ("Jobs list (owner's open jobs)", owner_client, reverse("crm:jobs")),
        ("A job page", owner_client, reverse("crm:job", args=[job.public_id])),
        ("Health report, a quarter (manager)", manager_client, reverse("crm:health") + quarter),
    ]
    results = [measure(label, client, url) for label, client, url in pages]
    # The navigation's search, as typed (live results under the box) and as a page.
    contact = Contact.objects.order_by("pk")[Contact.objects.count() * 42 // 100]
    live = {"HX-Request": "true", "HX-Target": "nav-search-results"}
    searches = [
        (SEARCH_LIVE_NAME, {"q": contact.name}, live),
        (SEARCH_PHONE, {"q": "+33 " + contact.phone[1:]}, None),
        (SEARCH_REFERENCE, {"q": job.reference}, None),
        (SEARCH_COMMON, {"q": "Contact 1"}, None),
    ]
    results += [
        measure(label, owner_client, reverse("crm:search") + "?" + urlencode(query), headers)
        for label, query, headers in searches
    ]

    goals: dict[str, tuple[float | None, float | None]] = {
        "Owner's dashboard": (DASHBOARD_QUERIES, DASHBOARD_MS),
        "Manager's team dashboard": (DASHBOARD_QUERIES, DASHBOARD_MS),
        "Health report, a quarter (manager)": (None, HEALTH_MS),
        **dict.fromkeys(SEARCHES, (SEARCH_QUERIES, SEARCH_MS)),
    }
    checks: dict[str, bool] = {}
    log(f"\n{REQUESTS} requests after {WARMUPS} warm-ups, in process (Django test client)\n")
    log("| Page | queries | median ms | fastest ms | SQL ms (median) | goal | |")
    log("|---|---:|---:|---:|---:|---|---|")
    for result in results:
        max_queries, max_ms = goals.get(result.label, (None, None))
        parts, ok = [], True
        if max_queries is not None:
            parts.append(f"≤ {max_queries:.0f} queries")
            ok &= max(result.queries) <= max_queries
        if max_ms is not None:
            parts.append(f"≤ {max_ms:.0f} ms")
            ok &= result.median_ms <= max_ms
        verdict = ("**met**" if ok else "**not met**") if parts else ""
        if parts:
            checks[f"{result.label}: {', '.join(parts)}"] = ok
        fewest, most = min(result.queries), max(result.queries)
        queries = f"{fewest}" if fewest == most else f"{fewest}–{most}"
        log(
            f"| {result.label} | {queries} | {result.median_ms:,.0f} | {result.fastest_ms:,.0f} |"
            f" {result.median_sql_ms:,.0f} |"
            f" {', '.join(parts) or '–'} | {verdict} |"
        )

    log("\nSequential scans of big tables in the pages' plans (EXPLAIN of every query):")
    for result in results:
        found = []
        for position in sorted(result.by_position):
            sql, params = result.by_position[position]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            tables = seq_scans(explain(sql, params, analyze=False))
            if tables:
                ms = statistics.median(result.times_by_position[position])
                found.append(f"    q{position + 1} ({ms:.1f} ms) {', '.join(tables)}: {short_sql(sql)}")
        log(f"  {result.label}: {'none' if not found else ''}")
        for line in found:
            log(line)

    for result in results:
        if result.label not in goals:
            continue
        log(f"\n=== {result.label}: the 3 slowest queries (median ms over {REQUESTS} requests) ===")
        for ms, sql, params in result.slowest(3):
            log(f"\n--- {ms:.1f} ms: {short_sql(sql, 400)}")
            log(explain(sql, params, analyze=True))

    log("")
    for label, ok in checks.items():
        log(f"  {'PASS' if ok else 'FAIL'}  {label}")
    log(f"\n  {name} is left for inspection; drop it with: dropdb {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
