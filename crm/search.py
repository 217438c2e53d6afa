"""Finding a job, a customer or a contact by what a person remembers of it: a reference, a name,
an email address, a phone number however it is written, a job's title.

One rule for every search box of the staff side: the navigation's search (``search``), the
customers list and the new job's customer picker (``customers_matching``) and the jobs list's
filter (``jobs_matching``). Text matches anywhere, in any case (``icontains``); a phone number
matches on its digits (crm.phones.search_key against ``Contact.phone_digits``). On PostgreSQL
every condition is held by a trigram index (migration 0016), so a search reads the matching rows,
not the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from crm.models import Contact, Customer, Job
from crm.phones import search_key

JobsT = TypeVar("JobsT", bound=QuerySet[Any])
CustomersT = TypeVar("CustomersT", bound=QuerySet[Any])

# Shorter text finds too much to be useful (and no trigram index can help).
MIN_LENGTH = 2


def contacts_matching(text: str) -> QuerySet[Contact]:
    """Contacts whose name or email contains ``text``, or whose number is the number typed."""
    condition = Q(name__icontains=text) | Q(email__icontains=text)
    key = search_key(text)
    if key:
        condition |= Q(phone_digits__contains=key)
    return Contact.objects.filter(condition)


def customer_ids_matching(text: str) -> QuerySet[Any]:
    """The ids of the customers whose name, or one of whose contacts, matches ``text``: a UNION,
    so that each side is read by its own index (an OR across two tables would read them all)."""
    # Unordered: a UNION's sides may not be sorted (SQLite refuses; the models sort by default).
    by_name = Customer.objects.filter(name__icontains=text).order_by().values("pk")
    return by_name.union(contacts_matching(text).order_by().values("customer_id"))


def customers_matching(customers: CustomersT, text: str) -> CustomersT:
    """The customers whose name, or one of whose contacts, matches ``text`` (all of them when
    nothing was typed)."""
    if not text:
        return customers
    return customers.filter(pk__in=customer_ids_matching(text))


def jobs_matching(jobs: JobsT, text: str) -> JobsT:
    """The jobs whose reference or title, or whose customer (its name or one of its contacts),
    matches ``text`` (all of them when nothing was typed)."""
    if not text:
        return jobs
    by_text = Job.objects.filter(Q(reference__icontains=text) | Q(title__icontains=text)).order_by().values("pk")
    of_customers = Job.objects.filter(customer_id__in=customer_ids_matching(text)).order_by().values("pk")
    return jobs.filter(pk__in=by_text.union(of_customers))


@dataclass
class Found:
    """One kind of result: the first rows, and whether there are more."""

    rows: list[Any]
    more: bool = False


@dataclass
class SearchResults:
    text: str
    jobs: Found = field(default_factory=lambda: Found([]))
    customers: Found = field(default_factory=lambda: Found([]))
    contacts: Found = field(default_factory=lambda: Found([]))
    too_short: bool = False

    @property
    def empty(self) -> bool:
        return not (self.jobs.rows or self.customers.rows or self.contacts.rows)


def _first(queryset: QuerySet[Any], limit: int) -> Found:
    rows = list(queryset[: limit + 1])
    return Found(rows[:limit], more=len(rows) > limit)


def _exact_first(field_name: str, text: str) -> Case:
    """0 for a row whose ``field_name`` is exactly what was typed (any case), else 1."""
    return Case(When(**{f"{field_name}__iexact": text}, then=Value(0)), default=Value(1), output_field=IntegerField())


def search(text: str, *, limit: int) -> SearchResults:
    """At most ``limit`` jobs (an exact reference first, then open jobs, the most recently
    changed first), customers and contacts (by name) matching ``text``: three queries."""
    if len(text) < MIN_LENGTH:
        return SearchResults(text=text, too_short=bool(text))
    jobs = (
        jobs_matching(Job.objects.select_related("customer", "current_stage", "owner"), text)
        .annotate(
            exact=_exact_first("reference", text),
            closed=Case(
                When(status__in=Job.OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
        )
        .order_by("exact", "closed", "-updated_at", "-pk")
    )
    customers = customers_matching(Customer.objects.all(), text).annotate(exact=_exact_first("name", text))
    contacts = contacts_matching(text).select_related("customer")
    return SearchResults(
        text=text,
        jobs=_first(jobs, limit),
        customers=_first(customers.order_by("exact", "name", "pk"), limit),
        contacts=_first(contacts.order_by("name", "pk"), limit),
    )
