"""Writes of the CSV import of customers and contacts (docs/import-format.md).

An import goes uploaded → validated → running → done (or failed):

- ``import_create`` reads the file (crm.imports.parse_csv), stores its rows, guesses which column
  is which and, when every column it needs was recognised, checks the rows at once.
- ``import_validate`` checks every row by the models' rules with the chosen mapping and stores the
  error report and what the import would do. It can be repeated until the import starts.
- ``import_start`` moves validated → running with a conditional UPDATE (a double click, or two
  people at once, start it once) and enqueues the task after commit.
- ``import_run`` is the task's body (crm.tasks): it checks the rows again, counting them
  on the progress bar as it goes, then writes every customer and contact in ONE transaction.
- ``import_restart`` enqueues the task again for an import whose progress has stood still (its
  worker was stopped or restarted: the transaction was rolled back and nothing was saved).

Nothing half-imported: if any row has an error, the import only starts once the person has asked
for the valid rows only. The write is a single transaction, so a failure or a killed worker leaves
nothing behind, and nobody ever sees half an import in the customer list. The progress counter
cannot live inside that transaction (nobody else would see it, and SQLite has a single writer), so
it counts the check and preparation of the rows, committed every 500 rows, which is most of the
work; the final write is a few bulk INSERTs (about a second for 10,000 rows), shown as "saving".

Customers and contacts are reference data: like crm.services.customers, no JobEvent is written;
the ImportRun row records who imported what, when, and what it created.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from crm import imports
from crm.errors import DomainError
from crm.imports import CheckedRows, ImportFileError
from crm.models import Contact, Customer, ImportRun

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# Progress moves every BATCH_SIZE rows (a few hundredths of a second) and the final write takes
# seconds: a running import that has not moved for this long has lost its worker, or never had one.
STALLED_AFTER = timedelta(seconds=60)
# Fields the progress page reads; the rows and the error report stay in the database.
PROGRESS_FIELDS = (
    "id",
    "public_id",
    "file_name",
    "status",
    "total_rows",
    "valid_rows",
    "invalid_rows",
    "processed_rows",
    "customers_created",
    "customers_joined",
    "contacts_created",
    "contacts_existing",
    "failure",
    "valid_only",
    "started_at",
    "updated_at",
    "finished_at",
)


def _chunks(items: list[Any], size: int = BATCH_SIZE) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _existing_customers(names: list[str]) -> dict[str, int]:
    """Customer name → id of the customer with exactly that name (the oldest, if several)."""
    found: dict[str, int] = {}
    for chunk in _chunks(names):
        for name, pk in Customer.objects.filter(name__in=chunk).order_by("-pk").values_list("name", "pk"):
            found[name] = pk  # ordered newest first: the oldest one is written last and stays
    return found


def _contact_identity(customer_id: int, name: str, email: str, phone: str) -> tuple[int, str, str, str]:
    return (customer_id, name, email.lower(), phone)


def _existing_contacts(customer_ids: list[int]) -> set[tuple[int, str, str, str]]:
    """Who is already on file at these customers, to import a file twice without doubling anyone."""
    found = set()
    for chunk in _chunks(customer_ids):
        for row in Contact.objects.filter(customer_id__in=chunk).values_list("customer_id", "name", "email", "phone"):
            found.add(_contact_identity(*row))
    return found


def _plan(checked: CheckedRows) -> tuple[dict[str, int], list[tuple[str, Contact]], int]:
    """Against the database as it is now: existing customers by name, the contacts to create, and
    how many contacts are already on file."""
    existing = _existing_customers(list(checked.customers))
    already = _existing_contacts(list(set(existing.values())))
    to_create = []
    for name, contact in checked.contacts:
        customer_id = existing.get(name)
        if (
            customer_id is not None
            and _contact_identity(customer_id, contact.name, contact.email, contact.phone) in already
        ):
            continue
        to_create.append((name, contact))
    return existing, to_create, len(checked.contacts) - len(to_create)


def _check(run: ImportRun, **kwargs: Any) -> CheckedRows:
    return imports.check_rows(run.rows, mapping=run.mapping, headers=run.headers, now=timezone.now(), **kwargs)


def import_create(*, file_name: str, data: bytes, actor: User) -> ImportRun:
    """Store an uploaded file's rows (one INSERT), and check them when every column it needs was
    recognised. Raises DomainError, having written nothing, when the file cannot be read at all."""
    if len(data) > imports.MAX_FILE_BYTES:
        raise DomainError(
            _("The file is %(size)s MB; the limit is %(max)s MB. Split it into smaller files.")
            % {"size": f"{len(data) / 1024 / 1024:.1f}", "max": imports.MAX_FILE_BYTES // 1024 // 1024}
        )
    try:
        parsed = imports.parse_csv(data)
    except ImportFileError as error:
        raise DomainError(error.message) from error
    run = ImportRun.objects.create(
        file_name=file_name[:255],
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        headers=parsed.headers,
        rows=parsed.rows,
        mapping=imports.guess_mapping(parsed.headers),
        total_rows=len(parsed.rows),
        created_by_id=actor.pk,
    )
    if not imports.missing_fields(run.mapping):
        run = import_validate(run=run, mapping=run.mapping)
    return run


def import_validate(*, run: ImportRun, mapping: dict[str, int]) -> ImportRun:
    """Check every row with this mapping and store what was found. Allowed until the import starts.

    The check reads and computes outside any transaction (SQLite has a single writer, and checking
    50,000 rows takes seconds); the result is saved by one conditional UPDATE.
    """
    run = ImportRun.objects.get(pk=run.pk)
    checkable = (ImportRun.Status.UPLOADED, ImportRun.Status.VALIDATED)
    already_started = DomainError(_("This import has already started; its columns can no longer be changed."))
    if run.status not in checkable:
        raise already_started
    if any(not 0 <= index < len(run.headers) for index in mapping.values()):
        raise DomainError(_("Choose columns of the file."))
    missing = imports.missing_fields(mapping)
    if missing:
        raise DomainError(
            _("Choose the columns holding: %(fields)s.") % {"fields": ", ".join(str(f.label) for f in missing)}
        )
    run.mapping = mapping
    checked = _check(run)
    existing, to_create, _already = _plan(checked)
    saved = ImportRun.objects.filter(pk=run.pk, status__in=checkable).update(
        mapping=mapping,
        valid_rows=checked.valid_rows,
        invalid_rows=checked.invalid_rows,
        error_count=len(checked.errors),
        errors=[error.as_dict() for error in checked.errors[: imports.MAX_STORED_ERRORS]],
        customers_to_create=len(checked.customers) - len(existing),
        customers_to_join=len(existing),
        contacts_to_create=len(to_create),
        status=ImportRun.Status.VALIDATED,
        validated_at=timezone.now(),
    )
    if not saved:
        raise already_started
    run.refresh_from_db()
    return run


@transaction.atomic
def import_start(*, run: ImportRun, valid_only: bool = False) -> ImportRun:
    """Start the import once: validated → running, then the task after commit. Starting an import
    that is already running or done does nothing (a double click lands on its progress)."""
    run = ImportRun.objects.select_for_update().only(*PROGRESS_FIELDS).get(pk=run.pk)
    if run.status in (ImportRun.Status.RUNNING, ImportRun.Status.DONE):
        return run
    if run.status != ImportRun.Status.VALIDATED:
        raise DomainError(_("Check the rows before starting the import."))
    if not run.valid_rows:
        raise DomainError(_("No row can be imported. Correct the file and upload it again."))
    if run.invalid_rows and not valid_only:
        raise DomainError(
            _("Some rows have errors. Correct the file, or confirm that only the valid rows are to be imported.")
        )
    now = timezone.now()
    # The claim: of two requests racing here (PostgreSQL's lock above serialises them anyway), only
    # one moves the row out of "validated".
    claimed = ImportRun.objects.filter(pk=run.pk, status=ImportRun.Status.VALIDATED).update(
        status=ImportRun.Status.RUNNING,
        valid_only=bool(run.invalid_rows),
        processed_rows=0,
        started_at=now,
        updated_at=now,
    )
    if claimed:
        _enqueue(run.pk)
    return ImportRun.objects.only(*PROGRESS_FIELDS).get(pk=run.pk)


def _enqueue(run_id: int) -> None:
    transaction.on_commit(lambda: async_task("crm.tasks.run_import", run_id))


def is_stalled(run: ImportRun) -> bool:
    return run.status == ImportRun.Status.RUNNING and run.updated_at < timezone.now() - STALLED_AFTER


@transaction.atomic
def import_restart(*, run: ImportRun) -> ImportRun:
    """Run a stalled import again. Does nothing to an import that is moving, finished, or restarted a
    moment ago. If the first task was only late, both run: whichever writes first imports, and the
    other finds the import done (import_run checks under the run's row lock)."""
    now = timezone.now()
    restarted = ImportRun.objects.filter(
        pk=run.pk, status=ImportRun.Status.RUNNING, updated_at__lt=now - STALLED_AFTER
    ).update(processed_rows=0, updated_at=now)
    if restarted:
        _enqueue(run.pk)
    return ImportRun.objects.only(*PROGRESS_FIELDS).get(pk=run.pk)


def import_run(*, run_id: int) -> ImportRun | None:
    """The import itself (the task). Checks and prepares the rows with progress, then writes them
    all in one transaction. Runs once per start: a second task finds the run no longer running.

    A failure is recorded on the run (status failed, with the reason) rather than raised: nothing
    was written, and the person sees why on the progress page.
    """
    run = ImportRun.objects.filter(pk=run_id, status=ImportRun.Status.RUNNING).first()
    if run is None:
        return None
    try:
        _import(run)
    except Exception as error:
        logger.exception("CSV import %s failed", run.pk)
        reason = error.message if isinstance(error, DomainError) else _("An unexpected error stopped the import.")
        ImportRun.objects.filter(pk=run.pk, status=ImportRun.Status.RUNNING).update(
            status=ImportRun.Status.FAILED, failure=reason, finished_at=timezone.now(), updated_at=timezone.now()
        )
    return ImportRun.objects.only(*PROGRESS_FIELDS).get(pk=run.pk)


def _progress(run_id: int, processed: int) -> None:
    ImportRun.objects.filter(pk=run_id, status=ImportRun.Status.RUNNING).update(
        processed_rows=processed, updated_at=timezone.now()
    )


def _import(run: ImportRun) -> None:
    _progress(run.pk, 0)
    checked = _check(run, on_progress=lambda done: _progress(run.pk, done), progress_every=BATCH_SIZE)
    _progress(run.pk, checked.total_rows)
    if checked.valid_rows != run.valid_rows or checked.invalid_rows != run.invalid_rows:
        # Same rows, same mapping, same rules: only a new version of the rules between the check and
        # the start gets here. The person confirmed other numbers, so nothing is written.
        raise DomainError(_("The rows no longer check out as they did. Check the file again."))
    with transaction.atomic():
        locked = ImportRun.objects.select_for_update().only("id", "status").get(pk=run.pk)
        if locked.status != ImportRun.Status.RUNNING:
            return  # another worker finished it while this one was checking
        existing, to_create, already = _plan(checked)
        new_customers = [customer for name, customer in checked.customers.items() if name not in existing]
        Customer.objects.bulk_create(new_customers, batch_size=BATCH_SIZE)
        customer_ids = {**existing, **{customer.name: customer.pk for customer in new_customers}}
        contacts = []
        for name, contact in to_create:
            contact.customer_id = customer_ids[name]
            contacts.append(contact)
        Contact.objects.bulk_create(contacts, batch_size=BATCH_SIZE)
        now = timezone.now()
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.DONE,
            processed_rows=checked.total_rows,
            customers_created=len(new_customers),
            customers_joined=len(existing),
            contacts_created=len(contacts),
            contacts_existing=already,
            # The data now lives in customers and contacts; the report and the counts stay.
            rows=[],
            updated_at=now,
            finished_at=now,
        )
