"""Migrations that rename keep the data: what a customer asked before 0006 is still there after,
with its promise, its check-in and its email."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from crm.models import CheckIn, Commitment, Question

BEFORE = [("crm", "0005_import_jobs")]
AFTER = [("crm", "0006_question")]


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_renaming_request_to_question_keeps_every_row_and_link() -> None:
    old = migrate(BEFORE)
    try:
        User = old.get_model("auth", "User")
        owner = User.objects.create(username="owner")
        customer = old.get_model("crm", "Customer").objects.create(name="Dupont household")
        contact = old.get_model("crm", "Contact").objects.create(customer=customer, name="Marie", email="m@example.com")
        pipeline = old.get_model("crm", "Pipeline").objects.create(name="Repair")
        stage = old.get_model("crm", "StageTemplate").objects.create(pipeline=pipeline, position=1, name="Booked")
        job = old.get_model("crm", "Job").objects.create(
            reference="J-2026-0001",
            title="Pump",
            customer=customer,
            pipeline=pipeline,
            current_stage=stage,
            owner=owner,
        )
        email = old.get_model("crm", "Message").objects.create(
            job=job, contact=contact, channel="email", direction="in", status="received", idempotency_key="in:1"
        )
        asked = old.get_model("crm", "Request").objects.create(
            job=job, contact=contact, source="email", body="When?", answer_due_on=date(2026, 3, 4), message=email
        )
        now = timezone.now()
        old.get_model("crm", "Commitment").objects.create(
            job=job, kind="answer", title="An answer", owner=owner, first_due_at=now, due_at=now, request=asked
        )
        old.get_model("crm", "CheckIn").objects.create(job=job, contact=contact, request=asked)
    finally:
        migrate(AFTER)
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    question = Question.objects.get(pk=asked.pk)
    assert (question.body, question.job_id, question.contact_id, question.message_id) == (
        "When?",
        job.pk,
        contact.pk,
        email.pk,
    )
    assert Commitment.objects.get(job_id=job.pk).question == question
    assert CheckIn.objects.get(job_id=job.pk).question == question
    assert list(question.commitments.all()) == list(Commitment.objects.filter(job_id=job.pk))
