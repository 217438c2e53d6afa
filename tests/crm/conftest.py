"""Fixtures shared by the staff page tests (tests/conftest.py has the personas)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from crm.models import Contact, Customer, Job, Pipeline
from crm.services.jobs import job_create


@pytest.fixture
def staff(client: Client, bob: User) -> Client:
    """The client signed in as bob, a job owner (a module may sign in someone else instead)."""
    client.force_login(bob)
    return client


@pytest.fixture
def live_job(customer: Customer, contact: Contact, installation: Pipeline, bob: User) -> Job:
    """bob's heat pump job for the Dupont household, at its first stage."""
    return job_create(
        customer=customer,
        pipeline=installation,
        owner=bob,
        title="Heat pump",
        actor=bob,
        notify_customer=False,
        not_told_reason="Opened before the test.",
    )
