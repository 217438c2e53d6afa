"""Files on object storage: the product's own client (django-storages' S3Storage over boto3) talking
real HTTP to a local S3-compatible server (moto in server mode, on a port of its own per test
process), and the settings that choose it from the environment.

What the filesystem tests cannot show: the keys the bytes are stored under, that what is stored
has no EXIF, that a download is a short-lived signed URL the store honours (with the headers the
view asked for) while the same URL unsigned is refused, and that bytes written for a transaction
that failed are deleted from the bucket again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import boto3
import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection
from django.utils.http import content_disposition_header
from moto.server import ThreadedMotoServer
from PIL import ExifTags, Image

from crm.downloads import file_response
from crm.models import Contact, Job, JobEvent, JobFile
from crm.services.files import document_share, files_receive
from crm.uploads import inspect

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-3"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
PREFIX = "uploads"
SIGNED_URL_SECONDS = 45  # not the default (60): the URL must carry the configured figure
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (48.0, 51.0, 24.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (2.0, 21.0, 8.0),
}

# No proxy between the tests and the local server, whatever the environment says.
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on a port the OS picked (free, and one per xdist worker)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    """boto3 on its own, to see what is in the bucket (not through the product)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def bucket(s3: Any, endpoint: str, settings: Any) -> str:
    """A fresh bucket, and the default storage set to it as config/settings.py sets it for
    FILE_STORAGE=s3 (the same options; Django drops its default storage when STORAGES changes)."""
    name = f"portal-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": storage_options(name, endpoint)},
    }
    return name


def storage_options(bucket: str, endpoint: str) -> dict[str, Any]:
    """What config/settings.py builds from S3_BUCKET=bucket, S3_ENDPOINT_URL=endpoint,
    S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_PREFIX=uploads,
    S3_SIGNED_URL_SECONDS=45 and S3_ADDRESSING_STYLE=path (test_settings_build_s3_storage checks
    that the shapes agree)."""
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "location": PREFIX,
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": SIGNED_URL_SECONDS,
        "file_overwrite": False,
        "signature_version": "s3v4",
        "addressing_style": "path",
    }


