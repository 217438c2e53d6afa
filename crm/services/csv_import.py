"""Writes of the CSV import of customers and contacts (docs/import-format.md).

An import goes uploaded → validated → running → done (or failed):

- ``import_create`` reads the file (crm.csv_import.parse_csv), stores its rows, guesses which column
  is which and, when every column it needs was recognised, checks the rows at once.
- ``import_validate`` checks every row by the models' rules with the chosen mapping and stores the
  error report and what the import would do (customers, contacts, jobs and their welcomes: the
  review page reads these counts, it does not check the rows again). It can be repeated until the
  import starts.
- ``import_start`` moves validated → running with a conditional UPDATE (a double click, or two
  people at once, start it once) and enqueues the task after commit.
- ``import_run`` is the task's body (crm.tasks): it checks the rows again, counting them
  on the progress bar as it goes, then writes every customer, contact and job in ONE transaction,
  and stores what it did (the jobs opened, their welcomes, the jobs already there) as it ends.
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

Jobs (a file with a job column, docs/import-format.md): the check is handed what the database
knows of the pipelines, owners and jobs the rows name (``_job_facts``), so an unknown pipeline or
owner, or another customer's reference, is an error of its row like any other. The write opens
each new job with crm.services.jobs.job_create inside the one transaction, so every contact of a
new job gets its welcome, queued with the job and sent after commit by the outbox; a job already
there (by its reference, else by customer, pipeline and title among the customer's open jobs) is
left as it is and nobody is welcomed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from crm import csv_import
from crm.csv_import import CheckedRows, ImportFileError, ImportJob
from crm.errors import DomainError
from crm.models import Contact, Customer, ImportRun, Job, Pipeline
from crm.services.jobs import job_create
from crm.text import person_name

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
    "jobs_created",
    "welcomes_queued",
    "jobs_existing",
    "failure",
    "valid_only",
    "mapping",
    "started_at",
    "updated_at",
    "finished_at",
)


# A job is found by customer, pipeline and title among the customer's open jobs only.


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


def _existing_contacts(customer_ids: list[int]) -> dict[tuple[int, str, str, str], int]:
    """Who is already on file at these customers (identity -> contact id), to import a file twice
    without doubling anyone."""
    found: dict[tuple[int, str, str, str], int] = {}
    for chunk in _chunks(customer_ids):
        rows = Contact.objects.filter(customer_id__in=chunk).values_list("customer_id", "name", "email", "phone", "pk")
        for customer_id, name, email, phone, pk in rows:
            found.setdefault(_contact_identity(customer_id, name, email, phone), pk)
    return found


def _file_identity(customer_name: str, contact: Contact) -> tuple[str, str, str, str]:
    return (customer_name, contact.name, contact.email.lower(), contact.phone)


@dataclass
class _Plan:
    """Against the database as it is now: existing customers by name, the contacts to create, and
    the contacts already on file (by customer name and contact identity -> the id on file)."""

    existing: dict[str, int]
    to_create: list[tuple[str, Contact]]
    on_file: dict[tuple[str, str, str, str], int]

    @property
    def contacts_existing(self) -> int:
        return len(self.on_file)


def _plan(checked: CheckedRows) -> _Plan:
    existing = _existing_customers(list(checked.customers))
    already = _existing_contacts(list(set(existing.values())))
    to_create = []
    on_file = {}
    for name, contact in checked.contacts:
        customer_id = existing.get(name)
        if customer_id is not None:
            pk = already.get(_contact_identity(customer_id, contact.name, contact.email, contact.phone))
            if pk is not None:
                on_file[_file_identity(name, contact)] = pk
                continue
        to_create.append((name, contact))
    return _Plan(existing=existing, to_create=to_create, on_file=on_file)


StaffByKey = dict[str, list[csv_import.StaffFact]]


def _staff_facts(keys: Iterable[str]) -> tuple[StaffByKey, StaffByKey]:
    """The people whose username or email (without case) is one of ``keys``."""
    by_username: StaffByKey = {}
    by_email: StaffByKey = {}
    seen: set[int] = set()
    for chunk in _chunks(sorted(keys)):
        users = (
            User.objects.annotate(username_lower=Lower("username"), email_lower=Lower("email"))
            .filter(Q(username_lower__in=chunk) | Q(email_lower__in=chunk))
            .order_by("pk")
        )
        for user in users:
            if user.pk in seen:
                continue
            seen.add(user.pk)
            fact = csv_import.StaffFact(user.pk, person_name(user), user.is_active and user.is_staff)
            by_username.setdefault(user.username.lower(), []).append(fact)
            if user.email:
                by_email.setdefault(user.email.lower(), []).append(fact)
    return by_username, by_email


def _job_facts(run: ImportRun) -> csv_import.JobFacts | None:
    """What the rows' job cells name, read from the database (a few queries, whatever the number
    of rows); None for a file without a job column."""
    if "job_title" not in run.mapping:
        return None
    names, owners, references = csv_import.job_lookups(run.rows, run.mapping)
    facts = csv_import.JobFacts()
    facts.pipelines = [
        csv_import.PipelineFact(pk, name, in_use, stages > 0)
        for pk, name, in_use, stages in Pipeline.objects.annotate(stages_count=Count("stages"))
        .order_by("name")
        .values_list("pk", "name", "is_active", "stages_count")
    ]
    facts.staff_by_username, facts.staff_by_email = _staff_facts(owners)
    uploader = User.objects.filter(pk=run.created_by_id).first() if run.created_by_id else None
    if uploader is not None and uploader.is_active and uploader.is_staff:
        facts.default_owner = csv_import.StaffFact(uploader.pk, person_name(uploader), True)
    facts.customers = _existing_customers(sorted(names))
    fields = ("pk", "reference", "customer_id", "customer__name")
    for chunk in _chunks(sorted(references)):
        for row in Job.objects.filter(reference__in=chunk).values_list(*fields):
            facts.jobs_by_reference[row[1]] = csv_import.JobFact(*row)
    for chunk in _chunks(sorted(set(facts.customers.values()))):
        open_jobs = Job.objects.filter(customer_id__in=chunk, status__in=Job.OPEN_STATUSES).order_by("pk")
        for *row, pipeline_id, title in open_jobs.values_list(*fields, "pipeline_id", "title"):
            job = csv_import.JobFact(*row)
            facts.jobs_by_reference[job.reference] = job
            facts.open_jobs.setdefault((job.customer_id, pipeline_id, title), []).append(job.reference)
    return facts


def _check(run: ImportRun, **kwargs: Any) -> CheckedRows:
    return csv_import.check_rows(
        run.rows, mapping=run.mapping, headers=run.headers, now=timezone.now(), jobs=_job_facts(run), **kwargs
    )


@dataclass(frozen=True)
class JobsPlan:
    """What an import does about jobs: how many it opens, the welcome messages they send (one per
    contact of each new job), and how many of the file's jobs are already there."""

    to_open: int
    welcomes: int
    already_there: int


