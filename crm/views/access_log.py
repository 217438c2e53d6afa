"""What a staff page notes in the access log when it shows a customer's data: who (the signed-in
staff member) and where (the page's address, its query too: a report's period) come from the
request; what, whose and which from the view (crm.services.access_log writes the row)."""

from __future__ import annotations

from crm.access import StaffRequest
from crm.services.access_log import access_record


def seen(request: StaffRequest, kind: str, *, customer_id: int | None = None, subject: str = "") -> None:
    access_record(user=request.user, kind=kind, customer_id=customer_id, subject=subject, path=request.get_full_path())
