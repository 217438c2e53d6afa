"""Visit-scan benchmark (``make bench-visits``): the reminder and at-risk scan on a day of 10,000
visits, over a year of past visits.

Not a test. It needs PostgreSQL and owns the database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/portal_bench_visits; its name must contain "bench"): dropped,
created again and migrated, left behind for inspection.

1. Setup, not timed: 40 installers, one pipeline with a visit kind, 1,000 jobs (``job_create``,
   no welcome), then with ``bulk_create`` (not the services, as a team's history would be):
   ``BENCH_VISITS`` visits today (default 10,000) spread over the installers from 07:00 to 19:00
   — a third confirmed, a third planned, the rest already arrived or done — and 20 past visits a
   day per installer over the last year (done). Then VACUUM ANALYZE.
2. Baseline, same connection: a ``SELECT 1`` round trip.
3. ``crm.services.visit_scan.scan()`` at a fixed moment of the day (11:00): the first runs (they
   remind and warn what the load left for them, up to one batch each, until one changes nothing),
   then runs on the state they leave, each of which must change nothing. Its two candidate
   SELECTs are explained: both must use visit_upcoming_start_idx.

Each timing: one warm-up, then 5 runs; best and median printed, and ratios to the round trip.
PASS needs every settled run under a second, changing nothing, and both plans on the index.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import statistics
import sys
import time
from datetime import datetime, timedelta

from bench import common
from bench.common import log

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_visits"
INDEX = "visit_upcoming_start_idx"
INSTALLERS = 40
JOBS = 1_000
PAST_DAYS = 365
PAST_PER_INSTALLER_DAY = 20
REPEATS = 5
GOAL_SECONDS = 1.0


def prepare_environment(database_url: str) -> None:
    """Production settings, DEBUG off (no query log in memory); no Redis: the ORM broker."""
    for key in [k for k in os.environ if k.startswith("ANYMAIL_")]:
        del os.environ[key]
    os.environ.pop("REDIS_URL", None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LOG_LEVEL": "WARNING",
            "DJANGO_LOG_LEVEL": "WARNING",
        }
    )


def build(visits_today: int, now: datetime) -> tuple[int, int]:
    """The world; how many visits today and in all."""
    from django.contrib.auth.models import User

    from crm.models import Contact, Customer, Pipeline, StageTemplate, Visit, VisitKind
    from crm.services.jobs import job_create
    from crm.workdays import business_zone

    owner = User.objects.create_user("owner", "owner@example.com", is_staff=True, first_name="Olivia")
    crew = [
        User.objects.create_user(f"installer{i}", f"installer{i}@example.com", is_staff=True) for i in range(INSTALLERS)
    ]
    pipeline = Pipeline.objects.create(name="Installation")
    for position, name in enumerate(["Booked", "Installed"], start=1):
        StageTemplate.objects.create(pipeline=pipeline, position=position, name=name, default_duration_days=1)
    kind = VisitKind.objects.create(pipeline=pipeline, name="Installation day", window_minutes=120)
    jobs = []
    for number in range(JOBS):
        customer = Customer.objects.create(name=f"Customer {number}", address=f"{number} rue des Lilas, Lyon")
        Contact.objects.create(customer=customer, name=f"Contact {number}", email=f"c{number}@example.com")
        jobs.append(
            job_create(
                customer=customer,
                pipeline=pipeline,
                owner=owner,
                title=f"Job {number}",
                actor=owner,
                notify_customer=False,
                not_told_reason="Benchmark.",
            )
        )
    zone = business_zone()
    day = now.astimezone(zone).date()
    statuses = [Visit.Status.CONFIRMED, Visit.Status.PLANNED, Visit.Status.ARRIVED, Visit.Status.DONE]
    rows, crew_of = [], []
    for i in range(visits_today):
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone) + timedelta(hours=7, minutes=(i * 7) % 720)
        status = statuses[i % len(statuses)] if i % 3 else Visit.Status.CONFIRMED
        rows.append(
            Visit(
                job=jobs[i % JOBS],
                kind=kind,
                window_start=start,
                window_end=start + timedelta(hours=2),
                duration_minutes=90,
                address="1 rue des Lilas, Lyon",
                status=status,
                reminded_at=now - timedelta(days=1),
                arrived_at=start if status in (Visit.Status.ARRIVED, Visit.Status.DONE) else None,
                done_at=start + timedelta(hours=1) if status == Visit.Status.DONE else None,
            )
        )
        crew_of.append(crew[i % INSTALLERS])
    for back in range(1, PAST_DAYS + 1):
        past_day = day - timedelta(days=back)
        for person_index in range(INSTALLERS):
            for slot in range(PAST_PER_INSTALLER_DAY // 4):
                start = datetime.combine(past_day, datetime.min.time(), tzinfo=zone) + timedelta(hours=8 + 2 * slot)
                rows.append(
                    Visit(
                        job=jobs[(back * INSTALLERS + person_index + slot) % JOBS],
                        kind=kind,
                        window_start=start,
                        window_end=start + timedelta(hours=2),
                        duration_minutes=90,
                        address="1 rue des Lilas, Lyon",
                        status=Visit.Status.DONE,
                        arrived_at=start,
                        done_at=start + timedelta(hours=1),
                    )
                )
                crew_of.append(crew[person_index])
    created = []
    for chunk in range(0, len(rows), 20_000):
        created += Visit.objects.bulk_create(rows[chunk : chunk + 20_000])
    through = Visit.installers.through
    links = [through(visit_id=visit.pk, user_id=person.pk) for visit, person in zip(created, crew_of, strict=True)]
    for chunk in range(0, len(links), 50_000):
        through.objects.bulk_create(links[chunk : chunk + 50_000])
    return visits_today, len(created)


def timed(action) -> list[float]:  # type: ignore[no-untyped-def]
    action()
    runs = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        action()
        runs.append(time.perf_counter() - began)
    return runs


def uses_index(plan: str) -> bool:
    return bool(re.search(rf"(Index Scan|Index Only Scan) using {INDEX}\b|Bitmap Index Scan on {INDEX}\b", plan))


def main() -> int:
    visits_today = common.int_env("BENCH_VISITS", 10_000)
    database_url, name = common.bench_database(DEFAULT_DATABASE_URL, program="bench.visits")
    prepare_environment(database_url)
    log(f"Setup (not timed): recreating {name}, migrating")
    common.recreate_database(database_url, name)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from crm.services import visit_scan
    from crm.workdays import business_zone

    logging.getLogger("django-q").setLevel(logging.WARNING)
    call_command("migrate", interactive=False, verbosity=0)
    zone = business_zone()
    # A fixed moment of a day's work: 11:00 where the team works.
    now = datetime.combine(timezone.now().astimezone(zone).date(), datetime.min.time(), tzinfo=zone) + timedelta(
        hours=11
    )
    began = time.perf_counter()
    today, total = build(visits_today, now)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"  {today:,} visits today, {total:,} in all; setup took {time.perf_counter() - began:.0f} s")

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    round_trip = timed(select_one)
    log("First scans (they remind and warn what the load left for them, a batch at a time)")
    first_runs = []
    while True:
        began = time.perf_counter()
        first = visit_scan.scan(now=now)
        first_runs.append((first, time.perf_counter() - began))
        log(f"  {first} in {first_runs[-1][1] * 1000:.0f} ms")
        if not any(first.values()):
            break
    outcomes: list[dict[str, int]] = []
    settled = timed(lambda: outcomes.append(visit_scan.scan(now=now)))
    at_risk_plan = visit_scan.at_risk_candidates(now)[:500].explain(analyze=True, buffers=True)
    reminder_plan = visit_scan.reminder_candidates(now)[:500].explain(analyze=True, buffers=True)

    best, median = min(settled), statistics.median(settled)
    base = min(round_trip)
    log(f"Baseline SELECT 1: best {base * 1e6:.0f} µs")
    log(
        f"Settled scan: best {best * 1000:.1f} ms, median {median * 1000:.1f} ms"
        f" ({best / base:,.0f} × the round trip); goal < {GOAL_SECONDS:.0f} s"
    )
    changed = [o for o in outcomes if any(o.values())]
    checks = {
        f"settled runs under {GOAL_SECONDS:.0f} s": max(settled) < GOAL_SECONDS,
        "settled runs change nothing": not changed,
        f"at-risk candidates use {INDEX}": uses_index(at_risk_plan),
        f"reminder candidates use {INDEX}": uses_index(reminder_plan),
    }
    for label, ok in checks.items():
        log(f"  {'PASS' if ok else 'FAIL'}  {label}")
    log("\nAt-risk candidates plan:\n" + at_risk_plan)
    log("\nReminder candidates plan:\n" + reminder_plan)
    log(f"\n  {name} is left for inspection; drop it with: dropdb {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
