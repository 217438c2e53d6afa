"""Writes to contacts' preferences."""

from django.db import transaction
from django.utils import timezone

from crm.models import Contact


@transaction.atomic
def contact_opt_out(*, contact: Contact) -> Contact:
    """Stop non-essential messages (check-ins, tips, surveys) to this contact. Idempotent: the
    first opt-out's time is kept."""
    Contact.objects.filter(pk=contact.pk, opted_out_at__isnull=True).update(opted_out_at=timezone.now())
    contact.refresh_from_db(fields=["opted_out_at"])
    return contact
