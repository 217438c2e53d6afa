"""The one rule for a phone number we may dial or text: the CRM's contact form, the contact
services and the CSV import's row check all apply it.

A phone is optional; when given, it must look dialable as people write it: ASCII digits with an
optional leading +, and spaces, dots, dashes, slashes or brackets between them — 6 to 15 digits (E.164
allows at most 15; short internal extensions are not numbers a customer is reached on). It is
kept as typed (crm.text.tel_href makes the ``tel:`` link), with its digits alone beside it in
the database (``Contact.phone_digits``, a column the database computes: ``stored_digits``), which
lookups and search use. No library for the rule: it is about what can be dialled, not which
numbers exist.

Search (``search_key``) does ask Google's libphonenumber (the ``phonenumbers`` package) what a
typed number is, so that "+33 6 12 34 56 78", "06 12 34 56 78" and "06.12.34.56.78" find the same
contact whichever way the number was stored: numbers typed without a country code are read as
numbers of PHONE_DEFAULT_REGION.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import F, Value
from django.db.models.functions import Replace
from django.utils.translation import gettext

MIN_DIGITS = 6
MAX_DIGITS = 15
# What may stand between the digits (no-break spaces too: numbers are pasted from documents).
SEPARATORS = " .()-/\t\u00a0\u202f"
_DIALABLE = re.compile(rf"\+?[0-9{re.escape(SEPARATORS)}]+")


def digits(phone: str) -> str:
    """The full digit string of a number as people write it ("+33 6 12 34 56 78" → "33612345678").
    Numbers are compared on this alone: no country is guessed, so "06 12 34 56 78" matches only a
    number stored in that same national form."""
    return "".join(ch for ch in phone if ch in "0123456789")


def stored_digits(field: str) -> Any:
    """A database expression: the digits of a stored number (which is_dialable accepted), the "+"
    and the separators taken away — one REPLACE each, on any database."""
    expression: Any = F(field)
    for separator in ("+", *SEPARATORS):
        expression = Replace(expression, Value(separator), Value(""))
    return expression


# The fewest digits searched for as a phone number (fewer: the text is searched as text only).
SEARCH_MIN_DIGITS = 4


def search_key(text: str) -> str | None:
    """The digits a stored number contains when it is the number typed, however either was
    written: its national significant number when libphonenumber can read it as a whole number
    ("+33 6 12 34 56 78", "06 12 34 56 78", "0033 612345678" → "612345678"), else the digits typed
    without the leading zeros of a trunk or international prefix (part of a number: "06 12 34" →
    "61234"). None when the text is not a phone number as people write one (letters, or fewer than
    SEARCH_MIN_DIGITS digits)."""
    typed = text.strip()
    if not _DIALABLE.fullmatch(typed) or len(digits(typed)) < SEARCH_MIN_DIGITS:
        return None
    try:
        number = phonenumbers.parse(typed, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return str(phonenumbers.national_significant_number(number))
    return digits(typed).lstrip("0") or None


def is_dialable(phone: str) -> bool:
    text = phone.strip()
    return bool(_DIALABLE.fullmatch(text)) and MIN_DIGITS <= len(digits(text)) <= MAX_DIGITS


def phone_error() -> str:
    return gettext(
        "Enter a phone number that can be dialled: %(min)s to %(max)s digits, with an optional + in front; "
        "spaces, dots, dashes, slashes and brackets are fine."
    ) % {"min": MIN_DIGITS, "max": MAX_DIGITS}


def validate_phone(phone: str) -> None:
    """A form field validator: nothing when the phone is empty or dialable, else a ValidationError."""
    if phone.strip() and not is_dialable(phone):
        raise ValidationError(phone_error(), code="invalid_phone")
