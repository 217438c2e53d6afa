"""The import pages: upload, column matching, review, start, progress, error report."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import csv_import
from crm.models import Contact, Customer, ImportRun, Job, Message, Pipeline
from crm.services.csv_import import STALLED_AFTER, import_create
from tests.crm.test_csv_import import GOOD, JOB_ROWS, csv_bytes, job_csv

pytestmark = pytest.mark.django_db


def upload(client, data: bytes, name: str = "clients.csv"):
    return client.post(reverse("crm:import"), {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


@pytest.fixture
def staff(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def checked_run(bob) -> ImportRun:
    return import_create(file_name="clients.csv", data=csv_bytes(*GOOD), actor=bob)


@pytest.fixture
def run_with_errors(bob) -> ImportRun:
    return import_create(file_name="bad.csv", data=csv_bytes(*GOOD, "Dupont household,,,Bad,nope,,,,,,"), actor=bob)


def review_counts(page: str) -> tuple[int, ...]:
    """The review's job counts as the page shows them: to open, welcomes, already there."""
    found = dict(re.findall(r'id="(import-jobs-to-open|import-welcomes|import-jobs-already)">(\d+)<', page))
    return tuple(int(found[name]) for name in ("import-jobs-to-open", "import-welcomes", "import-jobs-already"))


def text_of(page: str) -> str:
    return " ".join(page.split())


def all_urls(run: ImportRun) -> list[tuple[str, str]]:
    code = run.public_id
    return [
        ("get", reverse("crm:import")),
        ("get", reverse("crm:import_sample")),
        ("get", reverse("crm:import_detail", args=[code])),
        ("get", reverse("crm:import_mapping", args=[code])),
        ("post", reverse("crm:import_start", args=[code])),
        ("post", reverse("crm:import_restart", args=[code])),
        ("get", reverse("crm:import_progress", args=[code])),
        ("get", reverse("crm:import_errors", args=[code])),
    ]


class TestAccess:
    def test_it_sends_anonymous_visitors_to_sign_in(self, client, checked_run):
        for method, url in all_urls(checked_run):
            response = getattr(client, method)(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("login")), url

    def test_it_refuses_users_who_are_not_staff(self, client, dana, checked_run):
        client.force_login(dana)
        for method, url in all_urls(checked_run):
            assert getattr(client, method)(url).status_code == 403, url
        assert ImportRun.objects.get().status == ImportRun.Status.VALIDATED

    def test_an_unknown_import_is_a_404(self, staff):
        assert staff.get(reverse("crm:import_detail", args=[uuid.uuid4()])).status_code == 404
        assert staff.get(reverse("crm:import_progress", args=[uuid.uuid4()])).status_code == 404

    def test_get_never_changes_anything(self, staff, checked_run):
        before = list(ImportRun.objects.values())
        for method, url in all_urls(checked_run):
            if method == "get":
                assert staff.get(url).status_code == 200, url
        assert list(ImportRun.objects.values()) == before
        assert not Customer.objects.exists()

    def test_start_is_post_only(self, staff, checked_run):
        assert staff.get(reverse("crm:import_start", args=[checked_run.public_id])).status_code == 405


class TestUpload:
    def test_it_shows_the_form_the_format_and_recent_imports(self, staff, checked_run):
        response = staff.get(reverse("crm:import"))
        assert response.status_code == 200
        assert response.context["nav"] == "import"
        page = response.content.decode()
        assert 'enctype="multipart/form-data"' in page
        assert "Time zone" in page and "Fuseau horaire" in page
        assert "clients.csv" in page

    def test_a_file_with_known_headers_goes_straight_to_the_review(self, staff):
        response = upload(staff, csv_bytes(*GOOD))
        run = ImportRun.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("crm:import_detail", args=[run.public_id])
        assert run.status == ImportRun.Status.VALIDATED

    def test_unknown_headers_lead_to_the_column_matching(self, staff):
        response = upload(staff, b"Who;Mail\r\nDupont;d@example.com\r\n")
        run = ImportRun.objects.get()
        assert response["Location"] == reverse("crm:import_mapping", args=[run.public_id])
        page = staff.get(response["Location"]).content.decode()
        assert "These columns were not found in the file" in page
        assert "Customer name" in page

    def test_an_unreadable_file_is_an_error_on_the_form(self, staff):
        response = upload(staff, b"PK\x03\x04 an xlsx", name="clients.xlsx")
        assert response.status_code == 200
        assert "This is an Excel workbook, not a CSV file." in response.content.decode()
        assert not ImportRun.objects.exists()

    def test_a_file_over_the_limit_is_refused_with_its_size(self, staff):
        response = upload(staff, b"a" * (csv_import.MAX_FILE_BYTES + 1))
        assert "the limit is 5 MB" in response.content.decode()
        assert not ImportRun.objects.exists()

    def test_the_sample_file_imports_cleanly(self, staff, bob):
        response = staff.get(reverse("crm:import_sample"))
        data = response.content
        run = import_create(file_name="sample.csv", data=data, actor=bob)
        assert (run.status, run.invalid_rows, run.valid_rows) == (ImportRun.Status.VALIDATED, 0, 5)


