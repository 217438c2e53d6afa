"""Customers and their contacts: list, create, edit; a contact's preferences, the last uses of
their links and "Reset links"; a new job.

Every view requires staff. Reads are the queries below, each shaped for its page (a fixed number
of queries however many rows); writes go through crm.services.customers and crm.services.jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Prefetch, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import selectors
from crm.access import StaffRequest, staff_required
from crm.errors import DomainError
from crm.forms.customers import ContactForm, CustomerForm, JobCreateForm
from crm.forms.fields import search_text
from crm.forms.questions import CustomerQuestionForm
from crm.ids import id_from_input
from crm.models import AccessRecord, Contact, ContactLinkUse, Customer, Job
from crm.search import customers_matching
from crm.services.contacts import contact_links_reset
from crm.services.customers import contact_create, contact_update, customer_create, customer_update
from crm.services.jobs import job_create
from crm.sql import count_of
from crm.views.access_log import seen
from crm.views.jobs import preview_of

CUSTOMERS_PER_PAGE = 50
# The contact's page lists this many of the last uses of their links.
LINK_USES_SHOWN = 20
# Above this many customers the new-job page finds the customer by search instead of a select.
CUSTOMER_SELECT_MAX = 200
PICKER_MATCHES = 20


# --- Lookups and reads --------------------------------------------------------------------------


def _get_customer(pk: int) -> Customer:
    return get_object_or_404(Customer, pk=pk)


def _get_contact(pk: int) -> Contact:
    return get_object_or_404(Contact.objects.select_related("customer"), pk=pk)


def _link_uses(contact: Contact) -> list[ContactLinkUse]:
    """The contact's last uses of their links, newest first, with who reset them: one query."""
    uses = ContactLinkUse.objects.filter(contact=contact).select_related("actor").order_by("-at", "-pk")
    return list(uses[:LINK_USES_SHOWN])


