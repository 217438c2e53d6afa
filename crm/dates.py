"""Dates as people say them in their language: Django's formats, with the French ordinal for the
first of the month (« le 1er décembre », never « le 1 décembre »)."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import translation
from django.utils.formats import date_format


def said_date(value: date | datetime, fmt: str) -> str:
    """``value`` in the date format ``fmt`` (Django's letters) for the active language."""
    if value.day == 1 and (translation.get_language() or "").split("-")[0] == "fr":
        # "j" is the day of the month; an escaped literal stands in for it on the first.
        fmt = _replace_unescaped(fmt, "j", r"\1\e\r")
    return date_format(value, fmt)


def _replace_unescaped(fmt: str, letter: str, replacement: str) -> str:
    out, escaped = [], False
    for char in fmt:
        if escaped:
            out.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == letter:
            out.append(replacement)
        else:
            out.append(char)
    return "".join(out)
