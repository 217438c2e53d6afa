"""Real files for the file tests: photos made with Pillow (with EXIF, GPS included, as a phone
writes them), a small valid PDF, and the hostile ones the uploads must refuse."""

from __future__ import annotations

import io
import struct
import zlib

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from crm.models import Contact, Job, JobFile
from crm.services.files import document_share, files_receive
from crm.uploads import Inspected, inspect

# Where the photo was taken, as a phone writes it (degrees, minutes, seconds north).
GPS_LATITUDE = (48.0, 51.0, 24.0)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def jpeg(width: int = 800, height: int = 600, *, color: str = "teal", orientation: int | None = None) -> bytes:
    """A JPEG with EXIF: a camera model, the GPS position and, if given, an orientation tag."""
    exif = Image.Exif()
    exif[0x0110] = "Test phone"  # Model
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def mpo(width: int = 800, height: int = 600) -> bytes:
    """A JPEG carrying a second picture (MPO), as many phones and cameras write them, with EXIF."""
    exif = Image.Exif()
    exif[0x0110] = "Test phone"  # Model
    out = io.BytesIO()
    first, second = Image.new("RGB", (width, height), "olive"), Image.new("RGB", (width // 4, height // 4), "navy")
    first.save(out, format="MPO", save_all=True, append_images=[second], exif=exif.tobytes())
    return out.getvalue()


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 30, 30, 128)).save(out, format="PNG")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels (a decompression bomb's shape:
    a few hundred bytes that would decode into gigabytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def upload(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def has_exif(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        return bool(image.getexif()) or "exif" in image.info


def photo(name: str = "photo.jpg", **kwargs: object) -> Inspected:
    return inspect(name, jpeg(**kwargs))  # type: ignore[arg-type]


def received(job: Job, contact: Contact, *names: str) -> list[JobFile]:
    """Photos ``contact`` sent on ``job`` from the portal (one upload)."""
    message = files_receive(job=job, contact=contact, files=[photo(n) for n in names or ("photo.jpg",)])
    return list(message.files.order_by("pk"))


def fill_to_thirty(job: Job, contact: Contact, actor: User) -> None:
    """Take a job holding one file to 30: 18 more photos in 9 uploads, 11 shared documents."""
    for i in range(9):
        received(job, contact, f"a{i}.jpg", f"b{i}.jpg")
    for i in range(11):
        document_share(job=job, actor=actor, document=inspect(f"d{i}.pdf", PDF), title=f"Doc {i}")
    assert job.files.count() == 30
