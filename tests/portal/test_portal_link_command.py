"""manage.py portal_link: a fresh sign-in link for each contact with an address."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from crm.models import Contact, Customer, Job


def run(*args: str, **options: object) -> str:
    out = StringIO()
    call_command("portal_link", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_it_prints_a_link_that_signs_in(john: Contact, job: Job) -> None:
    output = run("John@Example.com")
    assert "John Smith (Dupont household), English:" in output
    link = output.strip().splitlines()[-1]
    assert link.startswith("http://testserver/portal/enter/")
    client = Client()
    assert client.get(link)["Location"] == reverse("portal:home")
    assert "Heat pump installation" in client.get(reverse("portal:home")).text


def test_it_prints_one_link_per_contact(john: Contact, other_customer: Customer) -> None:
    Contact.objects.create(customer=other_customer, name="John at Acme", email="john@example.com")
    output = run("john@example.com", verbosity=0)
    assert len(output.strip().splitlines()) == 2


def test_it_opens_a_job(john: Contact, job: Job) -> None:
    link = run(job.customer.contacts.get(name="John Smith").email, "--job", job.reference, verbosity=0).strip()
    assert link.endswith(f"?job={job.public_id}")


def test_it_says_clearly_when_nobody_has_the_address(db) -> None:
    with pytest.raises(CommandError, match=r"No contact has the email address 'nobody@example\.com'"):
        run("nobody@example.com")
