"""iCalendar (RFC 5545) for the calendar feed: all-day events, nothing more.

Small enough to write out: text values escaped (backslash, semicolon, comma, newline), lines of at
most 75 octets folded with CRLF + space (never inside a UTF-8 sequence), CRLF line ends. Each
event's UID is stable, so a calendar app that fetches the feed again moves the event it already
has when the date moves, instead of adding a second one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MAX_LINE_OCTETS = 75


def escape_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Split a content line into 75-octet pieces; continuation lines start with one space."""
    if len(line.encode()) <= MAX_LINE_OCTETS:
        return line
    pieces: list[str] = []
    current = ""
    room = MAX_LINE_OCTETS
    for char in line:
        size = len(char.encode())
        if len(current.encode()) + size > room:
            pieces.append(current)
            current = ""
            room = MAX_LINE_OCTETS - 1  # the leading space counts
        current += char
    pieces.append(current)
    return "\r\n ".join(pieces)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _day(value: date) -> str:
    return value.strftime("%Y%m%d")


@dataclass(frozen=True)
class AllDayEvent:
    uid: str
    day: date
    summary: str
    description: str = ""
    url: str = ""
    # CONFIRMED, or TENTATIVE while the job is on hold.
    status: str = "CONFIRMED"
    last_modified: datetime | None = None

    def lines(self, *, stamp: datetime) -> list[str]:
        lines = [
            "BEGIN:VEVENT",
            f"UID:{escape_text(self.uid)}",
            f"DTSTAMP:{_utc(stamp)}",
            f"DTSTART;VALUE=DATE:{_day(self.day)}",
            f"DTEND;VALUE=DATE:{_day(self.day + timedelta(days=1))}",
            f"SUMMARY:{escape_text(self.summary)}",
        ]
        if self.description:
            lines.append(f"DESCRIPTION:{escape_text(self.description)}")
        if self.url:
            lines.append(f"URL:{self.url}")
        if self.last_modified is not None:
            lines.append(f"LAST-MODIFIED:{_utc(self.last_modified)}")
        # All-day milestones do not make the person look busy for the whole day.
        lines += [f"STATUS:{self.status}", "TRANSP:TRANSPARENT", "END:VEVENT"]
        return lines


def calendar(*, product: str, name: str, events: Iterable[AllDayEvent], stamp: datetime) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//{escape_text(product)}//Customer portal//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
        # How often subscribed apps should fetch it again (Apple, Google and Outlook read these).
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
    ]
    for event in events:
        lines += event.lines(stamp=stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
