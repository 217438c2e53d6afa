"""Phone numbers: read, stored and shown with Google's libphonenumber (the ``phonenumbers`` package).

Every number a person types (the CRM's contact forms, the admin, the CSV import, a staff member's
direct phone, the portal's "sign in by number") goes through ``parse``: a number typed without a
country code is read as a number of ``settings.PHONE_DEFAULT_REGION``, and only numbers
libphonenumber knows to be valid are accepted. They are stored in E.164 (``to_e164``:
"06 12 34 56 78" → "+33612345678"), the one form an incoming text's sender is compared with
(``Contact.phone == sender``) and a ``tel:`` link can carry as it is.

- ``can_text``: only a mobile number (or, in North America, a "fixed line or mobile" one: the
  plan does not say which) is offered text messages; consent and an SMS preference need one.
- ``display``: a number as its reader expects it — the national form for a number of
  PHONE_DEFAULT_REGION ("06 12 34 56 78"), the international one for any other
  ("+44 7400 123456"); ``display(number, international=True)`` always the international one (what
  customers read, wherever they are). A stored text that is not a number (data from before
  E.164, which migration 0019 could not read) is shown exactly as it was typed.
- Numbers typed before E.164 that could not be read were kept as typed, never emptied: the
  ``phones_unparsed`` command and the Contact admin's "Phone number" filter list them.

Why a CharField and not django-phonenumber-field's PhoneNumberField: the stored value is the same
E.164 text, but that field hands every reader a PhoneNumber object instead of the text (every
template, message, ``tel:`` link, SMS backend and lookup would change), its form and model
validation would refuse on every save the old numbers that are deliberately kept as typed, and
the column feeds the ``phone_digits`` GeneratedField and its indexes, which a field change would
rebuild. One module applied by the forms, services and import does the same with no new
dependency.

Search (``search_key``, ``digits``, ``stored_digits``) also asks libphonenumber what a typed
number is, so that "+33 6 12 34 56 78", "06 12 34 56 78" and "06.12.34.56.78" find the same
contact whichever way the number was stored (``Contact.phone_digits``, its digits alone, which the
database computes).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import F, Value
from django.db.models.functions import Replace
from django.utils import translation
from django.utils.translation import gettext
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

# What may stand between the digits of a stored number (no-break spaces too: numbers were pasted
# from documents). ``stored_digits`` removes exactly these: the GeneratedField's expression
# (migration 0016) depends on them, so they do not change.
SEPARATORS = " .()-/\t\u00a0\u202f"
_DIALABLE = re.compile(rf"\+?[0-9{re.escape(SEPARATORS)}]+")

# The number types a text message can reach.
TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


# --- Reading what people type -------------------------------------------------------------------


def parse(text: str) -> PhoneNumber | None:
    """The valid phone number ``text`` is, read as people write it, a number without its country
    code as a number of PHONE_DEFAULT_REGION; None when it is not one.

    libphonenumber finds a number inside words ("call me on 06 12 34 56 78") and reads an
    extension ("… ext. 12"); E.164 has room for neither, so a text with letters in it is not
    taken as a number: what is stored would silently drop part of what was typed."""
    typed = text.strip()
    if not typed or any(ch.isalpha() for ch in typed):
        return None
    try:
        number = phonenumbers.parse(typed, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return number


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def e164_or_none(text: str) -> str | None:
    """``text`` as an E.164 number ("+33612345678"), or None when it is not a valid number."""
    number = parse(text)
    return _e164(number) if number is not None else None


def _language() -> str:
    return (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0].lower()


@functools.cache
def _region_names(region: str) -> dict[str, str]:
    """libphonenumber's names of a country by language ("fr" → "France"): its table's one line for
    the region, read as text. Importing phonenumbers.geocoder, which holds the table, would load
    every number prefix's place names (some 100 MB and half a second, per process) for one name.
    Empty when the table cannot be read (the region code is shown then)."""
    table = Path(phonenumbers.__file__).with_name("geodata") / "locale.py"
    try:
        found = re.search(rf"^\s*'{re.escape(region)}': (\{{.*\}}),\s*$", table.read_text("utf-8"), re.MULTILINE)
        entry = ast.parse(found[1], mode="eval").body if found else None
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    if not isinstance(entry, ast.Dict):
        return {}
    names: dict[str, str] = {}
    for key, value in zip(entry.keys, entry.values, strict=True):
        # A name is 'France', u('Fran\\u00e7a') (the generator's unicode helper), or '*aa': the
        # name of another language.
        if isinstance(value, ast.Call) and len(value.args) == 1:
            value = value.args[0]
        if isinstance(key, ast.Constant) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            names[str(key.value)] = value.value
    return {lang: names.get(name[1:], "") if name.startswith("*") else name for lang, name in names.items()}


def region_name(region: str | None = None) -> str:
    """The country a region code names, in the active language ("FR" → "France")."""
    region = region or settings.PHONE_DEFAULT_REGION
    names = _region_names(region)
    return names.get(_language()) or names.get("en") or region


def phone_error() -> str:
    """What to type instead of a number that could not be read: an example in both forms, and the
    country a number without its country code is read in."""
    region = settings.PHONE_DEFAULT_REGION
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL) if example else ""
    international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL) if example else ""
    return gettext(
        "Enter a valid phone number, e.g. %(national)s or %(international)s. "
        "A number without a country code is read as a number in %(country)s."
    ) % {"national": national, "international": international, "country": region_name(region)}


def to_e164(text: str) -> str:
    """The E.164 form of a typed number ("06 12 34 56 78" → "+33612345678"); "" for a blank one.
    A ValidationError (code "invalid_phone", the message saying what to type) when it is not a
    valid number: a form's clean method or a service can call it as it is."""
    if not text.strip():
        return ""
    number = parse(text)
    if number is None:
        raise ValidationError(phone_error(), code="invalid_phone")
    return _e164(number)


