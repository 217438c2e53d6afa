"""Portal benchmark (``.venv/bin/python -m bench.portal``): how fast the customer's job page and its
unchanged live poll are served, as ratios to the least a Django page can do.

Not a test. It needs PostgreSQL, and it owns what it is given: the database in DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/portal_bench_portal; its name must contain "bench") is
dropped and created again. Sessions and the cache live in Redis when one answers at REDIS_URL
(default redis://127.0.0.1:6379/14, flushed; never db 0), as in production; otherwise each gunicorn
worker keeps its own in-memory cache (the report says which).

1. Setup, not timed: migrate; one customer with a contact; one job of 10 customer-visible stages,
   five reached (late: the later dates pushed out), one date moved and told, 50 messages,
   3 questions (each with its promise of an answer), 5 visits booked; four more jobs for the
   jobs list.
2. gunicorn (``config.wsgi`` with ``bench.portal_settings``: the production settings, DEBUG off,
   plus the baseline URL) on 127.0.0.1, sync workers.
3. A load generator in this process: T threads, each sending GET requests one after another on a
   new connection (gunicorn's sync workers do not keep connections alive), a fixed number of
   requests per scenario, in R rounds with the scenarios interleaved; the median round counts.
   - minimal: the baseline view, one query and a small template (bench/portal_urls.py);
   - job page: the contact's job page, signed in with a session cookie from a real sign-in link,
     unchanged between requests (served from the cache: portal.job_page);
   - jobs list: the contact's "My jobs";
   - unchanged poll: the live fragment with If-None-Match, answered 304.
   Every response's status is checked (200, 200, 200, 304); a run with any other status fails.
4. Queries per request, measured in this process with the same settings; and the job page timed
   in this process (Django's test client): from the cache, the first view after a change (the
   job's version moved before each request, not timed), and rendered every time
   (PORTAL_PAGE_CACHE_SECONDS=0).

The goals of issue #18 are printed with each measure: met or not.
Figures are printed as requests/s and as ratios to the baseline; a Markdown block is printed for
docs/performance.md. ``--requests 300`` is a quick try.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import common
from bench.common import ROOT, log

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_portal"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


# --- Environment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    database_url: str
    database_name: str
    redis_url: str  # empty: no Redis, in-process caches


def choose_target() -> Target:
    database_url, name = common.bench_database(DEFAULT_DATABASE_URL, program="bench.portal")
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if redis_url:
        common.refuse_redis_db_zero(
            redis_url, program="bench.portal", advice=f"give it one other than db 0 ({redis_url!r})."
        )
        if not _redis_answers(redis_url):
            log(f"  Redis does not answer at {redis_url}: running with in-process caches.")
            redis_url = ""
    return Target(database_url=database_url, database_name=name, redis_url=redis_url)


def _redis_answers(redis_url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        client.ping()
        client.flushdb()
        client.close()
        return True
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_environment(target: Target, port: int) -> None:
    """Production settings, DEBUG off (no query log kept in memory); gunicorn inherits them."""
    for key in ("REDIS_URL", "EMAIL_BACKEND"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.portal_settings",
            "DATABASE_URL": target.database_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            "SITE_URL": f"http://127.0.0.1:{port}",
            # Plain HTTP on the loopback: no redirect to HTTPS, cookies without the Secure flag.
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0",
            "SECURE_HSTS_SECONDS": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LOG_LEVEL": "WARNING",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
    )
    if target.redis_url:
        os.environ["REDIS_URL"] = target.redis_url


def migrate() -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"], check=True, cwd=ROOT)


# --- The world ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    enter_path: str
    job_path: str
    status_path: str
    home_path: str
    job_id: int


def build_world() -> World:
    """One job as a customer would open it mid-way: a few stages reached, dates moved, messages."""
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.urls import reverse
    from django.utils import timezone

    from crm.links import make_link_token
    from crm.models import Contact, Customer, Message, Pipeline, StaffProfile, StageTemplate, VisitKind
    from crm.services.jobs import job_advance, job_create, milestone_move
    from crm.services.questions import question_create
    from crm.services.visits import visit_book
    from crm.workdays import add_business_days, business_today

    owner = User.objects.create_user(
        "bench-owner", "camille@bench.example", first_name="Camille", last_name="Bench", is_staff=True
    )
    StaffProfile.objects.create(user=owner, phone="+33 1 99 00 12 09", job_title="Project manager")
    pipeline = Pipeline.objects.create(name="Bench installation")
    names = [
        "Request received",
        "Site survey",
        "Proposal sent",
        "Order confirmed",
        "Parts ordered",
        "Installation scheduled",
        "Installed",
        "Commissioned",
        "Checked",
        "Handed over",
    ]
    stages = [
        StageTemplate.objects.create(
            pipeline=pipeline,
            position=position,
            name=name,
            name_fr=name,
            default_duration_days=0 if position == 1 else 3,
            customer_instructions=f"What to prepare before “{name}”.",
        )
        for position, name in enumerate(names, start=1)
    ]
    customer = Customer.objects.create(name="Bench household")
    contact = Contact.objects.create(customer=customer, name="Dominique Bench", email="dominique@bench.example")
    start = business_today() - timedelta(days=21)
    job = job_create(
        customer=customer,
        pipeline=pipeline,
        owner=owner,
        title="Heat pump",
        actor=owner,
        start_date=start,
        # The welcome is not what this measures.
        notify_customer=False,
        not_told_reason="Benchmark data.",
    )
    job = job_advance(job=job, to_stage=stages[4], actor=owner)  # late: pushes the later dates out
    milestone = job.milestones.get(stage=stages[6])
    milestone_move(
        milestone=milestone,
        new_date=add_business_days(milestone.forecast_date or business_today(), 2),
        reason="The unit ships late",
        actor=owner,
        tell_customer=True,
    )
    Message.objects.bulk_create(
        Message(
            job=job,
            contact=contact,
            channel=Message.Channel.EMAIL,
            kind=Message.Kind.FREE,
            status=Message.Status.DELIVERED,
            subject=f"A message about your job {job.reference} ({i})",
            body_text="Hello Dominique,\n\n" + "A few lines about the work, as a person writes them. " * 8,
            idempotency_key=f"bench:{i}",
            created_at=timezone.now() - timedelta(hours=i),
        )
        for i in range(50)
    )
    for i in range(3):  # each with its promise of an answer
        question_create(job=job, contact=contact, body=f"Question {i}: can you come earlier?", source="phone")
    kind = VisitKind.objects.create(pipeline=pipeline, name="Installation day", window_minutes=120)
    first_visit = timezone.now().replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=7)
    for day in range(5):
        visit_book(
            job=job,
            kind=kind,
            actor=owner,
            window_start=first_visit + timedelta(days=day),
            address="12 rue des Lilas\n75011 Paris",
            installers=[owner],
            tell_customer=False,
        )
    for number in range(4):  # the jobs list shows five
        job_create(
            customer=customer,
            pipeline=pipeline,
            owner=owner,
            title=f"Maintenance visit {number}",
            actor=owner,
            start_date=start,
            notify_customer=False,
            not_told_reason="Benchmark data.",
        )
    return World(
        enter_path=reverse("portal:enter", args=[make_link_token(contact)]) + f"?job={job.public_id}",
        job_path=reverse("portal:job", args=[job.public_id]),
        status_path=reverse("portal:job_status", args=[job.public_id]),
        home_path=reverse("portal:home"),
        job_id=job.pk,
    )


# --- gunicorn -----------------------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn(port: int, workers: int) -> Iterator[None]:
    gunicorn_bin = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [
            str(gunicorn_bin),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if get(port, "/healthz").status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def get(port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        cookies = "; ".join(
            value.split(";", 1)[0] for name, value in response.getheaders() if name.lower() == "set-cookie"
        )
        found = {k.lower(): v for k, v in response.getheaders()}
        found["set-cookie"] = cookies  # every cookie set, as name=value pairs
        return Reply(response.status, found, body)
    finally:
        conn.close()


def sign_in(port: int, world: World) -> tuple[str, str]:
    """A real sign-in through the link: the cookies it sets (the session's and the portal
    ticket), and the live fragment's ETag."""
    reply = get(port, world.enter_path)
    if reply.status != 302 or not reply.headers.get("location", "").endswith(world.job_path):
        raise SystemExit(f"sign-in failed: {reply.status} {reply.headers}")
    cookie = reply.headers["set-cookie"]
    if not re.search(r"\bsessionid=", cookie) or not re.search(r"\bportal_ticket=", cookie):
        raise SystemExit(f"sign-in set no session cookie or no portal ticket: {cookie!r}")
    page = get(port, world.job_path, {"Cookie": cookie})
    if page.status != 200 or b"status-headline" not in page.body:
        raise SystemExit(f"the job page did not render: {page.status}")
    status = get(port, world.status_path, {"Cookie": cookie})
    if status.status != 200 or "etag" not in status.headers:
        raise SystemExit(f"the live fragment did not render: {status.status}")
    return cookie, status.headers["etag"]


