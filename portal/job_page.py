"""The customer's job page, rendered once per change and served from the cache until the job
changes again.

The page is the same for every request of a contact until something on it changes, so its parts
(header, status and timeline with the visits, "what we promised you", the person card, the files,
the message history) are rendered together, once, and kept in the cache. The live poll sends the
same parts back when the job changed (portal/_job_live.html swaps each into place), so a page left
open stays whole, not only its status block.

The cache key holds everything the parts show:

- the job's version, ``Job.updated_at``: every service that changes what the page shows moves it
  (a stage, a date, a promise, a visit, a file, a question, a message stored, sent or refused:
  crm.services.events bumps it with each line of the job's log, crm.services.outbox with each
  message stored), and so does the live poll's ETag;
- the language and time zone the page is read in, and the business day ("late" depends on it);
- the contact and their customer (messages and promises are the contact's own); the person card
  follows the owner's user and profile rows (crm.person_versions moves the versions);
- the day a question asked now would be answered by (the question form says it);
- whether the whole history was asked for, and the templates and translations of this release.

What is personal to one request is never stored: the CSRF token is a placeholder in the
cache, filled in for each request; a page showing a form's errors or a flash message is rendered
for its request alone. The whole page (the parts with the navigation around them) is kept too,
per address, so an unchanged page costs the query of its version and one cache read.

Time moves some things without any change: a crew's "about 25 min" (kept at most
COUNTDOWN_SECONDS), a visit window passing, a promise falling due (kept until then).

The cache is a help, never a need: when it does not answer (Redis stopped), the page is rendered
for this request alone and the failure is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache as default_cache
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe

from crm.links import email_fingerprint
from crm.models import Job, Question
from crm.people import person_card
from crm.services.questions import answer_promise
from portal import selectors, versions
from portal.access import ticket_binding
from portal.forms import AnotherTimeForm, QuestionForm, UploadForm

logger = logging.getLogger(__name__)

# The parts of the page, each one template rendering the inside of one element of the page (the
# page and the poll wrap them: portal/job.html, portal/_job_live.html).
PARTS = {
    "title": "portal/_job_title.txt",
    "header": "portal/_job_header.html",
    "status": "portal/_job_status.html",
    "promises": "portal/_promises.html",
    "owner": "portal/_owner_card.html",
    "files": "portal/_files_list.html",
    "history": "portal/_history.html",
}
# The message history shows the latest ones; "show all" shows every one (its own rendering).
HISTORY_SHOWN = 20
# A countdown ("on the way — about 25 min") is kept this long at most.
COUNTDOWN_SECONDS = 30


@cache
def csrf_placeholder() -> str:
    """What stored pages carry instead of a CSRF token (filled in for each request): nobody can
    guess it, so nothing a customer or a colleague writes can contain it."""
    return "csrf-" + hashlib.sha256(f"portal.job_page|{settings.SECRET_KEY}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class JobPage:
    """The page's parts, ready to be placed (HTML), and the version they show (the ETag the live
    poll compares, with the countdown's minutes when a crew is on its way)."""

    parts: dict[str, SafeString]
    etag: str
    # Whether this request found them in the cache (for tests and logging).
    from_cache: bool
    # The cache key of the parts, the parts as stored (CSRF placeholders in), and until when
    # (a Unix time) they are true: what keeping the whole page needs (keep_whole_page).
    key: str = ""
    stored: dict[str, str] = field(default_factory=dict)
    until: float = 0.0


@cache
def release() -> str:
    """The templates, translations and static files of this release, as a short hash: a new
    release never serves a page rendered by the previous one's templates, or naming static files
    (hashed names, collectstatic's manifest) it no longer has."""
    digest = hashlib.sha256()
    root = Path(settings.BASE_DIR)
    paths = [
        *sorted(root.glob("templates/*.html")),
        *sorted(root.glob("templates/portal/*")),
        *sorted(root.glob("locale/*/LC_MESSAGES/django.mo")),
    ]
    if settings.STATIC_ROOT:
        paths.append(Path(settings.STATIC_ROOT) / "staticfiles.json")
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def base_etag(job_updated_at: datetime) -> str:
    """The version of the job as the reader sees it now (language, time zone, day): the poll's
    one-query ETag and the heart of the cache key."""
    return selectors.status_etag(
        updated_at=job_updated_at,
        language=translation.get_language() or settings.LANGUAGE_CODE,
        time_zone=timezone.get_current_timezone_name(),
    )


