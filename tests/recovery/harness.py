"""The recovery harness: the product's own processes, run as in production, around the test database.

* The fake Postmark (``bench.fake_esp``), reached through anymail's real Postmark backend.
* ``manage.py qcluster`` (2 workers, ``config.settings``) in its own session, so one
  ``os.killpg(…, SIGKILL)`` is a ``kill -9`` of the whole cluster.
* A ticker (``python -m tests.recovery.child tick``): django-q2's ``scheduler()`` and the outbox
  sweep once a second. The cluster runs its scheduler every 30 s only (hard-coded in its guard
  loop); the ticker calls the same functions its schedules call, faster, so a test waits seconds
  for a retry instead of minutes. It belongs to the cluster: it is killed and restarted with it.
* Work is made as staff make it: the test process builds jobs and contacts (committed), then a
  child under the production settings moves the jobs to a stage (``jobs_advance``), which stores
  one message per contact and enqueues them on commit. (The test process itself runs django-q2 in
  ``sync`` mode with locmem email: anything it enqueued would be "sent" in the test process.)

Every child gets the pytest test database, a Redis database of its own (flushed before and after
each test), the fake ESP and short outbox timings (the constants below). Every wait is bounded and
fails with the rows by status, the fake's counts and the tail of each child's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from bench.fake_esp import EspStats, FakeEsp

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from crm.models import Message

ROOT = Path(__file__).resolve().parents[2]

WORKERS = 2
# The outbox timings the children run with (env vars read by config/settings.py).
MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 1
# Longer than any batch of these tests takes (a hang holds a worker for HANG seconds per message),
# so the sweep never requeues a row a live worker still holds.
STUCK_AFTER_SECONDS = 15
DIGEST_SECONDS = 3
# The least time from a message's first failed attempt to its last one: the backoff's lower bound
# (half of base × 2^(n-1), n = 1 … MAX_ATTEMPTS-1). An outage shorter than this loses nothing.
RETRY_BUDGET_MIN_SECONDS = sum(RETRY_BASE_SECONDS * 2 ** (n - 1) / 2 for n in range(1, MAX_ATTEMPTS))
RETRY_BUDGET_MAX_SECONDS = sum(RETRY_BASE_SECONDS * 2 ** (n - 1) for n in range(1, MAX_ATTEMPTS))
TICK_SECONDS = 1.0
# The Redis database of the children (never 0, never the test process's own).
CHILD_REDIS_DB = int(os.environ.get("RECOVERY_REDIS_DB") or 14)
ESP_TOKEN = "recovery"  # the fake provider's server token, nothing real
STAFF_ALERT_TAG = "staff_alert"

CLUSTER_RUNNING = re.compile(rb"Q Cluster \S+ \[[^\]]*\] running\.")
TICKER_RUNNING = re.compile(rb"ticker running")


# --- Environment --------------------------------------------------------------------------------


def child_database_url() -> str:
    """The URL of the database this test process uses (pytest's test database), for the children."""
    from django.db import connection

    db = connection.settings_dict
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or ''}{port}/{quote(str(db['NAME']), safe='')}"