def keys(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def stored_bytes(s3: Any, bucket: str, field: Any) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{field.name}")["Body"].read())


def photo_with_gps() -> bytes:
    """A real JPEG that says where it was taken (and with which camera)."""
    image = Image.new("RGB", (1200, 900), (200, 120, 40))
    for x in range(0, 1200, 40):
        image.paste((30, 60, 200), (x, 0, x + 20, 900))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.IFD.GPSInfo] = GPS
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=90)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test photo has no GPS"
    return data


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET over real HTTP: status, headers (lower-cased names), body."""
    try:
        with http.open(url, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, {k.lower(): v for k, v in refused.headers.items()}, refused.read()


def signed_query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@contextmanager
def database_refuses(table: str) -> Iterator[list[str]]:
    """The database fails every INSERT into ``table`` on this connection (as a full disk, a
    lost connection or a constraint would): nothing in the product is patched."""
    refused: list[str] = []

    def execute(run: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith(f'INSERT INTO "{table.upper()}"'):
            refused.append(sql)
            raise DatabaseError(f"refused by the test: {table}")
        return run(sql, params, many, context)

    with connection.execute_wrapper(execute):
        yield refused


@pytest.fixture
def photo(bucket: str, job: Job, contact: Contact) -> JobFile:
    files_receive(job=job, contact=contact, files=[inspect("IMG_0042.JPG", photo_with_gps())], note="The wall")
    return JobFile.objects.get(job=job)


# --- Stored -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_contacts_photo_is_stored_in_the_bucket_under_our_name_without_exif(
    photo: JobFile, job: Job, s3: Any, bucket: str
):
    assert photo.file.name == f"jobs/{job.public_id}/{photo.public_id}.jpg"
    assert photo.thumbnail.name == f"jobs/{job.public_id}/{photo.public_id}-thumb.jpg"
    # Those two objects and nothing else; the sender's name is nowhere in a key.
    assert keys(s3, bucket) == {f"{PREFIX}/{photo.file.name}", f"{PREFIX}/{photo.thumbnail.name}"}

    stored = stored_bytes(s3, bucket, photo.file)
    assert len(stored) == photo.size
    assert photo.sha256 == hashlib.sha256(stored).hexdigest()
    with Image.open(io.BytesIO(stored)) as kept:
        assert kept.format == "JPEG"
        assert (kept.width, kept.height) == (photo.width, photo.height) == (1200, 900)
        assert not kept.getexif()
        assert not kept.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"Exif\x00\x00" not in stored
    assert b"TestCam" not in stored

    thumbnail = stored_bytes(s3, bucket, photo.thumbnail)
    with Image.open(io.BytesIO(thumbnail)) as small:
        assert small.format == "JPEG"
        assert max(small.size) <= 480
        assert not small.getexif()


# --- Downloads ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("variant", ["file", "thumbnail"])
def test_a_download_is_a_short_lived_signed_url_the_store_honours(
    photo: JobFile, variant: str, endpoint: str, s3: Any, bucket: str, settings: Any
):
    field = photo.thumbnail if variant == "thumbnail" else photo.file
    response = file_response(photo, variant)  # type: ignore[arg-type]

    assert response.status_code == 302
    url = response["Location"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == endpoint
    assert parts.path == f"/{bucket}/{PREFIX}/{field.name}"
    query = signed_query(url)
    assert query["X-Amz-Signature"]
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == str(settings.STORAGES["default"]["OPTIONS"]["querystring_expire"])
    assert query["X-Amz-Expires"] == str(SIGNED_URL_SECONDS)
    # The headers the store is to answer with: our content type, inline for a picture.
    assert query["response-content-type"] == "image/jpeg"
    name = "IMG_0042-small.jpg" if variant == "thumbnail" else "IMG_0042.jpg"
    assert query["response-content-disposition"] == content_disposition_header(False, name)
    # The redirect itself is not kept anywhere: its URL expires.
    assert "no-store" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"

    status, headers, body = fetch(url)
    assert status == 200
    assert body == stored_bytes(s3, bucket, field)
    assert headers["content-type"] == query["response-content-type"]
    assert headers["content-disposition"] == query["response-content-disposition"]

    # The same object without the signature: refused.
    status, _headers, body = fetch(urlunsplit(parts._replace(query="")))
    assert status == 403
    assert body != stored_bytes(s3, bucket, field)


@pytest.mark.django_db
def test_a_shared_document_downloads_as_an_attachment_with_its_name(job: Job, bob: User, s3: Any, bucket: str):
    shared = document_share(job=job, actor=bob, document=inspect("Devis été 2026.pdf", PDF), title="Quote")
    assert shared.file.name == f"jobs/{job.public_id}/{shared.public_id}.pdf"
    assert keys(s3, bucket) == {f"{PREFIX}/{shared.file.name}"}  # a PDF has no thumbnail

    response = file_response(shared)
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    query = signed_query(response["Location"])
    assert query["X-Amz-Expires"] == str(SIGNED_URL_SECONDS)

    status, headers, body = fetch(response["Location"])
    assert status == 200
    assert body == PDF
    assert headers["content-type"] == "application/pdf"
    disposition = headers["content-disposition"]
    assert disposition == content_disposition_header(True, shared.download_name())
    assert disposition.startswith("attachment;")
    # The name, non-ASCII letters and all, as RFC 6266 says them.
    assert "filename*=utf-8''Devis%20%C3%A9t%C3%A9%202026.pdf" in disposition


# --- A failed transaction leaves nothing in the bucket ------------------------------------------


@pytest.mark.django_db
def test_bytes_written_for_rows_the_database_refused_are_deleted_from_the_bucket(
    job: Job, contact: Contact, s3: Any, bucket: str
):
    photo = inspect("IMG_0042.JPG", photo_with_gps())
    with database_refuses(JobFile._meta.db_table) as refused, pytest.raises(DatabaseError):
        files_receive(job=job, contact=contact, files=[photo, inspect("plan.pdf", PDF)])
    assert refused, "the rows were never inserted: the test proves nothing"
    assert keys(s3, bucket) == set()
    assert not JobFile.objects.filter(job=job).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("service", ["files_receive", "document_share"])
def test_bytes_written_for_a_transaction_that_failed_later_are_deleted_from_the_bucket(
    service: str, job: Job, contact: Contact, bob: User, s3: Any, bucket: str
):
    # The files' rows are inserted; the job's log line, written after them in the same
    # transaction, is refused: the whole transaction rolls back.
    with database_refuses(JobEvent._meta.db_table) as refused, pytest.raises(DatabaseError):
        if service == "files_receive":
            files_receive(job=job, contact=contact, files=[inspect("IMG_0042.JPG", photo_with_gps())])
        else:
            document_share(job=job, actor=bob, document=inspect("quote.pdf", PDF), title="Quote")
    assert refused
    assert not JobFile.objects.filter(job=job).exists()
    assert keys(s3, bucket) == set()


# --- Settings -----------------------------------------------------------------------------------

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.core.files.storage import storages
storage = storages["default"]
print(json.dumps({
    "config": settings.STORAGES["default"],
    "class": f"{type(storage).__module__}.{type(storage).__qualname__}",
    "bucket": getattr(storage, "bucket_name", None),
    "expire": getattr(storage, "querystring_expire", None),
    "location": str(storage.location),
}, default=str))
"""


