"""Small text helpers shared across the app: how a person is named, and CSV cells made safe."""

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def person_name(user: Any) -> str:
    """A staff member as people read them: full name, else the username."""
    full_name = getattr(user, "get_full_name", lambda: "")()
    return full_name or user.get_username()


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (names and headers are typed by people)."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
