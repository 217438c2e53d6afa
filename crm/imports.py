"""Reading a CSV of customers and contacts: decoding, columns, and the check of every row.

No database access here: these functions turn bytes into rows and rows into unsaved Customer and
Contact instances plus a list of problems, by the models' own rules (and crm.phones' for a phone).
crm.services.imports stores and writes; docs/import-format.md is the documented format.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Contact, Customer
from crm.phones import is_dialable, phone_error
from crm.text import clean_text, spreadsheet_safe

MAX_FILE_BYTES = 5 * 1024 * 1024
# Well within the task's time limit (Q_CLUSTER timeout); larger files are split by the person.
MAX_ROWS = 50_000
# The error report keeps this many problems; the count of all of them is kept too.
MAX_STORED_ERRORS = 10_000
DELIMITERS = (",", ";", "\t")


class ImportFileError(Exception):
    """The file as a whole cannot be read; the message says what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Our columns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportField:
    key: str
    label: str | Promise
    # Header names that mean this column, compared after normalize_header().
    aliases: tuple[str, ...]
    required: bool = False


FIELDS: tuple[ImportField, ...] = (
    ImportField(
        "customer_name",
        _("Customer name"),
        (
            "customer name",
            "customer",
            "client",
            "client name",
            "account",
            "company",
            "company name",
            "nom du client",
            "nom client",
            "societe",
            "entreprise",
        ),
        required=True,
    ),
    ImportField(
        "customer_kind",
        _("Customer kind"),
        ("customer kind", "kind", "customer type", "type", "type de client", "type client"),
    ),
    ImportField("address", _("Address"), ("address", "customer address", "adresse", "adresse du client")),
    ImportField(
        "contact_name",
        _("Contact name"),
        ("contact name", "contact", "name", "full name", "nom du contact", "nom contact", "nom", "nom complet"),
        required=True,
    ),
    ImportField(
        "email",
        _("Email"),
        ("email", "e mail", "email address", "e mail address", "mail", "courriel", "adresse courriel"),
    ),
    ImportField(
        "phone",
        _("Phone"),
        (
            "phone",
            "phone number",
            "telephone",
            "tel",
            "mobile",
            "cell",
            "portable",
            "cellulaire",
            "numero de telephone",
        ),
    ),
    ImportField("language", _("Language"), ("language", "lang", "langue")),
    ImportField(
        "preferred_channel",
        _("Preferred channel"),
        ("preferred channel", "channel", "canal", "canal prefere", "canal de contact"),
    ),
    ImportField("sms_consent", _("SMS consent"), ("sms consent", "sms ok", "sms opt in", "consentement sms")),
    ImportField(
        "sms_consent_source",
        _("SMS consent source"),
        ("sms consent source", "consent source", "source du consentement sms", "source du consentement"),
    ),
    ImportField("time_zone", _("Time zone"), ("time zone", "timezone", "tz", "fuseau horaire", "fuseau")),
)
FIELDS_BY_KEY = {f.key: f for f in FIELDS}

# Which of our columns a model field's error belongs to.
_CONTACT_FIELD_COLUMN = {
    "name": "contact_name",
    "email": "email",
    "phone": "phone",
    "language": "language",
    "preferred_channel": "preferred_channel",
    "time_zone": "time_zone",
    "sms_consent_at": "sms_consent",
    "sms_consent_source": "sms_consent_source",
}
_CUSTOMER_FIELD_COLUMN = {"name": "customer_name", "kind": "customer_kind", "address": "address"}
# A broken contact constraint is reported against the column the person should look at.
_CONSTRAINT_COLUMN = {
    "contact_has_email_or_phone": "email",
    "contact_sms_needs_consent": "preferred_channel",
    "contact_sms_consent_has_source": "sms_consent_source",
}