def _jobs_plan(checked: CheckedRows) -> JobsPlan:
    new = checked.jobs_to_open
    return JobsPlan(
        to_open=len(new),
        welcomes=sum(len(job.contacts) for job in new),
        already_there=len(checked.jobs) - len(new),
    )


def _ensure_few_enough_jobs(rows: list[Any], mapping: dict[str, int]) -> None:
    count = csv_import.job_rows(rows, mapping)
    if count > csv_import.MAX_JOB_ROWS:
        raise DomainError(
            _(
                "The file has %(count)s rows with a job; one import opens jobs from %(max)s rows at most. "
                "Split it into smaller files."
            )
            % {"count": f"{count:,}", "max": csv_import.MAX_JOB_ROWS}
        )


def import_create(*, file_name: str, data: bytes, actor: User) -> ImportRun:
    """Store an uploaded file's rows (one INSERT), and check them when every column it needs was
    recognised. Raises DomainError, having written nothing, when the file cannot be read at all."""
    if len(data) > csv_import.MAX_FILE_BYTES:
        raise DomainError(
            _("The file is %(size)s MB; the limit is %(max)s MB. Split it into smaller files.")
            % {"size": f"{len(data) / 1024 / 1024:.1f}", "max": csv_import.MAX_FILE_BYTES // 1024 // 1024}
        )
    try:
        parsed = csv_import.parse_csv(data)
    except ImportFileError as error:
        raise DomainError(error.message) from error
    _ensure_few_enough_jobs(parsed.rows, csv_import.guess_mapping(parsed.headers))
    run = ImportRun.objects.create(
        file_name=file_name[:255],
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        headers=parsed.headers,
        rows=parsed.rows,
        mapping=csv_import.guess_mapping(parsed.headers),
        total_rows=len(parsed.rows),
        created_by_id=actor.pk,
    )
    if not csv_import.missing_fields(run.mapping):
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
    missing = csv_import.missing_fields(mapping)
    if missing:
        raise DomainError(
            _("Choose the columns holding: %(fields)s.") % {"fields": ", ".join(str(f.label) for f in missing)}
        )
    _ensure_few_enough_jobs(run.rows, mapping)
    run.mapping = mapping
    checked = _check(run)
    plan = _plan(checked)
    jobs = _jobs_plan(checked)  # all zero for a file without a job column
    saved = ImportRun.objects.filter(pk=run.pk, status__in=checkable).update(
        mapping=mapping,
        valid_rows=checked.valid_rows,
        invalid_rows=checked.invalid_rows,
        error_count=len(checked.errors),
        errors=[error.as_dict() for error in checked.errors[: csv_import.MAX_STORED_ERRORS]],
        customers_to_create=len(checked.customers) - len(plan.existing),
        customers_to_join=len(plan.existing),
        contacts_to_create=len(plan.to_create),
        jobs_to_create=jobs.to_open,
        welcomes_to_send=jobs.welcomes,
        jobs_to_find=jobs.already_there,
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
        if checked.jobs:
            # Two imports opening jobs in the same pipelines (the same file started twice) take
            # turns: the second waits here until the first has committed, then finds its customers,
            # contacts and jobs, so nothing is opened or welcomed twice. NO KEY UPDATE does not hold
            # up a job opened meanwhile from its page (a new job only takes KEY SHARE on its
            # pipeline). SQLite needs none of this: its writers take turns anyway.
            pipeline_ids = sorted({job.pipeline.id for job in checked.jobs})
            list(Pipeline.objects.select_for_update(no_key=True).filter(pk__in=pipeline_ids).values_list("pk"))
        plan = _plan(checked)
        new_customers = [customer for name, customer in checked.customers.items() if name not in plan.existing]
        Customer.objects.bulk_create(new_customers, batch_size=BATCH_SIZE)
        customer_ids = {**plan.existing, **{customer.name: customer.pk for customer in new_customers}}
        contacts = []
        for name, contact in plan.to_create:
            contact.customer_id = customer_ids[name]
            contacts.append(contact)
        Contact.objects.bulk_create(contacts, batch_size=BATCH_SIZE)
        opened = _jobs_open(checked.jobs, customer_ids=customer_ids, on_file=plan.on_file, run=run)
        now = timezone.now()
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.DONE,
            processed_rows=checked.total_rows,
            customers_created=len(new_customers),
            customers_joined=len(plan.existing),
            contacts_created=len(contacts),
            contacts_existing=plan.contacts_existing,
            # Decided again inside the transaction: what was done, not what the check expected.
            jobs_created=opened.to_open,
            welcomes_queued=opened.welcomes,
            jobs_existing=opened.already_there,
            # The data now lives in customers and contacts; the report and the counts stay.
            rows=[],
            updated_at=now,
            finished_at=now,
        )


def _jobs_open(
    jobs: list[ImportJob],
    *,
    customer_ids: dict[str, int],
    on_file: dict[tuple[str, str, str, str], int],
    run: ImportRun,
) -> JobsPlan:
    """Open the file's new jobs, in the import's transaction, and count the ones already there.

    Which jobs are there is decided again here, on the database as it is inside the transaction
    (the check ran before it, outside): a job another import opened in between is found, not
    opened twice (see the pipelines' lock in _import). Each new job is job_create's, so its
    contacts are welcomed in this transaction.
    """
    if not jobs:
        return JobsPlan(to_open=0, welcomes=0, already_there=0)
    ids = sorted({customer_ids[job.customer_name] for job in jobs})
    customers: dict[int, Customer] = {}
    for chunk in _chunks(ids):
        customers.update(Customer.objects.in_bulk(chunk))
    by_reference: dict[str, int] = {}
    for chunk in _chunks(sorted({job.reference for job in jobs if job.reference})):
        by_reference.update(Job.objects.filter(reference__in=chunk).values_list("reference", "customer_id"))
    open_jobs: set[tuple[int, int, str]] = set()
    for chunk in _chunks(ids):
        rows = Job.objects.filter(customer_id__in=chunk, status__in=Job.OPEN_STATUSES).values_list(
            "customer_id", "pipeline_id", "title"
        )
        open_jobs.update(rows)
    pipelines = Pipeline.objects.in_bulk({job.pipeline.id for job in jobs})
    owners = User.objects.select_related("staff_profile").in_bulk({job.owner.id for job in jobs})
    # A contact already on file joins the job as it is on file.
    wanted = {
        on_file[key] for job in jobs for c in job.contacts if (key := _file_identity(job.customer_name, c)) in on_file
    }
    contacts_on_file = Contact.objects.in_bulk(wanted)
    actor = User.objects.filter(pk=run.created_by_id).first() if run.created_by_id else None
    opened = welcomes = 0
    for job in jobs:
        customer_id = customer_ids[job.customer_name]
        if job.reference in by_reference:
            if by_reference[job.reference] != customer_id:
                # Given to another customer's job since the check.
                problem = _("The reference %(ref)s is already used by another job.") % {"ref": job.reference}
                raise DomainError(_("Row %(row)s: %(problem)s") % {"row": job.row, "problem": problem})
            continue
        if not job.reference and (customer_id, job.pipeline.id, job.title) in open_jobs:
            continue
        contacts = [
            contacts_on_file[on_file[key]] if (key := _file_identity(job.customer_name, c)) in on_file else c
            for c in job.contacts
        ]
        try:
            job_create(
                customer=customers[customer_id],
                pipeline=pipelines[job.pipeline.id],
                owner=owners[job.owner.id],
                title=job.title,
                actor=actor,
                contacts=contacts,
                start_date=job.start_date,
                reference=job.reference or None,
                notify_customer=True,
            )
        except DomainError as error:
            # Whatever changed since the check (a pipeline retired, an owner gone): the import
            # stops, nothing is saved, and the person is told which row.
            raise DomainError(_("Row %(row)s: %(problem)s") % {"row": job.row, "problem": error.message}) from error
        opened += 1
        welcomes += len(contacts)
    return JobsPlan(to_open=opened, welcomes=welcomes, already_there=len(jobs) - opened)
