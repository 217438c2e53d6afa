"""Business hours and the calendar settings: what "we'll answer within nine working hours" means on
a clock, across nights, weekends, holidays and time zones, and settings that refuse nonsense.

March 2026 in Paris (UTC+1 until Sunday 29 March): Monday 2 is a working day, Saturday 7 and
Sunday 8 are the weekend. Opening hours are 09:00-18:00 unless a test says otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm.workdays import (
    add_business_days,
    add_business_hours,
    end_of_business_day,
    is_business_day,
    next_business_day,
    subtract_business_days,
)

ROOT = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def paris(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


# --- add_business_hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # Inside one working day.
        (paris(2, 10), 3, paris(2, 13)),
        # Up to closing time exactly: still that day.
        (paris(2, 10), 8, paris(2, 18)),
        # Over the night: the rest of Monday, then Tuesday morning.
        (paris(2, 17), 2, paris(3, 10)),
        # Fractions of an hour.
        (paris(2, 17, 30), 1.5, paris(3, 10)),
        # Before opening: the count starts at 09:00.
        (paris(2, 7), 1, paris(2, 10)),
        # After closing: nothing left today, the count starts tomorrow at 09:00.
        (paris(2, 20), 1, paris(3, 10)),
        # Friday afternoon over the weekend to Monday.
        (paris(6, 17), 2, paris(9, 10)),
        # From the weekend: Monday's opening is the start.
        (paris(7, 12), 1, paris(9, 10)),
        (paris(8, 23, 59), 9, paris(9, 18)),
        # Three whole working days of nine hours.
        (paris(2, 9), 27, paris(4, 18)),
        # Across the change to summer time (Sunday 29 March): Friday 17:00 CET + 2 h = Monday 10:00 CEST.
        (paris(27, 17), 2, paris(30, 10)),
    ],
)
def test_it_adds_opening_hours_only(start: datetime, hours: float, expected: datetime) -> None:
    result = add_business_hours(start, hours)

    assert result == expected
    assert result.astimezone(PARIS).replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_it_adds_nothing_to_a_moment_inside_opening_hours() -> None:
    assert add_business_hours(paris(2, 10), 0) == paris(2, 10)


def test_it_skips_a_holiday(settings) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 3)})

    # Monday 17:00 + 2 h: one hour on Monday, Tuesday is off, one hour on Wednesday.
    assert add_business_hours(paris(2, 17), 2) == paris(4, 10)
    # Starting on the holiday itself counts from the next working morning.
    assert add_business_hours(paris(3, 11), 1) == paris(4, 10)


def test_it_skips_a_holiday_next_to_a_weekend(settings) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 9)})

    # Friday 17:00 + 2 h: Saturday, Sunday and the holiday Monday are skipped.
    assert add_business_hours(paris(6, 17), 2) == paris(10, 10)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # 08:00 UTC is 09:00 in Paris (winter): opening time.
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), 1, paris(2, 10)),
        # 11:00 in New York is 17:00 in Paris: one hour left on Friday, one on Monday.
        (datetime(2026, 3, 6, 11, 0, tzinfo=NEW_YORK), 2, paris(9, 10)),
        # 09:00 Tuesday in Tokyo is 01:00 Tuesday in Paris: before opening there.
        (datetime(2026, 3, 3, 9, 0, tzinfo=TOKYO), 1, paris(3, 10)),
        # 01:00 Saturday in Tokyo is still Friday 17:00 in Paris: Friday counts.
        (datetime(2026, 3, 7, 1, 0, tzinfo=TOKYO), 2, paris(9, 10)),
    ],
)
def test_it_counts_in_the_business_time_zone_whatever_the_starting_zone(
    start: datetime, hours: int, expected: datetime
) -> None:
    result = add_business_hours(start, hours)

    assert result == expected
    assert result.tzinfo == PARIS


def test_it_follows_the_configured_business_time_zone(settings) -> None:
    settings.BUSINESS_TIME_ZONE = "America/New_York"

    # 16:00 in New York, two hours before closing there: three hours end at 10:00 the next day.
    start = datetime(2026, 3, 2, 16, 0, tzinfo=NEW_YORK)
    assert add_business_hours(start, 3) == datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
    # The same instant given in Paris time (22:00) means the same thing.
    assert add_business_hours(start.astimezone(PARIS), 3) == datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)


def test_it_follows_the_configured_opening_hours(settings) -> None:
    settings.BUSINESS_HOURS = (time(8, 0), time(12, 0))

    assert add_business_hours(paris(2, 11), 2) == paris(3, 9)
    assert add_business_hours(paris(2, 13), 1) == paris(3, 9)


def test_it_follows_the_configured_working_days(settings) -> None:
    settings.WORKING_DAYS = frozenset({0, 1, 2, 3, 4, 5})

    # Saturday is a working day now.
    assert add_business_hours(paris(6, 17), 2) == paris(7, 10)


# --- Business days ------------------------------------------------------------------------------


def test_a_holiday_is_not_a_business_day(settings) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 4)})

    assert not is_business_day(date(2026, 3, 4))
    assert is_business_day(date(2026, 3, 5))
    assert next_business_day(date(2026, 3, 4)) == date(2026, 3, 5)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 3, 2), 2, date(2026, 3, 5)),
        (date(2026, 3, 3), 1, date(2026, 3, 5)),
        # Zero days from the holiday lands on the next business day.
        (date(2026, 3, 4), 0, date(2026, 3, 5)),
        # A holiday and a weekend: Thursday + 2 = Tuesday (Friday, then Monday is off too).
        (date(2026, 3, 5), 2, date(2026, 3, 10)),
    ],
)
def test_it_leaves_holidays_out_of_business_days(settings, start: date, days: int, expected: date) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 4), date(2026, 3, 9)})

    assert add_business_days(start, days) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 3, 4), 0, date(2026, 3, 4)),
        (date(2026, 3, 4), 2, date(2026, 3, 2)),
        # Monday - 1 is the Friday before.
        (date(2026, 3, 9), 1, date(2026, 3, 6)),
        # From a Sunday, the first business day back is Friday.
        (date(2026, 3, 8), 1, date(2026, 3, 6)),
        # A whole week back.
        (date(2026, 3, 13), 5, date(2026, 3, 6)),
    ],
)
def test_it_subtracts_business_days(start: date, days: int, expected: date) -> None:
    assert subtract_business_days(start, days) == expected


def test_it_subtracts_over_a_holiday(settings) -> None:
    settings.HOLIDAYS = frozenset({date(2026, 3, 6)})

    assert subtract_business_days(date(2026, 3, 9), 1) == date(2026, 3, 5)


def test_adding_then_subtracting_comes_back() -> None:
    for day in range(2, 7):
        start = date(2026, 3, day)
        for days in range(12):
            assert subtract_business_days(add_business_days(start, days), days) == start


def test_it_refuses_to_subtract_a_negative_number_of_days() -> None:
    with pytest.raises(ValueError, match="negative"):
        subtract_business_days(date(2026, 3, 4), -1)


def test_a_promise_falls_due_at_closing_time_where_the_team_works(settings) -> None:
    assert end_of_business_day(date(2026, 3, 5)) == paris(5, 18)
    settings.BUSINESS_HOURS = (time(8, 0), time(17, 0))
    assert end_of_business_day(date(2026, 3, 5)) == paris(5, 17)
    settings.BUSINESS_TIME_ZONE = "America/New_York"
    assert end_of_business_day(date(2026, 3, 5)) == datetime(2026, 3, 5, 17, 0, tzinfo=NEW_YORK)


# --- Settings from the environment --------------------------------------------------------------

PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(sorted(settings.WORKING_DAYS), [t.isoformat() for t in settings.BUSINESS_HOURS], "
    "sorted(d.isoformat() for d in settings.HOLIDAYS), sep='|')"
)


def start(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DJANGO_DEBUG", "WORKING_DAYS", "BUSINESS_HOURS", "HOLIDAYS"}
    }
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1")
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_it_reads_the_calendar_from_the_environment() -> None:
    result = start(WORKING_DAYS="Mon, tue,SAT", BUSINESS_HOURS="08:30-17:00", HOLIDAYS="2026-12-25, 2027-01-01")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("|") == ["[0, 1, 5]", "['08:30:00', '17:00:00']", "['2026-12-25', '2027-01-01']"]


def test_it_defaults_to_weekdays_nine_to_six_without_holidays() -> None:
    result = start()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("|") == ["[0, 1, 2, 3, 4]", "['09:00:00', '18:00:00']", "[]"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKING_DAYS": "foo"}, "WORKING_DAYS: unknown day(s) ['foo']; use mon,tue,wed,thu,fri,sat,sun."),
        ({"WORKING_DAYS": "mon,funday"}, "WORKING_DAYS: unknown day(s) ['funday']"),
        ({"BUSINESS_HOURS": "18:00-09:00"}, "BUSINESS_HOURS: opening must come before closing."),
        ({"BUSINESS_HOURS": "09:00-09:00"}, "BUSINESS_HOURS: opening must come before closing."),
        ({"BUSINESS_HOURS": "nine to five"}, "BUSINESS_HOURS must look like 09:00-18:00."),
        ({"BUSINESS_HOURS": "09:00-12:00-18:00"}, "BUSINESS_HOURS must look like 09:00-18:00."),
        ({"HOLIDAYS": "notadate"}, "HOLIDAYS must be ISO dates separated by commas (2026-12-25,2027-01-01)."),
        ({"HOLIDAYS": "2026-12-25,25/12/2026"}, "HOLIDAYS must be ISO dates separated by commas"),
        ({"REQUEST_TARGET_HOURS_PORTAL": "nine"}, "REQUEST_TARGET_HOURS_PORTAL must be an integer, not 'nine'."),
        ({"COMMITMENT_WARNING_BUSINESS_DAYS": "1.5"}, "COMMITMENT_WARNING_BUSINESS_DAYS must be an integer"),
    ],
)
def test_it_refuses_a_calendar_it_cannot_read(env: dict[str, str], message: str) -> None:
    result = start(**env)

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_it_does_not_accept_a_week_without_working_days() -> None:
    result = start(WORKING_DAYS="")

    refused = result.returncode != 0 and "WORKING_DAYS" in result.stderr
    defaulted = result.returncode == 0 and result.stdout.startswith("[0, 1, 2, 3, 4]|")
    assert refused or defaulted, result.stdout
