"""List every stored phone number that is not a valid number in E.164: the contacts' and the staff's
numbers that migration 0019 could not read (kept exactly as typed), and any written since by
something other than the forms and services. Each needs someone who knows the number to correct it
(the contact's page, or the admin's "Phone number" filter). Exit status 0 whatever is found."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from crm import phones
from crm.models import Contact, StaffProfile
from crm.text import person_name


class Command(BaseCommand):
    help = (
        "List the contacts and staff profiles whose phone number is not a valid E.164 number (the ones "
        "the E.164 migration left as typed), tab-separated: kind, id, name, customer, the number as stored "
        "(quoted); then a count. With -v 0, the count only."
    )

    def handle(self, *args: Any, verbosity: int = 1, **options: Any) -> None:
        rows: list[tuple[str, int, str, str, str]] = []
        contacts = Contact.objects.exclude(phone="").select_related("customer").order_by("pk")
        for contact in contacts.iterator(chunk_size=2000):
            if not phones.is_e164(contact.phone):
                rows.append(("contact", contact.pk, contact.name, contact.customer.name, contact.phone))
        profiles = StaffProfile.objects.exclude(phone="").select_related("user").order_by("pk")
        for profile in profiles.iterator(chunk_size=2000):
            if not phones.is_e164(profile.phone):
                rows.append(("staff", profile.pk, person_name(profile.user), "—", profile.phone))
        if verbosity >= 1 and rows:
            self.stdout.write("kind\tid\tname\tcustomer\tnumber as stored")
            for kind, pk, name, customer, number in rows:
                # Quoted: the number exactly as stored, its spaces and odd characters shown.
                self.stdout.write(f"{kind}\t{pk}\t{name}\t{customer}\t{number!r}")
        contacts_count = sum(1 for row in rows if row[0] == "contact")
        self.stdout.write(
            f"{len(rows)} number{'s' if len(rows) != 1 else ''} not understood: "
            f"{contacts_count} of contacts, {len(rows) - contacts_count} of staff."
        )