def normalize_header(text: str) -> str:
    """'  E-mail *' -> 'e mail', 'Téléphone' -> 'telephone': case, accents and punctuation ignored."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


_FIELD_BY_ALIAS = {alias: f.key for f in FIELDS for alias in f.aliases}


def guess_mapping(headers: list[str]) -> dict[str, int]:
    """Our field -> the index of the first column whose header is one of its names."""
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _FIELD_BY_ALIAS.get(normalize_header(header))
        if key and key not in mapping:
            mapping[key] = index
    return mapping


# Not a column: what is missing when neither the email nor the phone column is there.
EMAIL_OR_PHONE = ImportField("email_or_phone", _("Email or phone"), ())


def missing_fields(mapping: dict[str, int]) -> list[ImportField]:
    """The columns an import cannot do without: both names, and an email or a phone column."""
    missing = [f for f in FIELDS if f.required and f.key not in mapping]
    if "email" not in mapping and "phone" not in mapping:
        missing.append(EMAIL_OR_PHONE)
    return missing


def column_label(headers: list[str], index: int) -> str:
    header = headers[index] if index < len(headers) else ""
    return header or gettext("Column %(number)s") % {"number": index + 1}


# --- Reading the file ---------------------------------------------------------------------------


@dataclass
class ParsedFile:
    headers: list[str]
    # [row number, cells]: the row number is the one a spreadsheet shows (the header is row 1).
    rows: list[tuple[int, list[str]]]
    encoding: str
    delimiter: str


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in: UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's
    "Unicode text"), otherwise Windows-1252 (Excel's "CSV" on a Western Windows)."""
    if data.startswith(b"PK\x03\x04"):
        raise ImportFileError(
            gettext("This is an Excel workbook, not a CSV file. In Excel, use File › Save as › “CSV UTF-8”.")
        )
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    elif data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            try:
                return data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError:
                pass
    raise ImportFileError(gettext("The file could not be read as text. Save it as “CSV UTF-8” and upload it again."))


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header row into the most columns (comma on a tie): French
    Excel writes semicolons, "Unicode text" tabs."""
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        try:
            header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        except csv.Error:
            continue
        if len(header) > best_count:
            best, best_count = delimiter, len(header)
    return best


def parse_csv(data: bytes, *, max_rows: int = MAX_ROWS) -> ParsedFile:
    """Headers and non-blank rows, cells stripped and cleaned (crm.text.clean_text). Raises
    ImportFileError for a file that cannot be imported at all (not text, empty, no data rows, too
    many rows, broken quoting)."""
    if not data.strip():
        raise ImportFileError(gettext("The file is empty."))
    text, encoding = decode(data)
    # Excel's "sep=;" first line names the delimiter (and Excel hides the line when it opens the file).
    first_line, _newline, rest = text.partition("\n")
    if re.fullmatch(r"sep=[,;\t]\r?", first_line, flags=re.IGNORECASE):
        delimiter, text = first_line[4], rest
    else:
        delimiter = sniff_delimiter(text)

    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number = 0
    try:
        for number, record in enumerate(reader, start=1):
            # A NUL in a cell is dropped, not reported: no spreadsheet shows it, so the person could
            # not find it to fix it. It is left over by the program that wrote the file (a database
            # export's padding), never typed; kept, PostgreSQL would refuse the whole import.
            cells = [clean_text(cell).strip() for cell in record]
            if not any(cells):
                continue
            if headers is None:
                headers = cells
                continue
            if len(rows) >= max_rows:
                raise ImportFileError(
                    gettext("The file has more than %(max)s rows. Split it into smaller files.")
                    % {"max": f"{max_rows:,}"}
                )
            rows.append((number, cells))
    except csv.Error as error:
        raise ImportFileError(
            gettext("Row %(row)s cannot be read (%(error)s). Check its quotes.") % {"row": number + 1, "error": error}
        ) from error
    if headers is None:
        raise ImportFileError(gettext("The file is empty."))
    if not rows:
        raise ImportFileError(gettext("The file has a header row but no rows of data under it."))
    return ParsedFile(headers=headers, rows=rows, encoding=encoding, delimiter=delimiter)


# --- Turning cell text into field values ----------------------------------------------------------


def _choice(value: str, choices: dict[str, str], field_key: str, allowed: Iterable[str]) -> str:
    """The code for ``value`` (matched without case or accents), or a ValidationError for the column."""
    code = choices.get(normalize_header(value))
    if code is None:
        raise ValidationError(
            {
                field_key: gettext("“%(value)s” is not one of: %(allowed)s.")
                % {"value": value, "allowed": ", ".join(allowed)}
            }
        )
    return code


_KINDS = {
    **dict.fromkeys(("household", "home", "private", "residential"), Customer.Kind.HOUSEHOLD.value),
    **dict.fromkeys(("menage", "foyer", "particulier", "residentiel"), Customer.Kind.HOUSEHOLD.value),
    **dict.fromkeys(("company", "business", "organisation", "organization"), Customer.Kind.COMPANY.value),
    **dict.fromkeys(("entreprise", "societe", "professionnel", "pro"), Customer.Kind.COMPANY.value),
}
_LANGUAGES = {
    **{code: code for code, _name in settings.LANGUAGES},
    "english": "en",
    "anglais": "en",
    "eng": "en",
    "french": "fr",
    "francais": "fr",
    "fra": "fr",
    "fre": "fr",
}
_CHANNELS = {
    **dict.fromkeys(("email", "e mail", "mail", "courriel"), Contact.Channel.EMAIL.value),
    **dict.fromkeys(("sms", "text", "text message", "texto"), Contact.Channel.SMS.value),
    **dict.fromkeys(("phone", "phone call", "call", "telephone", "appel", "tel"), Contact.Channel.PHONE.value),
}
_YES = {"yes", "y", "true", "1", "x", "oui", "o", "vrai"}
_NO = {"no", "n", "false", "0", "non", "faux", ""}


def _language(value: str) -> str:
    if not value:
        return settings.LANGUAGE_CODE
    normalized = normalize_header(value)
    if normalized not in _LANGUAGES and re.fullmatch(r"[a-z]{2,3} [a-z0-9]{2,4}", normalized):
        # "fr-CA", "en_GB": the language without its region.
        normalized = normalized.split(" ")[0]
    code = _LANGUAGES.get(normalized)
    if code is None:
        allowed = ", ".join(code for code, _name in settings.LANGUAGES)
        raise ValidationError(
            {"language": gettext("“%(value)s” is not one of: %(allowed)s.") % {"value": value, "allowed": allowed}}
        )
    return code


def _yes_no(value: str, field_key: str) -> bool:
    normalized = normalize_header(value)
    if normalized in _YES:
        return True
    if normalized in _NO:
        return False
    raise ValidationError({field_key: gettext("“%(value)s” is neither yes nor no.") % {"value": value}})


class _NotSimple(Exception):
    """A condition this module does not evaluate itself; Django checks it (with a query)."""


def _check_constraints(instance: models.Model) -> None:
    """The model's check constraints, evaluated in Python when their conditions are plain field
    comparisons. Django's own check asks the database, one query per constraint per row: that made
    10,000 rows take 20 seconds. Any other constraint is left to Django."""
    problems: dict[str, list[str]] = {}
    for constraint in instance._meta.constraints:
        try:
            if not isinstance(constraint, models.CheckConstraint) or not isinstance(constraint.condition, Q):
                raise _NotSimple
            if _holds(constraint.condition, instance):
                continue
            messages = [constraint.get_violation_error_message()]
        except _NotSimple:
            try:
                constraint.validate(type(instance), instance)  # type: ignore[attr-defined]
                continue
            except ValidationError as error:
                messages = error.messages
        problems.setdefault(_CONSTRAINT_COLUMN.get(constraint.name, NON_FIELD_ERRORS), []).extend(messages)
    if problems:
        raise ValidationError(problems)


def _holds(condition: Q, instance: models.Model) -> bool:
    results: list[bool] = []
    for child in condition.children:
        if isinstance(child, Q):
            results.append(_holds(child, instance))
            continue
        lookup, expected = child  # type: ignore[misc]
        if hasattr(expected, "resolve_expression"):
            raise _NotSimple
        name, _sep, operator = lookup.partition("__")
        try:
            model_field = instance._meta.get_field(name)
        except Exception as error:
            raise _NotSimple from error
        if not isinstance(model_field, models.Field):
            raise _NotSimple
        actual = getattr(instance, model_field.attname)
        if operator in ("", "exact"):
            results.append(actual == expected)
        elif operator == "isnull":
            results.append((actual is None) == bool(expected))
        elif operator == "in":
            results.append(actual in expected)
        else:
            raise _NotSimple
    if condition.connector == Q.AND:
        holds = all(results)
    elif condition.connector == Q.OR:
        holds = any(results)
    else:  # XOR
        holds = sum(results) % 2 == 1
    return not holds if condition.negated else holds


# --- Checking the rows --------------------------------------------------------------------------


@dataclass
class RowError:
    row: int
    field: str
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "column": self.column, "message": self.message}


@dataclass
class CheckedRows:
    """What a file would import: new customers by name (first row's details), contacts by the name
    of their customer, and every problem found, row by row."""

    customers: dict[str, Customer] = field(default_factory=dict)
    contacts: list[tuple[str, Contact]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_rows: int = 0
    total_rows: int = 0

    @property
    def valid_rows(self) -> int:
        return len(self.contacts)


def _cell(cells: list[str], mapping: dict[str, int], key: str) -> str:
    index = mapping.get(key)
    if index is None or index >= len(cells):
        return ""
    return cells[index]


Problems = list[tuple[str, str]]  # (our field key, or "" for the row as a whole; message)


def _problems(error: ValidationError, field_keys: dict[str, str] | None = None) -> Problems:
    """A ValidationError's messages, each against our field key (model field names translated by
    ``field_keys``; our own keys kept)."""
    if not hasattr(error, "error_dict"):
        return [("", message) for message in error.messages]
    found: Problems = []
    for name, errors in error.error_dict.items():
        key = (field_keys or {}).get(name, name if name in FIELDS_BY_KEY else "")
        found += [(key, message) for e in errors for message in e.messages]
    return found


def _customer_from(cells: list[str], mapping: dict[str, int]) -> tuple[Customer, Problems]:
    problems: Problems = []
    customer = Customer(name=_cell(cells, mapping, "customer_name"), address=_cell(cells, mapping, "address"))
    raw_kind = _cell(cells, mapping, "customer_kind")
    if raw_kind:
        try:
            customer.kind = _choice(raw_kind, _KINDS, "customer_kind", Customer.Kind.values)
        except ValidationError as error:
            problems += _problems(error)
    try:
        customer.full_clean(validate_unique=False, validate_constraints=False)
        _check_constraints(customer)
    except ValidationError as error:
        problems += _problems(error, _CUSTOMER_FIELD_COLUMN)
    return customer, problems


def _contact_from(cells: list[str], mapping: dict[str, int], *, now: datetime) -> tuple[Contact, Problems]:
    problems: Problems = []
    email = _cell(cells, mapping, "email")
    phone = _cell(cells, mapping, "phone")
    contact = Contact(
        name=_cell(cells, mapping, "contact_name"),
        email=email,
        phone=phone,
        # Without a channel given, the one the contact can be reached on.
        preferred_channel=Contact.Channel.EMAIL if email or not phone else Contact.Channel.PHONE,
    )
    if time_zone := _cell(cells, mapping, "time_zone"):
        contact.time_zone = time_zone
    unreadable: list[str] = []
    if phone and not is_dialable(phone):
        problems.append(("phone", phone_error()))
        unreadable.append("phone")
    try:
        contact.language = _language(_cell(cells, mapping, "language"))
    except ValidationError as error:
        problems += _problems(error)
        unreadable.append("language")
    if channel := _cell(cells, mapping, "preferred_channel"):
        try:
            contact.preferred_channel = _choice(channel, _CHANNELS, "preferred_channel", Contact.Channel.values)
        except ValidationError as error:
            problems += _problems(error)
            unreadable.append("preferred_channel")
    try:
        if _yes_no(_cell(cells, mapping, "sms_consent"), "sms_consent"):
            # Consent is recorded as given when it reaches us, as when staff tick the box.
            contact.sms_consent_at = now
            contact.sms_consent_source = _cell(cells, mapping, "sms_consent_source")
    except ValidationError as error:
        problems += _problems(error)
        unreadable.append("sms_consent")
    # full_clean() in three steps, each only when the one before found nothing: "SMS needs consent"
    # about a row whose consent cell could not be read, or "email is the preferred channel" about a
    # row with no address at all, would be a second message about the same cell.
    try:
        contact.clean_fields(exclude=["customer", *unreadable])
    except ValidationError as error:
        problems += _problems(error, _CONTACT_FIELD_COLUMN)
    for step, field_keys in ((_check_constraints, None), (Contact.clean, _CONTACT_FIELD_COLUMN)):
        if problems:
            break
        try:
            step(contact)
        except ValidationError as error:
            problems += _problems(error, field_keys)
    return contact, problems


_CUSTOMER_DETAILS = (("customer_kind", "kind"), ("address", "address"))


def check_rows(
    rows: Iterable[tuple[int, list[str]] | list[Any]],
    *,
    mapping: dict[str, int],
    headers: list[str],
    now: datetime,
    on_progress: Callable[[int], None] | None = None,
    progress_every: int = 500,
) -> CheckedRows:
    """Every row against the models' rules and against the rows before it (one customer has one kind
    and one address; a contact appears once). Calls ``on_progress(rows checked)`` every
    ``progress_every`` rows."""
    result = CheckedRows()
    # (customer name, our field) -> the row that gave the customer's kind or address.
    given_at: dict[tuple[str, str], int] = {}
    seen_contacts: dict[tuple[str, str, str, str], int] = {}

    def label(key: str) -> str:
        if not key:
            return ""
        index = mapping.get(key)
        return column_label(headers, index) if index is not None else str(FIELDS_BY_KEY[key].label)

    for count, (number, cells) in enumerate(rows, start=1):
        customer, problems = _customer_from(cells, mapping)
        contact, contact_problems = _contact_from(cells, mapping, now=now)
        problems += contact_problems
        name = customer.name
        known = result.customers.get(name)
        if not problems and known is not None:
            for key, attr in _CUSTOMER_DETAILS:
                source = given_at.get((name, key))
                if (
                    source is not None
                    and _cell(cells, mapping, key)
                    and getattr(customer, attr) != getattr(known, attr)
                ):
                    message = gettext("Differs from row %(row)s for the same customer (“%(value)s”).") % {
                        "row": source,
                        "value": getattr(known, attr),
                    }
                    problems.append((key, message))
        if not problems:
            identity = (name, contact.name, contact.email.lower(), contact.phone)
            if identity in seen_contacts:
                message = gettext("The same contact as row %(row)s.") % {"row": seen_contacts[identity]}
                problems.append(("contact_name", message))
            else:
                seen_contacts[identity] = number
        if problems:
            result.invalid_rows += 1
            result.errors += [
                RowError(row=number, field=key, column=label(key), message=str(message)) for key, message in problems
            ]
        else:
            target = result.customers.setdefault(name, customer)
            for key, attr in _CUSTOMER_DETAILS:
                # The first row that gives the customer's kind or address gives it.
                if _cell(cells, mapping, key) and (name, key) not in given_at:
                    setattr(target, attr, getattr(customer, attr))
                    given_at[(name, key)] = number
            result.contacts.append((name, contact))
        result.total_rows = count
        if on_progress is not None and count % progress_every == 0:
            on_progress(count)
    return result


def errors_csv(errors: list[dict[str, Any]], *, delimiter: str = ",") -> str:
    """The error report as CSV, in the file's own delimiter so it opens the same way."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([gettext("Row"), gettext("Column"), gettext("Problem")])
    for error in errors:
        writer.writerow([error["row"], spreadsheet_safe(error["column"]), spreadsheet_safe(error["message"])])
    return out.getvalue()
