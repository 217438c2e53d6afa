"""Where a page sends a person after a form that says where to go (a ``next`` field): a path on
this site, else the page they came from, else the page's home.

Every such target goes through ``next_page``. ``django.shortcuts.redirect()`` must not see the
value itself: it takes a word without a slash for a view name ("hello" was a 500, "crm:home" a way
into the staff pages from the portal), and a full URL may name another site.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def local_path(request: HttpRequest, value: object) -> str | None:
    """``value`` if it is a path on this site ("/portal/jobs/…?page=2"), else None."""
    if not isinstance(value, str) or not value.startswith("/"):
        return None
    # Django checks only the first character for control characters; a NUL further in would be
    # sent on in the Location header.
    if any(unicodedata.category(char) == "Cc" for char in value):
        return None
    if not url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    return value


def came_from(request: HttpRequest) -> str | None:
    """The path of the page this request came from, when the browser says (Referer) and it is ours."""
    referer = request.headers.get("referer", "")
    if not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(referer)
    return local_path(request, parts.path + (f"?{parts.query}" if parts.query else ""))


def next_page(request: HttpRequest, value: object, *, home: str) -> str:
    """The path to go to: ``value`` when it is a path on this site, else the page the request came
    from, else ``home``."""
    return local_path(request, value) or came_from(request) or home
