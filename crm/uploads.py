"""What a file someone sends us is, found from its content, never from its name or the type the
browser claimed; and what we keep of it.

- Types: ``FILE_TYPES`` (content types; by default JPEG, PNG and WebP photos and PDF documents).
  An image is whatever Pillow opens *with only the accepted image formats enabled*; a PDF is a
  file that starts with ``%PDF-`` and ends with ``%%EOF``. Anything else (an HTML page renamed
  ``.jpg``, an SVG, a zip) is refused, and says so.
- Size: ``FILE_MAX_MB`` per file, checked before the file is read; an empty file is refused.
- Pixels: an image's width × height is read from its header and refused above
  ``FILE_MAX_MEGAPIXELS`` *before* it is decoded (a small file can decode into gigabytes).
- Photos are re-encoded: the copy kept has no EXIF (no location, no camera serial), turned the
  way the camera's orientation tag said; a thumbnail (JPEG, at most THUMBNAIL_SIZE px) is made.
- Names: the sender's name is kept as text for people only, reduced to its last part, without
  control characters, with the extension its content has. Where the bytes are stored is ours
  (crm.models.files.stored_name).

No database and no storage here: crm.services.files stores what this returns.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from crm.errors import DomainError
from crm.text import clean_text

THUMBNAIL_SIZE = 480
JPEG_QUALITY = 88
PDF = "application/pdf"
# Pillow's format name for each image type we may accept, and the extension we store it under.
IMAGE_FORMATS = {
    "image/jpeg": ("JPEG", ".jpg"),
    "image/png": ("PNG", ".png"),
    "image/webp": ("WEBP", ".webp"),
    "image/gif": ("GIF", ".gif"),
}
KNOWN_TYPES = {**{t: ext for t, (_fmt, ext) in IMAGE_FORMATS.items()}, PDF: ".pdf"}
MAX_NAME_LENGTH = 150


class UploadRefused(DomainError):
    """One file we will not keep, and why (said to the person who sent it)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(_("“%(name)s”: %(reason)s") % {"name": name or _("a file without a name"), "reason": reason})


@dataclass(frozen=True)
class Inspected:
    """A file we accept, as it will be stored."""

    name: str
    content_type: str
    extension: str
    data: bytes
    sha256: str
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


def accepted_types() -> list[str]:
    return [t for t in settings.FILE_TYPES if t in KNOWN_TYPES]


def accept_attribute() -> str:
    """The file input's ``accept``: what the phone's picker offers (the server checks again)."""
    return ",".join(t for t in accepted_types())


def max_file_bytes() -> int:
    return int(settings.FILE_MAX_MB * 1024 * 1024)


def types_said() -> str:
    """ "photos (JPEG, PNG, WebP) and PDF documents", for the refusal and the form's help."""
    images = [IMAGE_FORMATS[t][0].replace("WEBP", "WebP") for t in accepted_types() if t in IMAGE_FORMATS]
    pdf = PDF in accepted_types()
    if images and pdf:
        return _("photos (%(formats)s) and PDF documents") % {"formats": ", ".join(images)}
    if images:
        return _("photos (%(formats)s)") % {"formats": ", ".join(images)}
    return _("PDF documents")


