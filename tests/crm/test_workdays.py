"""Business days: the calendar arithmetic every promised date is built on."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crm.errors import DomainError
from crm.workdays import (
    add_business_days,
    business_today,
    is_business_day,
    latest_day,
    next_business_day,
    subtract_business_days,
    years_after,
)

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


# --- The ends of the calendar -------------------------------------------------------------------

LAST_FRIDAY = date(9999, 12, 31)  # date.max is a Friday


def test_it_counts_up_to_the_last_day_of_the_calendar() -> None:
    assert add_business_days(date(9999, 12, 30), 1) == LAST_FRIDAY
    assert add_business_days(LAST_FRIDAY, 0) == LAST_FRIDAY
    assert next_business_day(LAST_FRIDAY) == LAST_FRIDAY


@pytest.mark.parametrize(("start", "days"), [(LAST_FRIDAY, 1), (date(9999, 12, 29), 10), (date(9999, 1, 1), 400)])
def test_it_refuses_to_count_past_the_end_of_the_calendar(start: date, days: int) -> None:
    with pytest.raises(DomainError, match="too far from today"):
        add_business_days(start, days)


def test_it_refuses_to_count_back_past_the_start_of_the_calendar() -> None:
    assert subtract_business_days(date(1, 1, 3), 1) == date(1, 1, 2)  # 1 January of year 1 was a Monday
    with pytest.raises(DomainError, match="too far from today"):
        subtract_business_days(date(1, 1, 2), 2)


def test_it_refuses_a_day_off_with_no_business_day_after_it(settings) -> None:
    settings.HOLIDAYS = [LAST_FRIDAY]
    with pytest.raises(DomainError, match="too far from today"):
        next_business_day(LAST_FRIDAY)


@pytest.mark.parametrize(
    ("day", "years", "expected"),
    [
        (MONDAY, 5, date(2031, 3, 2)),
        (date(2028, 2, 29), 1, date(2029, 2, 28)),
        (date(2028, 2, 29), 4, date(2032, 2, 29)),
        (MONDAY, -1, date(2025, 3, 2)),
        (date(9998, 6, 1), 5, date.max),
        (date(3, 6, 1), -5, date.min),
    ],
)
def test_it_moves_a_day_by_whole_years(day: date, years: int, expected: date) -> None:
    assert years_after(day, years) == expected


def test_the_furthest_plannable_day_is_five_years_ahead(time_machine) -> None:
    time_machine.move_to(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False)
    assert latest_day() == date(2031, 3, 2)
    assert latest_day(date(2028, 2, 29)) == date(2033, 2, 28)
