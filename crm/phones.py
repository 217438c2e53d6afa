"""The one rule for a phone number we may dial or text: the CRM's contact form, the contact
services and the CSV import's row check all apply it.

A phone is optional; when given, it must look dialable as people write it: ASCII digits with an
optional leading +, and spaces, dots, dashes, slashes or brackets between them — 6 to 15 digits (E.164
allows at most 15; short internal extensions are not numbers a customer is reached on). It is
kept as typed (crm.text.tel_href makes the ``tel:`` link). No library: the rule is about what
can be dialled, not which numbers exist.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
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
