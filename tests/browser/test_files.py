"""Files both ways, in Chromium: John sends two photos from his 360 px phone (real JPEGs, with
EXIF), Bob sees their thumbnails on the job page at once and shares a PDF quote that keeps his
"quote by Friday" promise, John downloads it on his phone — and another customer's session gets a
404 for each file. Each page passes axe-core, and the portal page fits the phone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import expect

from crm.links import make_link_token
from crm.models import Commitment, Contact, Customer, Job, JobFile, Pipeline, StaffProfile, StageTemplate
from crm.services.jobs import job_create
from crm.services.promises import document_promise
from crm.workdays import add_business_days, business_today
from tests.browser.conftest import assert_accessible, new_phone_context, page_width, sign_in
from tests.files import PDF, has_exif, jpeg

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def monday_morning(time_machine: Any) -> None:
    time_machine.move_to(datetime(2026, 3, 2, 9, 30, tzinfo=PARIS), tick=True)


@pytest.fixture
def john(customer: Customer) -> Contact:
    return Contact.objects.create(customer=customer, name="John Smith", email="john@example.com", language="en")


@pytest.fixture
def job(customer: Customer, john: Contact, installation: Pipeline, bob: User) -> Job:
    StaffProfile.objects.get_or_create(user=bob, defaults={"phone": "+33 1 99 00 12 02"})
    StageTemplate.objects.filter(pipeline=installation, name="Proposal sent").update(
        customer_instructions="Send us a few photos of your electrical panel.", asks_for_files=True
    )
    return job_create(customer=customer, pipeline=installation, owner=bob, title="Heat pump", actor=bob)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = new_phone_context(browser)
    yield context.new_page()
    context.close()


def enter(page: Any, live_server: Any, contact: Contact, job: Job) -> None:
    page.goto(live_server.url + reverse("portal:enter", args=[make_link_token(contact)]) + f"?job={job.public_id}")


def wait_for_images(page: Any, selector: str) -> None:
    """Wait until every image ``selector`` finds has loaded (a timeout fails the test)."""
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].every(i => i.complete && i.naturalWidth > 0)", arg=selector
    )


def test_photos_from_a_phone_and_a_quote_back(
    phone: Any, page: Any, browser: Any, live_server: Any, job: Job, john: Contact, bob: User, tmp_path: Path
) -> None:
    promise = document_promise(
        job=job, title="Quote by Friday", due_on=add_business_days(business_today(), 4), actor=bob
    )
    panel, spot = tmp_path / "panel.jpg", tmp_path / "spot.jpg"
    panel.write_bytes(jpeg(1600, 1200))
    spot.write_bytes(jpeg(1200, 1600, color="navy"))

    # John, on his phone: the "what to prepare" box offers to send the photos.
    enter(phone, live_server, john, job)
    prepare = phone.locator(".prepare")
    expect(prepare).to_contain_text("Send us a few photos of your electrical panel.")
    prepare.get_by_role("link", name="Send us photos or a document").tap()
    phone.get_by_label("Photos or documents").set_input_files([str(panel), str(spot)])
    phone.get_by_label("A note (optional)").fill("The panel is in the garage.")
    phone.locator("#files").get_by_role("button", name="Send").tap()

    expect(phone.get_by_role("status").filter(has_text="we have your 2 files")).to_be_visible()
    expect(prepare).to_contain_text("Received, thank you:")
    thumbnails = prepare.locator("img")
    expect(thumbnails).to_have_count(2)
    wait_for_images(phone, ".prepare img")
    assert page_width(phone) <= 360
    assert_accessible(phone)
    stored = list(JobFile.objects.filter(job=job).order_by("title"))
    assert [f.title for f in stored] == ["panel.jpg", "spot.jpg"]
    with stored[0].file.open("rb") as f:
        assert not has_exif(f.read())

    # Bob, at his desk: the photos are on the job page; he shares the quote, keeping the promise.
    sign_in(page, live_server.url + reverse("crm:job", args=[job.public_id]))
    files = page.locator("#files")
    expect(files.locator("img")).to_have_count(2)
    wait_for_images(page, "#files img")
    assert_accessible(page)
    quote = tmp_path / "devis-2026-014.pdf"
    quote.write_bytes(PDF)
    files.get_by_text("Share a document with the customer").click()
    files.get_by_label("Document").set_input_files(str(quote))
    files.get_by_label("Title").fill("Quote for the heat pump")
    files.get_by_label("This keeps the promise").select_option(label="Quote by Friday")
    files.get_by_role("button", name="Share").click()
    expect(page.get_by_role("status").filter(has_text="The promise “Quote by Friday” is kept.")).to_be_visible()
    promise.refresh_from_db()
    assert promise.state == Commitment.State.KEPT

    # John downloads it on his phone.
    phone.reload()
    documents = phone.locator("#files")
    expect(documents).to_contain_text("Quote for the heat pump")
    with phone.expect_download() as download:
        documents.get_by_role("link", name="Quote for the heat pump").tap()
    assert download.value.suggested_filename == "devis-2026-014.pdf"
    assert Path(download.value.path()).read_bytes() == PDF
    assert_accessible(phone)

    # Another customer's session: each file is a 404.
    stranger_customer = Customer.objects.create(name="Acme")
    stranger = Contact.objects.create(customer=stranger_customer, name="Olga", email="olga@example.com")
    other = new_phone_context(browser)
    try:
        theirs = other.new_page()
        theirs.goto(live_server.url + reverse("portal:enter", args=[make_link_token(stranger)]))
        for f in JobFile.objects.filter(job=job):
            for name in ("file", "file_thumbnail"):
                if name == "file_thumbnail" and not f.thumbnail:
                    continue
                response = theirs.request.get(
                    live_server.url + reverse(f"portal:{name}", args=[job.public_id, f.public_id])
                )
                assert response.status == 404, (f.title, name)
    finally:
        other.close()