def _with_contacts(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    return customers.prefetch_related(
        Prefetch("contacts", queryset=Contact.objects.only("pk", "customer_id", "name", "email").order_by("name"))
    )


def _customers_for_list(search: str) -> QuerySet[Customer]:
    customers = Customer.objects.annotate(
        contact_count=count_of(Contact.objects.filter(customer=OuterRef("pk"))),
        open_job_count=count_of(Job.objects.filter(customer=OuterRef("pk"), status__in=Job.OPEN_STATUSES)),
    )
    return _with_contacts(customers_matching(customers, search)).order_by("name", "pk")


@dataclass(frozen=True)
class CustomerMatches:
    """The first customers matching what was typed on the new-job page, and how many match."""

    search: str
    customers: list[Customer]
    total: int


def _customer_matches(search: str) -> CustomerMatches:
    """At most PICKER_MATCHES customers (three queries however many there are); none before
    anything is typed."""
    if not search:
        return CustomerMatches(search="", customers=[], total=0)
    matches = customers_matching(Customer.objects.all(), search)
    return CustomerMatches(
        search=search,
        customers=list(_with_contacts(matches).order_by("name", "pk")[:PICKER_MATCHES]),
        total=matches.count(),
    )


def _paginate(request: HttpRequest, queryset: QuerySet[Any], per_page: int) -> Page:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def _posted(request: HttpRequest) -> Any:
    # Not ``request.POST or None``: an empty POST must still be a bound form that shows its errors.
    return request.POST if request.method == "POST" else None


def _add_service_errors(form: BaseForm, error: ValidationError) -> None:
    """Put a service's ValidationError next to the fields it names (others above the form)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields and field != NON_FIELD_ERRORS else None, errors)


# --- Customers ----------------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET"])
def customer_list(request: StaffRequest) -> HttpResponse:
    search = search_text(request.GET.get("q"))
    page = _paginate(request, _customers_for_list(search), CUSTOMERS_PER_PAGE)
    return render(
        request,
        "crm/customers/list.html",
        {"nav": "customers", "page": page, "customers": page.object_list, "search": search},
    )


@staff_required
@require_http_methods(["GET", "POST"])
def customer_new(request: StaffRequest) -> HttpResponse:
    form = CustomerForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_create(**form.cleaned_data)
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
            return redirect("crm:customer", customer.pk)
    return render(request, "crm/customers/customer_form.html", {"nav": "customers", "form": form})


@staff_required
@require_http_methods(["GET"])
def customer_detail(request: StaffRequest, pk: int) -> HttpResponse:
    customer = _get_customer(pk)
    seen(request, AccessRecord.Kind.CUSTOMER, customer_id=customer.pk, subject=customer.name)
    return customer_page(request, customer)


def customer_page(
    request: StaffRequest, customer: Customer, *, request_form: CustomerQuestionForm | None = None, status: int = 200
) -> HttpResponse:
    """The customer's page, with its "Log a request" form (bound, with its errors, after a refusal:
    crm.views.questions)."""
    contacts = selectors.with_sms_opt_outs(list(customer.contacts.order_by("name", "pk")))
    jobs = list(customer.jobs.select_related("current_stage", "pipeline", "owner").order_by("-created_at", "-pk"))
    if request_form is None:
        request_form = CustomerQuestionForm(customer=customer, contacts=contacts, jobs=[j for j in jobs if j.is_open])
    return render(
        request,
        "crm/customers/detail.html",
        {"nav": "customers", "customer": customer, "contacts": contacts, "jobs": jobs, "request_form": request_form},
        status=status,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def customer_edit(request: StaffRequest, pk: int) -> HttpResponse:
    customer = _get_customer(pk)
    form = CustomerForm(_posted(request), instance=customer)
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_update(customer=customer, **form.cleaned_data)
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, _("Customer %(name)s saved.") % {"name": customer.name})
            return redirect("crm:customer", customer.pk)
    if form.is_bound:
        # The form changed the instance while validating; the page names the customer as saved.
        customer.refresh_from_db()
    else:
        seen(request, AccessRecord.Kind.CUSTOMER, customer_id=customer.pk, subject=customer.name)
    return render(request, "crm/customers/customer_form.html", {"nav": "customers", "form": form, "customer": customer})


# --- Contacts -----------------------------------------------------------------------------------


def _contact_fields(form: ContactForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "email": data["email"],
        "phone": data["phone"],
        "language": data["language"],
        "preferred_channel": data["preferred_channel"],
        "time_zone": data["time_zone"],
        "sms_consent": data["sms_consent"],
        "sms_consent_source": data.get("sms_consent_source") or "",
    }


@staff_required
@require_http_methods(["GET", "POST"])
def contact_new(request: StaffRequest, pk: int) -> HttpResponse:
    customer = _get_customer(pk)
    form = ContactForm(_posted(request), instance=Contact(customer=customer))
    if request.method == "POST" and form.is_valid():
        try:
            contact = contact_create(customer=customer, **_contact_fields(form))
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, _("Contact %(name)s added.") % {"name": contact.name})
            return redirect("crm:customer", customer.pk)
    return render(request, "crm/customers/contact_form.html", {"nav": "customers", "form": form, "customer": customer})


@staff_required
@require_http_methods(["GET", "POST"])
def contact_edit(request: StaffRequest, pk: int) -> HttpResponse:
    contact = _get_contact(pk)
    customer = contact.customer
    form = ContactForm(_posted(request), instance=contact)
    if request.method == "POST" and form.is_valid():
        withdraws_sms = form.withdraws_sms
        try:
            contact = contact_update(contact=contact, **_contact_fields(form))
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, _("Contact %(name)s saved.") % {"name": contact.name})
            if withdraws_sms:
                messages.info(
                    request,
                    _("SMS consent withdrawn: %(name)s now hears from us by %(channel)s.")
                    % {"name": contact.name, "channel": contact.get_preferred_channel_display().lower()},
                )
            return redirect("crm:customer", customer.pk)
    if form.is_bound:
        contact.refresh_from_db()
    else:
        # The contact's address, phone and where their links were used.
        seen(request, AccessRecord.Kind.CUSTOMER, customer_id=customer.pk, subject=contact.name)
    return render(
        request,
        "crm/customers/contact_form.html",
        {"nav": "customers", "form": form, "customer": customer, "contact": contact, "link_uses": _link_uses(contact)},
    )


@staff_required
@require_POST
def contact_reset_links(request: StaffRequest, pk: int) -> HttpResponse:
    """ "Reset links" on the contact's page: every sign-in link sent to them, their calendar
    address and their portal sessions stop working (crm.services.contacts.contact_links_reset)."""
    contact = contact_links_reset(
        contact=_get_contact(pk), actor=request.user, user_agent=request.headers.get("User-Agent", "")
    )
    messages.success(
        request,
        _(
            "Links of %(name)s reset: the sign-in links sent before now, their calendar address and their "
            "portal sessions no longer work. Their next message brings a new link; they can also ask for one "
            "on the portal."
        )
        % {"name": contact.name},
    )
    return redirect(reverse("crm:contact_edit", args=[contact.pk]) + "#links")


# --- Jobs ---------------------------------------------------------------------------------------


# What the new-job page carries in its query string while the customer is chosen (or changed).
CARRIED_FIELDS = ("pipeline", "owner", "title", "start_date")


def _carried(request: HttpRequest) -> dict[str, str]:
    return {name: request.GET[name] for name in CARRIED_FIELDS if request.GET.get(name)}


def _job_form_initial(request: HttpRequest) -> dict[str, Any]:
    """Values carried in the query string: ?customer= from a customer's page, and what was typed
    before the form reloaded for another customer."""
    customer = {"customer": request.GET["customer"]} if request.GET.get("customer") else {}
    return {"owner": request.user.pk, **customer, **_carried(request)}


def _chosen_customer(value: Any) -> Customer | None:
    customer_id = id_from_input(value, Customer)
    return Customer.objects.filter(pk=customer_id).first() if customer_id is not None else None


@staff_required
@require_http_methods(["GET", "POST"])
def job_new(request: StaffRequest) -> HttpResponse:
    """A new job. With many customers, the customer is found by search first (typed values are
    carried along); otherwise chosen in the form, which reloads to offer that customer's contacts."""
    refresh_url = reverse("crm:job_new")
    by_search = Customer.objects.count() > CUSTOMER_SELECT_MAX
    if request.method == "POST":
        form = JobCreateForm(request.POST, refresh_url=refresh_url, customer_by_search=by_search)
        if form.is_valid():
            try:
                job = _create_job(request, form.cleaned_data)
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("Job %(reference)s created.") % {"reference": job.reference})
                return redirect("crm:job", job.public_id)
    else:
        form = JobCreateForm(initial=_job_form_initial(request), refresh_url=refresh_url, customer_by_search=by_search)
    return _job_form_page(request, form, by_search=by_search)


