"""Files that come with a customer's email, through the real inbound webhook (Postmark's and
SendGrid's documented payloads over HTTP): filed on a job, they are kept like a portal upload
(inspected by content, EXIF stripped, a thumbnail, within the job's room) and the message says
which were kept and why any other was not; unfiled (no job), they are named, not kept; a webhook
delivered twice keeps them once; a filing that fails leaves no bytes behind."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
import requests
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from PIL import Image

from crm.links import portal_url
from crm.models import Contact, Job, JobEvent, JobFile, Message
from crm.uploads import THUMBNAIL_SIZE, inspect
from tests.crm.test_webhooks_inbound import (
    AUTH,
    QUOTED_FR,
    inbound,
    post_postmark,
    postmark_inbound,
    reply_address,
    sendgrid_parsed,
)
from tests.files import HTML, PDF, has_exif, jpeg, png

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]


def attachment(name: str, content: bytes, content_type: str) -> dict[str, Any]:
    """One entry of Postmark's Attachments list."""
    return {
        "Name": name,
        "Content": base64.b64encode(content).decode(),
        "ContentType": content_type,
        "ContentLength": len(content),
    }


def stored_names(job: Job) -> set[str]:
    """Every name in the job's part of the files' storage (bytes and thumbnails)."""

    def walk(path: str) -> set[str]:
        directories, files = default_storage.listdir(path)
        found = {f"{path}/{f}".lstrip("/") for f in files}
        for d in directories:
            found |= walk(f"{path}/{d}".lstrip("/"))
        return found

    root = f"jobs/{job.public_id}"
    return walk(root) if default_storage.exists(root) else set()


def test_a_reply_with_photos_keeps_them_on_its_job_like_an_upload(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Voici le compteur." + QUOTED_FR)
    payload["Attachments"] = [
        attachment("IMG_0042.JPG", jpeg(1600, 1200), "image/jpeg"),
        attachment("devis signé.pdf", PDF, "application/pdf"),
    ]

    assert post_postmark(live_server, payload).status_code == 200

    [reply] = inbound()
    assert reply.job == job
    pdf, photo = JobFile.objects.filter(message=reply).order_by("content_type")
    assert (photo.direction, photo.contact, photo.job) == ("in", contact, job)
    assert (photo.title, photo.content_type, photo.width, photo.height) == ("IMG_0042.jpg", "image/jpeg", 1600, 1200)
    with photo.file.open("rb") as stored:
        kept = stored.read()
    assert not has_exif(kept), "the phone's location must not be kept"
    assert photo.thumbnail
    with photo.thumbnail.open("rb") as thumb, Image.open(thumb) as image:
        assert max(image.size) <= THUMBNAIL_SIZE
    assert (pdf.title, pdf.content_type, pdf.size) == ("devis signé.pdf", "application/pdf", len(PDF))
    assert reply.body_text == (
        "Voici le compteur.\n\n"
        "Files attached to this email, kept on the job:\n"
        f"- IMG_0042.JPG (image/jpeg, {photo_size(payload)})\n"
        f"- devis signé.pdf (application/pdf, {len(PDF)}\xa0bytes)"
    )
    [event] = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.MESSAGE_RECEIVED)
    assert event.data["names"] == ["IMG_0042.jpg", "devis signé.pdf"]


def photo_size(payload: dict[str, Any]) -> str:
    return filesizeformat(payload["Attachments"][0]["ContentLength"])


def test_the_customer_sees_what_they_emailed_on_their_portal(live_server, client, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to=reply_address(job), text="Le tableau électrique." + QUOTED_FR)
    payload["Attachments"] = [attachment("tableau.png", png(), "image/png")]
    post_postmark(live_server, payload)
    [kept] = JobFile.objects.filter(job=job)

    assert client.get(portal_url(contact, job)).status_code == 302
    page = client.get(reverse("portal:job", args=[job.public_id]))

    assert page.status_code == 200
    assert str(kept.public_id) in page.content.decode()


def test_files_it_cannot_keep_are_named_with_the_reason(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to=reply_address(job), text="")
    payload["HtmlBody"] = payload["StrippedTextReply"] = ""
    payload["Attachments"] = [
        attachment("page.html", HTML, "text/html"),
        attachment("compteur.jpg", b"\xff\xd8" + b"\x00" * 2046, "image/jpeg"),
        attachment("vide.pdf", b"", "application/pdf"),
        attachment("ok.png", png(), "image/png"),
    ]

    post_postmark(live_server, payload)

    [reply] = inbound()
    [kept] = JobFile.objects.filter(job=job)
    assert kept.title == "ok.png"
    lines = reply.body_text.split("\n")
    assert lines[:2] == ["Files attached to this email, kept on the job:", lines[1]]
    assert lines[1].startswith("- ok.png (image/png, ")
    assert lines[2:4] == ["", "Files attached to this email, not kept:"]
    refused = dict(line[2:].split(": ", 1) for line in lines[4:])
    only = "we can only take photos (JPEG, PNG, WebP) and PDF documents."
    assert refused == {
        f"page.html (text/html, {len(HTML)}\xa0bytes)": only,
        # Named a JPEG, not one inside.
        "compteur.jpg (image/jpeg, 2.0\xa0KB)": only,
        "vide.pdf (application/pdf, 0\xa0bytes)": "the file is empty.",
    }


