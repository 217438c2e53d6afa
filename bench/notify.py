"""Notification benchmark (``make bench-notify``): stage changes to messages accepted by the email provider.

Not a test. It needs PostgreSQL and Redis, and it owns what it is given: the database in
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench, its name must contain
"bench") is dropped and created again, and the Redis database in REDIS_URL (default
redis://127.0.0.1:6379/13, never 0) is flushed.

The edge is the email provider: a fake Postmark (bench.fake_esp) on 127.0.0.1, reached through
anymail's real Postmark backend by both the baseline and the product. A message is "handed to the
email backend" once that server has accepted it over HTTP.

1. Setup, not timed: one pipeline of 6 customer-visible stages, N/5 jobs (``job_create``) each with
   one email contact, so every job has 5 stage changes ahead of it and each sends one message.
2. Baseline, the plain loop: the same N messages, rendered beforehand with
   ``crm.notify.stage_change_drafts``, sent one after another with ``django.core.mail.send_mail``.
3. The product: ``manage.py qcluster`` with 2 workers runs beside this process, which performs the
   N stage changes as staff moving a page of jobs at a time (``jobs_advance``, ``--move`` jobs per
   move, each its own transaction: the messages are queued and enqueued on commit). Timed from the
   first stage change until the provider has accepted the last message; every message row must end
   ``sent`` and the provider must have seen each once.
4. The product, one job at a time: ``--single`` more stage changes with ``job_advance``, timed the
   same way (the path of a person clicking "advance" on one job).
5. Queries per stage change, per move and per delivery, on a few extra jobs.
6. With ``--profile K``: cProfile of K more stage changes and of delivering their messages.

Figures are printed as ratios to the plain loop, and at full size (10,000 messages) written to
docs/performance.md. ``BENCH_MESSAGES=1000 make bench-notify`` is a quick try.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import inspect
import logging
import os
import pstats
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from tempfile import mkdtemp
from typing import IO, TYPE_CHECKING, Any

from bench import common, cpu
from bench.common import DOC_PATH, ROOT, int_env, log, other_cpu_share, share_text
from bench.fake_esp import EspStats, FakeEsp

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from crm.models import Job, StageTemplate
    from crm.notify import Draft

DOC_START = "<!-- bench-notify:start -->"
DOC_END = "<!-- bench-notify:end -->"

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
FULL_SIZE = 10_000
WORKERS = 2
ESP_SERVER_KEY = "bench"  # the fake provider's Postmark server token, nothing real

GOAL_TOTAL_SECONDS = 60.0
GOAL_RATIO = 0.5

# (name, business days from the previous stage); all shown to the customer, so each reached
# stage sends one message to the job's contact.
STAGES = [
    ("Request received", 0),
    ("Proposal sent", 3),
    ("Order confirmed", 5),
    ("Installation scheduled", 2),
    ("Installed", 10),
    ("Follow-up visit", 5),
]
STEPS = len(STAGES) - 1
QUERY_SAMPLE_JOBS = 5
# Jobs per bulk move: a page of the jobs list, selected and moved to the next stage.
DEFAULT_MOVE = 50
# Stage changes made one job at a time (job_advance), after the bulk moves.
DEFAULT_SINGLE = 1000
# A run stops waiting when the provider has accepted nothing new for this long.
STALL_SECONDS = 120.0


# --- Environment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    database_url: str
    database_name: str
    redis_url: str


def choose_target() -> Target:
    """The database and Redis the run will wipe, refusing ones that do not look like a bench's."""
    database_url, name = common.bench_database(DEFAULT_DATABASE_URL, program="bench-notify")
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    common.refuse_redis_db_zero(
        redis_url,
        program="bench-notify",
        advice=f"give it a dedicated one, not db 0 (REDIS_URL={redis_url!r}; default {DEFAULT_REDIS_URL}).",
    )
    return Target(database_url=database_url, database_name=name, redis_url=redis_url)


def prepare_environment(target: Target, esp: FakeEsp, *, settings_module: str = "config.settings") -> None:
    """Production settings (DEBUG off: no query log in memory) with anymail's Postmark backend on the fake ESP.

    The qcluster subprocess inherits the same environment."""
    for key in [k for k in os.environ if k.startswith("ANYMAIL_")]:
        del os.environ[key]
    for key in ("EMAIL_BACKEND", "INBOUND_EMAIL_DOMAIN"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DATABASE_URL": target.database_url,
            "REDIS_URL": target.redis_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "Q_WORKERS": str(WORKERS),
            "ANYMAIL_ESP": "postmark",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": esp.token,
            "ANYMAIL_POSTMARK_API_URL": esp.url,
            "ANYMAIL_WEBHOOK_SECRET": "bench:not-used",
        }
    )