class TestMapping:
    def test_the_chosen_columns_are_checked(self, staff, bob):
        run = import_create(file_name="x.csv", data=b"Who,Person,Mail\r\nDupont,Marie,marie@example.com\r\n", actor=bob)
        url = reverse("crm:import_mapping", args=[run.public_id])
        page = staff.get(url).content.decode()
        assert "marie@example.com" in page  # the first rows are shown
        response = staff.post(url, {"customer_name": "0", "contact_name": "1", "email": "2"})
        assert response["Location"] == reverse("crm:import_detail", args=[run.public_id])
        run.refresh_from_db()
        assert run.mapping == {"customer_name": 0, "contact_name": 1, "email": 2}
        assert run.valid_rows == 1

    def test_it_asks_for_the_missing_columns(self, staff, bob):
        run = import_create(file_name="x.csv", data=b"Who,Person,Mail\r\nDupont,Marie,marie@example.com\r\n", actor=bob)
        response = staff.post(reverse("crm:import_mapping", args=[run.public_id]), {"customer_name": "0", "email": "0"})
        assert response.status_code == 200
        form = response.context["form"]
        assert form.errors["contact_name"] == ["Choose the column that holds this."]
        assert form.errors["email"] == ["This column is already chosen for “Customer name”."]
        run.refresh_from_db()
        assert run.status == ImportRun.Status.UPLOADED

    def test_a_started_import_cannot_be_remapped(self, staff, checked_run):
        ImportRun.objects.filter(pk=checked_run.pk).update(status=ImportRun.Status.RUNNING)
        url = reverse("crm:import_mapping", args=[checked_run.public_id])
        response = staff.post(url, {"customer_name": "3", "contact_name": "3", "email": "4"})
        assert response["Location"] == reverse("crm:import_detail", args=[checked_run.public_id])
        checked_run.refresh_from_db()
        assert checked_run.mapping["customer_name"] == 0


