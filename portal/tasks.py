"""django-q2 entry points for the portal: load, call a service. Nothing else lives here."""

from __future__ import annotations

from crm.services.contacts import contact_send_portal_links
from portal.access import parse_public_id


def send_portal_links(email: str, job_public_id: str | None = None) -> int:
    """ "Email me a new link", done away from the request: how many links were queued."""
    return len(contact_send_portal_links(email=email, job_public_id=parse_public_id(job_public_id)))
