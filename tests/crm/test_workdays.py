"""Business days: the calendar arithmetic every promised date is built on."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crm.workdays import add_business_days, business_today, is_business_day

MONDAY = date(2026, 3, 2)
FRIDAY = date(2026, 3, 6)
SATURDAY = date(2026, 3, 7)
SUNDAY = date(2026, 3, 8)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (MONDAY, True),
        (FRIDAY, True),
        (SATURDAY, False),
        (SUNDAY, False),
    ],
)
def test_it_knows_weekends_are_not_business_days(day: date, expected: bool) -> None:
    assert is_business_day(day) is expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Zero days from a business day is that day.
        (MONDAY, 0, MONDAY),
        (MONDAY, 4, FRIDAY),
        # Friday + 1 skips the weekend.
        (FRIDAY, 1, date(2026, 3, 9)),
        (date(2026, 3, 5), 3, date(2026, 3, 10)),
        # A whole week of business days is the same weekday a week later.
        (MONDAY, 5, date(2026, 3, 9)),
        (FRIDAY, 10, date(2026, 3, 20)),
        # Spans two weekends.
        (date(2026, 3, 4), 8, date(2026, 3, 16)),
    ],
)
def test_it_adds_business_days_across_weekends(start: date, days: int, expected: date) -> None:
    assert add_business_days(start, days) == expected


@pytest.mark.parametrize("weekend_day", [SATURDAY, SUNDAY])
def test_it_lands_zero_days_from_a_weekend_on_the_next_monday(weekend_day: date) -> None:
    assert add_business_days(weekend_day, 0) == date(2026, 3, 9)


@pytest.mark.parametrize("weekend_day", [SATURDAY, SUNDAY])
def test_it_counts_from_the_next_monday_when_starting_on_a_weekend(weekend_day: date) -> None:
    # Saturday + 1 is Tuesday: Monday is the first working day, one more is Tuesday.
    assert add_business_days(weekend_day, 1) == date(2026, 3, 10)


def test_it_never_lands_on_a_weekend() -> None:
    for offset in range(15):
        for days in range(12):
            start = date(2026, 3, 1 + offset)
            assert is_business_day(add_business_days(start, days))


def test_it_refuses_a_negative_number_of_days() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_days(MONDAY, -1)


@pytest.mark.parametrize(
    ("utc_now", "expected"),
    [
        # Winter, Paris is UTC+1.
        (datetime(2026, 3, 1, 22, 59, tzinfo=UTC), date(2026, 3, 1)),
        (datetime(2026, 3, 1, 23, 0, tzinfo=UTC), date(2026, 3, 2)),
        # Summer, Paris is UTC+2.
        (datetime(2026, 7, 1, 21, 59, tzinfo=UTC), date(2026, 7, 1)),
        (datetime(2026, 7, 1, 22, 0, tzinfo=UTC), date(2026, 7, 2)),
    ],
)
def test_it_takes_today_in_the_business_time_zone(time_machine, utc_now: datetime, expected: date) -> None:
    time_machine.move_to(utc_now, tick=False)

    assert business_today() == expected


def test_it_follows_the_configured_business_time_zone(time_machine, settings) -> None:
    settings.BUSINESS_TIME_ZONE = "America/New_York"
    time_machine.move_to(datetime(2026, 3, 2, 3, 0, tzinfo=UTC), tick=False)

    assert business_today() == date(2026, 3, 1)
