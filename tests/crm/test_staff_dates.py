"""One way to show time: every staff page (the nul sweep's world: a job with its visit, question,
messages, files, a campaign, an import) scanned for the date styles the shared filters replaced —
Django's "Dec. 3, 2026", "12/02/2026 9:12 a.m.", ISO days in the text — in English and French;
and the filters themselves."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone, translation

from crm import dates
from crm.services.jobs import milestone_move
from crm.workdays import business_zone
from tests.crm.test_views_nul_sweep import PAGES, World, frozen, manager, url_of, world  # noqa: F401

pytestmark = pytest.mark.django_db

STRAY = {
    "ISO day": re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),
    "slashed day": re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"),
    "a.m./p.m.": re.compile(r"\b[ap]\.m\."),
    "Django's month, day, year": re.compile(
        r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\. \d{1,2}, \d{4}"
        r"|\b(January|February|March|April|May|June|July|August|September|October|November|December) \d{1,2}, \d{4}"
    ),
}
NOT_PAGES = {"job_file", "job_file_thumbnail", "import_sample", "two_factor_qr", "staff_calendar", "import_errors"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.skipping = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)

    # What a person types is shown as typed (the CSV import's accepted formats, in <code>).
    SKIPPED = ("script", "style", "code")


def text_of(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_no_staff_page_shows_a_stray_date_format(manager: Client, world: World, language: str) -> None:  # noqa: F811
    # A date moved, so the history has an entry with days in it.
    milestone = world.job.milestones.get(stage__name="Installed")
    milestone_move(
        milestone=milestone,
        new_date=milestone.forecast_date + timedelta(days=3),
        reason="Supplier late",
        actor=world.owner,
    )
    for name in sorted(set(PAGES) - NOT_PAGES):
        response = manager.get(url_of(name, world), HTTP_ACCEPT_LANGUAGE=language)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        text = text_of(response.content.decode())
        for style, pattern in STRAY.items():
            found = pattern.search(text)
            assert found is None, f"{name} ({language}): {style} {found.group(0)!r}"


def test_the_filters_say_days_times_windows_durations_and_relative_times(time_machine) -> None:
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)
    zone = business_zone()
    with timezone.override(zone), translation.override("en"):
        assert dates.day_text(date(2026, 3, 5)) == "Thu 5 Mar"
        assert dates.day_text(date(2027, 3, 5)) == "Fri 5 Mar 2027"
        at = datetime(2026, 3, 5, 14, 30, tzinfo=zone)
        assert dates.moment_text(at) == "Thu 5 Mar 14:30"
        assert dates.window_text(at, at + timedelta(hours=2)) == "Thu 5 Mar 14:30–16:30"
        assert dates.window_text(at, at + timedelta(days=1)) == "Thu 5 Mar 14:30 – Fri 6 Mar 14:30"
        assert dates.duration_text(timedelta(minutes=45)) == "45 min"
        assert dates.duration_text(timedelta(minutes=150)) == "2 h 30 min"
        assert dates.duration_text(timedelta(hours=30)) == "30 h"
        assert dates.duration_text(timedelta(days=3, hours=2)) == "3 days 2 h"
        assert dates.relative_text(timezone.now() - timedelta(hours=3)) == "3 h ago"
        assert dates.relative_text(timezone.now() + timedelta(days=2)) == "in 2 days"
        assert dates.relative_text(timezone.now()) == "just now"
        assert dates.relative_text(date(2026, 3, 1)) == "yesterday"
    with timezone.override(zone), translation.override("fr"):
        assert dates.day_text(date(2026, 3, 1)) == "dim 1er mars"
        assert dates.day_text(date(2026, 12, 3)) == "jeu 3 déc."
        assert dates.relative_text(timezone.now() - timedelta(hours=3)) == "il y a 3\u00a0h"
        assert dates.duration_text(timedelta(days=2)) == "2\u00a0jours"


@translation.override("en")
def test_a_chart_of_lengths_of_time_reads_in_minutes_hours_or_days_in_whole_steps() -> None:
    from crm.charts import axis_top
    from crm.views.reports import time_axis

    values, axis = time_axis([timedelta(seconds=36), None, timedelta(minutes=1)])
    assert axis["y_label"] == "minutes" and axis["integer"]
    assert values == [0.6, None, 1.0]
    assert axis_top(max(v for v in values if v is not None), integer=axis["integer"]) == 4  # 0, 1, 2, 3, 4 minutes
    assert axis["format_value"](0.6) == "1 min"
    assert time_axis([timedelta(hours=5), timedelta(minutes=30)])[1]["y_label"] == "hours"
    days, by_day = time_axis([timedelta(days=3, hours=12)])
    assert by_day["y_label"] == "days" and days == [3.5]
    assert by_day["format_value"](3.5) == "3 days 12 h"