# --- What a stored number can do, and how it is shown --------------------------------------------


def can_text(number: str) -> bool:
    """Whether a text message can reach this stored number: a valid mobile number (or "fixed line
    or mobile", as North American numbers are). False for a landline, and for a number that
    could not be read."""
    parsed = parse(number)
    return parsed is not None and phonenumbers.number_type(parsed) in TEXTABLE_TYPES


def cannot_text_error(number: str) -> str:
    """Why SMS cannot be chosen or agreed to for this (non-empty) number."""
    return gettext("%(number)s cannot receive text messages: it is not a mobile number.") % {"number": display(number)}


def display(number: str, *, international: bool = False) -> str:
    """A stored number as its reader expects it: in the national form when it is a number of
    PHONE_DEFAULT_REGION ("06 12 34 56 78"), else in the international form ("+44 7400 123456");
    with ``international``, always the international form. The stored text as it is when it is
    not a number libphonenumber can read (kept as typed before numbers were stored in E.164)."""
    parsed = parse(number)
    if parsed is None:
        return number
    national = not international and phonenumbers.region_code_for_number(parsed) == settings.PHONE_DEFAULT_REGION
    return phonenumbers.format_number(
        parsed, PhoneNumberFormat.NATIONAL if national else PhoneNumberFormat.INTERNATIONAL
    )


def is_e164(number: str) -> bool:
    """Whether a stored number is what every number is stored as: a valid number in E.164."""
    return bool(number) and e164_or_none(number) == number


# --- Search ---------------------------------------------------------------------------------------


def digits(phone: str) -> str:
    """The full digit string of a number as people write it ("+33 6 12 34 56 78" → "33612345678")."""
    return "".join(ch for ch in phone if ch in "0123456789")


def stored_digits(field: str) -> Any:
    """A database expression: the digits of a stored number, the "+" and the separators taken
    away — one REPLACE each, on any database (``Contact.phone_digits``)."""
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
