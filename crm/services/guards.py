"""What a write makes sure of before it decides, shared by the job, promise and message services:
the job rows locked and read afresh (lock_job, lock_jobs), the contacts chosen being the
customer's (ensure_contacts_of). Imports no other service, so every service can import it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import Contact, Customer, Job


def lock_job(job: Job) -> Job:
    """Re-read the job under a row lock; decisions are made on this copy, never on the caller's.

    The job row alone: with joins, PostgreSQL would also lock the stage, pipeline and owner rows
    (blocking every other job that shares them) and, re-checking the join after a concurrent
    stage change, drop the row instead of returning the new state.
    """
    return Job.objects.select_for_update().get(pk=job.pk)


def lock_jobs(jobs: Iterable[Job]) -> list[Job]:
    """Lock the job rows (in id order, so two moves of overlapping sets cannot deadlock), then
    read them afresh with what decisions and messages need: stage, pipeline, customer, owner and
    the owner's profile (a second query: see lock_job for why the lock takes no joins)."""
    ids = sorted({job.pk for job in jobs})
    locked = set(Job.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    if len(locked) != len(ids):
        raise DomainError(_("A job you chose no longer exists; look again."))
    return list(
        Job.objects.select_related("current_stage", "pipeline", "customer", "owner__staff_profile")
        .filter(pk__in=ids)
        .order_by("pk")
    )


def ensure_contacts_of(customer: Customer, contacts: Iterable[Contact]) -> list[Contact]:
    contacts = list(contacts)
    strangers = [c.name for c in contacts if c.customer_id != customer.pk]
    if strangers:
        raise DomainError(
            _("%(names)s is not a contact of %(customer)s.")
            % {
                "names": ", ".join(strangers),
                "customer": customer.name,
            }
        )
    return contacts