def start(probe: str = PROBE, **env: str) -> subprocess.CompletedProcess[str]:
    """config.settings in a new process with ``env`` (and nothing of ours: no FILE_STORAGE, S3_*)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DJANGO_DEBUG", "FILE_STORAGE", "DATABASE_URL"} and not k.startswith("S3_")
    }
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1")
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_settings_build_s3_storage_from_the_environment():
    result = start(
        FILE_STORAGE="s3",
        S3_BUCKET="portal-files",
        S3_ENDPOINT_URL="http://127.0.0.1:9000",
        S3_REGION=REGION,
        S3_ACCESS_KEY_ID=ACCESS_KEY,
        S3_SECRET_ACCESS_KEY=SECRET_KEY,
        S3_PREFIX=PREFIX,
        S3_SIGNED_URL_SECONDS=str(SIGNED_URL_SECONDS),
        S3_ADDRESSING_STYLE="path",
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["config"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        # What the tests above run with: the same options, from the environment.
        "OPTIONS": storage_options("portal-files", "http://127.0.0.1:9000"),
    }
    assert seen["class"] == "storages.backends.s3.S3Storage"
    assert (seen["bucket"], seen["expire"], seen["location"]) == ("portal-files", SIGNED_URL_SECONDS, PREFIX)


def test_settings_s3_defaults_sign_urls_for_a_minute():
    result = start(FILE_STORAGE="s3", S3_BUCKET="portal-files")
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)["config"]["OPTIONS"]
    assert options["querystring_auth"] is True
    assert options["querystring_expire"] == 60
    assert options["default_acl"] is None
    assert options["file_overwrite"] is False
    # Unset: boto3's own defaults (AWS itself, its credential chain, its addressing).
    assert options["endpoint_url"] is options["region_name"] is options["addressing_style"] is None
    assert options["access_key"] is options["secret_key"] is None
    assert options["location"] == ""


def test_settings_default_to_the_filesystem():
    result = start()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["class"] == "django.core.files.storage.filesystem.FileSystemStorage"


SETTINGS_ONLY = "from django.conf import settings; print(settings.STORAGES['default'])"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"FILE_STORAGE": "s3"}, "S3_BUCKET"),
        ({"FILE_STORAGE": "s3", "S3_BUCKET": "  "}, "S3_BUCKET"),
        ({"FILE_STORAGE": "other"}, "FILE_STORAGE must be filesystem or s3, not 'other'"),
        ({"FILE_STORAGE": "s3", "S3_BUCKET": "b", "S3_SIGNED_URL_SECONDS": "soon"}, "S3_SIGNED_URL_SECONDS"),
    ],
)
def test_settings_refuse_a_storage_they_cannot_use(env: dict[str, str], said: str):
    result = start(SETTINGS_ONLY, **env)
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert said in last, result.stderr