def answer_by() -> date:
    """The day a question asked now will be answered by (as crm.services.questions promises it):
    it moves with the business hours, so it is in the key."""
    return answer_promise(Question.Source.PORTAL, timezone.now())[1]


def _key(public_id: uuid.UUID, updated_at: datetime, contact_id: int, customer_id: int, *, all_history: bool) -> str:
    source = "|".join(
        [
            answer_by().isoformat(),
            release(),
            str(public_id),  # random: no other job, database or test run has it
            str(customer_id),
            str(contact_id),
            base_etag(updated_at),
            "all" if all_history else "latest",
        ]
    )
    return "portal:job-page:" + hashlib.sha256(source.encode()).hexdigest()


def ticket_version(request: Any, public_id: uuid.UUID) -> tuple[datetime, int, int] | None:
    """The job's version, the contact and their customer for this browser's ticket
    (portal.access), after one query that also checks the ticket against the session and the
    contact as they are now; None
    when there is no ticket, or anything is not as it should be (the view then reads the session
    and makes its own checks, which sign out, redirect or answer 404)."""
    binding = ticket_binding(request)
    if binding is None:
        return None
    contact_id, customer_id, fingerprint, session_key = binding
    row = versions.job_version(customer_id, public_id, contact_id, session_key)
    if row is None:
        return None
    updated_at, email, link_version = row
    return (updated_at, contact_id, customer_id) if _still_bound(fingerprint, email, link_version) else None


def cached_page(request: Any, public_id: uuid.UUID, *, all_history: bool = False) -> str | None:
    """The whole page straight from the cache for the ticket's contact, after one query
    (``ticket_version``); None when it is not there, when the ticket does not hold, or when a
    flash message waits to be shown."""
    if settings.PORTAL_PAGE_CACHE_SECONDS == 0 or _flash_waiting(request):
        return None
    version = ticket_version(request, public_id)
    if version is None:
        return None
    updated_at, contact_id, customer_id = version
    key = _key(public_id, updated_at, contact_id, customer_id, all_history=all_history)
    whole, parts = _cache_get_many([_whole_page_key(request, key), key])
    # Not kept whole: what was found of the parts, read in the same round trip, serves the page
    # the view renders next (cached_job_page), for the same contact.
    request._portal_parts_looked = _Looked(public_id, all_history, contact_id, customer_id, key, parts)
    return _html_of(request, whole)


@dataclass(frozen=True)
class _Looked:
    public_id: uuid.UUID
    all_history: bool
    contact_id: int
    customer_id: int
    key: str
    entry: dict[str, Any] | None


def _flash_waiting(request: Any) -> bool:
    """Django's messages keep what waits in their cookie (any that overflow into the session leave
    a mark there): with one, the page is rendered for this request, which shows them."""
    return CookieStorage.cookie_name in request.COOKIES


def cached_job_page(request: Any, public_id: uuid.UUID, *, all_history: bool = False) -> JobPage | None:
    """The page's parts straight from the cache, after one query (the job's version, among the
    contact's customer's jobs) — none when cached_page read the version and the parts already;
    None when they are not there (or the job is not the customer's: the view's own lookup then
    answers 404)."""
    if settings.PORTAL_PAGE_CACHE_SECONDS == 0:
        return None
    contact = request.contact
    looked = getattr(request, "_portal_parts_looked", None)
    wanted = (public_id, all_history, contact.pk, contact.customer_id)
    if (
        isinstance(looked, _Looked)
        and (looked.public_id, looked.all_history, looked.contact_id, looked.customer_id) == wanted
    ):
        key, entry = looked.key, _fresh(looked.entry)
    else:
        updated_at = selectors.job_updated_at(contact.customer_id, public_id)
        if updated_at is None:
            return None
        key = _key(public_id, updated_at, contact.pk, contact.customer_id, all_history=all_history)
        entry = _fresh(_cache_get(key))
    return None if entry is None else _filled(request, entry, key=key, from_cache=True)


