"""django-q2's broker, one per process, for every service that hands work to the workers (the
outbox, webhook deliveries)."""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task

logger = logging.getLogger(__name__)


_broker: Any = None


def task_broker(*, fresh: bool = False) -> Any:
    """django-q2's broker, one per process: ``get_broker()`` builds a new Redis connection pool at
    every call, which cost a connection per commit. (redis-py pools are thread-safe and start
    afresh in a forked child.)"""
    global _broker
    if _broker is None or fresh:
        _broker = get_broker()
    return _broker


def push(task: str, ids: list[int], *, batch: int, name: str, broker: Any = None) -> None:
    """One ``task`` per ``batch`` ids, over one broker connection."""
    broker = broker or task_broker()
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        async_task(task, chunk, task_name=f"{name}-{chunk[0]}-{len(chunk)}", broker=broker)


def push_on_commit(push_ids: Callable[..., None], ids: Iterable[int], *, what: str) -> None:
    """``push_ids(ids, broker=…)`` once the transaction that made the rows has committed.

    A failure to reach the broker loses nothing: the rows stay waiting and a sweep finds them."""
    ids = list(ids)
    if not ids:
        return

    def enqueue() -> None:
        try:
            push_ids(ids, broker=None)
        except Exception:
            # The kept connection may have been cut (a Redis restart): once more on a new one. A
            # batch pushed twice is harmless: the claim, not the enqueue, makes a send happen once.
            try:
                push_ids(ids, broker=task_broker(fresh=True))
            except Exception:
                logger.exception("Could not enqueue %s %s; the sweep will send them", what, ids)

    transaction.on_commit(enqueue)