def display_name(name: str | None, extension: str | None = None) -> str:
    """The sender's file name as people read it: its last path part (``../../etc/passwd`` is
    ``passwd``), printable, at most MAX_NAME_LENGTH characters, ending in ``extension`` (the one
    its content has) or, when None, in the one it came with (to name a refused file)."""
    text = clean_text(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = re.sub(r"\s+", " ", text).strip().strip(".")
    stem, dot, given = text.rpartition(".") if "." in text else (text, "", "")
    if extension is None:
        extension = f".{given[:10]}" if dot and given else ""
    stem = stem.strip()[: MAX_NAME_LENGTH - len(extension)] or _("file")
    return f"{stem}{extension}"


def read_upload(upload: UploadedFile) -> Inspected:
    """Inspect a file from a form: its size first (nothing is read of a file that is too big)."""
    name = display_name(upload.name)
    if upload.size is not None and upload.size > max_file_bytes():
        raise UploadRefused(name, _too_big(upload.size))
    upload.seek(0)
    return inspect(upload.name or "", upload.read(max_file_bytes() + 1))


def _too_big(size: int) -> str:
    return _("it is %(size)s; the limit is %(limit)s per file.") % {
        "size": filesizeformat(size),
        "limit": filesizeformat(max_file_bytes()),
    }


def inspect(name: str, data: bytes) -> Inspected:
    """What ``data`` is, or UploadRefused saying why it cannot be kept."""
    shown = display_name(name)
    if not data:
        raise UploadRefused(shown, _("the file is empty."))
    if len(data) > max_file_bytes():
        raise UploadRefused(shown, _too_big(len(data)))
    accepted = accepted_types()
    if PDF in accepted and data[:1024].lstrip().startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise UploadRefused(shown, _("this PDF is incomplete or damaged."))
        return Inspected(
            name=display_name(name, ".pdf"),
            content_type=PDF,
            extension=".pdf",
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
        )
    image_types = [t for t in accepted if t in IMAGE_FORMATS]
    if image_types:
        return _image(name, data, image_types)
    raise UploadRefused(shown, _("we can only take %(types)s.") % {"types": types_said()})


def _image(name: str, data: bytes, image_types: list[str]) -> Inspected:
    shown = display_name(name)
    formats = {IMAGE_FORMATS[t][0]: t for t in image_types}
    limit = int(settings.FILE_MAX_MEGAPIXELS * 1_000_000)
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, past its own pixel limit; ours (below) is lower and says why.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:
        # Past Pillow's own limit (read from the header, like ours): far too many pixels.
        raise UploadRefused(
            shown, _("the picture has more than %(mp)s megapixels.") % {"mp": settings.FILE_MAX_MEGAPIXELS}
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadRefused(shown, _("we can only take %(types)s.") % {"types": types_said()}) from None
    with image:
        # A JPEG carrying more pictures (many phones and cameras write one: MPO) is a JPEG: its
        # first picture is kept, re-encoded like any other.
        found = "JPEG" if image.format == "MPO" else str(image.format)
        if found not in formats:
            raise UploadRefused(shown, _("we can only take %(types)s.") % {"types": types_said()})
        content_type = formats[found]
        width, height = image.size
        if width * height > limit:
            raise UploadRefused(
                shown,
                _("the picture is %(w)s × %(h)s pixels; the limit is %(mp)s megapixels.")
                % {"w": width, "h": height, "mp": settings.FILE_MAX_MEGAPIXELS},
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            kept, content_type = _reencoded(upright, content_type)
            thumbnail = _thumbnail(upright)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise UploadRefused(shown, _("this picture is incomplete or damaged.")) from None
    extension = IMAGE_FORMATS[content_type][1]
    return Inspected(
        name=display_name(name, extension),
        content_type=content_type,
        extension=extension,
        data=kept,
        sha256=hashlib.sha256(kept).hexdigest(),
        thumbnail=thumbnail,
        width=upright.width,
        height=upright.height,
    )


def _reencoded(image: Image.Image, content_type: str) -> tuple[bytes, str]:
    """The picture saved again without its metadata (EXIF, XMP, text chunks): only the pixels and
    the colour profile are carried over. A GIF keeps its first frame, as a PNG."""
    out = io.BytesIO()
    icc = image.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if content_type == "image/jpeg":
        rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
        rgb.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True, **extra)
    elif content_type == "image/webp":
        image.save(out, format="WEBP", quality=JPEG_QUALITY, **extra)
    else:
        frame = image if image.mode in ("RGB", "RGBA", "L", "LA", "P") else image.convert("RGBA")
        frame.save(out, format="PNG", optimize=True, **extra)
        content_type = "image/png"
    return out.getvalue(), content_type


def _thumbnail(image: Image.Image) -> bytes:
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    if small.mode not in ("RGB", "L"):
        # Transparency onto white: a JPEG has none.
        rgba = small.convert("RGBA")
        small = Image.new("RGB", rgba.size, "white")
        small.paste(rgba, mask=rgba.getchannel("A"))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=80, optimize=True)
    return out.getvalue()
