"""The recovery tests' child programs, run under the production settings (``config.settings``, the
environment the harness gives them; see tests/recovery/harness.py).

``python -m tests.recovery.child tick``: the cluster's scheduled work, once a second instead of
every 30 s — django-q2's ``scheduler()`` (which enqueues the schedules that are due: the outbox's
retries) and ``crm.tasks.sweep_outbox()`` and ``sweep_webhooks()``, the same functions the cluster's schedules call. It
stops by itself when its parent (pytest) is gone.

``python -m tests.recovery.child advance --stage S --actor U JOB …``: move the jobs to stage S as
staff member U does from the jobs list (``jobs_advance``, ``--move`` jobs per transaction): the
customers' messages are stored and enqueued on commit, to the cluster's broker. Prints
``{"moved": N, "messages": M}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("recovery.ticker")


def tick(interval: float) -> None:
    import django

    django.setup()
    from django.db import close_old_connections
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    from crm.tasks import sweep_outbox, sweep_webhooks

    broker = get_broker()
    parent = os.getppid()
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("scheduler", lambda: scheduler(broker=broker)),
        ("sweep_outbox", sweep_outbox),
        ("sweep_webhooks", sweep_webhooks),
    ]
    print(f"ticker running (every {interval:g} s: {', '.join(name for name, _ in steps)})", flush=True)
    while os.getppid() == parent:
        began = time.monotonic()
        for name, step in steps:
            try:
                result = step()
            except Exception:
                # A passing database or broker error must not end the ticker: the next tick retries.
                logger.exception("ticker: %s failed", name)
                close_old_connections()
                continue
            if isinstance(result, dict) and any(result.values()):
                print(f"ticker: {name} {result}", flush=True)
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    print("ticker: parent gone, stopping", flush=True)


def advance(*, stage_id: int, actor_id: int, job_ids: list[int], move: int) -> dict[str, int]:
    import django

    django.setup()
    from django.contrib.auth.models import User

    from crm.models import Job, Message, StageTemplate
    from crm.services.jobs import jobs_advance

    stage = StageTemplate.objects.get(pk=stage_id)
    actor = User.objects.get(pk=actor_id)
    moved = 0
    for start in range(0, len(job_ids), move):
        jobs = list(Job.objects.filter(pk__in=job_ids[start : start + move]).order_by("pk"))
        moved += len(jobs_advance(jobs=jobs, to_stage=stage, actor=actor))
    return {"moved": moved, "messages": Message.objects.filter(job_id__in=job_ids).count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.recovery.child")
    commands = parser.add_subparsers(dest="command", required=True)
    ticker = commands.add_parser("tick", help="django-q2's scheduler and the outbox sweep, every --interval s")
    ticker.add_argument("--interval", type=float, default=1.0)
    mover = commands.add_parser("advance", help="move jobs to a stage (jobs_advance), as staff do")
    mover.add_argument("--stage", type=int, required=True)
    mover.add_argument("--actor", type=int, required=True)
    mover.add_argument("--move", type=int, default=50, help="jobs per transaction")
    mover.add_argument("jobs", type=int, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "tick":
        tick(args.interval)
    else:
        print(json.dumps(advance(stage_id=args.stage, actor_id=args.actor, job_ids=args.jobs, move=args.move)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
