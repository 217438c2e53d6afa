"""``kill -9`` of the whole cluster in the middle of sending 1,000 messages, then a restart.

The workers, their pusher and monitor die at once (SIGKILL to the cluster's process group; its
ticker too): batches are cut off between the provider's answer and the record of it, and the
tasks the pusher had taken from Redis are gone. After the restart the outbox must finish the job
from its rows alone.

Proves: all 1,000 rows end ``sent``, the provider saw every outbox id (0 lost), and at most one
message per worker was sent twice (the one a worker had handed over but not yet recorded when it
died): duplicates ≤ 2 with 2 workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.recovery.harness import WORKERS, Recovery, build_world, rows_by_status, task_failures

pytestmark = [pytest.mark.recovery, pytest.mark.django_db(transaction=True)]

MESSAGES = 1000
KILL_AT = 300
# Rows cut off "sending" come back after OUTBOX_STUCK_AFTER_SECONDS; rows whose task died in the
# pusher's hands are found by the sweep (today: once they are a minute old).
RECOVER_SECONDS = 240
QUIET_SECONDS = 4


def test_it_delivers_every_message_once_after_the_cluster_is_killed_mid_batch(
    recovery: Recovery, figures: Callable[[str], None]
) -> None:
    world = build_world(jobs=100, contacts_per_job=10)
    # Queued and enqueued before the cluster starts: 50 tasks of 20 wait in Redis.
    made = recovery.advance(world, move=50)
    assert made["messages"] == MESSAGES

    recovery.start()
    began = time.monotonic()
    recovery.wait_for(
        f"the provider to accept {KILL_AT} messages", lambda: recovery.esp.accepted >= KILL_AT, timeout=120, world=world
    )
    recovery.kill()
    accepted_at_kill = recovery.esp.accepted
    at_kill = rows_by_status(world.messages())
    figures(
        f"killed the cluster (SIGKILL, process group) {time.monotonic() - began:.1f} s after its start, "
        f"the provider having accepted {accepted_at_kill}; rows then {at_kill}"
    )

    restarted = time.monotonic()
    recovery.start()
    seconds = recovery.wait_settled(world, statuses=["sent"], timeout=RECOVER_SECONDS, max_sends=2, never=["failed"])
    time.sleep(QUIET_SECONDS)

    stats = recovery.esp.stats()
    ids = list(world.messages().values_list("pk", flat=True))
    lost = [pk for pk in ids if stats.sends(pk) == 0]
    duplicates = sum(stats.sends(pk) - 1 for pk in ids if stats.sends(pk) > 1)
    figures(
        f"{MESSAGES} messages, kill -9 at {accepted_at_kill} accepted: after the restart all rows "
        f"{rows_by_status(world.messages())} {time.monotonic() - restarted - QUIET_SECONDS:.1f} s after the "
        f"restart began ({seconds:.1f} s after the cluster was running again); the provider accepted {stats.accepted}, "
        f"{len(ids) - len(lost)} distinct ids, {len(lost)} lost, {duplicates} duplicates "
        f"(ids sent twice: {stats.outbox_ids_sent_more_than_once}, max {stats.max_sends_per_outbox_id}); "
        f"django-q2 task failures {task_failures()}"
    )
    assert len(ids) == MESSAGES
    assert rows_by_status(world.messages()) == {"sent": MESSAGES}
    assert lost == [], recovery.report(world)
    assert duplicates <= WORKERS, recovery.report(world)