def _create_job(request: StaffRequest, data: dict[str, Any]) -> Job:
    return job_create(
        customer=data["customer"],
        pipeline=data["pipeline"],
        owner=data["owner"],
        title=data["title"],
        contacts=list(data["contacts"]) or None,
        start_date=data["start_date"],
        actor=request.user,
        notify_customer=data["notify_customer"],
        not_told_reason=data["not_told_reason"],
    )


@staff_required
@require_GET
def job_new_preview(request: StaffRequest) -> HttpResponse:
    """Exactly the welcome each contact would receive: the job is created in a transaction that
    is rolled back (nothing is kept, no reference is used up)."""
    by_search = Customer.objects.count() > CUSTOMER_SELECT_MAX
    form = JobCreateForm(request.GET, refresh_url=reverse("crm:job_new"), customer_by_search=by_search)
    result = preview_of(form, lambda data: _create_job(request, data), name="welcome")
    if request.htmx:
        return render(request, "crm/job/_preview.html", {"preview": result})
    return _job_form_page(request, form, by_search=by_search, preview=result)


def _job_form_page(
    request: StaffRequest, form: JobCreateForm, *, by_search: bool, preview: dict[str, Any] | None = None
) -> HttpResponse:
    # "chosen": the customer shown above the form when it is found by search (none with a select).
    context: dict[str, Any] = {
        "nav": "customers",
        "form": form,
        "by_search": by_search,
        "chosen": None,
        "preview": preview or {},
    }
    if by_search:
        # What was typed so far, carried to the chosen customer's form (and back when changing).
        # The customer named by the form (shown above it), else the search that finds one.
        chosen = _chosen_customer((request.POST if request.method == "POST" else request.GET).get("customer"))
        context.update(
            chosen=chosen, matches=_customer_matches(search_text(request.GET.get("q"))), carried=_carried(request)
        )
        if request.htmx and request.htmx.target == "customer-matches":
            return render(request, "crm/customers/_customer_matches.html", context)
    return render(request, "crm/customers/job_form.html", context)


urlpatterns: list[URLPattern] = [
    path("customers/", customer_list, name="customers"),
    path("customers/new/", customer_new, name="customer_new"),
    path("customers/<int:pk>/", customer_detail, name="customer"),
    path("customers/<int:pk>/edit/", customer_edit, name="customer_edit"),
    path("customers/<int:pk>/contacts/new/", contact_new, name="contact_new"),
    path("contacts/<int:pk>/edit/", contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/reset-links/", contact_reset_links, name="contact_reset_links"),
    path("jobs/new/", job_new, name="job_new"),
    path("jobs/new/preview/", job_new_preview, name="job_new_preview"),
]