# --- Load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    headers: dict[str, str]
    expected_status: int


@dataclass(frozen=True)
class Round:
    seconds: float
    requests: int
    statuses: Counter[int]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def hammer(port: int, scenario: Scenario, *, requests: int, threads: int) -> Round:
    """``requests`` GETs from ``threads`` threads, each waiting for its answer before the next."""
    lock = threading.Lock()
    remaining = [requests]
    statuses: Counter[int] = Counter()

    def work() -> None:
        seen: Counter[int] = Counter()
        while True:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            seen[get(port, scenario.path, scenario.headers).status] += 1
        with lock:
            statuses.update(seen)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Round(time.perf_counter() - started, requests, statuses)


def count_queries(world: World) -> dict[str, int]:
    """Queries per request for each scenario, through Django's test client in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.get(world.enter_path)
    etag = client.get(world.status_path)["ETag"]
    counts = {}
    for name, path, headers in (
        ("minimal", "/bench/minimal/", {}),
        ("job page", world.job_path, {}),
        ("jobs list", world.home_path, {}),
        ("unchanged poll", world.status_path, {"If-None-Match": etag}),
    ):
        client.get(path, headers=headers)  # warm: the session is in the cache after the first read
        with CaptureQueriesContext(connection) as queries:
            client.get(path, headers=headers)
        counts[name] = len(queries)
    return counts


@dataclass(frozen=True)
class InProcess:
    """The job page timed in this process (Django's test client, the same database and cache)."""

    cached_ms: float
    first_view_ms: float
    uncached_ms: float
    first_view_queries: int
    uncached_queries: int


def in_process(world: World, *, requests: int) -> InProcess:
    """Median times of the job page: served from the cache; the first view after a change (the
    job's version moved before each, not timed); rendered every time (PORTAL_PAGE_CACHE_SECONDS=0)."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from crm.services.versions import jobs_touch

    client = Client()
    client.get(world.enter_path)

    def timed(before: Any = None) -> tuple[float, int]:
        times, queries = [], 0
        for _ in range(requests):
            if before is not None:
                before()
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(world.job_path)
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"the job page answered {response.status_code}")
            queries = len(captured)
        return statistics.median(times), queries

    timed()  # warm
    cached_ms, _ = timed()
    first_view_ms, first_view_queries = timed(lambda: jobs_touch([world.job_id]))
    with override_settings(PORTAL_PAGE_CACHE_SECONDS=0):
        uncached_ms, uncached_queries = timed()
    return InProcess(cached_ms, first_view_ms, uncached_ms, first_view_queries, uncached_queries)


# --- Report -------------------------------------------------------------------------------------


def describe_machine(target: Target, workers: int, threads: int) -> list[str]:
    m = common.describe_machine()
    cache = "Redis" if target.redis_url else "in-process caches (no Redis)"
    return [
        f"{m.date}; {m.system}; {m.cpu}, {m.nproc} CPUs",
        f"Python {m.python}, Django {m.django}, gunicorn {metadata.version('gunicorn')} "
        f"({workers} sync workers), PostgreSQL {m.postgres}, sessions and cache: {cache}",
        f"load: {threads} client threads in the same machine, one new connection per request (127.0.0.1)",
    ]


def report(
    scenarios: list[Scenario],
    rounds: dict[str, list[Round]],
    queries: dict[str, int],
    timings: InProcess,
    machine: list[str],
    args: Any,
) -> str:
    """Medians over the rounds. Each ratio is taken within a round (the scenarios of a round run
    back to back), then the median of those: a machine that gets busier mid-run moves all three."""
    medians = {s.name: statistics.median(r.per_second for r in rounds[s.name]) for s in scenarios}
    ratios = {
        s.name: statistics.median(
            mine.per_second / base.per_second for mine, base in zip(rounds[s.name], rounds["minimal"], strict=True)
        )
        for s in scenarios
    }
    lines = [
        "| scenario | requests/s (median of rounds) | ratio to the minimal view | queries per request |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "minimal": "minimal view: 1 query, a small template (baseline)",
        "job page": "job page, from the cache (10 stages, 50 messages, 3 questions, promises, 5 visits)",
        "jobs list": "jobs list (5 jobs)",
        "unchanged poll": "unchanged live poll (If-None-Match → 304)",
    }
    for scenario in scenarios:
        lines.append(
            f"| {labels[scenario.name]} | {medians[scenario.name]:,.0f} | "
            f"{ratios[scenario.name]:.2f} | {queries[scenario.name]} |"
        )
    first_ratio = timings.first_view_ms / timings.uncached_ms
    goals = [
        ("job page ≥ 0.50 × the minimal view", f"{ratios['job page']:.2f} ×", ratios["job page"] >= 0.5),
        ("jobs list ≥ 0.60 ×", f"{ratios['jobs list']:.2f} ×", ratios["jobs list"] >= 0.6),
        ("unchanged poll ≥ 0.80 ×", f"{ratios['unchanged poll']:.2f} ×", ratios["unchanged poll"] >= 0.8),
        ("first view after a change ≤ 1.2 × uncached", f"{first_ratio:.2f} ×", first_ratio <= 1.2),
        ("queries per cached page ≤ 3", str(queries["job page"]), queries["job page"] <= 3),
    ]
    lines += [
        "",
        f"| In this process (test client), median of {args.in_process} | ms | queries |",
        "| --- | ---: | ---: |",
        f"| job page from the cache | {timings.cached_ms:.1f} | {queries['job page']} |",
        f"| first view after a change (the job's version moved) | {timings.first_view_ms:.1f} | "
        f"{timings.first_view_queries} |",
        f"| rendered every time (PORTAL_PAGE_CACHE_SECONDS=0) | {timings.uncached_ms:.1f} | "
        f"{timings.uncached_queries} |",
        "",
        "| Goal | Measured | |",
        "| --- | ---: | --- |",
        *(f"| {goal} | {measured} | {'**met**' if met else '**not met**'} |" for goal, measured, met in goals),
        "",
        f"{args.requests:,} requests per scenario and round, {args.rounds} rounds interleaved.",
        *machine,
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario and round (2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, scenarios interleaved (3)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument("--in-process", type=int, default=200, help="job pages timed in this process (200)")
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2), help="gunicorn sync workers")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target = choose_target()
    port = free_port()
    prepare_environment(target, port)
    log(f"  database {target.database_name}: recreating and migrating")
    common.recreate_database(target.database_url, target.database_name)
    migrate()

    import django

    django.setup()
    world = build_world()
    queries = count_queries(world)
    timings = in_process(world, requests=args.in_process)
    machine = describe_machine(target, args.workers, args.threads)

    rounds: dict[str, list[Round]] = {}
    with gunicorn(port, args.workers):
        cookie, etag = sign_in(port, world)
        scenarios = [
            Scenario("minimal", "/bench/minimal/", {}, 200),
            Scenario("job page", world.job_path, {"Cookie": cookie}, 200),
            Scenario("jobs list", world.home_path, {"Cookie": cookie}, 200),
            Scenario("unchanged poll", world.status_path, {"Cookie": cookie, "If-None-Match": etag}, 304),
        ]
        for scenario in scenarios:  # warm-up: imports, template caches, connections, cached sessions
            hammer(port, scenario, requests=min(200, args.requests), threads=args.threads)
        for number in range(1, args.rounds + 1):
            for scenario in scenarios:
                result = hammer(port, scenario, requests=args.requests, threads=args.threads)
                rounds.setdefault(scenario.name, []).append(result)
                log(f"  round {number} {scenario.name:<15} {result.per_second:8,.0f} req/s  {dict(result.statuses)}")
                wrong = {s: n for s, n in result.statuses.items() if s != scenario.expected_status}
                if wrong:
                    log(f"  FAILED: {scenario.name} answered {wrong}, expected only {scenario.expected_status}")
                    return 1
    log("")
    log(report(scenarios, rounds, queries, timings, machine, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