def child_redis_url(parent_url: str) -> str:
    """``parent_url`` with the children's database number: CHILD_REDIS_DB, or one below it when the
    test process already uses that one."""
    parts = urlsplit(parent_url)
    parent_db = int(parts.path.strip("/") or 0)
    db = CHILD_REDIS_DB - 1 if parent_db == CHILD_REDIS_DB else CHILD_REDIS_DB
    if db <= 0:
        raise RuntimeError(f"No Redis database for the recovery children beside {parent_url!r} (RECOVERY_REDIS_DB).")
    return urlunsplit(parts._replace(path=f"/{db}"))


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def child_env(esp: FakeEsp, *, database_url: str, redis_url: str) -> dict[str, str]:
    """The production settings with anymail's Postmark backend on the fake and short timings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANYMAIL_", "PYTEST_", "OUTBOX_", "STAFF_ALERT_", "WEBHOOK_"))
        and k not in {"EMAIL_BACKEND", "INBOUND_EMAIL_DOMAIN", "SMS_BACKEND"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "Q_WORKERS": str(WORKERS),
            "ANYMAIL_ESP": "postmark",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": esp.token,
            "ANYMAIL_POSTMARK_API_URL": esp.url,
            "ANYMAIL_WEBHOOK_SECRET": "recovery:not-used",
            # Not ANYMAIL_REQUESTS_TIMEOUT: config/settings.py hands ANYMAIL_* values over as
            # strings and requests refuses a string timeout (ValueError on every send). A hang in
            # these tests is ended by the fake itself after hang_seconds instead.
            "OUTBOX_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "OUTBOX_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS),
            "OUTBOX_STUCK_AFTER_SECONDS": str(STUCK_AFTER_SECONDS),
            "STAFF_ALERT_DIGEST_SECONDS": str(DIGEST_SECONDS),
            # Webhooks go to the test's receiver on this machine, and a cut-off send comes back soon.
            "WEBHOOK_ALLOW_PRIVATE": "1",
            "WEBHOOK_STUCK_AFTER_SECONDS": str(STUCK_AFTER_SECONDS),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    return env


# --- Child processes ----------------------------------------------------------------------------


class Child:
    """A child process in its own session (its process group is the whole of it), logging to a file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.expected_exit = False

    def start(self, *, ready: re.Pattern[bytes], timeout: float = 60.0) -> float:
        """Start it and wait for ``ready`` in its log; the seconds that took."""
        began = time.monotonic()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- {self.name} started: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.expected_exit = False
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode} at start:\n{self.tail()}")
            if ready.search(self.log_path.read_bytes()):
                return time.monotonic() - began
            time.sleep(0.1)
        raise AssertionError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def died(self) -> bool:
        """Exited without being asked to."""
        return self.process is not None and not self.expected_exit and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL its whole process group (``kill -9``), and wait until nothing of it is left."""
        self.expected_exit = True
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        # The workers, pusher and monitor are its children: reaped by init once orphaned.
        deadline = time.monotonic() + 10
        with contextlib.suppress(ProcessLookupError, PermissionError):
            while time.monotonic() < deadline:
                os.killpg(process.pid, 0)
                time.sleep(0.05)
        if self._log is not None:
            self._log.write(f"--- {self.name} killed (SIGKILL to its process group)\n".encode())
            self._log.close()
            self._log = None

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"({self.log_path} unreadable)"
        return f"--- last {len(text)} lines of {self.log_path}:\n" + "\n".join(text)


# --- The world ----------------------------------------------------------------------------------


@dataclass
class World:
    owner_id: int
    owner_email: str
    stage_id: int
    job_ids: list[int]
    addresses: list[str]

    def messages(self) -> QuerySet[Message]:
        """The customers' message rows (a queryset; staff alerts are not among them)."""
        from crm.models import Message

        return Message.objects.filter(job_id__in=self.job_ids)