def flush_redis(redis_url: str) -> str:
    """Empty the run's Redis database; the server's version."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    version = str(client.info("server").get("redis_version", "?"))
    client.close()
    return version


@dataclass(frozen=True)
class Machine(common.Machine):
    django_q2: str
    anymail: str
    redis: str


def describe_machine(*, redis_version: str) -> Machine:
    return Machine(
        **asdict(common.describe_machine()),
        django_q2=metadata.version("django-q2"),
        anymail=metadata.version("django-anymail"),
        redis=redis_version,
    )


# --- The world ----------------------------------------------------------------------------------


@dataclass
class World:
    owner: User
    stages: list[StageTemplate]
    jobs: list[Job]
    single_jobs: list[Job]
    sample_jobs: list[Job]
    move_sample_jobs: list[Job]
    profile_jobs: list[Job]


def build_world(*, jobs: int, single_jobs: int, move: int, profile_jobs: int) -> World:
    from django.contrib.auth.models import User
    from django.db import transaction

    from crm.models import Contact, Customer, Pipeline, StaffProfile, StageTemplate
    from crm.services.jobs import job_create

    owner = User.objects.create_user(
        "bench-owner", "camille@bench.example", first_name="Camille", last_name="Bench", is_staff=True
    )
    StaffProfile.objects.create(user=owner, phone="+33 1 99 00 12 09", job_title="Project manager")
    pipeline = Pipeline.objects.create(name="Bench installation")
    stages = [
        StageTemplate.objects.create(
            pipeline=pipeline,
            position=position,
            name=name,
            customer_visible=True,
            default_duration_days=days,
            customer_instructions="Clear the way to the meter." if position == 4 else "",
        )
        for position, (name, days) in enumerate(STAGES, start=1)
    ]
    total = jobs + single_jobs + QUERY_SAMPLE_JOBS + move + profile_jobs
    customers = Customer.objects.bulk_create([Customer(name=f"Bench household {i:05d}") for i in range(total)])
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                customer=customer,
                name=f"Client {i:05d}",
                email=f"client{i:05d}@bench.example",
                language="fr" if i % 2 else "en",
            )
            for i, customer in enumerate(customers)
        ]
    )
    created: list[Job] = []
    batch = 250
    for start in range(0, total, batch):
        with transaction.atomic():
            for customer, contact in zip(
                customers[start : start + batch], contacts[start : start + batch], strict=True
            ):
                created.append(
                    job_create(
                        customer=customer,
                        pipeline=pipeline,
                        owner=owner,
                        title=f"Heat pump installation {customer.pk}",
                        actor=owner,
                        contacts=[contact],
                        # The welcome is not what this measures.
                        notify_customer=False,
                        not_told_reason="Benchmark data.",
                    )
                )
        if (start // batch) % 8 == 7:
            log(f"    {len(created):>6} jobs created")
    parts = iter([jobs, single_jobs, QUERY_SAMPLE_JOBS, move, profile_jobs])
    start = 0

    def take() -> list[Job]:
        nonlocal start
        size = next(parts)
        start += size
        return created[start - size : start]

    return World(
        owner=owner,
        stages=stages,
        jobs=take(),
        single_jobs=take(),
        sample_jobs=take(),
        move_sample_jobs=take(),
        profile_jobs=take(),
    )


def stage_changes(jobs: list[Job], stages: list[StageTemplate]) -> Iterator[tuple[Job, StageTemplate]]:
    """Every job through each of its next stages, a round of all jobs per stage (as a team would)."""
    for stage in stages[1:]:
        for job in jobs:
            yield job, stage


def moves(jobs: list[Job], stages: list[StageTemplate], size: int) -> Iterator[tuple[list[Job], StageTemplate]]:
    """The same stage changes as bulk moves: a round of all jobs per stage, ``size`` jobs a move."""
    for stage in stages[1:]:
        for start in range(0, len(jobs), size):
            yield jobs[start : start + size], stage


# --- The django-q2 cluster ----------------------------------------------------------------------


class Cluster:
    """``manage.py qcluster`` as a child process in its own session, so it can always be stopped."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, *, timeout: float = 90.0) -> float:
        """Start it and wait for "Q Cluster ... running."; the seconds that took."""
        began = time.perf_counter()
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"qcluster exited with {self.process.returncode}:\n{self.tail()}")
            if re.search(rb"Q Cluster \S+ \[[^\]]*\] running\.", self.log_path.read_bytes()):
                return time.perf_counter() - began
            time.sleep(0.1)
        raise RuntimeError(f"qcluster did not report running within {timeout:.0f} s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, *, timeout: float = 60.0) -> float:
        """SIGTERM, wait for a clean stop; SIGKILL its process group only if it does not come."""
        began = time.perf_counter()
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    log(f"  qcluster did not stop within {timeout:.0f} s; killing its process group")
            # The sentinel, workers, pusher and monitor share the session started for it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, 0)
                deadline = time.perf_counter() + 10
                while time.perf_counter() < deadline:
                    os.killpg(process.pid, 0)
                    time.sleep(0.1)
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.process = None
        return time.perf_counter() - began


# --- Measuring ----------------------------------------------------------------------------------


@dataclass
class PlainLoop:
    messages: int
    seconds: float
    render_seconds: float
    cpu_seconds: float
    other_cpu_before: float | None
    cpu_use: cpu.CpuUse

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass
class Product:
    messages: int
    move: int  # jobs per move; 1 = job_advance one job at a time
    cluster_start_seconds: float
    producer_cpu_seconds: float
    other_cpu_before: float | None
    producer_seconds: float
    total_seconds: float
    rows_sent_seconds: float
    accepted: int
    distinct_outbox_ids: int
    duplicate_outbox_ids: int
    rejected: int
    statuses: dict[str, int]
    task_failures: int
    cpu_use: cpu.CpuUse
    cluster_stop_seconds: float = 0.0
    progress: list[tuple[int, float, int]] = field(default_factory=list)

    @property
    def producer_rate(self) -> float:
        return self.messages / self.producer_seconds

    @property
    def rate(self) -> float:
        return self.messages / self.total_seconds

    @property
    def drain_seconds(self) -> float:
        return max(0.0, self.total_seconds - self.producer_seconds)

    @property
    def correct(self) -> bool:
        return (
            self.accepted == self.messages
            and self.distinct_outbox_ids == self.messages
            and self.duplicate_outbox_ids == 0
            and self.statuses == {"sent": self.messages}
        )


@dataclass
class Drain:
    """The workers alone: the same rows put back to queued and all enqueued at once."""

    messages: int
    seconds: float
    enqueue_seconds: float
    accepted: int
    distinct_outbox_ids: int
    statuses: dict[str, int]
    other_cpu_before: float | None
    cpu_use: cpu.CpuUse

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def correct(self) -> bool:
        return (
            self.accepted == self.messages
            and self.distinct_outbox_ids == self.messages
            and self.statuses == {"sent": self.messages}
        )


@dataclass
class Queries:
    per_stage_change: list[int]
    stage_change_kinds: Counter[str]
    per_delivery: list[int]
    delivery_kinds: Counter[str]
    example_stage_change: list[str]
    move: int
    per_move: list[int]
    batch: int
    per_batch: list[int]


@dataclass
class ProfileResult:
    stage_changes: int
    stage_change_seconds: float
    stage_change_costs: list[tuple[str, float | None]]
    deliveries: int
    delivery_seconds: float
    delivery_costs: list[tuple[str, float | None]]


def plain_loop(world: World, esp: FakeEsp, *, messages: int) -> PlainLoop:
    from django.conf import settings
    from django.core.mail import send_mail

    from crm.notify import stage_change_drafts

    log(f"  rendering the {messages} messages (not timed)")
    began = time.perf_counter()
    drafts: list[Draft] = []
    for job, stage in stage_changes(world.jobs, world.stages):
        drafts.extend(stage_change_drafts(job, stage=stage))
    render_seconds = time.perf_counter() - began
    if len(drafts) != messages:
        raise RuntimeError(f"Rendered {len(drafts)} messages, expected {messages}.")

    esp.reset()
    other_cpu = other_cpu_share()
    log(f"  other CPU use while idle: {share_text(other_cpu)}")
    log(f"  sending them with send_mail, one after another (timed, {settings.EMAIL_BACKEND})")
    roles, sampler = _roles(esp, None), cpu.Sampler().start()
    began, cpu_began = time.perf_counter(), time.process_time()
    for draft in drafts:
        send_mail(
            draft.subject,
            draft.body_text,
            settings.DEFAULT_FROM_EMAIL,
            [draft.to_address],
            html_message=draft.body_html,
        )
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    cpu_use = sampler.stop().use(roles)
    if esp.accepted != messages:
        raise RuntimeError(f"The fake ESP accepted {esp.accepted} of {messages} plain-loop messages.")
    return PlainLoop(
        messages=messages,
        seconds=seconds,
        render_seconds=render_seconds,
        cpu_seconds=cpu_seconds,
        other_cpu_before=other_cpu,
        cpu_use=cpu_use,
    )


def _wait_accepted(esp: FakeEsp, cluster: Cluster, *, messages: int, started_at: float) -> float:
    """Poll the provider's shared counter until it has accepted ``messages``; seconds from ``started_at``
    (time.time()) to the last acceptance, by the provider's own clock."""
    last_count, last_change, next_report = esp.accepted, time.monotonic(), time.monotonic() + 5
    while esp.accepted < messages:
        now = time.monotonic()
        if not cluster.alive():
            code = cluster.process.returncode if cluster.process is not None else None
            raise RuntimeError(
                f"qcluster exited (code {code}) with {esp.accepted} of {messages} accepted:\n{cluster.tail()}"
            )
        if esp.accepted != last_count:
            last_count, last_change = esp.accepted, now
        elif now - last_change > STALL_SECONDS:
            raise RuntimeError(
                f"Nothing accepted for {STALL_SECONDS:.0f} s ({esp.accepted} of {messages}):\n{cluster.tail()}"
            )
        if now >= next_report:
            _check_tasks(cluster)
            log(f"    {time.time() - started_at:6.1f} s: the provider has accepted {esp.accepted}")
            next_report = now + 5
        time.sleep(0.02)
    return esp.last_accepted_at - started_at


def _settle(esp: FakeEsp, *, started_at: float, jobs: list[Job]) -> tuple[float, EspStats, dict[str, int]]:
    """Wait for every row of ``jobs`` to be recorded sent (the worker does it just after the
    provider's answer); the seconds from ``started_at`` that took, the provider's counts and the
    rows by status."""
    from django.db.models import Count

    from crm.models import Message

    rows = Message.objects.filter(job__in=jobs)
    deadline = time.monotonic() + 60
    while rows.exclude(status=Message.Status.SENT).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    rows_sent_seconds = time.time() - started_at
    time.sleep(1.0)  # a late duplicate would show up at the provider now
    statuses = {row["status"]: row["n"] for row in rows.values("status").annotate(n=Count("id"))}
    return rows_sent_seconds, esp.stats(), statuses


def _roles(esp: FakeEsp, cluster: Cluster | None) -> cpu.Roles:
    from django.db import connection

    pids = None
    if cluster is not None and cluster.process is not None:
        pids = cpu.cluster_pids(cluster.process.pid, workers=WORKERS)
    return cpu.Roles(bench=os.getpid(), esp=esp.pid, cluster=pids, database=str(connection.settings_dict["NAME"]))


def _check_tasks(cluster: Cluster) -> None:
    """Stop early when the workers fail tasks (e.g. the code changed under a running cluster)."""
    from django_q.models import Failure

    failure = Failure.objects.order_by("started").first()
    if failure is not None:
        raise RuntimeError(
            f"A django-q2 task failed ({Failure.objects.count()} so far): {failure.func} {failure.args}:\n"
            f"{failure.result}\n{cluster.tail()}"
        )


def product(world: World, esp: FakeEsp, cluster: Cluster, *, jobs: list[Job], move: int) -> Product:
    """The stage changes of ``jobs`` (a round of all jobs per stage) with the cluster running: as
    bulk moves of ``move`` jobs (``jobs_advance``), or one at a time (``job_advance``) when 1."""
    from django_q.models import Failure

    from crm.services.jobs import job_advance, jobs_advance

    messages = len(jobs) * STEPS
    esp.reset()
    other_cpu = other_cpu_share()
    log(f"  other CPU use while idle: {share_text(other_cpu)}")
    log(f"  starting manage.py qcluster with {WORKERS} workers (log: {cluster.log_path})")
    cluster_start = cluster.start()
    how = f"moves of {move} jobs with jobs_advance" if move > 1 else "job_advance, one job at a time"
    log(f"  cluster running after {cluster_start:.1f} s; {messages} stage changes as {how} (timed)")

    progress: list[tuple[int, float, int]] = []
    roles, sampler = _roles(esp, cluster), cpu.Sampler().start()
    started_at = time.time()
    began, cpu_began = time.perf_counter(), time.process_time()
    done, next_report = 0, 1000
    for chunk, stage in moves(jobs, world.stages, move):
        if move > 1:
            jobs_advance(jobs=chunk, to_stage=stage, actor=world.owner)
        else:
            job_advance(job=chunk[0], to_stage=stage, actor=world.owner)
        done += len(chunk)
        if done >= next_report:
            next_report += 1000
            _check_tasks(cluster)
            elapsed = time.perf_counter() - began
            progress.append((done, elapsed, esp.accepted))
            log(f"    {done:>6} stage changes at {elapsed:6.1f} s; the provider has accepted {esp.accepted}")
    producer_seconds, producer_cpu_seconds = time.perf_counter() - began, time.process_time() - cpu_began
    log(f"  last stage change at {producer_seconds:.1f} s; waiting for the workers to hand over the rest")

    total_seconds = _wait_accepted(esp, cluster, messages=messages, started_at=started_at)
    cpu_use = sampler.stop().use(roles)
    log(f"  all {messages} accepted at {total_seconds:.1f} s; checking the rows")
    rows_sent_seconds, stats, statuses = _settle(esp, started_at=started_at, jobs=jobs)
    result = Product(
        messages=messages,
        move=move,
        cluster_start_seconds=cluster_start,
        producer_seconds=producer_seconds,
        producer_cpu_seconds=producer_cpu_seconds,
        other_cpu_before=other_cpu,
        total_seconds=total_seconds,
        rows_sent_seconds=rows_sent_seconds,
        accepted=stats.accepted,
        distinct_outbox_ids=stats.distinct_outbox_ids,
        duplicate_outbox_ids=stats.duplicate_outbox_ids,
        rejected=stats.rejected,
        statuses=statuses,
        task_failures=Failure.objects.count(),
        cpu_use=cpu_use,
        progress=progress,
    )
    log("  stopping the cluster (SIGTERM)")
    result.cluster_stop_seconds = cluster.stop()
    return result


def drain(world: World, esp: FakeEsp, cluster: Cluster, *, messages: int) -> Drain:
    """Worker capacity: how fast the 2 workers hand over messages that are all waiting already.

    The product run's rows go back to queued (a benchmark-only UPDATE), then with the cluster
    running idle, they are enqueued as ``enqueue_on_commit`` does (one task per SEND_BATCH rows,
    through one broker connection), and the clock runs until the provider accepted them all."""
    from crm.models import Message
    from crm.services.outbox import enqueue_now

    ids = list(Message.objects.filter(job__in=world.jobs).order_by("pk").values_list("pk", flat=True))
    if len(ids) != messages:
        raise RuntimeError(f"Found {len(ids)} message rows, expected {messages}.")
    Message.objects.filter(pk__in=ids).update(
        status=Message.Status.QUEUED,
        attempts=0,
        claimed_at=None,
        sent_at=None,
        next_attempt_at=None,
        provider_message_id="",
    )
    esp.reset()
    other_cpu = other_cpu_share()
    log(f"  other CPU use while idle: {share_text(other_cpu)}")
    cluster.start()
    log(f"  cluster running; enqueuing {messages} messages at once (timed from the first)")
    roles, sampler = _roles(esp, cluster), cpu.Sampler().start()
    started_at = time.time()
    enqueue_now(ids)
    enqueue_seconds = time.time() - started_at
    seconds = _wait_accepted(esp, cluster, messages=messages, started_at=started_at)
    cpu_use = sampler.stop().use(roles)
    log(f"  all {messages} accepted at {seconds:.1f} s")
    _rows_sent, stats, statuses = _settle(esp, started_at=started_at, jobs=world.jobs)
    cluster.stop()
    return Drain(
        messages=messages,
        seconds=seconds,
        enqueue_seconds=enqueue_seconds,
        accepted=stats.accepted,
        distinct_outbox_ids=stats.distinct_outbox_ids,
        statuses=statuses,
        other_cpu_before=other_cpu,
        cpu_use=cpu_use,
    )


def _short(sql: str, width: int = 150) -> str:
    """One line, the column list elided: enough to tell which query it is."""
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = re.sub(r"^SELECT (DISTINCT )?.+? FROM ", r"SELECT \1… FROM ", sql)
    sql = re.sub(r"\(\s*(\"\w+\"\s*,\s*)+\"\w+\"\s*\) VALUES \(.*?\)", "(…) VALUES (…)", sql)
    return sql if len(sql) <= width else sql[: width - 1] + "…"


def _kind(sql: str) -> str:
    return sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"


def measure_queries(world: World) -> Queries:
    """Queries of a stage change (one job), of a bulk move, of one delivery and of a batch of
    deliveries, on jobs kept aside (the cluster is stopped)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.models import Message
    from crm.services.delivery import deliver, deliver_many
    from crm.services.jobs import job_advance, jobs_advance
    from crm.services.outbox import SEND_BATCH

    per_change: list[int] = []
    change_kinds: Counter[str] = Counter()
    example: list[str] = []
    for job, stage in stage_changes(world.sample_jobs, world.stages):
        with CaptureQueriesContext(connection) as ctx:
            job_advance(job=job, to_stage=stage, actor=world.owner)
        per_change.append(len(ctx.captured_queries))
        change_kinds.update(_kind(q["sql"]) for q in ctx.captured_queries)
        if not example:
            example = [q["sql"] for q in ctx.captured_queries]

    per_delivery: list[int] = []
    delivery_kinds: Counter[str] = Counter()
    queued = Message.objects.filter(job__in=world.sample_jobs, status=Message.Status.QUEUED).order_by("pk")
    for message_id in queued.values_list("pk", flat=True):
        with CaptureQueriesContext(connection) as ctx:
            outcome = deliver(message_id=message_id)
        if outcome != "sent":
            raise RuntimeError(f"deliver({message_id}) gave {outcome!r}")
        per_delivery.append(len(ctx.captured_queries))
        delivery_kinds.update(_kind(q["sql"]) for q in ctx.captured_queries)

    per_move: list[int] = []
    for chunk, stage in moves(world.move_sample_jobs, world.stages, len(world.move_sample_jobs)):
        with CaptureQueriesContext(connection) as ctx:
            jobs_advance(jobs=chunk, to_stage=stage, actor=world.owner)
        per_move.append(len(ctx.captured_queries))
    per_batch: list[int] = []
    ids = list(
        Message.objects.filter(job__in=world.move_sample_jobs, status=Message.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(ids) - SEND_BATCH + 1, SEND_BATCH):
        with CaptureQueriesContext(connection) as ctx:
            deliver_many(message_ids=ids[start : start + SEND_BATCH])
        per_batch.append(len(ctx.captured_queries))
    return Queries(
        per_stage_change=per_change,
        stage_change_kinds=change_kinds,
        per_delivery=per_delivery,
        delivery_kinds=delivery_kinds,
        example_stage_change=example,
        move=len(world.move_sample_jobs),
        per_move=per_move,
        batch=SEND_BATCH,
        per_batch=per_batch,
    )


# (label, "module:qualname[|alternative]"): the costs named in the profile summary; one that no
# longer exists is shown as n/a. Cumulative times overlap (SQL is inside everything); indented
# labels are part of the line above.
STAGE_CHANGE_COSTS = [
    ("all SQL round trips (CursorWrapper._execute)", "django.db.backends.utils:CursorWrapper._execute"),
    ("transaction commits", "django.db.backends.base.base:BaseDatabaseWrapper.commit"),
    ("job row locks + read (lock_jobs)", "crm.services.guards:lock_jobs"),
    ("forecast roll (_roll_forecasts)", "crm.services.jobs:_roll_forecasts"),
    ("rendering drafts (stage_change_drafts)", "crm.notify:stage_change_drafts"),
    ("  template rendering (Template.render)", "django.template.base:Template.render"),
    ("  portal link signing (signing.dumps)", "django.core.signing:dumps"),
    ("storing messages, drafts rendered inside it (messages_store)", "crm.services.outbox:messages_store"),
    ("event log (record_events)", "crm.services.events:record_events"),
    ("enqueue to Redis after commit (async_task)", "django_q.tasks:async_task"),
]
DELIVERY_COSTS = [
    ("all SQL round trips (CursorWrapper._execute)", "django.db.backends.utils:CursorWrapper._execute"),
    ("transaction commits", "django.db.backends.base.base:BaseDatabaseWrapper.commit"),
    ("claim (UPDATE … RETURNING + SELECT)", "crm.services.delivery:claim_many"),
    ("build_email", "crm.services.delivery:build_email"),
    ("anymail: payload + HTTP POST (backend _send)", "anymail.backends.base:AnymailBaseBackend._send"),
    ("  HTTP POST to the provider (post_to_esp)", "anymail.backends.base_requests:AnymailRequestsBackend.post_to_esp"),
    ("record sent + event (_record_sent)", "crm.services.delivery:_record_sent"),
]


def _code_key(targets: str) -> tuple[str, int, str] | None:
    """pstats' key (file, first line, name) of the first function found among ``module:qualname|...``."""
    for target in targets.split("|"):
        module_name, qualname = target.split(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            code = inspect.unwrap(obj).__code__
        except (ImportError, AttributeError):
            continue
        return code.co_filename, code.co_firstlineno, code.co_name
    return None


def _costs(profile: cProfile.Profile, wanted: list[tuple[str, str]]) -> list[tuple[str, float | None]]:
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    costs: list[tuple[str, float | None]] = []
    for label, targets in wanted:
        key = _code_key(targets)
        values = stats.get(key) if key else None
        costs.append((label, None if key is None else float(values[3]) if values else 0.0))
    return costs


def profile_run(world: World, *, top: int, move: int) -> ProfileResult:
    from crm.models import Message
    from crm.services.delivery import deliver_many
    from crm.services.jobs import jobs_advance
    from crm.services.outbox import SEND_BATCH

    plan = list(moves(world.profile_jobs, world.stages, move))
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for chunk, stage in plan:
        jobs_advance(jobs=chunk, to_stage=stage, actor=world.owner)
    profiler.disable()
    change_seconds = time.perf_counter() - began
    changes = sum(len(chunk) for chunk, _ in plan)
    log(f"\n  cProfile of {changes} stage changes in moves of {move} ({change_seconds:.2f} s profiled), top {top}:")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("cumulative").print_stats(top)
    change_costs = _costs(profiler, STAGE_CHANGE_COSTS)

    ids = list(
        Message.objects.filter(job__in=world.profile_jobs, status=Message.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for start in range(0, len(ids), SEND_BATCH):
        deliver_many(message_ids=ids[start : start + SEND_BATCH])
    profiler.disable()
    delivery_seconds = time.perf_counter() - began
    log(f"\n  cProfile of {len(ids)} deliveries in this process ({delivery_seconds:.2f} s), top {top}:")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("cumulative").print_stats(top)
    return ProfileResult(
        stage_changes=changes,
        stage_change_seconds=change_seconds,
        stage_change_costs=change_costs,
        deliveries=len(ids),
        delivery_seconds=delivery_seconds,
        delivery_costs=_costs(profiler, DELIVERY_COSTS),
    )


# --- Reporting ----------------------------------------------------------------------------------


def _median_range(values: list[int]) -> str:
    if not values:
        return "-"
    median = statistics.median(values)
    text = f"{median:g}"
    return text if min(values) == max(values) else f"{text} (min {min(values)}, max {max(values)})"


def _kinds(kinds: Counter[str], n: int) -> str:
    return ", ".join(f"{kind} {count / n:.1f}" for kind, count in kinds.most_common()) if n else "-"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass
class Report:
    machine: Machine
    messages: int
    setup_seconds: float
    baseline: PlainLoop
    product: Product
    single: Product | None
    workers: Drain | None
    settings: str
    queries: Queries
    profile: ProfileResult | None

    @property
    def ratio(self) -> float:
        return self.product.rate / self.baseline.rate

    @property
    def goal_seconds(self) -> float:
        """60 s for 10,000 messages; a scaled-down run gets the same rate to beat."""
        return GOAL_TOTAL_SECONDS * self.messages / FULL_SIZE

    @property
    def total_ok(self) -> bool:
        return self.product.total_seconds < self.goal_seconds

    @property
    def ratio_ok(self) -> bool:
        return self.ratio >= GOAL_RATIO

    def table(self) -> list[tuple[str, str, str, str]]:
        b, p, one = self.baseline, self.product, self.single
        return [
            ("Plain loop: `send_mail` one after another", f"{b.seconds:.1f}", f"{b.rate:.0f}", "1.00 (baseline)"),
            (
                f"Product, producer: {p.messages:,} stage changes in moves of {p.move} jobs (`jobs_advance`)",
                f"{p.producer_seconds:.1f}",
                f"{p.producer_rate:.0f}",
                f"{p.producer_rate / b.rate:.2f}",
            ),
            (
                f"**Product, end to end**: first stage change → last message accepted ({WORKERS} workers)",
                f"{p.total_seconds:.1f}",
                f"{p.rate:.0f}",
                f"{self.ratio:.2f}",
            ),
            *(
                [
                    (
                        f"Product, one job at a time: {one.messages:,} × `job_advance`, end to end",
                        f"{one.total_seconds:.1f}",
                        f"{one.rate:.0f}",
                        f"{one.rate / b.rate:.2f}",
                    )
                ]
                if one is not None
                else []
            ),
            *(
                [
                    (
                        f"Workers alone: {w.messages:,} messages all queued at once ({WORKERS} workers)",
                        f"{w.seconds:.1f}",
                        f"{w.rate:.0f}",
                        f"{w.rate / b.rate:.2f}",
                    )
                ]
                if (w := self.workers) is not None
                else []
            ),
        ]

    @property
    def correct(self) -> bool:
        return (
            self.product.correct
            and (self.single is None or self.single.correct)
            and (self.workers is None or self.workers.correct)
        )

    def goals(self) -> list[tuple[str, str, str]]:
        return [
            (
                f"{self.messages:,} stage changes handed over in under {self.goal_seconds:.0f} s",
                f"{self.product.total_seconds:.1f} s",
                _met(self.total_ok),
            ),
            (f"at least {GOAL_RATIO:.2f} × the plain loop's rate", f"{self.ratio:.2f} ×", _met(self.ratio_ok)),
            (
                "every row `sent`, each message accepted exactly once",
                "yes" if self.correct else "NO",
                _met(self.correct),
            ),
        ]

    @property
    def others(self) -> list[float | None]:
        one = [self.single.other_cpu_before] if self.single is not None else []
        w = [self.workers.other_cpu_before] if self.workers is not None else []
        return [self.baseline.other_cpu_before, self.product.other_cpu_before, *one, *w]

    @property
    def busy(self) -> bool:
        """Other work used more than a tenth of the machine just before a timed phase."""
        return any(share is not None and share > 0.1 for share in self.others)

    def cpu_text(self) -> str:
        b, p, one = self.baseline, self.product, self.single
        text = (
            f"plain loop {1000 * b.cpu_seconds / b.messages:.2f} ms per message "
            f"(of {1000 * b.seconds / b.messages:.2f} ms wall); producer in moves of {p.move} "
            f"{1000 * p.producer_cpu_seconds / p.messages:.2f} ms per stage change "
            f"(of {1000 * p.producer_seconds / p.messages:.2f} ms wall)"
        )
        if one is not None:
            text += (
                f"; one at a time {1000 * one.producer_cpu_seconds / one.messages:.2f} ms per stage change "
                f"(of {1000 * one.producer_seconds / one.messages:.2f} ms wall)"
            )
        return text

    def others_text(self) -> str:
        phases = ["the plain loop", "the product", *(["one at a time"] if self.single else []), "the workers alone"]
        pairs = zip(self.others, phases, strict=False)
        return ", ".join(f"{share_text(share)} before {phase}" for share, phase in pairs)

    def verdict(self) -> list[str]:
        """What the figures say, in a few sentences (markdown)."""
        b, p, w = self.baseline, self.product, self.workers
        if self.total_ok and self.ratio_ok:
            lines = ["Both goals are met."]
        else:
            missed = [
                *([f"{p.total_seconds:.0f} s instead of under {self.goal_seconds:.0f} s"] if not self.total_ok else []),
                *([f"{self.ratio:.2f} × the plain loop instead of {GOAL_RATIO:.2f} ×"] if not self.ratio_ok else []),
            ]
            lines = [f"**The goals are not met**: {'; '.join(missed)}."]
        if p.drain_seconds < 0.1 * p.total_seconds:
            lines.append(
                f"The end-to-end time is the producer's: the workers keep up (the last message is accepted "
                f"{p.drain_seconds:.1f} s after the last stage change), so the rate is that of {p.messages:,} "
                f"stage changes in moves of {p.move} jobs, {1000 * p.producer_seconds / p.messages:.1f} ms each, "
                f"{1000 * p.producer_cpu_seconds / p.messages:.1f} ms of it CPU in the calling process."
            )
        else:
            lines.append(
                f"The workers set the pace: the last message is accepted {p.drain_seconds:.1f} s after the last "
                f"stage change ({p.producer_seconds:.1f} s for the {p.messages:,} stage changes in moves of {p.move})."
            )
        if (one := self.single) is not None:
            lines.append(
                f'One job at a time (`job_advance`, what a person clicking "advance" does), {one.messages:,} '
                f"stage changes take {one.total_seconds:.1f} s end to end: {one.rate:.0f} messages/s "
                f"({one.rate / b.rate:.2f} × the plain loop), {1000 * one.producer_seconds / one.messages:.1f} ms "
                "per stage change; the goals are not claimed for this path."
            )
        if w is not None:
            lines.append(
                f"With every message already queued, the {WORKERS} workers alone hand over {w.rate:.0f} messages/s "
                f"({w.rate / b.rate:.2f} × the plain loop): {w.messages:,} messages take {w.seconds:.0f} s."
            )
        use = p.cpu_use
        if use.by_role and use.capacity > 0:
            top = sorted(use.by_role.items(), key=lambda kv: -kv[1])[:4]
            need = 1000 * use.cpus / (GOAL_RATIO * b.rate)
            ours = sum(sec for role, sec in use.by_role.items() if role not in cpu.OTHERS)
            lines.append(
                f"During the product phase the machine was {100 * use.machine_busy / use.capacity:.0f} % busy "
                f"({', '.join(f'{role} {100 * sec / use.machine_busy:.0f} %' for role, sec in top)}): a stage "
                f"change and its delivery cost {1000 * ours / p.messages:.1f} ms of CPU in all (other work left "
                f"out), where {GOAL_RATIO:.2f} × the plain loop on {use.cpus} CPUs allows {need:.1f} ms and the "
                f"time goal {1000 * use.cpus * self.goal_seconds / p.messages:.1f} ms."
            )
        return lines

    def phases(self) -> list[tuple[str, cpu.CpuUse]]:
        phases = [("plain loop", self.baseline.cpu_use), ("product", self.product.cpu_use)]
        if self.single is not None:
            phases.append(("one at a time", self.single.cpu_use))
        if self.workers is not None:
            phases.append(("workers alone", self.workers.cpu_use))
        return phases

    def cpu_table(self) -> list[str]:
        """Markdown: CPU-seconds by process role in each timed phase."""
        phases = self.phases()
        if not any(use.by_role for _, use in phases):
            return []
        roles = sorted(
            {role for _, use in phases for role in use.by_role},
            key=lambda role: -max(use.by_role.get(role, 0.0) for _, use in phases),
        )
        rows = [
            "| CPU-seconds by process | " + " | ".join(name for name, _ in phases) + " |",
            "|---|" + "---:|" * len(phases),
            "| *available (CPUs × wall seconds)* | " + " | ".join(f"{use.capacity:.1f}" for _, use in phases) + " |",
            "| *busy, whole machine* | " + " | ".join(f"{use.machine_busy:.1f}" for _, use in phases) + " |",
        ]
        for role in roles:
            rows.append(f"| {role} | " + " | ".join(f"{use.by_role.get(role, 0.0):.1f}" for _, use in phases) + " |")
        return rows

    def print(self) -> None:
        m, p, q = self.machine, self.product, self.queries
        log()
        log(f"Notification benchmark — {self.messages:,} messages, {m.date}, settings {self.settings}")
        log(
            f"  {m.nproc} CPUs ({m.cpu}), {m.ram_gb:.0f} GB RAM; Python {m.python}, Django {m.django}, "
            f"django-q2 {m.django_q2}, anymail {m.anymail}; PostgreSQL {m.postgres}, Redis {m.redis}"
        )
        log()
        rows = [("", "seconds", "msg/s", "× plain loop"), *self.table()]
        width = max(len(r[0]) for r in rows)
        for label, seconds, rate, ratio in rows:
            log(f"  {label.replace('`', ''):<{width}}  {seconds:>8}  {rate:>7}  {ratio}")
        log()
        log(f"  drain after the last stage change   {p.drain_seconds:.1f} s")
        log(f"  CPU of this process                 {self.cpu_text()}")
        log(f"  other CPU use, benchmark idle       {self.others_text()}")
        if self.busy:
            log("  WARNING: other work was running on the machine; these figures are pessimistic.")
        log(f"  every row recorded `sent` at        {p.rows_sent_seconds:.1f} s")
        log(
            f"  provider accepted / distinct / dup  {p.accepted} / {p.distinct_outbox_ids} / "
            f"{p.duplicate_outbox_ids} (rejected {p.rejected})"
        )
        log(f"  message rows by status              {p.statuses}")
        log(f"  django-q2 task failures             {p.task_failures}")
        log(
            f"  queries per stage change            {_median_range(q.per_stage_change)}  "
            f"[{_kinds(q.stage_change_kinds, len(q.per_stage_change))}]"
        )
        log(
            f"  queries per delivery (in process)   {_median_range(q.per_delivery)}  "
            f"[{_kinds(q.delivery_kinds, len(q.per_delivery))}]"
        )
        log(f"  queries per move of {q.move} jobs         {_median_range(q.per_move)}")
        log(f"  queries per batch of {q.batch} deliveries  {_median_range(q.per_batch)}")
        for name, use in self.phases():
            log(f"  CPU during the {name + ':':<14}    {use.text()}")
        log("  the queries of one stage change:")
        for sql in q.example_stage_change:
            log(f"    {_short(sql)}")
        log()
        for goal, value, met in self.goals():
            log(f"  goal: {goal:<58} {value:>10}  {met}")
        log()
        for line in self.verdict():
            log(f"  {line.replace('**', '').replace('`', '')}")
        if self.profile is not None:
            self._print_costs(
                "stage change",
                self.profile.stage_changes,
                self.profile.stage_change_seconds,
                self.profile.stage_change_costs,
            )
            self._print_costs(
                "delivery", self.profile.deliveries, self.profile.delivery_seconds, self.profile.delivery_costs
            )

    @staticmethod
    def _print_costs(what: str, n: int, seconds: float, costs: list[tuple[str, float | None]]) -> None:
        log()
        log(f"  where a {what} spends its time (cProfile, {n} of them, {1000 * seconds / max(n, 1):.1f} ms each):")
        for label, cumulative in costs:
            if cumulative is None:
                log(f"    {label:<50}    n/a (function not found)")
            else:
                log(f"    {label:<50} {1000 * cumulative / max(n, 1):6.2f} ms  {100 * cumulative / seconds:5.1f} %")

    def markdown(self) -> str:
        m, b, p, q = self.machine, self.baseline, self.product, self.queries
        lines = [
            DOC_START,
            "## Notifications: stage changes to messages handed to the email provider",
            "",
            f"Latest run: **{m.date}**, `make bench-notify` ({self.messages:,} messages).",
            "",
            f"- Machine: {m.nproc} CPUs ({m.cpu}), {m.ram_gb:.0f} GB RAM, {m.system}.",
            f"- Versions: Python {m.python}, Django {m.django}, django-q2 {m.django_q2}, django-anymail {m.anymail}, "
            f"psycopg {m.psycopg}; PostgreSQL {m.postgres}, Redis {m.redis}.",
            "",
            "| Measured in the same run | seconds | messages/s | × plain loop |",
            "|---|---:|---:|---:|",
            *(f"| {label} | {seconds} | {rate} | {ratio} |" for label, seconds, rate, ratio in self.table()),
            "",
            "| Goal | Measured | |",
            "|---|---:|---|",
            *(f"| {goal} | {value} | **{met}** |" for goal, value, met in self.goals()),
            "",
            " ".join(self.verdict()),
            "",
            f"- Drain after the last stage change: {p.drain_seconds:.1f} s; every message row recorded `sent` "
            f"{p.rows_sent_seconds:.1f} s after the first stage change.",
            f"- CPU of the benchmark process: {self.cpu_text()}.",
            f"- CPU used by other work, measured for 2 s with the benchmark idle: {self.others_text()}."
            + (" **Other work was running on the machine: these figures are pessimistic.**" if self.busy else ""),
            f"- Checks: the provider accepted {p.accepted:,} messages, {p.distinct_outbox_ids:,} distinct outbox ids, "
            f"{p.duplicate_outbox_ids} duplicates, {p.rejected} rejected; rows by status {p.statuses}; "
            f"{p.task_failures} django-q2 task failures.",
            f"- Queries per stage change: {_median_range(q.per_stage_change)} "
            f"({_kinds(q.stage_change_kinds, len(q.per_stage_change))}).",
            f"- Queries per delivery: {_median_range(q.per_delivery)} "
            f"({_kinds(q.delivery_kinds, len(q.per_delivery))}).",
            f"- Queries per bulk move of {q.move} jobs: {_median_range(q.per_move)}; per batch of {q.batch} "
            f"deliveries: {_median_range(q.per_batch)}.",
            f"- Not timed: setup {self.setup_seconds:.0f} s, rendering the plain loop's messages "
            f"{b.render_seconds:.1f} s, cluster start {p.cluster_start_seconds:.1f} s, "
            f"cluster stop {p.cluster_stop_seconds:.1f} s.",
        ]
        if cpu_rows := self.cpu_table():
            lines += [
                "",
                "Who used the CPUs during each timed phase (from `/proc`, see `bench/cpu.py`):",
                "",
                *cpu_rows,
            ]
        if self.profile is not None:
            lines += ["", "Where the time goes (cProfile, in the benchmark process, cumulative per call):", ""]
            lines += self._markdown_costs(
                "stage change",
                self.profile.stage_changes,
                self.profile.stage_change_seconds,
                self.profile.stage_change_costs,
            )
            lines += [""]
            lines += self._markdown_costs(
                "delivery", self.profile.deliveries, self.profile.delivery_seconds, self.profile.delivery_costs
            )
        lines += ["", *METHOD, DOC_END]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _markdown_costs(what: str, n: int, seconds: float, costs: list[tuple[str, float | None]]) -> list[str]:
        each = 1000 * seconds / max(n, 1)
        rows = [
            f"| {what.capitalize()} ({n} profiled, {each:.1f} ms each under cProfile) | ms | share |",
            "|---|---:|---:|",
        ]
        for label, cumulative in costs:
            name = label.strip()
            name = f"↳ {name}" if label.startswith("  ") else name
            if cumulative is None:
                rows.append(f"| {name} | n/a | |")
            else:
                rows.append(f"| {name} | {1000 * cumulative / max(n, 1):.2f} | {100 * cumulative / seconds:.0f} % |")
        return rows


METHOD = [
    "### How it is measured",
    "",
    "`make bench-notify` runs `python -m bench.notify`. It needs PostgreSQL and Redis; it drops and recreates the "
    "database in `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/portal_bench`; the name must contain "
    "`bench`), migrates it, and flushes the Redis database in `REDIS_URL` (default `redis://127.0.0.1:6379/13`, "
    "never db 0). Settings are the production ones: `DJANGO_DEBUG=0` (no query log kept in memory), a random "
    "`SECRET_KEY`, the django-q2 Redis broker, the outbox-sweep schedule installed as at every deploy. (The "
    "benchmark process silences django-q2's INFO line per enqueue; the cluster logs as in production, to a file.)",
    "",
    "The edge is the email provider. `bench/fake_esp.py` serves Postmark's `POST /email` API on 127.0.0.1 (token "
    "checked, Postmark's success JSON with a fresh `MessageID`) in its own process and counts what it accepts. Both "
    "sides use anymail's real Postmark backend pointed at it (`ANYMAIL_ESP=postmark`, "
    "`ANYMAIL_POSTMARK_SERVER_TOKEN`, `ANYMAIL_POSTMARK_API_URL`), one HTTP request per message. A message is "
    "*handed to the email backend* when the fake provider has answered it.",
    "",
    "Setup (not timed): one pipeline of 6 stages, all shown to the customer; N/5 jobs created with `job_create`, "
    "each with one email contact (half English, half French); each job then has 5 stage changes ahead, each "
    "sending one message.",
    "",
    "1. **Plain loop (baseline).** The same N messages are rendered beforehand with "
    "`crm.notify.stage_change_drafts` (not timed), then sent one after another with "
    "`send_mail(subject, text, from, [to], html_message=html)`. Messages/s = N / that time.",
    f"2. **Product.** `manage.py qcluster` starts with {WORKERS} workers and the benchmark waits until it reports "
    'running. The benchmark process then performs the N stage changes as staff do with "Move selected jobs" '
    f"on the jobs list: `jobs_advance` on {DEFAULT_MOVE} jobs at a time (`--move`), a round of all jobs per stage, "
    "each move its own transaction that stores the message rows and enqueues them on commit (one send task per "
    "20 messages, each sent over one connection to the provider). The clock runs from the first stage change "
    "until the fake provider has accepted the N-th message (its own timestamp). The rate is N / that time, and "
    "the ratio is that rate over the plain loop's; the goals are judged on this. The producer rate (N / time of "
    "the moves alone) is shown too. Then every message row must be `sent`, the provider must have accepted "
    "exactly N messages with N distinct outbox ids, and the cluster is stopped with SIGTERM.",
    f"2b. **One job at a time.** The same, on {DEFAULT_SINGLE:,} more stage changes (`--single`) made with "
    '`job_advance` one job per transaction: the path of a person clicking "advance" on a job page. Reported '
    "as a rate against the same plain loop; the goals are not claimed for it.",
    "3. **Workers alone.** The product's N rows are put back to `queued` (a benchmark-only UPDATE), the cluster is "
    "started again, and they are enqueued at once as the outbox does (one task per 20 rows, one broker "
    "connection). Timed until the fake provider has accepted all N: the delivery capacity of the workers when the "
    "producer is not the limit. (`--no-drain` skips it.)",
    "4. **Queries** are counted with `CaptureQueriesContext` on 5 jobs kept aside (25 one-job stage changes and "
    "`crm.services.delivery.deliver` for their messages), and on a move of 50 more jobs per stage (`jobs_advance`) "
    "with `deliver_many` on their messages 20 at a time.",
    "5. With `--profile K` (`BENCH_PROFILE=K`), K more stage changes (in moves) and the delivery of their "
    "messages (in batches) are profiled with cProfile in the benchmark process; the table above names the main "
    "costs.",
    "",
    "Before each timed phase the benchmark sits idle for 2 s and measures the CPU used by anything else "
    "(`/proc/stat`); above 10 % the figures are flagged as pessimistic. PostgreSQL, Redis, the fake provider, the "
    "cluster and the benchmark process share the machine's CPUs, as they would on a small single server.",
    "",
    "`BENCH_MESSAGES=1000 make bench-notify` is a quick try; only a full-size run (10,000) rewrites this section.",
]


def write_doc(report: Report) -> None:
    common.replace_doc_section(DOC_PATH, DOC_START, DOC_END, report.markdown(), create=True)


# --- Main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notify", description=__doc__.split("\n")[0] if __doc__ else ""
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=int_env("BENCH_MESSAGES", FULL_SIZE),
        help=f"stage changes = messages, a multiple of {STEPS} (env BENCH_MESSAGES, default {FULL_SIZE})",
    )
    parser.add_argument(
        "--move",
        type=int,
        default=int_env("BENCH_MOVE", DEFAULT_MOVE),
        metavar="JOBS",
        help=f"jobs per bulk move (jobs_advance) in the product phase (env BENCH_MOVE, default {DEFAULT_MOVE})",
    )
    parser.add_argument(
        "--single",
        type=int,
        default=int_env("BENCH_SINGLE", DEFAULT_SINGLE),
        metavar="N",
        help=f"stage changes one job at a time (job_advance) after it; 0 skips (env BENCH_SINGLE, "
        f"default {DEFAULT_SINGLE})",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=int_env("BENCH_PROFILE", 0),
        metavar="K",
        help="also profile K stage changes and their deliveries (env BENCH_PROFILE)",
    )
    parser.add_argument(
        "--no-drain",
        dest="drain",
        action="store_false",
        help="skip phase 3 (the workers alone on the same messages, all queued at once)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=float(int_env("BENCH_WAIT_QUIET", 0)),
        metavar="SECONDS",
        help="first wait up to this long for other work on the machine to stop (env BENCH_WAIT_QUIET)",
    )
    parser.add_argument(
        "--settings",
        default="config.settings",
        metavar="MODULE",
        help="settings module for this process and the cluster, to try a variant (default config.settings; "
        "docs/performance.md is then not written unless --write-docs)",
    )
    parser.add_argument("--top", type=int, default=25, help="lines of each cProfile listing")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--write-docs",
        dest="docs",
        action="store_true",
        default=None,
        help="write docs/performance.md even for a scaled-down run",
    )
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="do not write docs/performance.md")
    args = parser.parse_args(argv)
    if args.messages <= 0 or args.messages % STEPS:
        parser.error(f"--messages must be a positive multiple of {STEPS}, not {args.messages}")
    if args.move < 1 or (args.messages // STEPS) % args.move:
        parser.error(f"--move must divide the {args.messages // STEPS} jobs, not {args.move}")
    if args.single < 0 or args.single % STEPS:
        parser.error(f"--single must be a multiple of {STEPS}, not {args.single}")
    if args.profile < 0 or args.profile % STEPS:
        parser.error(f"--profile must be a multiple of {STEPS}, not {args.profile}")
    return args


def run(args: argparse.Namespace) -> Report:
    messages: int = args.messages
    target = choose_target()
    if args.wait_quiet > 0:
        common.wait_for_quiet(args.wait_quiet)
    with FakeEsp(token=ESP_SERVER_KEY) as esp:
        prepare_environment(target, esp, settings_module=args.settings)
        log(f"Fake Postmark at {esp.url}; database {target.database_name}; Redis {target.redis_url}")

        import django

        log(f"Setup (not timed): recreating {target.database_name}, migrating")
        began = time.perf_counter()
        common.recreate_database(target.database_url, target.database_name)
        django.setup()
        from django.core.management import call_command

        from crm.schedules import ensure_schedules

        # django-q2 logs every enqueue at INFO; keep this process's output to the figures. (The
        # cluster keeps the production logging, into its log file.)
        logging.getLogger("django-q").setLevel(logging.WARNING)
        call_command("migrate", interactive=False, verbosity=0)
        ensure_schedules()
        redis_version = flush_redis(target.redis_url)
        machine = describe_machine(redis_version=redis_version)
        log(
            f"  building {messages // STEPS} jobs (+{args.single // STEPS} one at a time, "
            f"+{QUERY_SAMPLE_JOBS + args.move} for query counts, +{args.profile // STEPS} to profile) with job_create"
        )
        world = build_world(
            jobs=messages // STEPS, single_jobs=args.single // STEPS, move=args.move, profile_jobs=args.profile // STEPS
        )
        setup_seconds = time.perf_counter() - began
        log(f"  setup took {setup_seconds:.0f} s")

        log("Phase 1, the plain loop")
        baseline = plain_loop(world, esp, messages=messages)
        log(f"  {baseline.rate:.0f} messages/s ({baseline.seconds:.1f} s)")

        log("Phase 2, the product")
        cluster = Cluster(Path(mkdtemp(prefix="bench-notify-")) / "qcluster.log")
        try:
            result = product(world, esp, cluster, jobs=world.jobs, move=args.move)
        finally:
            if cluster.alive():
                cluster.stop()

        single = None
        if args.single:
            log("Phase 2b, the product one job at a time")
            cluster = Cluster(cluster.log_path.with_name("qcluster-single.log"))
            try:
                single = product(world, esp, cluster, jobs=world.single_jobs, move=1)
            finally:
                if cluster.alive():
                    cluster.stop()

        workers = None
        if args.drain:
            log("Phase 3, the workers alone")
            cluster = Cluster(cluster.log_path.with_name("qcluster-drain.log"))
            try:
                workers = drain(world, esp, cluster, messages=messages)
            finally:
                if cluster.alive():
                    cluster.stop()

        log("Queries per stage change and per delivery")
        queries = measure_queries(world)
        profile = None
        if args.profile:
            log(f"Profiling {args.profile} stage changes and their deliveries")
            profile = profile_run(world, top=args.top, move=args.move)
        flush_redis(target.redis_url)  # the tasks of the measured and profiled changes: no one runs them
    return Report(
        machine=machine,
        messages=messages,
        setup_seconds=setup_seconds,
        baseline=baseline,
        product=result,
        single=single,
        workers=workers,
        settings=args.settings,
        queries=queries,
        profile=profile,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    report.print()
    write = (
        args.docs if args.docs is not None else (report.messages == FULL_SIZE and args.settings == "config.settings")
    )
    if write:
        write_doc(report)
        log(f"\n  wrote {DOC_PATH.relative_to(ROOT)}")
    else:
        log(f"\n  {DOC_PATH.relative_to(ROOT)} not written (a {report.messages:,}-message run; --write-docs forces it)")
    return 0 if report.correct else 1


if __name__ == "__main__":
    sys.exit(main())
