"""Files on the portal: a contact sends photos or a document from the job page (checked by content,
EXIF stripped, thumbnails), sees what they sent and the documents we shared, opens them through
views that check who asks — and nothing of another customer's, ever."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from crm.models import Commitment, Contact, Job, JobEvent, JobFile, Message, StageTemplate
from crm.selectors import attention
from crm.services.files import document_share, document_withdraw
from crm.services.promises import document_promise
from crm.uploads import inspect
from tests.files import HTML, PDF, SVG, fill_to_thirty, has_exif, jpeg, mpo, png, png_claiming, received, upload

from .conftest import advance, sign_in

pytestmark = pytest.mark.django_db


def job_url(job: Job) -> str:
    return reverse("portal:job", args=[job.public_id])


def upload_url(job: Job) -> str:
    return reverse("portal:upload", args=[job.public_id])


def file_url(f: JobFile, name: str = "file") -> str:
    return reverse(f"portal:{name}", args=[f.job.public_id, f.public_id])


def send(client: Client, job: Job, *files: object, note: str = "") -> object:
    return client.post(upload_url(job), {"attachments": list(files), "note": note})


# --- Sending ------------------------------------------------------------------------------------


def test_a_contact_sends_two_photos_with_a_note(john_client: Client, job: Job, john: Contact, bob: User) -> None:
    response = send(
        john_client,
        job,
        upload("panel.jpg", jpeg(1600, 1200)),
        upload("spot.jpg", jpeg(900, 1200, color="navy")),
        note="The panel is in the garage.",
    )

    assert response.status_code == 302
    assert response["Location"] == job_url(job) + "#files"
    files = list(job.files.order_by("title"))
    assert [(f.title, f.direction, f.contact, f.content_type) for f in files] == [
        ("panel.jpg", "in", john, "image/jpeg"),
        ("spot.jpg", "in", john, "image/jpeg"),
    ]
    # One message from the customer, waiting for an answer, with both files.
    message = Message.objects.get(job=job, direction=Message.Direction.IN)
    assert (message.channel, message.body_text, message.handled_at) == ("portal", "The panel is in the garage.", None)
    assert {f.message_id for f in files} == {message.pk}
    replies = next(s for s in attention(bob) if s.key == "replies")
    assert [m.pk for m in replies.rows] == [message.pk]
    event = job.events.get(kind=JobEvent.Kind.FILES_RECEIVED)
    assert event.data["names"] == ["panel.jpg", "spot.jpg"]
    # The owner is alerted, with the job page's link to the files.
    alert = Message.objects.get(kind=Message.Kind.STAFF_ALERT, staff=bob)
    assert alert.subject == f"John Smith sent 2 files — {job.reference}"
    assert "panel.jpg" in alert.body_text and "The panel is in the garage." in alert.body_text
    assert f"/jobs/{job.public_id}/#files" in alert.body_text

    page = john_client.get(job_url(job)).text
    assert "Thank you: we have your 2 files." in page
    for f in files:
        assert file_url(f, "file_thumbnail") in page


def test_a_photo_is_kept_without_its_exif_turned_the_right_way_with_a_thumbnail(john_client: Client, job: Job) -> None:
    # Orientation 6: the camera was turned; the pixels are stored landscape, shown portrait.
    original = jpeg(1600, 1200, orientation=6)
    assert has_exif(original)
    send(john_client, job, upload("IMG_0001.JPG", original))

    stored = job.files.get()
    with stored.file.open("rb") as f:
        kept = f.read()
    assert not has_exif(kept)
    assert b"Test phone" not in kept
    with Image.open(io.BytesIO(kept)) as image:
        assert image.size == (1200, 1600) == (stored.width, stored.height)
    with stored.thumbnail.open("rb") as f, Image.open(f) as thumb:
        assert max(thumb.size) == 480
    assert stored.title == "IMG_0001.jpg"
    assert stored.file.name == f"jobs/{job.public_id}/{stored.public_id}.jpg"


def test_a_phone_photo_with_a_second_picture_inside_is_kept_as_a_jpeg(john_client: Client, job: Job) -> None:
    """MPO: a JPEG with more pictures after the first (Samsung, Fujifilm...). Pillow names it
    MPO even when opening JPEGs only; it is a JPEG, kept as one, its first picture re-encoded."""
    original = mpo(800, 600)
    with Image.open(io.BytesIO(original)) as image:
        assert image.format == "MPO"
    response = send(john_client, job, upload("IMG_0001.JPG", original))

    assert response.status_code == 302
    stored = job.files.get()
    assert (stored.content_type, stored.width, stored.height) == ("image/jpeg", 800, 600)
    with stored.file.open("rb") as f:
        kept = f.read()
    assert not has_exif(kept)
    with Image.open(io.BytesIO(kept)) as image:
        assert image.format == "JPEG"


def test_a_pdf_is_kept_as_it_came(john_client: Client, job: Job) -> None:
    send(john_client, job, upload("invoice.pdf", PDF, "application/pdf"))
    stored = job.files.get()
    assert (stored.content_type, stored.size, stored.thumbnail.name) == ("application/pdf", len(PDF), "")
    with stored.file.open("rb") as f:
        assert f.read() == PDF


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("photo.jpg", HTML, "“photo.jpg”: we can only take photos (JPEG, PNG, WebP) and PDF documents."),
        ("drawing.svg", SVG, "“drawing.svg”: we can only take photos (JPEG, PNG, WebP) and PDF documents."),
        ("empty.jpg", b"", "“empty.jpg”: the file is empty."),
        ("bomb.png", png_claiming(100_000, 100_000), "“bomb.png”: the picture has more than 50 megapixels."),
        ("big.png", png_claiming(10_000, 8_000), "“big.png”: the picture is 10000 × 8000 pixels; the limit is 50"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj", "“broken.pdf”: this PDF is incomplete or damaged."),
    ],
    ids=["html renamed jpg", "svg with script", "empty", "huge dimensions", "too many pixels", "truncated pdf"],
)
def test_a_file_that_is_not_what_we_take_is_refused_by_name_and_nothing_is_kept(
    john_client: Client, job: Job, name: str, data: bytes, says: str
) -> None:
    response = send(john_client, job, upload("good.jpg", jpeg()), upload(name, data))

    assert response.status_code == 400
    assert says in response.content.decode()
    assert "Nothing was sent: choose your files again, without these." in response.content.decode()
    # Nothing half-stored: not the good one either, no message, no file on disk.
    assert not JobFile.objects.exists()
    assert not Message.objects.filter(direction=Message.Direction.IN).exists()


def test_a_path_in_the_file_name_is_only_a_name(john_client: Client, job: Job) -> None:
    send(john_client, job, upload("../../etc/passwd", png()))
    stored = job.files.get()
    assert stored.title == "passwd.png"
    assert stored.file.name == f"jobs/{job.public_id}/{stored.public_id}.png"


def test_a_nul_or_control_characters_in_a_file_name_are_dropped(john_client: Client, job: Job) -> None:
    send(john_client, job, upload("pho\x00to\x07\u202e.jpg", jpeg()))
    assert job.files.get().title == "photo.jpg"


def test_no_file_chosen_says_so(john_client: Client, job: Job) -> None:
    response = john_client.post(upload_url(job), {"note": "Here"})
    assert response.status_code == 400
    assert "Choose at least one photo or document." in response.content.decode()


def test_a_file_too_big_is_refused_before_it_is_read(john_client: Client, job: Job, settings) -> None:
    settings.FILE_MAX_MB = 1
    response = send(john_client, job, upload("big.jpg", b"\xff\xd8" + b"0" * (1024 * 1024 + 10)))
    assert response.status_code == 400
    assert "“big.jpg”: it is 1.0\xa0MB; the limit is 1.0\xa0MB per file." in response.content.decode()


def test_a_job_full_of_files_takes_no_more(john_client: Client, job: Job, john: Contact, settings) -> None:
    big = jpeg(1600, 1200)
    received(job, john, "first.jpg")
    settings.FILE_JOB_MAX_MB = 0
    response = send(john_client, job, upload("more.jpg", big))
    assert response.status_code == 400
    assert "this job has room for 0\xa0bytes more" in response.content.decode()
    assert job.files.count() == 1


def test_too_many_files_at_once_are_refused(john_client: Client, job: Job) -> None:
    files = [upload(f"p{i}.png", png()) for i in range(11)]
    response = send(john_client, job, *files)
    assert response.status_code == 400
    assert "Send at most 10 files at once." in response.content.decode()
    assert not JobFile.objects.exists()


def test_sending_is_rate_limited_per_contact(john_client: Client, job: Job, monkeypatch) -> None:
    from portal import views_files

    monkeypatch.setattr(views_files, "UPLOADS_PER_CONTACT", (3, 3600))
    for _ in range(2):
        assert send(john_client, job, upload("p.png", png())).status_code == 302
    # A refused send counts too: its files were read all the same.
    assert send(john_client, job, upload("page.html", HTML, "text/html")).status_code == 400
    response = send(john_client, job, upload("p.png", png()))
    assert response.status_code == 429
    assert "You have sent us many files in a short time." in response.content.decode()
    assert job.files.count() == 2


def test_the_upload_needs_the_csrf_token(john: Contact, job: Job) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), john)
    assert send(client, job, upload("p.png", png())).status_code == 403
    assert not JobFile.objects.exists()


def test_a_get_of_the_upload_address_goes_to_the_form(john_client: Client, job: Job) -> None:
    response = john_client.get(upload_url(job))
    assert response["Location"] == job_url(job) + "#files"


def test_the_form_asks_for_what_we_take_and_lets_a_phone_take_a_photo(john_client: Client, job: Job) -> None:
    page = john_client.get(job_url(job)).text
    assert 'enctype="multipart/form-data"' in page
    assert 'accept="image/jpeg,image/png,image/webp,application/pdf"' in page
    assert "multiple" in page.split('name="attachments"')[1].split(">")[0]


# --- "What to prepare": received, thank you ------------------------------------------------------


def test_the_prepare_box_offers_to_send_then_thanks_with_the_thumbnails(
    john_client: Client, job: Job, john: Contact
) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Proposal sent").update(
        customer_instructions="Send us photos of your electrical panel.", asks_for_files=True
    )
    page = john_client.get(job_url(job)).text
    prepare = page.split('class="prepare')[1].split("</div>")[0]
    assert 'href="#send-files"' in prepare
    assert "Received, thank you" not in prepare

    (photo,) = received(job, john, "panel.jpg")
    page = john_client.get(job_url(job)).text
    prepare = page.split('class="prepare')[1]
    assert "Received, thank you:" in prepare
    assert file_url(photo, "file_thumbnail") in prepare
    # The live fragment says the same (the poll brings it without reload).
    fragment = john_client.get(reverse("portal:job_status", args=[job.public_id])).text
    assert "Received, thank you:" in fragment


def test_a_stage_that_asks_for_nothing_has_no_send_button_in_its_box(john_client: Client, job: Job) -> None:
    StageTemplate.objects.filter(pipeline=job.pipeline, name="Proposal sent").update(customer_instructions="Be home.")
    prepare = john_client.get(job_url(job)).text.split('class="prepare')[1].split("</div>")[0]
    assert "#send-files" not in prepare


# --- Documents we share -------------------------------------------------------------------------


def test_a_shared_document_is_on_the_portal_and_opens_as_a_download(john_client: Client, job: Job, bob: User) -> None:
    shared = document_share(job=job, actor=bob, document=inspect("devis.pdf", PDF), title="Quote for the heat pump")
    page = john_client.get(job_url(job)).text
    assert "Quote for the heat pump" in page
    assert file_url(shared) in page

    response = john_client.get(file_url(shared))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="devis.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "private" in response["Cache-Control"]


def test_a_photo_opens_inline(john_client: Client, job: Job, john: Contact) -> None:
    (photo,) = received(job, john, "panel.jpg")
    response = john_client.get(file_url(photo))
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == 'inline; filename="panel.jpg"'
    thumb = john_client.get(file_url(photo, "file_thumbnail"))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    # A thumbnail is always a JPEG, and is named as one.
    assert thumb["Content-Disposition"] == 'inline; filename="panel-small.jpg"'


def test_a_withdrawn_document_leaves_a_note_and_its_file_is_gone_from_the_portal(
    john_client: Client, job: Job, bob: User
) -> None:
    shared = document_share(job=job, actor=bob, document=inspect("devis.pdf", PDF), title="First quote")
    document_withdraw(document=shared, actor=bob, reason="Replaced by the new quote.")

    page = john_client.get(job_url(job)).text
    assert "<s>First quote</s>" in page
    assert "Withdrawn on" in page and "Replaced by the new quote." in page
    assert file_url(shared) not in page
    assert john_client.get(file_url(shared)).status_code == 404
    shared.refresh_from_db()
    assert shared.file.storage.exists(shared.file.name), "kept for the record"


def test_a_removed_file_says_when(john_client: Client, job: Job, john: Contact) -> None:
    (photo,) = received(job, john, "panel.jpg")
    JobFile.objects.filter(pk=photo.pk).update(removed_at=job.created_at)
    page = john_client.get(job_url(job)).text
    assert "Removed on" in page
    assert john_client.get(file_url(photo)).status_code == 404


def test_sharing_keeps_the_promise_the_customer_sees(john_client: Client, job: Job, bob: User, john: Contact) -> None:
    promise = document_promise(job=job, title="The quote", due_on=job.created_at.date().replace(day=20), actor=bob)
    document_share(job=job, actor=bob, document=inspect("devis.pdf", PDF), title="The quote", keeps=promise)
    promise.refresh_from_db()
    assert promise.state == Commitment.State.KEPT
    assert promise.documents.get().title == "The quote"


# --- Scope: another customer's files ------------------------------------------------------------


def test_another_customers_file_is_a_404_on_every_file_url(
    john_client: Client, job: Job, stranger_job: Job, stranger: Contact, alice: User
) -> None:
    (theirs,) = received(stranger_job, stranger, "their.jpg")
    document = document_share(job=stranger_job, actor=alice, document=inspect("q.pdf", PDF), title="Their quote")
    for f in (theirs, document):
        for name in ("file", "file_thumbnail"):
            # Through their job, and through John's own job with their file's id.
            assert john_client.get(file_url(f, name)).status_code == 404
            own_job = reverse(f"portal:{name}", args=[job.public_id, f.public_id])
            assert john_client.get(own_job).status_code == 404
    assert "Their quote" not in john_client.get(job_url(job)).text


def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client, job: Job, john: Contact) -> None:
    (photo,) = received(job, john, "panel.jpg")
    response = client.get(file_url(photo))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:signed_out"))


# --- History and cost ---------------------------------------------------------------------------


def test_the_history_shows_what_came_with_each_message(john_client: Client, job: Job, john: Contact) -> None:
    send(john_client, job, upload("panel.jpg", jpeg()), note="My panel")
    history = john_client.get(job_url(job)).text.split('id="history-heading"')[1]
    assert "My panel" in history
    assert file_url(job.files.get(), "file_thumbnail") in history


def test_the_job_page_costs_the_same_for_1_or_30_files(
    john_client: Client, job: Job, john: Contact, bob: User, settings
) -> None:
    settings.PORTAL_PAGE_CACHE_SECONDS = 0  # the rendering itself, as for the first view after a change
    advance(job, "Proposal sent")
    StageTemplate.objects.filter(pipeline=job.pipeline).update(asks_for_files=True)
    received(job, john, "one.jpg")

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert john_client.get(job_url(job)).status_code == 200
        return len(queries)

    few = cost()
    fill_to_thirty(job, john, bob)
    assert cost() == few
