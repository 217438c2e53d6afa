"""Reading a CSV of customers, contacts and their jobs: decoding, columns, and the check of every row.

No database access here: these functions turn bytes into rows and rows into unsaved Customer and
Contact instances, the jobs the rows name (ImportJob), plus a list of problems, by the models' own
rules (and crm.phones' for a phone). What the job cells refer to (pipelines, owners, existing jobs)
is looked up by crm.services.csv_import beforehand and handed in as JobFacts. crm.services.csv_import
stores and writes; docs/import-format.md is the documented format.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import phones
from crm.models import Contact, Customer, Job
from crm.services.jobs import REFERENCE_RE
from crm.text import clean_text, spreadsheet_safe
from crm.workdays import out_of_reach

MAX_FILE_BYTES = 5 * 1024 * 1024
# Well within the task's time limit (Q_CLUSTER timeout); larger files are split by the person.
MAX_ROWS = 50_000
# The error report keeps this many problems; the count of all of them is kept too.
MAX_STORED_ERRORS = 10_000
# Each new job is opened by crm.services.jobs.job_create (milestones, promises, roles, a welcome
# rendered for each contact: some 15 queries, 30 to 50 ms) inside the import's one transaction,
# which must end well within the task's time limit (Q_CLUSTER timeout, 60 s): 500 jobs take about
# 25 s on a busy laptop. Larger files are split by the person.
MAX_JOB_ROWS = 500
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
    # The job columns: a row with a job (its title) opens one for its customer, or finds it.
    # Not "job title" nor "title": contact exports (Outlook, HubSpot, LinkedIn) use them for the
    # person's position or civility, and reading them as jobs would welcome every contact of such a
    # file. The person can still choose such a column on the column page.
    ImportField(
        "job_title",
        _("Job"),
        (
            "job",
            "job name",
            "work order",
            "project",
            "project name",
            "dossier",
            "nom du dossier",
            "titre du dossier",
            "intitule du dossier",
            "chantier",
            "projet",
            "nom du projet",
            "travaux",
        ),
    ),
    ImportField(
        "pipeline",
        _("Pipeline"),
        ("pipeline", "job pipeline", "job type", "type of job", "processus", "type de dossier", "type de travaux"),
    ),
    ImportField(
        "owner",
        _("Job owner"),
        (
            "owner",
            "job owner",
            "assigned to",
            "in charge",
            "person in charge",
            "responsable",
            "responsable du dossier",
            "suivi par",
            "charge du dossier",
        ),
    ),
    ImportField(
        "start_date",
        _("Start date"),
        (
            "start date",
            "start",
            "starts on",
            "start on",
            "job start",
            "date de debut",
            "date debut",
            "debut",
            "date de demarrage",
            "demarrage",
        ),
    ),
    ImportField(
        "job_reference",
        _("Job reference"),
        (
            "job reference",
            "reference",
            "ref",
            "job ref",
            "job number",
            "job no",
            "reference du dossier",
            "ref dossier",
            "ref du dossier",
            "numero de dossier",
            "numero du dossier",
            "n de dossier",
            "no de dossier",
        ),
    ),
)
FIELDS_BY_KEY = {f.key: f for f in FIELDS}
# The job columns other than the title are read only on a row that has a job title.
JOB_FIELDS = ("job_title", "pipeline", "owner", "start_date", "job_reference")

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


# --- Jobs: what the rows name, against what the database holds ---------------------------------


class PipelineFact(NamedTuple):
    id: int
    name: str
    in_use: bool
    has_stages: bool


class StaffFact(NamedTuple):
    id: int
    name: str
    active_staff: bool


class JobFact(NamedTuple):
    id: int
    reference: str
    customer_id: int
    customer_name: str


@dataclass
class JobFacts:
    """What the job cells of a file refer to, read from the database by crm.services.csv_import before
    the check (this module reads none): the pipelines, the people named as owners, the existing
    customers of the rows with a job, and those customers' open jobs and the jobs of the file's
    references."""

    pipelines: list[PipelineFact] = field(default_factory=list)
    staff_by_username: dict[str, list[StaffFact]] = field(default_factory=dict)  # lowercased
    staff_by_email: dict[str, list[StaffFact]] = field(default_factory=dict)  # lowercased
    # The owner of a job whose owner cell is empty: the person who uploaded the file, when they
    # are still active staff.
    default_owner: StaffFact | None = None
    # Customer name -> the existing customer the rows of that name join (see _existing_customers).
    customers: dict[str, int] = field(default_factory=dict)
    jobs_by_reference: dict[str, JobFact] = field(default_factory=dict)
    # (customer id, pipeline id, title) -> the references of that customer's open jobs.
    open_jobs: dict[tuple[int, int, str], list[str]] = field(default_factory=dict)


@dataclass
class ImportJob:
    """A job the file names, with the contacts of its rows: new, or already there. Its details
    come from the first row that gives them."""

    customer_name: str
    title: str
    pipeline: PipelineFact
    owner: StaffFact
    start_date: date | None
    # Given in the file, or the one of the open job the rows were matched to; "" for a new job
    # without one (job_create gives it the next reference).
    reference: str
    row: int
    existing: bool
    contacts: list[Contact] = field(default_factory=list)
    # Our field -> the row that gave it (the owner and start date may come from a later row).
    given_at: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _JobCells:
    """One row's job cells, read."""

    title: str
    pipeline: PipelineFact
    owner: StaffFact
    owner_given: bool
    start_date: date | None
    reference: str


