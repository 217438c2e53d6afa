"""The provider accepts a message but its answer names another recipient than the one sent.

anymail's Postmark backend then reports ``anymail_status.message_id`` as a set (``{None, id}``).
Recording that result must not make the message look unsent: issue #12 saw the batch's record
fail (``cannot adapt type 'set'``), the rows stay ``sending``, the sweep requeue them and the
provider receive every message of the batch again about once a minute.

Proves, through anymail's real backend and the fake Postmark: the provider accepts each message
once (never more than OUTBOX_MAX_ATTEMPTS), every row ends ``sent`` or ``failed`` with attempts
within the limit, and the other messages of the batch are sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.recovery.harness import MAX_ATTEMPTS, Recovery, attempts_of, build_world, rows_by_status, task_failures

pytestmark = [pytest.mark.recovery, pytest.mark.django_db(transaction=True)]

# A row that was left "sending" comes back after OUTBOX_STUCK_AFTER_SECONDS: wait past that.
SETTLE_SECONDS = 60
QUIET_SECONDS = 4


def test_it_sends_each_message_once_when_every_answer_names_another_recipient(
    recovery: Recovery, figures: Callable[[str], None]
) -> None:
    world = build_world(jobs=10)
    recovery.esp.behave("other_recipient")
    recovery.start()
    began = time.monotonic()
    recovery.advance(world)

    recovery.wait_settled(world, statuses=["sent", "failed"], timeout=SETTLE_SECONDS)
    seconds = time.monotonic() - began
    time.sleep(QUIET_SECONDS)  # a resend would show up now

    stats = recovery.esp.stats()
    ids = list(world.messages().values_list("pk", flat=True))
    figures(
        f"10 messages, every answer naming another recipient: {stats.accepted} sends "
        f"(per message max {max(stats.sends(pk) for pk in ids)}), rows {rows_by_status(world.messages())}, "
        f"attempts {dict(attempts_of(world))}, settled {seconds:.1f} s after the stage change began, "
        f"django-q2 task failures {task_failures()}"
    )
    assert len(ids) == 10
    assert {pk: stats.sends(pk) for pk in ids} == dict.fromkeys(ids, 1), recovery.report(world)
    assert stats.accepted == 10
    assert set(rows_by_status(world.messages())) <= {"sent", "failed"}
    assert max(attempts_of(world)) <= MAX_ATTEMPTS


def test_it_sends_the_rest_of_the_batch_when_one_answer_names_another_recipient(
    recovery: Recovery, figures: Callable[[str], None]
) -> None:
    world = build_world(jobs=20)  # one move of 20 jobs: one send task of 20 messages
    odd_address = world.addresses[7]
    recovery.esp.behave("other_recipient", recipients=[odd_address])
    recovery.start()
    began = time.monotonic()
    recovery.advance(world, move=20)

    recovery.wait_settled(world, statuses=["sent", "failed"], timeout=SETTLE_SECONDS)
    seconds = time.monotonic() - began
    time.sleep(QUIET_SECONDS)

    stats = recovery.esp.stats()
    rows = world.messages()
    odd = rows.get(to_address=odd_address)
    others = rows.exclude(pk=odd.pk)
    ids = list(rows.values_list("pk", flat=True))
    figures(
        f"a batch of 20, one answer naming another recipient: {stats.accepted} sends "
        f"(odd one {stats.sends(odd.pk)}, others max {max(stats.sends(pk) for pk in ids if pk != odd.pk)}), "
        f"odd row {odd.status} after {odd.attempts} attempt(s), others {rows_by_status(others)}, "
        f"settled {seconds:.1f} s after the stage change began, django-q2 task failures {task_failures()}"
    )
    assert len(ids) == 20
    assert stats.other_recipient >= 1
    assert {pk: stats.sends(pk) for pk in ids} == dict.fromkeys(ids, 1), recovery.report(world)
    assert odd.status in {"sent", "failed"}
    assert odd.attempts <= MAX_ATTEMPTS
    assert rows_by_status(others) == {"sent": 19}
    assert max(attempts_of(world)) <= MAX_ATTEMPTS
