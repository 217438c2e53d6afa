"""portal.ics: RFC 5545 text escaping and line folding."""

from __future__ import annotations

from datetime import UTC, date, datetime

from portal.ics import AllDayEvent, calendar, escape_text, fold


def test_it_escapes_text_values() -> None:
    assert escape_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_it_folds_long_lines_at_75_octets_without_cutting_a_character() -> None:
    line = "SUMMARY:" + "é" * 100
    folded = fold(line)
    pieces = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in pieces)
    assert all(p.startswith(" ") for p in pieces[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(pieces)) == line


def test_it_leaves_short_lines_alone() -> None:
    assert fold("UID:abc") == "UID:abc"


def test_it_writes_an_all_day_event() -> None:
    event = AllDayEvent(uid="x@y", day=date(2026, 12, 31), summary="New year's eve")
    text = calendar(product="Acme", name="Jobs", events=[event], stamp=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert "DTSTART;VALUE=DATE:20261231\r\nDTEND;VALUE=DATE:20270101\r\n" in text
    assert "DTSTAMP:20260302T090000Z\r\n" in text
    assert text.count("BEGIN:VEVENT") == 1
