"""The frequency cap (crm.services.cadence): at most one non-essential message (check-ins, tips,
campaigns) per contact per NON_ESSENTIAL_CAP_DAYS, counted from the rows that were queued or sent;
survey invitations follow the job and neither count nor are held back; opt-outs never get one."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from crm.models import Contact, Customer, Message
from crm.services.cadence import CAPPED_KINDS, allowed, filter_capped, next_allowed_at

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _frozen(time_machine) -> None:
    time_machine.move_to(NOW, tick=False)


def sent(contact: Contact, kind: str, *, at: datetime, status: str = Message.Status.SENT) -> Message:
    return Message.objects.create(
        contact=contact,
        channel=Message.Channel.EMAIL,
        kind=kind,
        status=status,
        to_address=contact.email,
        idempotency_key=f"test:{contact.pk}:{kind}:{at.isoformat()}:{status}",
        created_at=at,
    )


def test_it_allows_a_contact_who_had_nothing(contact: Contact) -> None:
    assert allowed(contact, at=NOW)
    assert next_allowed_at(contact, at=NOW) == NOW


def test_it_holds_back_a_check_in_within_fourteen_days_of_a_tip(contact: Contact) -> None:
    sent(contact, Message.Kind.TIP, at=NOW - timedelta(days=13, hours=23))
    assert not allowed(contact, at=NOW)
    assert next_allowed_at(contact, at=NOW) == NOW + timedelta(hours=1)


def test_it_allows_the_next_one_fourteen_days_later(contact: Contact) -> None:
    sent(contact, Message.Kind.TIP, at=NOW - timedelta(days=14))
    assert allowed(contact, at=NOW)


def test_a_check_in_holds_back_a_tip_too(contact: Contact) -> None:
    sent(contact, Message.Kind.CHECK_IN, at=NOW - timedelta(days=2))
    assert not allowed(contact, at=NOW)


def test_a_queued_message_counts(contact: Contact) -> None:
    # Queued but not yet sent: it will reach them, so it counts already.
    sent(contact, Message.Kind.TIP, at=NOW - timedelta(minutes=1), status=Message.Status.QUEUED)
    assert not allowed(contact, at=NOW)


def test_a_failed_message_does_not_count(contact: Contact) -> None:
    sent(contact, Message.Kind.TIP, at=NOW - timedelta(days=1), status=Message.Status.FAILED)
    assert allowed(contact, at=NOW)


@pytest.mark.parametrize(
    "kind", [Message.Kind.SURVEY_INVITATION, Message.Kind.STAGE_CHANGE, Message.Kind.ACKNOWLEDGEMENT]
)
def test_messages_about_the_job_do_not_count(contact: Contact, kind: str) -> None:
    sent(contact, kind, at=NOW - timedelta(hours=1))
    assert allowed(contact, at=NOW)


def test_only_check_ins_and_tips_are_capped() -> None:
    assert {Message.Kind.CHECK_IN, Message.Kind.TIP} == CAPPED_KINDS


def test_another_contacts_message_does_not_count(contact: Contact, customer: Customer) -> None:
    other = Contact.objects.create(customer=customer, name="Paul Dupont", email="paul@example.com")
    sent(other, Message.Kind.TIP, at=NOW - timedelta(days=1))
    assert allowed(contact, at=NOW)
    assert not allowed(other, at=NOW)


def test_an_opted_out_contact_is_never_allowed(contact: Contact) -> None:
    contact.opted_out_at = NOW - timedelta(days=100)
    contact.save()
    assert not allowed(contact, at=NOW)
    assert next_allowed_at(contact, at=NOW) is None


def test_the_window_follows_the_setting(contact: Contact, settings) -> None:
    settings.NON_ESSENTIAL_CAP_DAYS = 7
    sent(contact, Message.Kind.TIP, at=NOW - timedelta(days=8))
    assert allowed(contact, at=NOW)
    settings.NON_ESSENTIAL_CAP_DAYS = 14
    assert not allowed(contact, at=NOW)


def test_it_looks_at_the_window_ending_at_the_given_time(contact: Contact) -> None:
    sent(contact, Message.Kind.TIP, at=NOW)
    # Asked about a moment before that message existed: it does not count yet.
    assert allowed(contact, at=NOW - timedelta(days=1))
    assert not allowed(contact, at=NOW + timedelta(days=13))
    assert allowed(contact, at=NOW + timedelta(days=14))


def test_filter_capped_keeps_the_order_and_drops_capped_and_opted_out(
    customer: Customer, django_assert_num_queries
) -> None:
    people = [
        Contact.objects.create(customer=customer, name=f"Person {n}", email=f"p{n}@example.com") for n in range(6)
    ]
    sent(people[1], Message.Kind.TIP, at=NOW - timedelta(days=3))
    sent(people[3], Message.Kind.CHECK_IN, at=NOW - timedelta(days=10))
    sent(people[4], Message.Kind.TIP, at=NOW - timedelta(days=30))
    people[5].opted_out_at = timezone.now()
    people[5].save()
    reversed_people = list(reversed(people))

    with django_assert_num_queries(1):
        kept = filter_capped(reversed_people, at=NOW)

    assert [c.name for c in kept] == ["Person 4", "Person 2", "Person 0"]


def test_filter_capped_with_nobody_asks_nothing(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert filter_capped([], at=NOW) == []
