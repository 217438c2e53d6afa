"""django-q2 entry points for the portal: load, call a service. Nothing else lives here."""

from __future__ import annotations

from crm.ids import parse_public_id
from crm.services.contacts import contact_send_portal_links


def send_portal_links(address: str, job_public_id: str | None = None) -> int:
    """ "Send me a new link", done away from the request: how many links were queued.

    ``address`` is what the person typed, already cleaned by the form: an email address, or a
    mobile number (the only kind without an "@"). Tasks queued before numbers were accepted carry
    an email address in the same place.
    """
    job = parse_public_id(job_public_id)
    if "@" in address:
        return len(contact_send_portal_links(email=address, job_public_id=job))
    return len(contact_send_portal_links(phone=address, job_public_id=job))
