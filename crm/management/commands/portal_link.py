"""Print a fresh portal sign-in link for each contact with an email address (support, scripts)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm import links
from crm.models import Contact, Job


class Command(BaseCommand):
    help = (
        "Print a fresh portal sign-in link for each contact with this email address. "
        "With --job, the link opens that job. With -v 0, only the links are printed, one a line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="The contact's email address (case does not matter).")
        parser.add_argument("--job", metavar="REFERENCE", help="Open this job, e.g. J-2026-0042.")

    def handle(self, *args: Any, email: str, job: str | None = None, verbosity: int = 1, **options: Any) -> None:
        contacts = list(Contact.objects.select_related("customer").filter(email__iexact=email.strip()).order_by("pk"))
        if not contacts:
            raise CommandError(f"No contact has the email address {email!r}.")
        for contact in contacts:
            target = None
            if job:
                target = Job.objects.filter(customer_id=contact.customer_id, reference=job.strip()).first()
                if target is None:
                    self.stderr.write(f"{contact.name}: {job} is not a job of {contact.customer}; linking to all jobs.")
            url = links.portal_url(contact, target)
            if verbosity >= 1:
                self.stdout.write(f"{contact.name} ({contact.customer}), {contact.get_language_display()}:")
            self.stdout.write(url)
