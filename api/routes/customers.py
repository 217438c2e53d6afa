"""Customers and their contacts: read, and add (the staff pages' own services)."""

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from api import selectors
from api.auth import acting, needs
from api.idempotency import idempotent
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, page
from api.problems import rules_about
from api.responses import json_response
from api.routes.common import found
from api.schemas import ContactIn, ContactOut, ContactPage, CustomerIn, CustomerOut, CustomerPage, Id, Since
from crm.models import Contact, Customer
from crm.services import customers as services
from crm.services.webhooks import current_via

router = Router(tags=["customers"])


@router.get(
    "/customers/", response=CustomerPage, summary="List customers, oldest change first", **needs("customers:read")
)
def customer_list(
    request: HttpRequest,
    updated_since: Since | None = None,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = selectors.customers()
    if updated_since:
        rows = rows.filter(updated_at__gte=updated_since)
    return page(rows, cursor=cursor, limit=limit, by="updated_at", row=selectors.customer_row)


@router.get(
    "/customers/{customer_id}/",
    response=CustomerOut,
    summary="One customer with its contacts",
    **needs("customers:read"),
)
def customer_get(request: HttpRequest, customer_id: Id) -> dict[str, object]:
    return selectors.customer_row(found(selectors.customers(), what="customer", pk=customer_id))


@router.post("/customers/", response={201: CustomerOut}, summary="Add a customer", **needs("customers:write"))
@acting
@idempotent
def customer_create(request: HttpRequest, body: CustomerIn) -> HttpResponse:
    with rules_about("name"):
        customer = services.customer_create(name=body.name, kind=body.kind, address=body.address, notes=body.notes)
    return json_response(
        selectors.customer_row(found(selectors.customers(), what="customer", pk=customer.pk)), status=201
    )


@router.get("/contacts/", response=ContactPage, summary="List contacts, oldest change first", **needs("customers:read"))
def contact_list(
    request: HttpRequest,
    customer_id: Id | None = None,
    updated_since: Since | None = None,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    rows = Contact.objects.all()
    if customer_id:
        rows = rows.filter(customer_id=customer_id)
    if updated_since:
        rows = rows.filter(updated_at__gte=updated_since)
    return page(rows, cursor=cursor, limit=limit, by="updated_at", row=selectors.contact_row)


@router.post(
    "/customers/{customer_id}/contacts/",
    response={201: ContactOut},
    summary="Add a contact to a customer",
    **needs("customers:write"),
)
@acting
@idempotent
def contact_create(request: HttpRequest, customer_id: Id, body: ContactIn) -> HttpResponse:
    customer = found(Customer.objects.all(), what="customer", pk=customer_id)
    with rules_about("phone" if body.phone else "email"):
        contact = services.contact_create(
            customer=customer,
            name=body.name,
            email=body.email,
            phone=body.phone,
            language=body.language,
            preferred_channel=body.preferred_channel,
            sms_consent=body.sms_consent,
            sms_consent_source=current_via()["via"] if body.sms_consent else "",
        )
    return json_response(selectors.contact_row(contact), status=201)
