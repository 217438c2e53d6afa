"""The provider fails for longer than the retry budget, then recovers.

10 messages of one owner's jobs meet HTTP 500 at every attempt until each has used all of its
OUTBOX_MAX_ATTEMPTS; then the provider recovers.

Proves: every customer row ends ``failed`` with exactly OUTBOX_MAX_ATTEMPTS attempts, the
provider was asked exactly that many times per message and accepted none; after the recovery the
owner receives exactly one alert (anymail tag ``staff_alert``, a digest over
STAFF_ALERT_DIGEST_SECONDS) that lists the failed messages, not one email per message — the alert
waited out the outage in the outbox like any message instead of being lost in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.recovery.harness import (
    DIGEST_SECONDS,
    MAX_ATTEMPTS,
    RETRY_BUDGET_MAX_SECONDS,
    STAFF_ALERT_TAG,
    Recovery,
    attempts_of,
    build_world,
    rows_by_status,
    task_failures,
)

pytestmark = [pytest.mark.recovery, pytest.mark.django_db(transaction=True)]

MESSAGES = 10
FAIL_SECONDS = 90
# After the recovery the digest is due within DIGEST_SECONDS, and its own retry is at most one
# backoff step away.
ALERT_SECONDS = DIGEST_SECONDS + RETRY_BUDGET_MAX_SECONDS + 20
# Long enough for a second digest, or a late email per message, to show up.
QUIET_SECONDS = 2 * DIGEST_SECONDS + 4


def test_it_fails_every_message_at_its_last_attempt_and_sends_the_owner_one_digest_after_recovery(
    recovery: Recovery, figures: Callable[[str], None]
) -> None:
    world = build_world(jobs=MESSAGES)
    recovery.esp.behave("error")
    recovery.start()
    began = time.monotonic()
    recovery.advance(world)

    recovery.wait_settled(world, statuses=["failed"], timeout=FAIL_SECONDS, never=["sent"])
    seconds = time.monotonic() - began
    recovery.esp.behave("ok")
    recovered = time.monotonic()
    failed_stats = recovery.esp.stats()
    ids = list(world.messages().values_list("pk", flat=True))
    figures(
        f"{MESSAGES} messages, the provider failing: all rows {rows_by_status(world.messages())} "
        f"{seconds:.1f} s after the stage change began, attempts {dict(attempts_of(world))}, "
        f"requests per message {sorted({failed_stats.requests(pk) for pk in ids})}, accepted {failed_stats.accepted} "
        f"(by tag {failed_stats.accepted_by_tag}); the provider recovered {recovered - began:.1f} s after the "
        f"stage change began"
    )
    assert len(ids) == MESSAGES
    assert attempts_of(world) == {MAX_ATTEMPTS: MESSAGES}
    assert {pk: failed_stats.requests(pk) for pk in ids} == dict.fromkeys(ids, MAX_ATTEMPTS)
    assert all(failed_stats.sends(pk) == 0 for pk in ids)

    alert_seconds = recovery.wait_for(
        "the owner's alert to reach the provider",
        lambda: recovery.esp.stats().tag(STAFF_ALERT_TAG) >= 1,
        timeout=ALERT_SECONDS,
        world=world,
    )
    time.sleep(QUIET_SECONDS)

    stats = recovery.esp.stats()
    alerts = recovery.esp.messages(STAFF_ALERT_TAG)
    addresses = list(world.messages().values_list("to_address", flat=True))
    listed = [a for a in addresses if alerts and a in alerts[0]["text"]]
    figures(
        f"after the recovery: {stats.tag(STAFF_ALERT_TAG)} staff alert(s) accepted "
        f"{alert_seconds:.1f} s after it (to {[a['to'] for a in alerts]}, listing {len(listed)} of {MESSAGES} "
        f"failed messages), untagged emails {stats.tag('')}, customer messages accepted "
        f"{stats.tag('stage_change')}; rows still {rows_by_status(world.messages())}; "
        f"django-q2 task failures {task_failures()}"
    )
    assert stats.tag(STAFF_ALERT_TAG) == 1, recovery.report(world)
    [alert] = alerts
    assert world.owner_email in alert["to"]
    assert sorted(listed) == sorted(addresses), alert["text"]
    assert rows_by_status(world.messages()) == {"failed": MESSAGES}
    assert stats.accepted == 1  # the digest, nothing else: no customer message resent, no email per failure
