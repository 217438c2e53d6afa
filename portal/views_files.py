"""The customer's files: "Send us photos or a document" from the job page, and opening a document
we shared or a photo they sent.

A file is found only among the files of a job found by ``_get_job_for_contact`` (the signed-in
contact's customer's): any other file — another job's, another customer's, withdrawn, removed —
is a 404. The bytes are sent by crm.downloads (streamed, or a short-lived signed URL from the
object store), never from a public path.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_safe

from crm import ratelimit
from crm.downloads import Variant, file_response
from crm.errors import DomainError
from crm.models import JobFile
from crm.people import person_card
from crm.services.files import files_receive
from portal import selectors
from portal.access import PortalRequest, contact_required
from portal.forms import UploadForm
from portal.views import _get_job_for_contact, _job_page

# Uploads per contact: a few sends a day is a person; a script filling the storage is not.
UPLOADS_PER_CONTACT = (20, 3600)


@require_http_methods(["GET", "HEAD", "POST"])
@contact_required
def upload(request: PortalRequest, public_id: uuid.UUID) -> HttpResponse:
    """Photos or documents with a note, kept on the job as a message from the customer (the
    owner is told). Any refused file is named with the reason, and nothing of that send is kept.
    A GET (this address reloaded) goes on to the job page's form."""
    job = _get_job_for_contact(request, public_id)
    files_url = reverse("portal:job", args=[job.public_id]) + "#files"
    if request.method != "POST":
        return redirect(files_url)
    # Counted before the files are read: each send costs decoding and re-encoding its photos,
    # refused or not.
    limit, window = UPLOADS_PER_CONTACT
    if not ratelimit.allow("upload", str(request.contact.pk), limit=limit, window=window):
        # The form as it was, empty (nothing of this send was read), with the reason.
        form = UploadForm()
        form.full_clean()
        form.cleaned_data = {}
        form.add_error(
            None,
            _("You have sent us many files in a short time. Please wait a little, or call %(name)s.")
            % {"name": person_card(job.owner).name},
        )
        return _job_page(request, job, upload_form=form, status=429)
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            files_receive(
                job=job,
                contact=request.contact,
                files=form.cleaned_data["attachments"],
                note=form.cleaned_data["note"],
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            count = len(form.cleaned_data["attachments"])
            messages.success(
                request,
                ngettext(
                    "Thank you: we have your file. %(name)s will look at it.",
                    "Thank you: we have your %(count)s files. %(name)s will look at them.",
                    count,
                )
                % {"count": count, "name": person_card(job.owner).first_name},
            )
            return redirect(files_url)
    return _job_page(request, job, upload_form=form, status=400)


def _file(request: PortalRequest, public_id: uuid.UUID, file_id: uuid.UUID, variant: Variant) -> HttpResponseBase:
    job = _get_job_for_contact(request, public_id)
    found: JobFile | None = selectors.job_file(job, file_id)
    if found is None:
        raise Http404("No such file")
    return file_response(found, variant)


@require_safe
@contact_required
def download(request: PortalRequest, public_id: uuid.UUID, file_id: uuid.UUID) -> HttpResponseBase:
    return _file(request, public_id, file_id, "file")


@require_safe
@contact_required
def thumbnail(request: PortalRequest, public_id: uuid.UUID, file_id: uuid.UUID) -> HttpResponseBase:
    return _file(request, public_id, file_id, "thumbnail")


urlpatterns = [
    path("jobs/<uuid:public_id>/files/", upload, name="upload"),
    path("jobs/<uuid:public_id>/files/<uuid:file_id>/", download, name="file"),
    path("jobs/<uuid:public_id>/files/<uuid:file_id>/thumbnail/", thumbnail, name="file_thumbnail"),
]
