"""CSV import of customers, contacts and jobs: upload, match the columns, review, start, follow.

Every view requires staff; any staff member may follow any import (customers are the team's). The
import's own page changes with its status: the review while it waits to start, the progress bar
once it runs. Writes go through crm.services.csv_import; the import runs as a django-q2 task.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from crm import csv_import
from crm.access import StaffRequest, staff_required
from crm.errors import DomainError
from crm.forms.csv_import import ImportMappingForm, ImportStartForm, ImportUploadForm
from crm.models import AccessRecord, ImportRun
from crm.services.csv_import import (
    PROGRESS_FIELDS,
    import_create,
    import_restart,
    import_start,
    import_validate,
    is_stalled,
)
from crm.views.access_log import seen

ERRORS_SHOWN = 200
RECENT_IMPORTS = 10
# htmx stops polling on this status (https://htmx.org/attributes/hx-trigger/, "every").
STOP_POLLING = 286
SAMPLE_CSV = settings.BASE_DIR / "docs" / "examples" / "customers-sample.csv"


def _get_run(public_id: str, *, full: bool = False) -> ImportRun:
    runs = ImportRun.objects.select_related("created_by")
    if not full:
        runs = runs.only(*PROGRESS_FIELDS, "created_by__username", "created_by__first_name", "created_by__last_name")
    return get_object_or_404(runs, public_id=public_id)


def _progress_context(run: ImportRun) -> dict[str, object]:
    saving = run.status == ImportRun.Status.RUNNING and run.percent == 100
    return {"run": run, "stalled": is_stalled(run), "saving": saving, "with_jobs": "job_title" in run.mapping}


@staff_required
@require_http_methods(["GET", "POST"])
def import_upload(request: StaffRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST, request.FILES) if request.method == "POST" else ImportUploadForm()
    if request.method == "POST" and form.is_valid():
        file = form.cleaned_data["file"]
        try:
            run = import_create(file_name=file.name or "import.csv", data=file.read(), actor=request.user)
        except DomainError as error:
            form.add_error("file", error.message)
        else:
            if run.status == ImportRun.Status.UPLOADED:
                return redirect("crm:import_mapping", run.public_id)
            return redirect("crm:import_detail", run.public_id)
    recent = ImportRun.objects.select_related("created_by").only(
        *PROGRESS_FIELDS, "created_at", "created_by__username", "created_by__first_name", "created_by__last_name"
    )[:RECENT_IMPORTS]
    return render(
        request,
        "crm/csv_import/upload.html",
        {
            "nav": "import",
            "form": form,
            "recent": recent,
            "default_language": settings.LANGUAGE_CODE,
            "default_time_zone": settings.DEFAULT_CONTACT_TIME_ZONE,
        },
    )


@staff_required
@require_http_methods(["GET"])
def import_sample(request: StaffRequest) -> HttpResponse:
    if not SAMPLE_CSV.exists():
        raise Http404
    response = HttpResponse(SAMPLE_CSV.read_bytes(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, SAMPLE_CSV.name) or "attachment"
    return response


@staff_required
@require_http_methods(["GET", "POST"])
def import_mapping(request: StaffRequest, public_id: str) -> HttpResponse:
    run = _get_run(public_id, full=True)
    if run.status not in (ImportRun.Status.UPLOADED, ImportRun.Status.VALIDATED):
        return redirect("crm:import_detail", run.public_id)
    form = ImportMappingForm(request.POST if request.method == "POST" else None, run=run)
    if request.method == "POST" and form.is_valid():
        try:
            import_validate(run=run, mapping=form.mapping)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            return redirect("crm:import_detail", run.public_id)
    missing = csv_import.missing_fields(run.mapping) if not form.is_bound else []
    return render(
        request,
        "crm/csv_import/mapping.html",
        {"nav": "import", "run": run, "form": form, "missing": missing, "sample": run.rows[:5]},
    )


@staff_required
@require_http_methods(["GET"])
def import_detail(request: StaffRequest, public_id: str) -> HttpResponse:
    run = _get_run(public_id)
    if run.status == ImportRun.Status.UPLOADED:
        return redirect("crm:import_mapping", run.public_id)
    if run.status == ImportRun.Status.VALIDATED:
        return _review(request, _get_run(public_id, full=True), ImportStartForm(run=run))
    return render(request, "crm/csv_import/progress.html", {"nav": "import", **_progress_context(run)})


def _review(request: HttpRequest, run: ImportRun, form: ImportStartForm) -> HttpResponse:
    labels = {f.key: f.label for f in csv_import.FIELDS}
    columns = [(labels[key], csv_import.column_label(run.headers, index)) for key, index in run.mapping.items()]
    context = {
        "nav": "import",
        "run": run,
        "form": form,
        "columns": columns,
        "errors": run.errors[:ERRORS_SHOWN],
        "errors_shown": min(ERRORS_SHOWN, run.error_count),
        "contacts_already": run.valid_rows - run.contacts_to_create,
        # The job counts are the check's, stored on the run (jobs_to_create, …): nothing is
        # checked again on this page.
        "with_jobs": "job_title" in run.mapping,
    }
    return render(request, "crm/csv_import/review.html", context)


@staff_required
@require_POST
def import_start_view(request: StaffRequest, public_id: str) -> HttpResponse:
    run = _get_run(public_id)
    form = ImportStartForm(request.POST, run=run)
    if not form.is_valid() and run.status == ImportRun.Status.VALIDATED:
        return _review(request, _get_run(public_id, full=True), form)
    try:
        import_start(run=run, valid_only=bool(form.cleaned_data.get("valid_only")))
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("crm:import_detail", run.public_id)


@staff_required
@require_POST
def import_restart_view(request: StaffRequest, public_id: str) -> HttpResponse:
    import_restart(run=_get_run(public_id))
    return redirect("crm:import_detail", public_id)


@staff_required
@require_http_methods(["GET"])
def import_progress(request: StaffRequest, public_id: str) -> HttpResponse:
    """The progress fragment, polled every second by the page; 286 once finished stops the polling."""
    run = _get_run(public_id)
    response = render(request, "crm/csv_import/_progress.html", _progress_context(run))
    if run.is_finished:
        response.status_code = STOP_POLLING
    return response


@staff_required
@require_http_methods(["GET"])
def import_errors(request: StaffRequest, public_id: str) -> HttpResponse:
    run = get_object_or_404(ImportRun.objects.only("id", "file_name", "delimiter", "errors"), public_id=public_id)
    # With a BOM, Excel opens the accents right.
    body = "\ufeff" + csv_import.errors_csv(run.errors, delimiter=run.delimiter or ",")
    stem = run.file_name.rsplit(".", 1)[0] or "import"
    seen(request, AccessRecord.Kind.EXPORT, subject=f"import errors: {run.file_name}")
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"{_('errors')}-{stem}.csv") or "attachment"
    return response


urlpatterns: list[URLPattern] = [
    path("import/", import_upload, name="import"),
    path("import/sample.csv", import_sample, name="import_sample"),
    path("import/<uuid:public_id>/", import_detail, name="import_detail"),
    path("import/<uuid:public_id>/columns/", import_mapping, name="import_mapping"),
    path("import/<uuid:public_id>/start/", import_start_view, name="import_start"),
    path("import/<uuid:public_id>/restart/", import_restart_view, name="import_restart"),
    path("import/<uuid:public_id>/progress/", import_progress, name="import_progress"),
    path("import/<uuid:public_id>/errors.csv", import_errors, name="import_errors"),
]
