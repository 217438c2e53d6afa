"""Small text helpers shared across the app: how a person is named, phone links, and CSV cells
made safe."""

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def person_name(user: Any) -> str:
    """A staff member as people read them: full name, else the username."""
    full_name = getattr(user, "get_full_name", lambda: "")()
    return full_name or user.get_username()


def tel_href(phone: str) -> str:
    """A ``tel:`` link for a number as people write it ("+33 1 99 00 12 01" → "tel:+33199001201");
    empty when there is no number to dial."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    return "tel:" + ("+" if phone.strip().startswith("+") else "") + digits


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (names and headers are typed by people)."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def clean_text(text: str) -> str:
    """Text any database will store: NUL removed (PostgreSQL refuses it in text) and each lone
    surrogate — half a UTF-16 pair, as a JSON body's ``"\\ud800"`` decodes to, which no UTF-8
    encoder takes — replaced by U+FFFD. Everything else is kept as it is."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16, a pair written as two escapes becomes its character again, and a lone half
        # becomes U+FFFD.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
