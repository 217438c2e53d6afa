"""CSV import in a browser: upload a small file with one bad row, read the review, import the valid
rows and watch the progress bar (polled by htmx) reach 100 % and the summary appear. Every page
passes axe-core."""

from __future__ import annotations

import pytest

from crm.models import Contact, ImportRun
from crm.tasks import run_import
from tests.browser.conftest import assert_accessible, sign_in
from tests.crm.test_csv_import import GOOD, csv_bytes


@pytest.mark.django_db(transaction=True)
def test_it_imports_a_small_csv_and_the_progress_bar_finishes(page, live_server, bob, monkeypatch):
    # In tests django-q2 runs tasks inline, so the import would be over before the page loads.
    # Holding the task back lets the page show a running import, and the test then runs the task
    # itself, as the worker would, while the page polls.
    queued: list[tuple[str, int]] = []
    monkeypatch.setattr("crm.services.csv_import.async_task", lambda name, *args: queued.append((name, *args)))
    base = live_server.url

    sign_in(page, f"{base}/import/")
    assert page.get_by_role("heading", name="Import customers and contacts").is_visible()
    assert_accessible(page)

    data = csv_bytes(*GOOD, "Dupont household,,,Bad Row,not-an-email,,,,,,")
    page.get_by_label("CSV file").set_input_files({"name": "clients.csv", "mimeType": "text/csv", "buffer": data})
    page.get_by_role("button", name="Upload and check").click()
    page.get_by_role("heading", name="Check the import").wait_for()
    run = ImportRun.objects.get()
    assert page.get_by_role("cell", name="Enter a valid email address.").is_visible()
    assert_accessible(page)

    confirm = page.get_by_label("Import only the rows without errors (3)")
    page.get_by_role("button", name="Import the rows without errors").click()
    # Not ticked: the browser asks for the tick (the server would too), nothing starts.
    assert confirm.evaluate("box => box.validity.valueMissing")
    assert ImportRun.objects.get().status == ImportRun.Status.VALIDATED
    confirm.check()
    page.get_by_role("button", name="Import the rows without errors").click()

    bar = page.get_by_role("progressbar", name="Import progress")
    bar.wait_for()
    assert bar.get_attribute("aria-valuenow") == "0"
    assert page.get_by_text("Checked 0 of 4 rows.").is_visible()
    assert_accessible(page)

    assert queued == [("crm.tasks.run_import", run.pk)]
    assert run_import(run.pk) == ImportRun.Status.DONE

    # The page finds out by itself (htmx polls the fragment every second).
    page.get_by_text("Import finished.").wait_for()
    assert bar.get_attribute("aria-valuenow") == "100"
    assert page.get_by_role("status").get_by_text("Contacts created").is_visible()
    assert_accessible(page)
    assert sorted(Contact.objects.values_list("name", flat=True)) == ["Jean Dupont", "Marie Dupont", "Sam Carter"]

    page.get_by_role("link", name="See the customers").click()
    page.wait_for_url(f"{base}/customers/")
    assert page.get_by_role("link", name="Acme Telecom").is_visible()


@pytest.mark.django_db(transaction=True)
def test_it_matches_unknown_columns_then_imports(page, live_server, bob):
    """A French Excel file whose headers are not recognised: the person says which column is which.
    Here the task runs inline (as django-q2 does in tests), so the import is over when the page loads."""
    base = live_server.url
    sign_in(page, f"{base}/import/")

    data = "Raison sociale;Interlocuteur;Mail pro\r\nSociété Générale;Hélène Noël;helene@example.com\r\n".encode(
        "cp1252"
    )
    page.get_by_label("CSV file").set_input_files({"name": "export.csv", "mimeType": "text/csv", "buffer": data})
    page.get_by_role("button", name="Upload and check").click()
    page.get_by_role("heading", name="Match the columns").wait_for()
    assert page.get_by_role("cell", name="Hélène Noël").is_visible()  # read as Windows-1252
    assert_accessible(page)

    page.get_by_label("Customer name").select_option(label="Raison sociale")
    page.get_by_label("Contact name").select_option(label="Interlocuteur")
    page.get_by_label("Email", exact=True).select_option(label="Mail pro")
    page.get_by_role("button", name="Check the rows").click()
    page.get_by_role("heading", name="Check the import").wait_for()
    assert_accessible(page)

    page.get_by_role("button", name="Import 1 row").click()
    page.get_by_text("Import finished.").wait_for()
    assert page.get_by_role("progressbar", name="Import progress").get_attribute("aria-valuenow") == "100"
    assert Contact.objects.get().customer.name == "Société Générale"
