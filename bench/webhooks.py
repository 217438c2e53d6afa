"""Webhook benchmark (``make bench-webhooks``): stage changes to signed webhooks received.

Not a test. It needs PostgreSQL and Redis, and it owns what it is given: the database in
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_webhooks, its name must
contain "bench") is dropped and created again, and the Redis database in REDIS_URL (default
redis://127.0.0.1:6379/12, never 0) is flushed.

The edge is the receiver: bench.webhook_receiver, a process of its own on 127.0.0.1 answering 204.

1. Setup, not timed: N jobs at the first stage of a pipeline whose stages send the customer
   nothing (only webhooks are measured), and one endpoint wanting ``job.stage_changed``.
2. Baseline, the plain loop: N payloads of the product's shape, each signed with the
   ``standardwebhooks`` library and POSTed with ``requests``, one after another.
3. The product: ``manage.py qcluster`` (2 workers) beside this process, which moves the N jobs to
   their second stage as staff do, a page of 50 at a time (``jobs_advance``, one transaction each:
   the deliveries are stored with the move and enqueued on commit). Timed from the first move until
   the receiver has seen N distinct webhook-ids; every delivery row must end ``delivered``.

Figures are printed as ratios to the plain loop, and at full size (10,000) written to
docs/performance.md. ``BENCH_WEBHOOKS=1000 make bench-webhooks`` is a quick try.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from tempfile import mkdtemp
from typing import TYPE_CHECKING

from bench import common
from bench.common import DOC_PATH, ROOT, int_env, log, other_cpu_share, share_text

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from crm.models import Job, StageTemplate, WebhookEndpoint

DOC_START = "<!-- bench-webhooks:start -->"
DOC_END = "<!-- bench-webhooks:end -->"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_webhooks"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
FULL_SIZE = 10_000
WORKERS = 2
MOVE = 50
STALL_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.webhook_receiver", str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while b"receiving on" not in log_path.read_bytes():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as answer:
            return dict(json.loads(answer.read()))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._log.close()


def prepare(database_url: str, redis_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "Q_WORKERS": str(WORKERS),
            # The receiver is on this machine.
            "WEBHOOK_ALLOW_PRIVATE": "1",
        }
    )


def build_world(jobs: int, url: str) -> tuple[User, StageTemplate, list[Job], WebhookEndpoint]:
    from django.contrib.auth.models import User
    from django.db import transaction

    from crm.models import Contact, Customer, Pipeline, StageTemplate, WebhookEndpoint
    from crm.services.jobs import job_create

    owner = User.objects.create_user("bench-owner", "owner@bench.example", first_name="Camille", is_staff=True)
    pipeline = Pipeline.objects.create(name="Bench webhooks")
    stages = [
        StageTemplate.objects.create(
            pipeline=pipeline, position=position, name=name, customer_visible=False, default_duration_days=2
        )
        for position, name in enumerate(["Ordered", "Built", "Delivered"], 1)
    ]
    customers = Customer.objects.bulk_create([Customer(name=f"Bench customer {i:05d}") for i in range(jobs)])
    contacts = Contact.objects.bulk_create(
        [Contact(customer=c, name=f"Contact {i:05d}", email=f"c{i:05d}@bench.example") for i, c in enumerate(customers)]
    )
    made = []
    with transaction.atomic():
        for i, customer in enumerate(customers):
            made.append(
                job_create(
                    customer=customer,
                    pipeline=pipeline,
                    owner=owner,
                    title=f"Order {i:05d}",
                    actor=owner,
                    contacts=[contacts[i]],
                    notify_customer=False,
                    not_told_reason="Benchmark data.",
                )
            )
    endpoint = WebhookEndpoint.objects.create(url=url, event_types=["job.stage_changed"], description="bench")
    return owner, stages[1], made, endpoint


def baseline(jobs: list[Job], url: str, secret: str) -> float:
    """The plain loop: each payload signed and POSTed in turn."""
    import requests
    from standardwebhooks.webhooks import Webhook

    signer = Webhook(secret)
    payloads = [
        {
            "type": "job.stage_changed",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "job": {"id": str(job.public_id), "reference": job.reference, "title": job.title, "status": "active"},
                "event": {"id": n, "kind": "stage_advanced", "by": "Camille", "via": None},
                "details": {"from_stage": "Ordered", "to_stage": "Built", "reason": "", "note": ""},
            },
        }
        for n, job in enumerate(jobs)
    ]
    began = time.perf_counter()
    for n, payload in enumerate(payloads):
        body = json.dumps(payload, separators=(",", ":")).encode()
        now = datetime.now(UTC)
        webhook_id = f"msg_baseline_{n}"
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id=webhook_id, timestamp=now, data=body),
            "content-type": "application/json",
        }
        response = requests.post(url, data=body, headers=headers, timeout=10)
        assert response.status_code == 204
    return time.perf_counter() - began


def product(jobs: list[Job], owner: User, stage: StageTemplate, receiver: Receiver, expected: int) -> float:
    from crm.services.jobs import jobs_advance

    began = time.perf_counter()
    for start in range(0, len(jobs), MOVE):
        jobs_advance(jobs=jobs[start : start + MOVE], to_stage=stage, actor=owner)
    moved = time.perf_counter() - began
    log(f"  {len(jobs)} stage changes made in {moved:.1f} s; waiting for the receiver")
    last, last_change = -1, time.perf_counter()
    while True:
        distinct = receiver.stats()["distinct"] - expected
        if distinct >= len(jobs):
            return time.perf_counter() - began
        if distinct != last:
            last, last_change = distinct, time.perf_counter()
        elif time.perf_counter() - last_change > STALL_SECONDS:
            raise RuntimeError(f"stalled at {distinct} of {len(jobs)} webhooks received")
        time.sleep(0.1)


def main() -> None:
    count = int_env("BENCH_WEBHOOKS", FULL_SIZE)
    database_url, name = common.bench_database(DEFAULT_DATABASE_URL, program="bench-webhooks")
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    common.refuse_redis_db_zero(redis_url, program="bench-webhooks", advice=f"REDIS_URL={redis_url!r}")
    log(f"bench-webhooks: {count} stage changes → {count} webhooks (database {name})")
    common.recreate_database(database_url, name)
    prepare(database_url, redis_url)

    import django
    import redis

    django.setup()
    from django.core.management import call_command

    from bench.notify import Cluster
    from crm.models import WebhookDelivery

    redis.Redis.from_url(redis_url).flushdb()
    call_command("migrate", verbosity=0)
    workdir = Path(mkdtemp(prefix="bench-webhooks-"))
    receiver = Receiver(workdir / "receiver.log")
    cluster = Cluster(workdir / "qcluster.log")
    try:
        log(f"  setup: {count} jobs")
        owner, stage, jobs, endpoint = build_world(count, receiver.url)
        other = other_cpu_share()
        log(f"  baseline: {count} signed POSTs in a plain loop")
        base = baseline(jobs, receiver.url, endpoint.secret)
        log(f"  baseline: {base:.1f} s ({count / base:.0f}/s)")
        log(f"  starting manage.py qcluster with {WORKERS} workers (log: {cluster.log_path})")
        cluster.start()
        took = product(jobs, owner, stage, receiver, expected=count)
        log(f"  product: {took:.1f} s ({count / took:.0f}/s)")
        statuses = dict.fromkeys(WebhookDelivery.Status.values, 0)
        for status in WebhookDelivery.objects.values_list("status", flat=True):
            statuses[status] += 1
        requests_seen = receiver.stats()["requests"] - count
    finally:
        cluster.stop()
        receiver.stop()
    ratio = base / took
    log("")
    log(f"  plain loop of signed POSTs   {base:8.1f} s   {count / base:7.0f} webhooks/s")
    log(f"  product (2 workers)          {took:8.1f} s   {count / took:7.0f} webhooks/s   {ratio:.2f} × the loop")
    log(f"  delivery rows: {statuses}; requests to the receiver {requests_seen} for {count} webhook-ids")
    log(f"  other CPU use before the run: {share_text(other)}")
    if statuses["delivered"] != count:
        raise SystemExit("not every delivery ended delivered")
    if count == FULL_SIZE:
        machine = common.describe_machine()
        section = "\n".join(
            [
                DOC_START,
                "## Webhooks: 10,000 stage changes to 10,000 signed deliveries (`make bench-webhooks`)",
                "",
                f"Measured {datetime.now(UTC):%Y-%m-%d} on {machine.cpu} ({machine.nproc} cores), PostgreSQL "
                f"{machine.postgres}, Redis, 2 django-q2 workers; the receiver a process of its own answering 204.",
                "",
                "| Path | Seconds | Webhooks/s | Ratio |",
                "|---|---:|---:|---:|",
                f"| Plain loop: sign (standardwebhooks) and POST (requests), one at a time | {base:.1f} | "
                f"{count / base:.0f} | 1.00 × |",
                f"| Product: `jobs_advance` 50 jobs a transaction, deliveries stored with the move, "
                f"2 workers deliver | {took:.1f} | {count / took:.0f} | {ratio:.2f} × |",
                "",
                f"Every delivery row ended `delivered` ({statuses['delivered']}); the receiver saw {requests_seen} "
                f"requests for {count} webhook-ids. The product's time runs from the first move (its stage "
                "changes, their log lines and the delivery rows, 50 jobs per transaction) to the last webhook "
                "received; the loop signs and posts payloads built beforehand.",
                DOC_END,
                "",
            ]
        )
        common.replace_doc_section(DOC_PATH, DOC_START, DOC_END, section, create=True)
        log(f"  written to {DOC_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
