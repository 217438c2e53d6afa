"""Files on the staff job page: what the customer sent (thumbnails, at once), sharing a document
(the customer told, the promise of it kept at that moment), withdrawing one, opening any of them —
staff only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Commitment, Contact, Job, JobEvent, JobFile, Message
from crm.services.files import document_share
from crm.services.promises import document_promise
from crm.uploads import inspect
from crm.workdays import add_business_days, business_today
from tests.files import HTML, PDF, fill_to_thirty, jpeg, received, upload

pytestmark = pytest.mark.django_db


def job_url(job: Job) -> str:
    return reverse("crm:job", args=[job.public_id])


def share_url(job: Job) -> str:
    return reverse("crm:document_share", args=[job.public_id])


def share(client: Client, job: Job, name: str = "quote.pdf", data: bytes = PDF, **fields: object) -> object:
    return client.post(
        share_url(job),
        {"document-document": upload(name, data, "application/pdf"), **{f"document-{k}": v for k, v in fields.items()}},
    )


def test_the_customers_photos_show_on_the_job_page_at_once(staff: Client, live_job: Job, contact: Contact) -> None:
    photos = received(live_job, contact, "panel.jpg", "spot.jpg")
    page = staff.get(job_url(live_job)).text
    files = page.split('id="files"')[1].split("</section>")[0]
    for photo in photos:
        assert reverse("crm:job_file_thumbnail", args=[live_job.public_id, photo.public_id]) in files
        assert photo.title in files
    assert f"From {contact.name}" in files


def test_sharing_a_document_tells_the_customer_and_keeps_the_promise_on_time(
    staff: Client, live_job: Job, contact: Contact, bob: User
) -> None:
    promise = document_promise(
        job=live_job, title="Quote by Friday", due_on=add_business_days(business_today(), 3), actor=bob
    )
    response = share(staff, live_job, title="Quote for the heat pump", keeps=str(promise.pk))

    assert response.status_code == 302
    shared = live_job.files.get()
    assert (shared.direction, shared.title, shared.shared_by, shared.commitment) == (
        "out",
        "Quote for the heat pump",
        bob,
        promise,
    )
    promise.refresh_from_db()
    assert promise.state == Commitment.State.KEPT
    assert promise.kept_at == shared.created_at
    kept = live_job.events.get(kind=JobEvent.Kind.PROMISE_KEPT, data__commitment_id=promise.pk)
    assert kept.data["on_time"] is True
    assert live_job.events.filter(kind=JobEvent.Kind.DOCUMENT_SHARED).count() == 1
    # The contact is told with a link to their page, no attachment by default.
    (message,) = Message.objects.filter(kind=Message.Kind.DOCUMENT_SHARED)
    assert (message.contact, message.document, message.channel) == (contact, shared, "email")
    assert "Quote for the heat pump" in message.subject
    assert "/portal/enter/" in message.body_text


def test_a_late_promise_is_kept_late(staff: Client, live_job: Job, bob: User, time_machine) -> None:
    promise = document_promise(job=live_job, title="The quote", due_on=business_today(), actor=bob)
    time_machine.move_to(timezone.now() + timedelta(days=3))
    share(staff, live_job, keeps=str(promise.pk))
    kept = live_job.events.get(kind=JobEvent.Kind.PROMISE_KEPT, data__commitment_id=promise.pk)
    assert kept.data["on_time"] is False


def test_a_refused_file_is_said_on_the_form_and_nothing_is_shared(staff: Client, live_job: Job) -> None:
    response = share(staff, live_job, name="quote.pdf", data=HTML)
    assert response.status_code == 400
    assert "“quote.pdf”: we can only take photos (JPEG, PNG, WebP) and PDF documents." in response.text
    assert not JobFile.objects.exists()
    assert not Message.objects.filter(kind=Message.Kind.DOCUMENT_SHARED).exists()


def test_a_nul_in_the_title_or_the_file_name_is_no_500(staff: Client, live_job: Job) -> None:
    response = share(staff, live_job, name="de\x00vis.pdf", title="Quote\x00")
    assert response.status_code == 400
    assert "Null characters are not allowed." in response.text
    response = share(staff, live_job, name="de\x00vis.pdf", title="Quote")
    assert response.status_code == 302
    assert live_job.files.get().original_name == "devis.pdf"


def test_the_promise_of_another_job_cannot_be_kept(staff: Client, live_job: Job, job: Job, bob: User) -> None:
    theirs = document_promise(job=job, title="Their quote", due_on=business_today(), actor=bob)
    response = share(staff, live_job, keeps=str(theirs.pk))
    assert response.status_code == 400
    assert "Select a valid choice." in response.text
    theirs.refresh_from_db()
    assert theirs.state == Commitment.State.OPEN


def test_attaching_small_pdfs_to_the_email_is_a_setting(
    live_job: Job, contact: Contact, bob: User, settings, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    settings.FILE_EMAIL_ATTACH_MAX_KB = 1
    with django_capture_on_commit_callbacks(execute=True):
        document_share(job=live_job, actor=bob, document=inspect("devis.pdf", PDF), title="Quote")
    (sent,) = [m for m in mailoutbox if "Quote" in m.subject]
    assert sent.attachments == [("devis.pdf", PDF, "application/pdf")]
    # Marie reads French.
    assert "Il est aussi joint à cet e-mail." in sent.body


def test_by_default_the_email_carries_the_link_only(
    live_job: Job, bob: User, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        document_share(job=live_job, actor=bob, document=inspect("devis.pdf", PDF), title="Quote")
    (sent,) = [m for m in mailoutbox if "Quote" in m.subject]
    assert sent.attachments == []


def test_withdrawing_needs_a_reason_and_keeps_the_file(staff: Client, live_job: Job, bob: User) -> None:
    shared = document_share(job=live_job, actor=bob, document=inspect("devis.pdf", PDF), title="Quote")
    url = reverse("crm:document_withdraw", args=[live_job.public_id, shared.public_id])
    staff.post(url, {"reason": ""})
    shared.refresh_from_db()
    assert shared.withdrawn_at is None

    staff.post(url, {"reason": "Replaced by the new quote"})
    shared.refresh_from_db()
    assert (shared.withdrawn_by, shared.withdrawn_reason) == (bob, "Replaced by the new quote")
    assert shared.file.storage.exists(shared.file.name)
    page = staff.get(job_url(live_job)).text
    assert "Withdrawn from the portal on" in page
    # Staff can still open it: it is kept for the record.
    assert staff.get(reverse("crm:job_file", args=[live_job.public_id, shared.public_id])).status_code == 200


def test_files_open_for_staff_only(client: Client, live_job: Job, contact: Contact) -> None:
    (photo,) = received(live_job, contact, "panel.jpg")
    url = reverse("crm:job_file", args=[live_job.public_id, photo.public_id])
    response = client.get(url)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_file_of_another_job_is_a_404(staff: Client, live_job: Job, job: Job, contact: Contact) -> None:
    (photo,) = received(job, contact, "panel.jpg")
    url = reverse("crm:job_file", args=[live_job.public_id, photo.public_id])
    assert staff.get(url).status_code == 404


def test_the_job_page_costs_the_same_for_1_or_30_files(
    staff: Client, live_job: Job, contact: Contact, bob: User
) -> None:
    received(live_job, contact, "one.jpg")

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(job_url(live_job)).status_code == 200
        return len(queries)

    few = cost()
    fill_to_thirty(live_job, contact, bob)
    assert cost() == few


def test_a_photo_can_be_shared_too(staff: Client, live_job: Job) -> None:
    response = staff.post(share_url(live_job), {"document-document": upload("done.jpg", jpeg()), "document-title": ""})
    assert response.status_code == 302
    assert live_job.files.get().title == "done.jpg"