def job_reference(value: str) -> str:
    """A reference as written in a cell, in the form jobs keep it ("j-2026-0042 " -> "J-2026-0042")."""
    return value.strip().upper()


def job_lookups(
    rows: Iterable[tuple[int, list[str]] | list[Any]], mapping: dict[str, int]
) -> tuple[set[str], set[str], set[str]]:
    """What JobFacts must hold for these rows: the customer names, owners (lowercased) and
    references of the rows that have a job."""
    names: set[str] = set()
    owners: set[str] = set()
    references: set[str] = set()
    for _number, cells in rows:
        if not _cell(cells, mapping, "job_title"):
            continue
        names.add(_cell(cells, mapping, "customer_name"))
        if owner := _cell(cells, mapping, "owner"):
            owners.add(owner.lower())
        if reference := _cell(cells, mapping, "job_reference"):
            references.add(job_reference(reference))
    return names, owners, references


def job_rows(rows: Iterable[tuple[int, list[str]] | list[Any]], mapping: dict[str, int]) -> int:
    """How many rows have a job (see MAX_JOB_ROWS)."""
    if "job_title" not in mapping:
        return 0
    return sum(1 for _number, cells in rows if _cell(cells, mapping, "job_title"))


def _pipeline(value: str, facts: JobFacts) -> PipelineFact:
    usable = ", ".join(p.name for p in facts.pipelines if p.in_use and p.has_stages)
    if not value:
        if not usable:
            raise ValidationError({"pipeline": gettext("No pipeline is in use yet: set one up before importing jobs.")})
        raise ValidationError(
            {"pipeline": gettext("Give the job's pipeline, one of: %(allowed)s.") % {"allowed": usable}}
        )
    # The exact name, else the one name that matches without case, accents or punctuation.
    found = [p for p in facts.pipelines if p.name == value] or [
        p for p in facts.pipelines if normalize_header(p.name) == normalize_header(value)
    ]
    if len(found) != 1:
        raise ValidationError(
            {"pipeline": gettext("“%(value)s” is not one of: %(allowed)s.") % {"value": value, "allowed": usable}}
        )
    pipeline = found[0]
    # The wording of crm.services.jobs.job_create, which would refuse the job the same way.
    if not pipeline.in_use:
        raise ValidationError(
            {"pipeline": gettext("The %(pipeline)s pipeline is no longer in use.") % {"pipeline": pipeline.name}}
        )
    if not pipeline.has_stages:
        raise ValidationError(
            {"pipeline": gettext("The %(pipeline)s pipeline has no stages yet.") % {"pipeline": pipeline.name}}
        )
    return pipeline


def _owner(value: str, facts: JobFacts) -> StaffFact:
    if not value:
        if facts.default_owner is None:
            raise ValidationError({"owner": gettext("Give the job's owner: the username or email of a staff member.")})
        return facts.default_owner
    key = value.lower()
    # A username names one person; an email address may be shared.
    found = facts.staff_by_username.get(key) or facts.staff_by_email.get(key) or []
    if not found:
        raise ValidationError(
            {"owner": gettext("No staff member has the username or email “%(value)s”.") % {"value": value}}
        )
    if len(found) > 1:
        raise ValidationError(
            {"owner": gettext("Several people have the email “%(value)s”: give the username.") % {"value": value}}
        )
    person = found[0]
    if not person.active_staff:
        raise ValidationError(
            {
                "owner": gettext("%(user)s is not an active staff member and cannot be %(role)s.")
                % {"user": person.name, "role": gettext("a job owner")}
            }
        )
    return person


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")


def _start_date(value: str) -> date | None:
    if not value:
        return None
    for date_format in _DATE_FORMATS:
        try:
            day = datetime.strptime(value, date_format).date()
            break
        except ValueError:
            continue
    else:
        raise ValidationError(
            {
                "start_date": gettext("“%(value)s” is not a date: write it as 2026-03-31 or 31/03/2026.")
                % {"value": value}
            }
        )
    # job_create plans from any past date, and no further ahead than anyone may plan.
    problem = out_of_reach(day, earliest=date.min)
    if problem is not None:
        raise ValidationError({"start_date": problem[1]})
    return day


