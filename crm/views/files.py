"""A job's files on the staff side: open what the customer sent or what we shared (streamed, or a
short-lived signed URL: crm.downloads), share a document (the promise of it kept by the sharing),
withdraw one from the customer's portal."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from crm.access import StaffRequest, staff_required
from crm.downloads import file_response
from crm.errors import DomainError
from crm.forms.files import DocumentWithdrawForm
from crm.models import AccessRecord, Job, JobFile
from crm.services.files import document_share, document_withdraw
from crm.views.access_log import seen
from crm.views.jobs import act_on_job, back_to_job, get_job


def _found(public_id: Any, file_id: Any) -> JobFile:
    # Staff see every job's files, withdrawn ones too (kept for the record).
    return get_object_or_404(JobFile.objects.select_related("job"), job__public_id=public_id, public_id=file_id)


@staff_required
@require_safe
def job_file(request: StaffRequest, public_id: Any, file_id: Any) -> HttpResponseBase:
    found = _found(public_id, file_id)
    # The file itself is recorded (its thumbnails come with the job page, recorded there).
    seen(request, AccessRecord.Kind.FILE, customer_id=found.job.customer_id, subject=found.title)
    return file_response(found, "file")


@staff_required
@require_safe
def job_file_thumbnail(request: StaffRequest, public_id: Any, file_id: Any) -> HttpResponseBase:
    return file_response(_found(public_id, file_id), "thumbnail")


@staff_required
@require_POST
def share(request: StaffRequest, public_id: Any) -> HttpResponseBase:
    def perform(job: Job, data: dict[str, Any]) -> str:
        shared = document_share(
            job=job, actor=request.user, document=data["document"], title=data["title"], keeps=data["keeps"]
        )
        if data["keeps"] is not None:
            return _(
                "“%(title)s” is on the customer's page; they are being told. The promise “%(promise)s” is kept."
            ) % {
                "title": shared.title,
                "promise": data["keeps"].title,
            }
        return _("“%(title)s” is on the customer's page; they are being told.") % {"title": shared.title}

    return act_on_job(request, public_id, "document", perform)


@staff_required
@require_POST
def withdraw(request: StaffRequest, public_id: Any, file_id: Any) -> HttpResponse:
    job = get_job(public_id)
    document = get_object_or_404(JobFile, job=job, public_id=file_id)
    form = DocumentWithdrawForm(request.POST)
    if not form.is_valid():
        return back_to_job(request, job, error=str(form.errors["reason"][0]))
    try:
        document_withdraw(document=document, actor=request.user, reason=form.cleaned_data["reason"])
    except DomainError as error:
        return back_to_job(request, job, error=error.message)
    return back_to_job(
        request, job, done=_("“%(title)s” is no longer on the customer's page.") % {"title": document.title}
    )


urlpatterns: list[URLPattern] = [
    path("jobs/<uuid:public_id>/documents/", share, name="document_share"),
    path("jobs/<uuid:public_id>/files/<uuid:file_id>/", job_file, name="job_file"),
    path("jobs/<uuid:public_id>/files/<uuid:file_id>/thumbnail/", job_file_thumbnail, name="job_file_thumbnail"),
    path("jobs/<uuid:public_id>/files/<uuid:file_id>/withdraw/", withdraw, name="document_withdraw"),
]
