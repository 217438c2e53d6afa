"""iCalendar (RFC 5545), written out: the few properties our calendar feeds use, nothing more.

Small enough to write by hand: text values escaped (backslash, semicolon, comma, newline), lines
of at most 75 octets folded with CRLF + space (never inside a UTF-8 sequence), CRLF line ends.
Each event's UID is stable, so a calendar app that fetches the feed again moves the event it
already has when the date moves, instead of adding a second one; a timed event's SEQUENCE grows
with every change, so an app that imported it once takes the newer copy.

Used by the customer's feed (portal/ics.py: milestones as all-day events, visits in their
window), a visit's own .ics and the installers' private feeds (crm/views/calendar.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

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


def utc_stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def day_stamp(value: date) -> str:
    return value.strftime("%Y%m%d")


class Event(Protocol):
    def lines(self, *, stamp: datetime) -> list[str]: ...


def _details(description: str, url: str, last_modified: datetime | None) -> list[str]:
    """An event's optional lines: what it is about, its page, when it last changed."""
    lines = [f"DESCRIPTION:{escape_text(description)}"] if description else []
    if url:
        lines.append(f"URL:{url}")
    if last_modified is not None:
        lines.append(f"LAST-MODIFIED:{utc_stamp(last_modified)}")
    return lines


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
            f"DTSTAMP:{utc_stamp(stamp)}",
            f"DTSTART;VALUE=DATE:{day_stamp(self.day)}",
            f"DTEND;VALUE=DATE:{day_stamp(self.day + timedelta(days=1))}",
            f"SUMMARY:{escape_text(self.summary)}",
        ]
        lines += _details(self.description, self.url, self.last_modified)
        # All-day milestones do not make the person look busy for the whole day.
        lines += [f"STATUS:{self.status}", "TRANSP:TRANSPARENT", "END:VEVENT"]
        return lines


@dataclass(frozen=True)
class TimedEvent:
    """An event from ``start`` to ``end`` (written in UTC: every app shows it on its own clock)."""

    uid: str
    start: datetime
    end: datetime
    summary: str
    # Bumped by every change of the thing it shows (a visit's version).
    sequence: int = 0
    location: str = ""
    description: str = ""
    url: str = ""
    # CONFIRMED, TENTATIVE or CANCELLED (apps strike it through or drop it).
    status: str = "CONFIRMED"
    last_modified: datetime | None = None

    def lines(self, *, stamp: datetime) -> list[str]:
        lines = [
            "BEGIN:VEVENT",
            f"UID:{escape_text(self.uid)}",
            f"DTSTAMP:{utc_stamp(stamp)}",
            f"DTSTART:{utc_stamp(self.start)}",
            f"DTEND:{utc_stamp(self.end)}",
            f"SEQUENCE:{self.sequence}",
            f"SUMMARY:{escape_text(self.summary)}",
        ]
        if self.location:
            lines.append(f"LOCATION:{escape_text(self.location)}")
        lines += _details(self.description, self.url, self.last_modified)
        # A cancelled visit no longer makes anyone look busy.
        busy = "TRANSPARENT" if self.status == "CANCELLED" else "OPAQUE"
        lines += [f"STATUS:{self.status}", f"TRANSP:{busy}", "END:VEVENT"]
        return lines


def calendar(
    *, product: str, source: str, name: str, events: Iterable[Event], stamp: datetime, feed: bool = True
) -> str:
    """A VCALENDAR of ``events``; ``feed``: one that apps subscribe to (they fetch it again hourly),
    else a file to import once (no calendar name, so apps add the event to one the person has)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//{escape_text(product)}//{escape_text(source)}//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    if feed:
        lines += [
            f"X-WR-CALNAME:{escape_text(name)}",
            # How often subscribed apps should fetch it again (Apple, Google and Outlook read these).
            "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
            "X-PUBLISHED-TTL:PT1H",
        ]
    for event in events:
        lines += event.lines(stamp=stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
