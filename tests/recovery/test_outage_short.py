"""The provider fails for less time than the retry budget: it answers 500, then hangs, then recovers.

40 messages (two batches, both workers) meet the outage from their first attempt: ERROR_SECONDS of
HTTP 500, then HANG_SECONDS during which every request is held HANG_EACH seconds and dropped
unanswered (what a timeout looks like to the client), then normal answers. The whole outage,
requests still held at its end included, is shorter than the least time the backoff takes from a
first failure to the last attempt (RETRY_BUDGET_MIN_SECONDS).

Proves: 0 lost, 0 failed (every row ``sent``), no duplicates (each outbox id accepted once), and
no row asked of the provider more than OUTBOX_MAX_ATTEMPTS times.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.recovery.harness import (
    MAX_ATTEMPTS,
    RETRY_BUDGET_MIN_SECONDS,
    Recovery,
    attempts_of,
    build_world,
    rows_by_status,
    task_failures,
)

pytestmark = [pytest.mark.recovery, pytest.mark.django_db(transaction=True)]

MESSAGES = 40
ERROR_SECONDS = 2.0
HANG_SECONDS = 3.0
HANG_EACH = 2.0
SETTLE_SECONDS = 90
QUIET_SECONDS = 4


def test_it_loses_nothing_and_fails_nothing_when_the_outage_is_shorter_than_the_retry_budget(
    recovery: Recovery, figures: Callable[[str], None]
) -> None:
    assert ERROR_SECONDS + HANG_SECONDS + HANG_EACH < RETRY_BUDGET_MIN_SECONDS, "the outage must fit in the budget"
    world = build_world(jobs=MESSAGES)
    recovery.esp.behave("error")
    recovery.start()
    recovery.advance(world, move=MESSAGES)

    recovery.wait_for("the first 500", lambda: recovery.esp.stats().errored > 0, timeout=60, world=world)
    outage_began = time.monotonic()
    time.sleep(ERROR_SECONDS)
    recovery.esp.behave("hang", hang_seconds=HANG_EACH)
    time.sleep(HANG_SECONDS)
    recovery.esp.behave("ok")
    outage = time.monotonic() - outage_began

    seconds = recovery.wait_settled(world, statuses=["sent"], timeout=SETTLE_SECONDS, never=["failed"])
    time.sleep(QUIET_SECONDS)

    stats = recovery.esp.stats()
    ids = list(world.messages().values_list("pk", flat=True))
    asked = [stats.requests(pk) for pk in ids]
    figures(
        f"{MESSAGES} messages, outage {outage:.1f} s ({ERROR_SECONDS:g} s of 500s, then {HANG_SECONDS:g} s of "
        f"{HANG_EACH:g} s hangs; budget at least {RETRY_BUDGET_MIN_SECONDS:g} s): {stats.errored} answered 500, "
        f"{stats.hung} hung; all rows {rows_by_status(world.messages())} {seconds:.1f} s after the recovery; "
        f"the provider accepted {stats.accepted} ({stats.outbox_ids_sent_more_than_once} ids more than once), "
        f"requests per message max {max(asked)} (mean {sum(asked) / len(asked):.1f}), "
        f"attempts {dict(sorted(attempts_of(world).items()))}; django-q2 task failures {task_failures()}"
    )
    assert len(ids) == MESSAGES
    assert stats.errored > 0 and stats.hung > 0, "the outage did not reach the workers"
    assert rows_by_status(world.messages()) == {"sent": MESSAGES}
    assert {pk: stats.sends(pk) for pk in ids} == dict.fromkeys(ids, 1), recovery.report(world)
    assert max(asked) <= MAX_ATTEMPTS
    assert max(attempts_of(world)) <= MAX_ATTEMPTS