class TestReviewAndStart:
    def test_the_review_shows_the_plan_and_the_errors(self, staff, run_with_errors):
        response = staff.get(reverse("crm:import_detail", args=[run_with_errors.public_id]))
        page = response.content.decode()
        assert response.context["run"].invalid_rows == 1
        assert "Enter a valid email address." in page
        assert "Import only the rows without errors (3), and leave out the rows with errors (1)" in page
        assert reverse("crm:import_errors", args=[run_with_errors.public_id]) in page

    def test_the_review_lists_the_first_200_errors(self, staff, bob):
        data = csv_bytes(*[f"C{i},,,P{i},bad{i},,,,,," for i in range(250)])
        run = import_create(file_name="x.csv", data=data, actor=bob)
        response = staff.get(reverse("crm:import_detail", args=[run.public_id]))
        assert len(response.context["errors"]) == 200
        assert "250 errors found." in response.content.decode()
        assert "The first 200 are listed below." in response.content.decode()

    def test_the_error_report_downloads_as_csv(self, staff, run_with_errors):
        response = staff.get(reverse("crm:import_errors", args=[run_with_errors.public_id]))
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert 'filename="errors-bad.csv"' in response["Content-Disposition"]
        assert response.content.decode("utf-8-sig").splitlines() == [
            "Row,Column,Problem",
            "5,Email,Enter a valid email address.",
        ]

    def test_with_errors_nothing_starts_without_the_tick(
        self, staff, run_with_errors, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = staff.post(reverse("crm:import_start", args=[run_with_errors.public_id]))
        assert response.status_code == 200
        assert response.context["form"].errors["valid_only"] == ["Tick the box to import the rows without errors only."]
        run_with_errors.refresh_from_db()
        assert run_with_errors.status == ImportRun.Status.VALIDATED
        assert not Contact.objects.exists()

    def test_ticked_it_imports_the_valid_rows(self, staff, run_with_errors, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = staff.post(reverse("crm:import_start", args=[run_with_errors.public_id]), {"valid_only": "on"})
        assert response["Location"] == reverse("crm:import_detail", args=[run_with_errors.public_id])
        assert Contact.objects.count() == 3
        page = staff.get(response["Location"]).content.decode()
        assert "Import finished." in page
        assert reverse("crm:customers") in page

    def test_a_double_click_imports_once(self, staff, checked_run, django_capture_on_commit_callbacks):
        url = reverse("crm:import_start", args=[checked_run.public_id])
        with django_capture_on_commit_callbacks(execute=True):
            first = staff.post(url)
            second = staff.post(url)
        assert first["Location"] == second["Location"]
        assert Contact.objects.count() == 3
        assert Customer.objects.count() == 2


class TestProgress:
    def test_it_polls_while_running(self, staff, checked_run):
        ImportRun.objects.filter(pk=checked_run.pk).update(status=ImportRun.Status.RUNNING, processed_rows=1)
        response = staff.get(reverse("crm:import_progress", args=[checked_run.public_id]), HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        page = response.content.decode()
        assert 'hx-trigger="every 1s"' in page
        assert 'aria-valuenow="33"' in page
        assert "Checked 1 of 3 rows." in page

    def test_it_stops_polling_with_286_when_done(self, staff, checked_run, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[checked_run.public_id]))
        response = staff.get(reverse("crm:import_progress", args=[checked_run.public_id]), HTTP_HX_REQUEST="true")
        assert response.status_code == 286
        page = response.content.decode()
        assert "hx-trigger" not in page
        assert 'aria-valuenow="100"' in page
        assert "Import finished." in page

    def test_a_failed_import_says_why_and_stops_polling(self, staff, checked_run):
        ImportRun.objects.filter(pk=checked_run.pk).update(
            status=ImportRun.Status.FAILED, failure="Something broke.", finished_at=checked_run.created_at
        )
        response = staff.get(reverse("crm:import_progress", args=[checked_run.public_id]))
        assert response.status_code == 286
        assert "The import failed. Nothing was saved." in response.content.decode()
        assert "Something broke." in response.content.decode()

    def test_a_stalled_import_offers_to_start_again(self, staff, checked_run, django_capture_on_commit_callbacks):
        ImportRun.objects.filter(pk=checked_run.pk).update(
            status=ImportRun.Status.RUNNING, updated_at=timezone.now() - STALLED_AFTER * 2
        )
        response = staff.get(reverse("crm:import_progress", args=[checked_run.public_id]))
        assert "The import has not moved for a minute" in response.content.decode()
        restart = reverse("crm:import_restart", args=[checked_run.public_id])
        assert restart in response.content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            response = staff.post(restart)
        assert response["Location"] == reverse("crm:import_detail", args=[checked_run.public_id])
        assert ImportRun.objects.get().status == ImportRun.Status.DONE
        assert Contact.objects.count() == 3

    def test_a_moving_import_offers_nothing(self, staff, checked_run):
        ImportRun.objects.filter(pk=checked_run.pk).update(status=ImportRun.Status.RUNNING)
        response = staff.get(reverse("crm:import_progress", args=[checked_run.public_id]))
        assert "not moved" not in response.content.decode()

    def test_the_progress_page_polls_the_fragment(self, staff, checked_run):
        ImportRun.objects.filter(pk=checked_run.pk).update(status=ImportRun.Status.RUNNING)
        page = staff.get(reverse("crm:import_detail", args=[checked_run.public_id])).content.decode()
        assert reverse("crm:import_progress", args=[checked_run.public_id]) in page
        assert 'role="progressbar"' in page

    def test_the_progress_poll_is_a_few_queries(self, staff, checked_run, django_assert_max_num_queries):
        url = reverse("crm:import_progress", args=[checked_run.public_id])
        with django_assert_max_num_queries(4):
            staff.get(url)


class TestJobs:
    @pytest.fixture
    def job_run(self, bob, installation, repair, charlie) -> ImportRun:
        return import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)

    def test_the_upload_page_names_the_job_columns(self, staff):
        page = staff.get(reverse("crm:import")).content.decode()
        assert "Job reference" in page and "Référence du dossier" in page
        assert "opens nothing twice and welcomes nobody twice" in page

    def test_the_review_says_how_many_jobs_it_opens_and_welcomes_it_sends(self, staff, job_run):
        response = staff.get(reverse("crm:import_detail", args=[job_run.public_id]))
        assert response.context["with_jobs"]
        page = response.content.decode()
        assert review_counts(page) == (2, 3, 0)
        assert "Jobs to open" in page
        assert "Starting the import sends 3 welcome messages as soon as it is done." in page
        assert not Job.objects.exists()

    def test_the_review_of_the_same_file_again_finds_the_jobs_there(
        self, staff, bob, job_run, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[job_run.public_id]))
        assert (Job.objects.count(), Message.objects.filter(kind=Message.Kind.WELCOME).count()) == (2, 3)
        response = upload(staff, job_csv(*JOB_ROWS), name="jobs.csv")
        again = ImportRun.objects.exclude(pk=job_run.pk).get()
        response = staff.get(response["Location"])
        page = response.content.decode()
        assert review_counts(page) == (0, 0, 2)
        assert "Jobs already there (left as they are, nobody welcomed again)" in page
        assert "welcome messages as soon as" not in page
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[again.public_id]))
        assert (Job.objects.count(), Message.objects.filter(kind=Message.Kind.WELCOME).count()) == (2, 3)

    def test_a_file_without_job_columns_says_nothing_of_jobs(self, staff, checked_run):
        response = staff.get(reverse("crm:import_detail", args=[checked_run.public_id]))
        assert not response.context["with_jobs"]
        assert "Jobs to open" not in response.content.decode()
        assert 'id="import-welcomes"' not in response.content.decode()

    def test_the_review_shows_the_checks_counts_until_the_rows_are_checked_again(self, staff, job_run, repair):
        url = reverse("crm:import_detail", args=[job_run.public_id])
        assert review_counts(staff.get(url).content.decode()) == (2, 3, 0)
        # Row 4's pipeline goes away after the check: the review reads what the check stored, and
        # does not check the rows again on each visit (no pipeline, customer or job looked up).
        Pipeline.objects.filter(pk=repair.pk).update(name="Fibre")
        with CaptureQueriesContext(connection) as queries:
            page = staff.get(url).content.decode()
        assert review_counts(page) == (2, 3, 0)
        looked_up = [q["sql"] for q in queries if re.search(r'FROM "crm_(pipeline|customer|contact)"', q["sql"])]
        assert looked_up == []
        assert len(queries) <= 10  # the user, the run twice, the navigation's counts
        # Checked again (the same columns chosen), the counts are the new check's.
        job_run.refresh_from_db()
        mapping = {key: str(index) for key, index in job_run.mapping.items()}
        response = staff.post(reverse("crm:import_mapping", args=[job_run.public_id]), mapping)
        assert response["Location"] == url
        page = staff.get(url).content.decode()
        assert review_counts(page) == (1, 2, 0)
        assert "“Repair” is not one of: Fibre, Installation." in page

    def test_a_job_rows_error_is_in_the_report(self, staff, bob, installation, repair, charlie):
        rows = (*JOB_ROWS[:2], JOB_ROWS[2].replace(",Repair,", ",Plumbing,"))
        run = import_create(file_name="jobs.csv", data=job_csv(*rows), actor=bob)
        page = staff.get(reverse("crm:import_detail", args=[run.public_id])).content.decode()
        assert "“Plumbing” is not one of: Installation, Repair." in page
        report = staff.get(reverse("crm:import_errors", args=[run.public_id])).content.decode("utf-8-sig")
        assert report.splitlines()[1] == '4,Pipeline,"“Plumbing” is not one of: Installation, Repair."'

    def test_the_done_page_says_what_the_import_did_about_jobs(
        self, staff, job_run, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[job_run.public_id]))
        job_run.refresh_from_db()
        assert job_run.status == ImportRun.Status.DONE, job_run.failure
        assert (job_run.jobs_created, job_run.welcomes_queued, job_run.jobs_existing) == (2, 3, 0)
        response = staff.get(reverse("crm:import_progress", args=[job_run.public_id]))
        assert response.status_code == 286
        assert "2 jobs opened, 3 welcome messages queued, 0 already there." in text_of(response.content.decode())
        page = staff.get(reverse("crm:import_detail", args=[job_run.public_id])).content.decode()
        assert "2 jobs opened, 3 welcome messages queued, 0 already there." in text_of(page)

    def test_the_done_page_of_the_same_file_again_finds_every_job_there(
        self, staff, job_run, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[job_run.public_id]))
        upload(staff, job_csv(*JOB_ROWS), name="jobs.csv")
        again = ImportRun.objects.exclude(pk=job_run.pk).get()
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[again.public_id]))
        again.refresh_from_db()
        assert again.status == ImportRun.Status.DONE, again.failure
        assert (again.jobs_created, again.welcomes_queued, again.jobs_existing) == (0, 0, 2)
        page = staff.get(reverse("crm:import_progress", args=[again.public_id])).content.decode()
        assert "0 jobs opened, 0 welcome messages queued, 2 already there." in text_of(page)
        assert Message.objects.filter(kind=Message.Kind.WELCOME).count() == 3

    def test_the_done_page_of_a_file_without_jobs_says_nothing_of_jobs(
        self, staff, checked_run, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            staff.post(reverse("crm:import_start", args=[checked_run.public_id]))
        page = staff.get(reverse("crm:import_progress", args=[checked_run.public_id])).content.decode()
        assert "Import finished." in page
        assert "jobs opened" not in page and 'id="import-jobs-done"' not in page

    def test_saving_an_import_with_jobs_says_so(self, staff, job_run):
        ImportRun.objects.filter(pk=job_run.pk).update(status=ImportRun.Status.RUNNING, processed_rows=3)
        page = staff.get(reverse("crm:import_progress", args=[job_run.public_id])).content.decode()
        assert "Saving the customers, contacts and jobs…" in page