def _reference(value: str) -> str:
    if not value:
        return ""
    reference = job_reference(value)
    match = REFERENCE_RE.match(reference)
    # The form job_create accepts: four digits at least, no zero padding beyond.
    if not match or reference != f"J-{match['year']}-{int(match['number']):04d}":
        raise ValidationError(
            {"job_reference": gettext("A job reference looks like J-2026-0042, not “%(ref)s”.") % {"ref": value}}
        )
    return reference


def _job_from(cells: list[str], mapping: dict[str, int], facts: JobFacts) -> tuple[_JobCells | None, Problems]:
    """The row's job cells read and checked, or None for a row without a job (its other job cells
    are not read)."""
    title = _cell(cells, mapping, "job_title")
    if not title:
        return None, []
    problems: Problems = []
    try:
        Job._meta.get_field("title").run_validators(title)
    except ValidationError as error:
        problems += [("job_title", message) for message in error.messages]
    values: dict[str, Any] = {}
    readers: tuple[tuple[str, Callable[[str], Any]], ...] = (
        ("pipeline", lambda value: _pipeline(value, facts)),
        ("owner", lambda value: _owner(value, facts)),
        ("start_date", _start_date),
        ("job_reference", _reference),
    )
    for key, read in readers:
        try:
            values[key] = read(_cell(cells, mapping, key))
        except ValidationError as error:
            problems += _problems(error)
    if problems:
        return None, problems
    job = _JobCells(
        title=title,
        pipeline=values["pipeline"],
        owner=values["owner"],
        owner_given=bool(_cell(cells, mapping, "owner")),
        start_date=values["start_date"],
        reference=values["job_reference"],
    )
    return job, []


JobKey = tuple[str, ...]