def _still_bound(fingerprint: str, email: str, link_version: int) -> bool:
    """The session's fingerprint is the contact's as they are now (crm.links.contact_fingerprint):
    not ended by a new address or a reset of their links."""
    return hmac.compare_digest(email_fingerprint(email, link_version), fingerprint)


def _whole_page_key(request: Any, key: str) -> str:
    # The address is on the page (the language switcher comes back to it).
    return key + ":" + hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]


# --- "My jobs", the same way ---------------------------------------------------------------------


def jobs_list_key(request: Any) -> str | None:
    """The cache key of the session's contact's "My jobs" as it stands (one query: the latest
    version among the customer's jobs and their number, with what the page says of the contact
    and customer, and the session checked against the contact's address and link version); None
    when it may not be used (no jobs, a session not as it should be, caching off)."""
    binding = ticket_binding(request)
    if binding is None or settings.PORTAL_PAGE_CACHE_SECONDS == 0 or _flash_waiting(request):
        return None
    contact_id, customer_id, fingerprint, session_key = binding
    row = versions.jobs_version(customer_id, contact_id, session_key)
    if row is None:
        return None
    latest, count, email, link_version, contact_name, customer_name = row
    if not _still_bound(fingerprint, email, link_version):
        return None
    source = "|".join(
        [
            release(),
            str(customer_id),
            str(contact_id),
            fingerprint,  # the calendar address on the page
            contact_name,
            customer_name,
            str(count),
            base_etag(latest),
            request.get_full_path(),
        ]
    )
    return "portal:jobs-list:" + hashlib.sha256(source.encode()).hexdigest()


def cached_html(request: Any, key: str) -> str | None:
    """A page kept whole under ``key``, with this request's CSRF token in."""
    return _html_of(request, _cache_get(key))


def _html_of(request: Any, entry: dict[str, Any] | None) -> str | None:
    entry = _fresh(entry)
    if entry is None or "html" not in entry:
        return None
    return entry["html"].replace(csrf_placeholder(), get_token(request))


def keep_html(request: Any, key: str, html: str) -> str:
    """Keep ``html`` (rendered with the CSRF placeholder) for a day at most; returns it with this
    request's token in."""
    # "Late" moves with the day: the key holds the business day (base_etag).
    until = timezone.now() + timedelta(seconds=settings.PORTAL_PAGE_CACHE_SECONDS)
    _cache_set(key, {"html": html, "etag": "", "until": until.timestamp()}, settings.PORTAL_PAGE_CACHE_SECONDS)
    return html.replace(csrf_placeholder(), get_token(request))


def keep_whole_page(request: Any, page: JobPage, html: str) -> str:
    """Keep ``html``, the page rendered around ``page.stored`` with the CSRF placeholder, for the
    next request of the same address (as long as its parts); returns it with this request's
    token in."""
    keep_for = int(page.until - timezone.now().timestamp())
    if page.key and keep_for > 0:
        _cache_set(_whole_page_key(request, page.key), {"html": html, "etag": page.etag, "until": page.until}, keep_for)
    return html.replace(csrf_placeholder(), get_token(request))


def job_page(
    request: Any,
    job: Job,
    *,
    all_history: bool = False,
    visit_form: AnotherTimeForm | None = None,
) -> JobPage:
    """The parts of ``job``'s page for the signed-in contact (``request.contact``), from the cache
    when they are there. A ``visit_form`` with errors is rendered for this request only."""
    key = _key(job.public_id, job.updated_at, request.contact.pk, request.contact.customer_id, all_history=all_history)
    # A form's errors are this request's own; with no time to keep it, nothing is kept either.
    personal = (visit_form is not None and visit_form.is_bound) or settings.PORTAL_PAGE_CACHE_SECONDS == 0
    entry = None if personal else _fresh(_cache_get(key))
    if entry is not None:
        return _filled(request, entry, key=key, from_cache=True)
    entry = _render(request, job, all_history=all_history, visit_form=visit_form)
    keep_for = int(entry["until"] - timezone.now().timestamp())
    if personal or keep_for <= 0:
        return _filled(request, entry, key="", from_cache=False)
    _cache_set(key, entry, keep_for)
    return _filled(request, entry, key=key, from_cache=False)


