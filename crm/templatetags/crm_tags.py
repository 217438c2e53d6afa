from typing import Any
from urllib.parse import urlencode

from django import template
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from crm import phones, selectors
from crm.dates import said_date
from crm.text import tel_href

register = template.Library()


@register.filter(expects_localtime=True)
def localdate(value: Any, fmt: str) -> str:
    """A date in Django's format letters as the reader's language says it (« 1er » in French)."""
    if not value:
        return ""
    return said_date(value, fmt)


@register.simple_tag(takes_context=True)
def attention_counts(context: template.Context, user: Any) -> dict[str, int]:
    """The navigation's numbers; the dashboard passes its own so they are not counted twice."""
    if "attention_counts" in context:
        return context["attention_counts"]
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return {"total": 0, "unassigned": 0}
    return selectors.attention_counts(user)


STATUS_CLASSES = {
    "queued": "text-bg-secondary",
    "sending": "text-bg-secondary",
    "sent": "text-bg-primary",
    "delivered": "text-bg-success",
    "received": "text-bg-success",
    "bounced": "text-bg-danger",
    "failed": "text-bg-danger",
    "call_pending": "text-bg-warning",
    "active": "text-bg-primary",
    "on_hold": "text-bg-warning",
    "done": "text-bg-success",
    "cancelled": "text-bg-secondary",
    "open": "text-bg-primary",
    "renegotiated": "text-bg-warning",
    "kept": "text-bg-success",
    "broken": "text-bg-danger",
    "withdrawn": "text-bg-secondary",
}


@register.filter
def status_class(status: str) -> str:
    """Bootstrap badge classes for a message or job status (all with sufficient contrast)."""
    return STATUS_CLASSES.get(status, "text-bg-light")


@register.filter
def tel(phone: str) -> str:
    """A ``tel:`` link for a phone number as people write it (spaces are not allowed in one)."""
    return tel_href(phone or "")


@register.filter
def phone(number: str, form: str = "") -> str:
    """A stored number as its reader expects it (crm.phones.display): the national form for a
    number of PHONE_DEFAULT_REGION, the international one for any other; ``phone:"international"``
    always the international one (what customers read, wherever they are). Text that is not a
    number is shown as it was typed."""
    if not number:
        return ""
    return phones.display(str(number), international=form == "international")


@register.simple_tag
def new_job_url(carried: dict[str, str] | None, customer: int | None = None) -> str:
    """The new-job page with what was typed so far (and a chosen customer) in its query string."""
    query = {**(carried or {}), **({"customer": str(customer)} if customer is not None else {})}
    url = reverse("crm:job_new")
    return f"{url}?{urlencode(query)}" if query else url


@register.filter
def sentence(text: str) -> str:
    """Words a person typed, ending as a sentence: a full stop added unless they put one."""
    text = (text or "").strip()
    return text if not text or text.endswith((".", "!", "?", "…")) else text + "."