def build_world(*, jobs: int, contacts_per_job: int = 1) -> World:
    """An owner, a pipeline whose second stage is shown to customers, and ``jobs`` jobs at its
    first stage with ``contacts_per_job`` email contacts each (committed: the children see them)."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from crm.models import Contact, Customer, Pipeline, StaffProfile, StageTemplate
    from crm.services.jobs import job_create

    owner = User.objects.create_user(
        "recovery-owner", "owner@recovery.example", first_name="Olivia", last_name="Owner", is_staff=True
    )
    StaffProfile.objects.create(user=owner, phone="+33 1 99 00 12 09", job_title="Project manager")
    pipeline = Pipeline.objects.create(name="Recovery installation")
    stages = [
        StageTemplate.objects.create(
            pipeline=pipeline, position=position, name=name, customer_visible=True, default_duration_days=days
        )
        for position, (name, days) in enumerate([("Request received", 0), ("Proposal sent", 3), ("Installed", 5)], 1)
    ]
    customers = Customer.objects.bulk_create([Customer(name=f"Recovery household {i:04d}") for i in range(jobs)])
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                customer=customer,
                name=f"Client {i:04d}-{k:02d}",
                email=f"client-{i:04d}-{k:02d}@recovery.example",
                language="fr" if (i + k) % 2 else "en",
            )
            for i, customer in enumerate(customers)
            for k in range(contacts_per_job)
        ]
    )
    job_ids = []
    with transaction.atomic():
        for i, customer in enumerate(customers):
            job = job_create(
                customer=customer,
                pipeline=pipeline,
                owner=owner,
                title=f"Heat pump {i:04d}",
                actor=owner,
                contacts=contacts[i * contacts_per_job : (i + 1) * contacts_per_job],
                # The welcome is not what this measures.
                notify_customer=False,
                not_told_reason="Benchmark data.",
            )
            job_ids.append(job.pk)
    return World(
        owner_id=owner.pk,
        owner_email=owner.email,
        stage_id=stages[1].pk,
        job_ids=job_ids,
        addresses=[c.email for c in contacts],
    )


# --- The harness --------------------------------------------------------------------------------


def rows_by_status(rows: QuerySet[Message]) -> dict[str, int]:
    from django.db.models import Count

    return {r["status"]: r["n"] for r in rows.values("status").annotate(n=Count("id")).order_by("status")}


def sends_above(stats: EspStats, ids: Iterable[int], limit: int) -> dict[int, int]:
    """The ids the provider accepted more than ``limit`` times, with their counts."""
    return {pk: stats.sends(pk) for pk in ids if stats.sends(pk) > limit}


class Recovery:
    """The fake ESP, the cluster and the ticker of one test; ``stop()`` always leaves nothing running."""

    def __init__(self, esp: FakeEsp, *, env: dict[str, str], log_dir: Path) -> None:
        self.esp = esp
        self.env = env
        self.log_dir = log_dir
        self.cluster = Child(
            "qcluster", [sys.executable, "manage.py", "qcluster"], env=env, log_path=log_dir / "qcluster.log"
        )
        self.ticker = Child(
            "ticker",
            [sys.executable, "-m", "tests.recovery.child", "tick", "--interval", str(TICK_SECONDS)],
            env=env,
            log_path=log_dir / "ticker.log",
        )
        self.advances = 0

    # Processes

    def start(self) -> float:
        """Start the cluster and its ticker; the seconds until both were ready."""
        began = time.monotonic()
        self.cluster.start(ready=CLUSTER_RUNNING)
        self.ticker.start(ready=TICKER_RUNNING)
        return time.monotonic() - began

    def kill(self) -> None:
        """``kill -9`` of the cluster's process group, and of its ticker."""
        self.cluster.kill()
        self.ticker.kill()

    def stop(self) -> None:
        for child in (self.cluster, self.ticker):
            with contextlib.suppress(Exception):
                child.kill()

    def advance(self, world: World, *, move: int = 50) -> dict[str, int]:
        """Move every job of ``world`` to its second stage as staff do (``jobs_advance``, ``move``
        jobs per transaction) in a child under the production settings: the messages are queued
        and enqueued on commit to the cluster's broker."""
        self.advances += 1
        log_path = self.log_dir / f"advance-{self.advances}.log"
        argv = [
            sys.executable,
            "-m",
            "tests.recovery.child",
            "advance",
            "--stage",
            str(world.stage_id),
            "--actor",
            str(world.owner_id),
            "--move",
            str(move),
            *map(str, world.job_ids),
        ]
        try:
            done = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"The stage change did not finish within 120 s:\n{error.output!r}") from None
        log_path.write_bytes(done.stdout + done.stderr)
        if done.returncode != 0:
            raise AssertionError(
                f"The stage change failed ({done.returncode}):\n{(done.stdout + done.stderr).decode()[-4000:]}"
            )
        return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))

    # Observing

    def report(self, world: World | None = None) -> str:
        """Where things stand, for a failure message."""
        lines = []
        with contextlib.suppress(Exception):
            from crm.models import Message

            if world is not None:
                lines.append(f"customer rows by status: {rows_by_status(world.messages())}")
            alerts = Message.objects.filter(kind=STAFF_ALERT_TAG)
            lines.append(f"staff alert rows by status: {rows_by_status(alerts)}")
        with contextlib.suppress(Exception):
            stats = self.esp.stats()
            lines.append(
                f"fake ESP: accepted {stats.accepted} (by tag {stats.accepted_by_tag}), errored {stats.errored}, "
                f"hung {stats.hung}, other recipient {stats.other_recipient}, ids sent more than once "
                f"{stats.outbox_ids_sent_more_than_once} (max {stats.max_sends_per_outbox_id}), "
                f"behaviour {stats.behaviour}"
            )
        with contextlib.suppress(Exception):
            lines.append(f"django-q2 task failures: {task_failures()}")
        lines += [self.cluster.tail(), self.ticker.tail()]
        return "\n".join(lines)

    def summary(self) -> str:
        """One line on how things ended, for the figures (also when the test failed)."""
        from django.db.models import Max

        from crm.models import Message

        parts = []
        with contextlib.suppress(Exception):
            customer = Message.objects.exclude(kind=STAFF_ALERT_TAG)
            alerts = Message.objects.filter(kind=STAFF_ALERT_TAG)
            most = customer.aggregate(most=Max("attempts"))["most"]
            parts.append(f"customer rows {rows_by_status(customer)} (attempts max {most})")
            parts.append(f"staff alert rows {rows_by_status(alerts)}")
        with contextlib.suppress(Exception):
            stats = self.esp.stats()
            parts.append(
                f"provider accepted {stats.accepted} by tag {stats.accepted_by_tag}, "
                f"{stats.outbox_ids_sent_more_than_once} ids more than once (max {stats.max_sends_per_outbox_id}), "
                f"errored {stats.errored}, hung {stats.hung}"
            )
        with contextlib.suppress(Exception):
            parts.append(f"django-q2 task failures {task_failures()}")
        return "; ".join(parts)

    def fail(self, message: str, world: World | None = None) -> AssertionError:
        return AssertionError(f"{message}\n{self.report(world)}")

    def wait_for(
        self, what: str, done: Callable[[], bool], *, timeout: float, world: World | None = None, interval: float = 0.2
    ) -> float:
        """Poll ``done`` until true; the seconds that took. ``done`` may raise AssertionError to stop
        early (what can no longer come right). Fails if the cluster or the ticker died on its own."""
        began = time.monotonic()
        while True:
            for child in (self.cluster, self.ticker):
                if child.died():
                    raise self.fail(f"While waiting for {what}: {child.name} exited on its own.", world)
            try:
                if done():
                    return time.monotonic() - began
            except AssertionError as error:
                raise self.fail(f"While waiting for {what}: {error}", world) from None
            if time.monotonic() - began > timeout:
                raise self.fail(f"Timed out after {timeout:.0f} s waiting for {what}.", world)
            time.sleep(interval)

    def wait_settled(
        self,
        world: World,
        *,
        statuses: Iterable[str],
        timeout: float,
        max_sends: int = 1,
        never: Iterable[str] = (),
    ) -> float:
        """Wait until every customer row of ``world`` has one of ``statuses``; the seconds that
        took. Stops early when the provider accepted a row more than ``max_sends`` times, or got
        more than MAX_ATTEMPTS requests for it, or a row reached a status in ``never``."""
        wanted, forbidden = set(statuses), set(never)
        ids = list(world.messages().values_list("pk", flat=True))

        def settled() -> bool:
            stats = self.esp.stats()
            if over := sends_above(stats, ids, max_sends):
                raise AssertionError(f"the provider accepted these outbox ids more than {max_sends}×: {over}")
            if over := {pk: stats.requests(pk) for pk in ids if stats.requests(pk) > MAX_ATTEMPTS}:
                raise AssertionError(f"the provider was asked more than {MAX_ATTEMPTS}× for: {over}")
            by_status = rows_by_status(world.messages())
            if bad := forbidden & set(by_status):
                raise AssertionError(f"rows reached {sorted(bad)}: {by_status}")
            return set(by_status) <= wanted

        return self.wait_for(f"every row {' or '.join(sorted(wanted))}", settled, timeout=timeout, world=world)


def task_failures() -> int:
    from django_q.models import Failure

    return Failure.objects.count()


def attempts_of(world: World) -> Counter[int]:
    """How many rows made how many attempts."""
    return Counter(world.messages().values_list("attempts", flat=True))