def _fresh(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """None when time has moved what it shows (the cache's own expiry may lag: it keeps its own
    clock)."""
    return entry if entry is not None and entry["until"] > timezone.now().timestamp() else None


def _filled(request: Any, entry: dict[str, Any], *, key: str, from_cache: bool) -> JobPage:
    """The parts with this request's CSRF token in their forms (``key``: empty when they may not
    be kept)."""
    token, placeholder = get_token(request), csrf_placeholder()
    # Our templates' output (autoescaped when rendered), with a token of letters and digits put in.
    parts = {
        name: mark_safe(html.replace(placeholder, token))  # noqa: S308
        for name, html in entry["parts"].items()
    }
    return JobPage(
        parts=parts, etag=entry["etag"], from_cache=from_cache, key=key, stored=entry["parts"], until=entry["until"]
    )


def _render(request: Any, job: Job, *, all_history: bool, visit_form: AnotherTimeForm | None) -> dict[str, Any]:
    """Every part, with the CSRF placeholder, the version shown, and until when (a Unix time) the
    rendering stays true."""
    contact = request.contact
    now = timezone.now()
    visits = selectors.job_visits(job)
    files = selectors.job_files(job)
    history = selectors.job_history(job, contact, files)
    promises = selectors.job_promises(job, contact)
    context = {
        "job": job,
        "status": selectors.job_status(job),
        "visits": visits,
        "visit_form": visit_form or AnotherTimeForm(),
        "owner": person_card(job.owner),
        "history": history if all_history else history[:HISTORY_SHOWN],
        "history_count": len(history),
        "history_folded": not all_history and len(history) > HISTORY_SHOWN,
        "promises": promises,
        "files": files,
        # The visit forms' {% csrf_token %}: filled in per request (job_page).
        "csrf_token": csrf_placeholder(),
    }
    parts = {name: render_to_string(template, context, request=request) for name, template in PARTS.items()}
    # The forms as a first visit shows them (a form with errors is the view's own rendering).
    forms = {**context, "parts": parts, "form": QuestionForm(), "upload_form": UploadForm(), "answer_by": answer_by()}
    parts["question"] = render_to_string("portal/_question.html", forms, request=request)
    parts["files_section"] = render_to_string("portal/_files.html", forms, request=request)
    minutes = visits.next.minutes_away if visits.next else None
    etag = base_etag(job.updated_at)
    if minutes is not None:
        etag = f'{etag[:-1]}-{minutes}m"'
    until = _true_until(now, visits, promises, countdown=minutes is not None)
    return {"parts": parts, "etag": etag, "until": until.timestamp()}


def _true_until(
    now: datetime, visits: selectors.JobVisits, promises: list[selectors.PromiseItem], *, countdown: bool
) -> datetime:
    """How long a rendering made at ``now`` stays what the page would show: until a visit window
    passes, a promise falls due or the countdown moves, and never longer than the setting."""
    limits = [now + timedelta(seconds=settings.PORTAL_PAGE_CACHE_SECONDS)]
    if countdown:
        limits.append(now + timedelta(seconds=COUNTDOWN_SECONDS))
    for card in [*([visits.next] if visits.next else []), *visits.later]:
        until = selectors.visit_current_until(card.visit)
        if until is not None:
            limits.append(until)
    limits += [item.due_at for item in promises if item.outcome == "open"]
    return min(limits)


def _cache_get(key: str) -> dict[str, Any] | None:
    return _cache_get_many([key])[0]


def _cache_get_many(keys: list[str]) -> list[dict[str, Any] | None]:
    """The entries under ``keys`` (None for each missing), in one round trip."""
    try:
        found = default_cache.get_many(keys)
    except Exception as error:  # any backend: Redis stopped, a network error, a full memory
        logger.warning("The portal page cache did not answer, rendering without it: %s", error)
        return [None] * len(keys)
    return [_known(found.get(key)) for key in keys]


def _known(entry: Any) -> dict[str, Any] | None:
    # The parts, or the whole page: anything else (another release's shape) is a miss.
    known = isinstance(entry, dict) and {"etag", "until"} <= entry.keys() and ("parts" in entry or "html" in entry)
    return entry if known else None


def _cache_set(key: str, entry: dict[str, Any], seconds: int) -> None:
    try:
        default_cache.set(key, entry, seconds)
    except Exception as error:
        logger.warning("The portal page cache did not store a page: %s", error)
