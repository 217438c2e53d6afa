"""A job's file, sent to someone a view has already checked (the portal: the signed-in contact's
customer owns the job; staff pages: staff). Files never have a public address.

From the filesystem the view streams the bytes itself. From object storage (django-storages'
S3Storage, private objects) it answers with a redirect to a signed URL valid for
S3_SIGNED_URL_SECONDS, made for this request, which tells the store the same headers.

Either way: the content type we found when it arrived (never the sender's claim),
``X-Content-Type-Options: nosniff``, and a Content-Disposition with the file's name — inline for a
photo (we re-encoded it: only pixels), attachment for anything else (a PDF opens in the reader,
not as a page of ours).
"""

from __future__ import annotations

from typing import Literal

from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header

from crm.models import JobFile

Variant = Literal["file", "thumbnail"]


def _signs_urls(storage: Storage) -> bool:
    """Object storage that hands out signed URLs (S3Storage with querystring_auth)."""
    return bool(getattr(storage, "querystring_auth", False)) and hasattr(storage, "bucket_name")


def file_response(document: JobFile, variant: Variant = "file") -> HttpResponseBase:
    """The file (or its thumbnail) as a response; a removed file, or a missing thumbnail, is a 404."""
    field = document.thumbnail if variant == "thumbnail" else document.file
    if not document.is_stored or not field:
        raise Http404("No such file")
    if variant == "thumbnail":
        # Always a JPEG, whatever the file.
        content_type, name = "image/jpeg", f"{document.download_name().rpartition('.')[0] or 'file'}-small.jpg"
    else:
        content_type, name = document.content_type, document.download_name()
    inline = content_type.startswith("image/")
    disposition = content_disposition_header(not inline, name) or "attachment"
    storage = field.storage
    response: HttpResponseBase
    if _signs_urls(storage):
        url = storage.url(
            field.name,
            parameters={"ResponseContentType": content_type, "ResponseContentDisposition": disposition},
        )
        response = HttpResponseRedirect(url)
        # Not kept at all: its signed URL expires.
        patch_cache_control(response, private=True, no_store=True)
    else:
        try:
            stream = field.open("rb")
        except FileNotFoundError:
            raise Http404("No such file") from None
        response = FileResponse(stream, content_type=content_type)
        response["Content-Disposition"] = disposition
        # Personal data: kept by this browser only, briefly (a list of thumbnails scrolls back
        # cheaply).
        patch_cache_control(response, private=True, max_age=300)
    response["X-Content-Type-Options"] = "nosniff"
    # Opened on its own, a file can run nothing and load nothing.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response