class _FileJobs:
    """The jobs of a file as its rows are checked: which job a row belongs to (by its reference,
    else by customer, pipeline and title — among the file's jobs and the customer's open jobs, as
    an import of the same rows later will find them), and whether it agrees with the rows before."""

    def __init__(self, rows: list[tuple[int, list[str]] | list[Any]], mapping: dict[str, int], facts: JobFacts):
        self.facts = facts
        self.jobs: dict[JobKey, ImportJob] = {}
        # (customer name, pipeline id, title) -> the references the file gives such jobs: a row
        # without a reference belongs to the job with one, wherever its rows are in the file.
        self.file_references: dict[tuple[str, int, str], set[str]] = {}
        for _number, cells in rows:
            reference = _cell(cells, mapping, "job_reference")
            title = _cell(cells, mapping, "job_title")
            if not (reference and title):
                continue
            try:
                pipeline, reference = _pipeline(_cell(cells, mapping, "pipeline"), facts), _reference(reference)
            except ValidationError:
                continue  # the row's own check says why
            triple = (_cell(cells, mapping, "customer_name"), pipeline.id, title)
            self.file_references.setdefault(triple, set()).add(reference)

    def key_for(self, customer_name: str, job: _JobCells) -> tuple[JobKey | None, Problems]:
        """The job the row belongs to, or the problem that keeps it from any (nothing is recorded)."""
        facts = self.facts
        customer_id = facts.customers.get(customer_name)
        if job.reference:
            reference = job.reference
        else:
            triple = (customer_name, job.pipeline.id, job.title)
            candidates = set(self.file_references.get(triple, ()))
            if customer_id is not None:
                candidates |= set(facts.open_jobs.get((customer_id, job.pipeline.id, job.title), ()))
            if len(candidates) > 1:
                message = gettext(
                    "Several jobs of this customer are called “%(title)s” in the %(pipeline)s pipeline "
                    "(%(references)s): give the job reference."
                ) % {"title": job.title, "pipeline": job.pipeline.name, "references": ", ".join(sorted(candidates))}
                return None, [("job_title", message)]
            reference = candidates.pop() if candidates else ""
        key: JobKey = ("new", customer_name, str(job.pipeline.id), job.title)
        if reference:
            known = facts.jobs_by_reference.get(reference)
            if known is not None and known.customer_id != customer_id:
                message = gettext("%(ref)s is the reference of a job of %(customer)s.") % {
                    "ref": reference,
                    "customer": known.customer_name,
                }
                return None, [("job_reference", message)]
            key = ("reference", reference)
        earlier = self.jobs.get(key)
        if earlier is None:
            return key, []
        if earlier.customer_name != customer_name:
            message = gettext("Row %(row)s gives this reference to %(customer)s.") % {
                "row": earlier.row,
                "customer": earlier.customer_name,
            }
            return None, [("job_reference", message)]
        problems: Problems = []
        for field_key, mine, theirs, shown in (
            ("job_title", job.title, earlier.title, earlier.title),
            ("pipeline", job.pipeline.id, earlier.pipeline.id, earlier.pipeline.name),
            ("owner", job.owner.id if job.owner_given else None, earlier.owner.id, earlier.owner.name),
            ("start_date", job.start_date, earlier.start_date, earlier.start_date),
        ):
            source = earlier.given_at.get(field_key)
            if mine is not None and source is not None and mine != theirs:
                message = gettext("Differs from row %(row)s for the same job (“%(value)s”).") % {
                    "row": source,
                    "value": shown,
                }
                problems.append((field_key, message))
        return key, problems

    def add(self, key: JobKey, customer_name: str, job: _JobCells, *, row: int, contact: Contact) -> None:
        target = self.jobs.get(key)
        if target is None:
            reference = key[1] if key[0] == "reference" else ""
            target = self.jobs[key] = ImportJob(
                customer_name=customer_name,
                title=job.title,
                pipeline=job.pipeline,
                owner=job.owner,
                start_date=job.start_date,
                reference=reference,
                row=row,
                existing=reference in self.facts.jobs_by_reference,
                given_at={"job_title": row, "pipeline": row},
            )
        # The owner and the start date come from the first row that gives them.
        if job.owner_given and "owner" not in target.given_at:
            target.owner, target.given_at["owner"] = job.owner, row
        if job.start_date is not None and "start_date" not in target.given_at:
            target.start_date, target.given_at["start_date"] = job.start_date, row
        target.contacts.append(contact)


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
    # The jobs the valid rows name, in the order of their first row (none without a job column).
    jobs: list[ImportJob] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_rows: int = 0
    total_rows: int = 0

    @property
    def valid_rows(self) -> int:
        return len(self.contacts)

    @property
    def jobs_to_open(self) -> list[ImportJob]:
        return [job for job in self.jobs if not job.existing]


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
    typed_phone = _cell(cells, mapping, "phone")
    # Stored in E.164 (read with PHONE_DEFAULT_REGION when typed without a country code), the
    # form a re-import's rows are compared with too; kept as typed when it is not a number.
    number = phones.e164_or_none(typed_phone)
    phone = number or typed_phone
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
    if phone and number is None:
        problems.append(("phone", phones.phone_error()))
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
    wants_texts = contact.sms_consent_at is not None or contact.preferred_channel == Contact.Channel.SMS
    if number and wants_texts and not phones.can_text(number):
        # Texts only to a number they can reach: a consent to them, or a preference for them,
        # about a landline is a mistake in the file.
        key = "sms_consent" if contact.sms_consent_at is not None else "preferred_channel"
        problems.append((key, phones.cannot_text_error(number)))
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
    jobs: JobFacts | None = None,
) -> CheckedRows:
    """Every row against the models' rules and against the rows before it (one customer has one kind
    and one address; a contact appears once; one job has one title, pipeline, owner and start).
    With a job column, ``jobs`` holds what the database knows of the pipelines, people and jobs the
    rows name. Calls ``on_progress(rows checked)`` every ``progress_every`` rows."""
    result = CheckedRows()
    file_jobs: _FileJobs | None = None
    if "job_title" in mapping:
        if jobs is None:
            raise ValueError("A file with a job column is checked against JobFacts.")
        rows = list(rows)
        file_jobs = _FileJobs(rows, mapping, jobs)
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
        job: _JobCells | None = None
        if file_jobs is not None:
            job, job_problems = _job_from(cells, mapping, file_jobs.facts)
            problems += job_problems
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
        job_key: JobKey | None = None
        if not problems and file_jobs is not None and job is not None:
            job_key, job_problems = file_jobs.key_for(name, job)
            problems += job_problems
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
            if file_jobs is not None and job is not None and job_key is not None:
                file_jobs.add(job_key, name, job, row=number, contact=contact)
        result.total_rows = count
        if on_progress is not None and count % progress_every == 0:
            on_progress(count)
    if file_jobs is not None:
        result.jobs = list(file_jobs.jobs.values())
    return result


def errors_csv(errors: list[dict[str, Any]], *, delimiter: str = ",") -> str:
    """The error report as CSV, in the file's own delimiter so it opens the same way."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([gettext("Row"), gettext("Column"), gettext("Problem")])
    for error in errors:
        writer.writerow([error["row"], spreadsheet_safe(error["column"]), spreadsheet_safe(error["message"])])
    return out.getvalue()
