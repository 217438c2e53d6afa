"""``kill -9`` of the whole cluster in the middle of delivering 300 webhooks, then a restart.

300 jobs move to their next stage (a child under the production settings, as staff do): each
stores a ``job.stage_changed`` delivery for the endpoint in the move's own transaction, enqueued
on commit. The cluster delivers them to a real local receiver, slowly (20 ms each); it is killed
after 100, then restarted. The rows alone must finish the job.

Proves: every delivery ends ``delivered``, the receiver saw every webhook-id (0 lost), each
verifies with the standardwebhooks library, and at most one per worker came twice (the one a
worker had sent but not yet recorded when it died) — receivers dedupe on webhook-id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from standardwebhooks.webhooks import Webhook

from crm.models import WebhookDelivery, WebhookEndpoint
from tests.recovery.harness import WORKERS, Recovery, build_world, task_failures
from tests.webhook_receiver import running_receiver

pytestmark = [pytest.mark.recovery, pytest.mark.django_db(transaction=True)]

JOBS = 300
KILL_AT = 100
RECOVER_SECONDS = 240
QUIET_SECONDS = 3


def by_status() -> dict[str, int]:
    return dict(Counter(WebhookDelivery.objects.values_list("status", flat=True)))


def test_every_webhook_is_delivered_after_the_cluster_is_killed_mid_way(
    recovery: Recovery, figures: Callable[[str], None]
) -> None:
    world = build_world(jobs=JOBS)
    with running_receiver() as receiver:
        receiver.delays = [0.02] * (JOBS * 3)
        endpoint = WebhookEndpoint.objects.create(url=receiver.url, event_types=["job.stage_changed"])
        recovery.advance(world, move=50)
        assert WebhookDelivery.objects.count() == JOBS

        recovery.start()
        began = time.monotonic()
        recovery.wait_for(f"{KILL_AT} webhooks received", lambda: len(receiver.received) >= KILL_AT, timeout=120)
        recovery.kill()
        at_kill = len(receiver.received)
        figures(
            f"killed the cluster {time.monotonic() - began:.1f} s after its start, {at_kill} received; {by_status()}"
        )

        restarted = time.monotonic()
        recovery.start()
        recovery.wait_for(
            "every delivery delivered", lambda: by_status() == {"delivered": JOBS}, timeout=RECOVER_SECONDS
        )
        time.sleep(QUIET_SECONDS)

        ids = set(WebhookDelivery.objects.values_list("webhook_id", flat=True))
        seen = Counter(r.headers["webhook-id"] for r in receiver.received)
        lost = ids - set(seen)
        duplicates = sum(n - 1 for n in seen.values())
        verifier = Webhook(endpoint.secret)
        for request in receiver.received:
            assert verifier.verify(request.body, request.headers)["type"] == "job.stage_changed"
        figures(
            f"{JOBS} webhooks, kill -9 at {at_kill} received: all delivered {time.monotonic() - restarted:.1f} s after "
            f"the restart began; {len(receiver.received)} requests, {len(ids) - len(lost)} distinct ids, "
            f"{len(lost)} lost, {duplicates} duplicates; django-q2 task failures {task_failures()}"
        )
        assert lost == set()
        assert duplicates <= WORKERS