def test_past_the_jobs_room_the_rest_is_named_not_kept(live_server, settings, job: Job, contact: Contact) -> None:
    photos = [jpeg(300, 200, color=c) for c in ("navy", "olive", "maroon")]
    sizes = [inspect("p.jpg", p).size for p in photos]
    # Room for the first two as they are stored (re-encoded), not for the third.
    settings.FILE_JOB_MAX_MB = (sizes[0] + sizes[1] + sizes[2] // 2) / (1024 * 1024)
    payload = postmark_inbound(to=reply_address(job), text="Trois photos." + QUOTED_FR)
    payload["Attachments"] = [attachment(f"{n}.jpg", p, "image/jpeg") for n, p in zip("abc", photos, strict=True)]

    post_postmark(live_server, payload)

    [reply] = inbound()
    assert sorted(JobFile.objects.filter(job=job).values_list("title", flat=True)) == ["a.jpg", "b.jpg"]
    assert reply.body_text.endswith(
        "Files attached to this email, not kept:\n"
        f"- c.jpg (image/jpeg, {filesizeformat(len(photos[2]))}): this job has no room left for it."
    )


def test_the_same_file_inline_and_attached_is_kept_once(live_server, job: Job, contact: Contact) -> None:
    photo = jpeg()
    payload = postmark_inbound(to=reply_address(job), text="La photo." + QUOTED_FR)
    payload["Attachments"] = [attachment("a.jpg", photo, "image/jpeg"), attachment("a-copy.jpg", photo, "image/jpeg")]

    post_postmark(live_server, payload)

    assert JobFile.objects.filter(job=job).count() == 1


def test_a_webhook_delivered_twice_keeps_the_files_once(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to=reply_address(job), text="La photo." + QUOTED_FR)
    payload["Attachments"] = [attachment("a.jpg", jpeg(), "image/jpeg")]

    responses = [post_postmark(live_server, payload) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert len(inbound()) == 1
    [kept] = JobFile.objects.filter(job=job)
    assert stored_names(job) == {kept.file.name, kept.thumbnail.name}


def test_an_email_on_no_job_names_its_files_and_keeps_none(live_server, job: Job, contact: Contact) -> None:
    payload = postmark_inbound(to="care@example.com", text="Bonjour, une photo.", message_id="<new@x.example>")
    payload["Attachments"] = [attachment("toit.jpg", jpeg(), "image/jpeg")]

    post_postmark(live_server, payload)

    [message] = inbound()
    assert message.job is None
    assert not JobFile.objects.exists()
    assert message.body_text.endswith(
        "Files attached to this email, not kept:\n"
        f"- toit.jpg (image/jpeg, {photo_size(payload)}): not kept: this email is not filed on a job."
    )


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the database went away")


def test_a_filing_that_fails_after_the_files_were_written_leaves_no_bytes(
    live_server, monkeypatch, job: Job, contact: Contact
) -> None:
    """What runs after the files were written fails (forced from inside the product: the only way
    to stand for "any reason"): the email is kept raw, unassigned, and its files' bytes are gone."""
    monkeypatch.setattr("crm.services.inbound.question_create", refuse)
    payload = postmark_inbound(to=reply_address(job), text="La photo." + QUOTED_FR)
    payload["Attachments"] = [attachment("a.jpg", jpeg(), "image/jpeg")]

    assert post_postmark(live_server, payload).status_code == 200

    [kept] = inbound()
    assert kept.job is None and kept.last_error == "RuntimeError: the database went away"
    assert "- a.jpg (image/jpeg, " in kept.body_text
    assert not JobFile.objects.exists()
    assert stored_names(job) == set()


def test_sendgrid_parsed_attachments_are_kept(live_server, job: Job, contact: Contact) -> None:
    fields = sendgrid_parsed(
        headers="From: Marie Dupont <marie@example.com>\nMessage-ID: <sg-1@mail.example.org>\nMIME-Version: 1.0\n",
        text="Voici la photo.",
        sender="Marie Dupont <marie@example.com>",
        to=reply_address(job),
    )
    fields["attachments"] = "1"
    fields["attachment-info"] = '{"attachment1": {"filename": "roof.png", "name": "roof.png", "type": "image/png"}}'
    multipart: dict[str, Any] = {name: (None, value) for name, value in fields.items()}
    multipart["attachment1"] = ("roof.png", io.BytesIO(png()), "image/png")

    response = requests.post(f"{live_server.url}/anymail/sendgrid/inbound/", files=multipart, auth=AUTH, timeout=10)

    assert response.status_code == 200
    [reply] = Message.objects.filter(direction="in")
    [kept] = JobFile.objects.filter(message=reply)
    assert (kept.title, kept.content_type, kept.contact) == ("roof.png", "image/png", contact)
