"""Portal pages. Every page reads through portal.selectors, starting from the signed-in contact's
customer; every job is found by ``_get_job_for_contact`` (another customer's job is a 404).

Anonymous visitors of a page that needs a contact are redirected to the "send me a new link" page
(with the job they wanted); tokens that do not verify are a 404, except a sign-in link, which
never dead-ends: it opens the same "new link" page.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import add_never_cache_headers, get_conditional_response, patch_cache_control
from django.utils.formats import date_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe
from django_q.tasks import async_task

from crm import ratelimit
from crm.access import HtmxHttpRequest
from crm.errors import DomainError
from crm.ids import parse_public_id
from crm.links import (
    VISIT_ANSWERS,
    absolute,
    calendar_contact,
    calendar_url,
    link_token_made_at,
    linked_contact,
    payload_contact_id,
    read_calendar_token,
    read_link_token,
    read_short_token,
    read_unsubscribe_token,
    read_visit_calendar_token,
    signed_out_url,
    webcal_url,
)
from crm.models import Contact, ContactLinkUse, Job, Milestone, Question, Visit
from crm.notify import crew_names
from crm.people import person_card
from crm.redirects import next_page
from crm.services.contacts import (
    contact_link_use_record,
    contact_links_reset,
    contact_opt_out,
    contact_update_preferences,
)
from crm.services.questions import question_create
from portal import ics, selectors
from portal.access import (
    SESSION_LANGUAGE_KEY,
    PortalRequest,
    choose_language,
    contact_required,
    in_portal_language,
    portal_language,
    remember_preferences,
    session_contact_id,
    session_customer_id,
    sign_in,
    sign_out,
    signed_in_as,
)
from portal.forms import AnotherTimeForm, LinkRequestForm, PreferencesForm, QuestionForm, UploadForm
from portal.job_page import (
    JobPage,
    answer_by,
    base_etag,
    cached_html,
    cached_job_page,
    cached_page,
    csrf_placeholder,
    job_page,
    jobs_list_key,
    keep_html,
    keep_whole_page,
    ticket_version,
)

logger = logging.getLogger(__name__)

# How often an open job page asks whether its status changed (a staff change shows within this).
LIVE_STATUS_SECONDS = 20
# "Send me a new link": per email address or mobile number, and per client address (someone
# trying many addresses).
LINK_REQUESTS_PER_ADDRESS = (3, 3600)
LINK_REQUESTS_PER_IP = (20, 3600)
# Questions, per contact: plenty for a person, not for a script filling the owner's inbox.
QUESTIONS_PER_CONTACT = (10, 3600)
# A sign-in link older than this, opened in a browser without a session of its contact, asks
# "Continue as Marie?" first: an old link forwarded or found in a mailbox needs a person's click,
# and a mail scanner following it (GET) signs nobody in. Short links know their day only, so they
# ask from the second day after the one they were made on.
ASK_BEFORE_SIGN_IN_AFTER = timedelta(days=1)


def _get_job_for_contact(request: PortalRequest, public_id: uuid.UUID) -> Job:
    """The one way a portal view finds a job: among the signed-in contact's customer's jobs."""
    job = selectors.job_for_customer(request.contact.customer_id, public_id)
    if job is None:
        raise Http404("No such job")
    return job


# --- Signing in and out -------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """A link from a message: sign the contact in and open the job it was about.

    GET signs in (it is a link in an email) while the link is at most a day old or this browser is
    signed in as its contact already; an older link on another browser asks "Continue as …?",
    whose button POSTs here. Nothing else changes. A link that no longer works (expired, the
    address changed, the links reset) never dead-ends: someone already signed in on this browser
    simply goes on to the page; anyone else gets the page that sends a fresh link, which will open
    the same job.
    """
    try:
        payload = read_link_token(token)
    except signing.BadSignature:  # expired links too (SignatureExpired is a BadSignature)
        payload = None
    contact = linked_contact(payload)
    job = parse_public_id(request.GET.get("job"))
    made_long_ago = contact is not None and timezone.now() - link_token_made_at(token) > ASK_BEFORE_SIGN_IN_AFTER
    return _enter_as(request, contact, job, then=_answer_target(job, request.GET), made_long_ago=made_long_ago)


def _answer_target(job: uuid.UUID | None, query: QueryDict) -> str | None:
    """Where a visit's one-click answer (crm.links.visit_answer_url) goes once signed in: the page
    of that answer for that visit (a visit of another job is a 404 there like any other)."""
    visit, answer = parse_public_id(query.get("visit")), query.get("answer")
    if job is None or visit is None or answer not in VISIT_ANSWERS:
        return None
    name = "portal:visit_confirm" if answer == "confirm" else "portal:visit_another_time"
    return reverse(name, args=[job, visit])


@require_http_methods(["GET", "HEAD", "POST"])
def short_enter(request: HttpRequest, token: str) -> HttpResponse:
    """The short link of a text message: the same as ``enter``, its facts packed in the token
    (its age in days: it asks "Continue as …?" from the second day after the one it was made)."""
    link = read_short_token(token)
    contact = linked_contact(link)
    if link is None or contact is None:
        return _enter_as(request, None, None)
    # The job only among the contact's customer's: a token names ids, never more than that.
    job = selectors.job_public_id(contact.customer_id, link.job_id) if link.job_id else None
    made_long_ago = timezone.now().date() - link.made_on > ASK_BEFORE_SIGN_IN_AFTER
    return _enter_as(request, contact, job, made_long_ago=made_long_ago)


def _enter_as(
    request: HttpRequest,
    contact: Contact | None,
    job: uuid.UUID | None,
    *,
    then: str | None = None,
    made_long_ago: bool = False,
) -> HttpResponse:
    """Sign ``contact`` in and open ``job`` (or their jobs, or the page ``then`` of that job);
    without a contact, go on if this browser is signed in already, else to the page that sends a
    fresh link for the same job. A link ``made_long_ago`` on a browser that is not signed in as
    its contact asks first (GET); the answer (POST) signs in."""
    target = then or (reverse("portal:job", args=[job]) if job else reverse("portal:home"))
    if contact is None:
        if session_customer_id(request) is not None:
            return redirect(target)
        return redirect(signed_out_url(job=job, reason="expired"))
    if request.method != "POST" and made_long_ago and not signed_in_as(request, contact):
        return _continue_as(request, contact, job)
    sign_in(request, contact)
    contact_link_use_record(
        contact=contact, kind=ContactLinkUse.Kind.SIGN_IN, user_agent=request.headers.get("User-Agent", "")
    )
    return redirect(target)


def _continue_as(request: HttpRequest, contact: Contact, job: uuid.UUID | None) -> HttpResponse:
    """ "Continue as Marie?": the button POSTs the same link (its address, its query) back; "Not
    you?" asks for one's own link, for the same job. In the contact's language, unless this
    browser chose another."""
    language = request.session.get(SESSION_LANGUAGE_KEY) or contact.language
    with translation.override(language):
        response = render(
            request,
            "portal/continue.html",
            {
                "first_name": contact.name.split()[0] if contact.name.split() else contact.name,
                "action": request.get_full_path(),
                "not_you_url": signed_out_url(job=job),
            },
        )
    response.headers["Content-Language"] = language
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
@in_portal_language
def signed_out(request: HttpRequest) -> HttpResponse:
    """The page without a session: "send me a new link", to an email address or a mobile number.
    The answer is the same whether the address or number is known or not, whether a link could be
    sent to it, and whether or not a rate limit held the message back."""
    if request.method == "POST":
        form = LinkRequestForm(request.POST)
        if form.is_valid():
            _send_new_links(
                request, address=form.cleaned_data["address"], identity=form.identity, job=form.cleaned_data["job"]
            )
            return redirect("portal:link_sent")
    else:
        form = LinkRequestForm(initial={"job": parse_public_id(request.GET.get("job"))})
    reason = request.GET.get("reason", "")
    return render(
        request,
        "portal/signed_out.html",
        {"form": form, "reason": reason if reason in ("expired", "signed_out") else ""},
    )


def _send_new_links(request: HttpRequest, *, address: str, identity: str, job: uuid.UUID | None) -> None:
    """Have a sign-in link sent to every contact with this email address or mobile number.

    The lookup and the sending happen in a background task, so a known address takes no longer to
    answer than an unknown one (no enumeration by timing either). ``identity`` is what the
    per-address limit counts (a number's digits, however it was written).
    """
    per_address, per_ip = LINK_REQUESTS_PER_ADDRESS, LINK_REQUESTS_PER_IP
    # Both counters move on every attempt, so trying many addresses from one place is held back
    # as surely as asking for one address many times.
    address_ok = ratelimit.allow("link-address", identity, limit=per_address[0], window=per_address[1])
    ip_ok = ratelimit.allow("link-ip", ratelimit.client_ip(request) or "unknown", limit=per_ip[0], window=per_ip[1])
    if not (address_ok and ip_ok):
        logger.info("Sign-in link request held back by the rate limit")
        return
    try:
        async_task("portal.tasks.send_portal_links", address, str(job) if job else None)
    except Exception:
        # The page says the same either way; the person can ask again.
        logger.exception("Could not enqueue a sign-in link request")


@require_safe
@in_portal_language
def link_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/link_sent.html", {"link_days": settings.PORTAL_LINK_MAX_AGE_DAYS})


# The POST-only URLs below answer GET too, by going on to their page: a browser lands on such a
# URL after a form was shown there (a question sent without JavaScript and refused) and GETs it
# again (the language switcher goes back to the current address), and no portal URL dead-ends on
# a blank 405. GET never changes anything.


@require_http_methods(["GET", "HEAD", "POST"])
def sign_out_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        # Signing out is a POST; a GET goes on to "My jobs" (or, signed out, the new-link page).
        return redirect("portal:home")
    sign_out(request)
    return redirect(signed_out_url(reason="signed_out"))


@require_http_methods(["GET", "HEAD", "POST"])
def language(request: HttpRequest) -> HttpResponse:
    """The language switcher: this browser's portal pages follow the choice (the contact's
    messages keep the language set in their preferences), and it goes back to the page it was on
    (crm.redirects.next_page: never another site, never a 500 for a ``next`` that is not a path).
    A GET chooses nothing."""
    if request.method != "POST":
        return redirect("portal:home")
    chosen = request.POST.get("language", "")
    if chosen in {code for code, _name in settings.LANGUAGES}:
        choose_language(request, chosen)
    return HttpResponseRedirect(next_page(request, request.POST.get("next"), home=reverse("portal:home")))


# --- My jobs and the job page -------------------------------------------------------------------


@require_safe
@in_portal_language
def home(request: HttpRequest) -> HttpResponseBase:
    """ "My jobs": unchanged since this contact last saw it, whole from the cache after one query
    that also checks the session against the contact; else through ``contact_required``."""
    key = jobs_list_key(request)
    html = cached_html(request, key) if key else None
    if html is None:
        return _home(request, key=key)
    return _kept_page(html)


@contact_required
def _home(request: PortalRequest, key: str | None) -> HttpResponse:
    contact = request.contact
    cards = selectors.contact_jobs(contact)
    context = {
        "nav": "jobs",
        "open_cards": [c for c in cards if c.job.is_open],
        "closed_cards": [c for c in cards if not c.job.is_open],
        "calendar_url": calendar_url(contact),
        "webcal_url": webcal_url(contact),
    }
    if key is None or messages_waiting(request):
        return render(request, "portal/home.html", context)
    html = render_to_string("portal/home.html", {**context, "csrf_token": csrf_placeholder()}, request=request)
    return HttpResponse(keep_html(request, key, html))


def _all_history(request: HttpRequest) -> bool:
    """ "Show all messages" (``?messages=all``): the page, and its live poll, list every one."""
    return request.GET.get("messages") == "all"


def _live_url(public_id: uuid.UUID, *, all_history: bool) -> str:
    url = reverse("portal:job_status", args=[public_id])
    return url + "?messages=all" if all_history else url


def _job_page(
    request: PortalRequest,
    job: Job,
    *,
    form: QuestionForm | None = None,
    acknowledged: Question | None = None,
    visit_form: AnotherTimeForm | None = None,
    upload_form: UploadForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The job page: its parts from portal.job_page (rendered once per change), around them the
    forms and whatever is this request's own (the question form, the upload form, messages)."""
    all_history = _all_history(request)
    page = job_page(request, job, all_history=all_history, visit_form=visit_form)
    return _render_job_page(
        request,
        page,
        job.public_id,
        status=status,
        job=job,
        owner=person_card(job.owner),
        form=form,
        acknowledged=acknowledged,
        answer_by=answer_by(),
        upload_form=upload_form,
    )


def _kept_page(html: str) -> HttpResponse:
    response = HttpResponse(html)
    add_never_cache_headers(response)  # personal data, as contact_required says of every page
    return response


def messages_waiting(request: HttpRequest) -> bool:
    """A flash message is waiting to be shown (read without marking it shown)."""
    return len(messages.get_messages(request)) > 0


def _render_job_page(
    request: PortalRequest, page: JobPage, public_id: uuid.UUID, *, status: int = 200, **own: Any
) -> HttpResponse:
    """The page around its parts; ``own``: this request's own forms (with errors, or a question
    acknowledged), which replace the parts' first-visit ones, and what they need. A first-visit
    page without a flash message is kept whole for the next request (portal.job_page)."""
    all_history = _all_history(request)
    context = {
        "nav": "jobs",
        "parts": page.parts,
        "status_etag": page.etag,
        "live_url": _live_url(public_id, all_history=all_history),
        "poll_seconds": LIVE_STATUS_SECONDS,
        **own,
    }
    if (
        not page.key
        or own.get("form")
        or own.get("acknowledged")
        or own.get("upload_form")
        or messages_waiting(request)
    ):
        return render(request, "portal/job.html", context, status=status)
    stored = {name: mark_safe(html) for name, html in page.stored.items()}  # noqa: S308 (our templates' output)
    html = render_to_string(
        "portal/job.html", {**context, "parts": stored, "csrf_token": csrf_placeholder()}, request=request
    )
    return HttpResponse(keep_whole_page(request, page, html), status=status)


@require_safe
@in_portal_language
def job_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    """The job page: unchanged since this contact last saw it at this address, whole from the
    cache after one query that also checks the session against the contact; else through
    ``contact_required`` like every portal page."""
    html = cached_page(request, public_id, all_history=_all_history(request))
    if html is None:
        return _job_detail(request, public_id=public_id)
    return _kept_page(html)


@contact_required
def _job_detail(request: PortalRequest, public_id: uuid.UUID) -> HttpResponse:
    # Its parts unchanged since someone last saw them: from the cache after one more query.
    page = cached_job_page(request, public_id, all_history=_all_history(request))
    if page is not None:
        return _render_job_page(request, page, public_id)
    return _job_page(request, _get_job_for_contact(request, public_id))


@require_safe
@in_portal_language
def job_status(request: HtmxHttpRequest, public_id: uuid.UUID) -> HttpResponseBase:
    """The live poll of an open job page: every part of the page that changed since it loaded.

    Unchanged: 304 after one query, with the contact the ticket names (portal.access: no session
    read). Changed, or without a ticket: through ``contact_required`` like every portal page, the
    page's parts (portal.job_page, from the cache when the page was seen since the change), the
    status block in place and the others swapped out of band.
    """
    version = ticket_version(request, public_id)
    if version is not None:
        not_modified = _not_modified(request, version[0])
        if not_modified is not None:
            return not_modified
    return _job_live(request, public_id=public_id)


def _not_modified(request: HttpRequest, updated_at: datetime) -> HttpResponseBase | None:
    """304 when the browser's page shows this version of the job already."""
    etag = base_etag(updated_at)
    headers = HttpResponse()
    headers["ETag"] = etag
    # Private (personal data), and always asked again: the browser sends If-None-Match each time.
    patch_cache_control(headers, private=True, no_cache=True)
    not_modified = get_conditional_response(request, etag=etag, response=headers)
    return not_modified if not_modified is not None and not_modified is not headers else None


@contact_required
def _job_live(request: PortalRequest, public_id: uuid.UUID) -> HttpResponseBase:
    job = _get_job_for_contact(request, public_id)
    not_modified = _not_modified(request, job.updated_at)
    if not_modified is not None:
        return not_modified
    page = job_page(request, job, all_history=_all_history(request))
    response = render(request, "portal/_job_live.html", {"parts": page.parts})
    response["ETag"] = page.etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@contact_required
def ask(request: PortalRequest, public_id: uuid.UUID) -> HttpResponse:
    """ "Ask a question": recorded on the job, acknowledged at once with the date of the answer.

    A GET (this address reloaded after a refused question) goes on to the job's question form."""
    contact = request.contact
    job = _get_job_for_contact(request, public_id)
    if request.method != "POST":
        return redirect(reverse("portal:job", args=[job.public_id]) + "#question")
    form = QuestionForm(request.POST)
    question = None
    if form.is_valid():
        limit, window = QUESTIONS_PER_CONTACT
        if not ratelimit.allow("question", str(contact.pk), limit=limit, window=window):
            form.add_error(
                None,
                _("You have sent us many questions in a short time. Please wait a little, or call %(name)s.")
                % {"name": person_card(job.owner).name},
            )
        else:
            try:
                question = question_create(
                    job=job, contact=contact, body=form.cleaned_data["body"], source=Question.Source.PORTAL
                )
            except DomainError as error:
                form.add_error("body", error.message)
    if request.htmx:
        return render(
            request,
            "portal/_question.html",
            {
                "job": job,
                "owner": person_card(job.owner),
                "form": QuestionForm() if question else form,
                "acknowledged": question,
                "answer_by": answer_by(),
            },
        )
    if question is None:
        return _job_page(request, job, form=form)
    messages.success(
        request,
        _("Thank you: we have your question. You will have our answer by %(date)s at the latest.")
        % {"date": date_format(question.answer_due_on, "l j F")},
    )
    return redirect(reverse("portal:job", args=[job.public_id]) + "#question")


# --- Preferences --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@contact_required
def preferences(request: PortalRequest) -> HttpResponse:
    contact = request.contact
    form = PreferencesForm(request.POST if request.method == "POST" else None, contact=contact)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            contact, changed = contact_update_preferences(
                contact=contact,
                language=data["language"],
                time_zone=data["time_zone"],
                preferred_channel=data["preferred_channel"],
                # Without a number texts can reach (none, or a landline) the box is not offered:
                # a consent on record stays as it is, none is given.
                sms_consent=bool(data["sms_consent"]) if "sms_consent" in form.fields else contact.has_sms_consent,
                non_essential=data["non_essential"],
                source="portal",
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            remember_preferences(request, contact)
            if "language" in changed:
                # They just chose it: the portal follows too, from the next page on.
                choose_language(request, contact.language)
            with translation.override(portal_language(request)):
                messages.success(request, _("Your preferences are saved."))
            return redirect("portal:preferences")
    return render(
        request,
        "portal/preferences.html",
        {
            "nav": "preferences",
            "form": form,
            "contact": contact,
            "calendar_url": calendar_url(contact),
            "webcal_url": webcal_url(contact),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@contact_required
def reset_links(request: PortalRequest) -> HttpResponse:
    """ "Reset my links": every link in earlier messages, the calendar address and every other
    portal session of the contact stop working; this browser stays signed in (signed in afresh,
    bound to the new links), and the preferences page shows the new calendar address. A GET (the
    address reloaded) goes on to that page and resets nothing."""
    if request.method != "POST":
        return redirect("portal:preferences")
    contact = contact_links_reset(contact=request.contact, user_agent=request.headers.get("User-Agent", ""))
    sign_in(request, contact)
    messages.success(
        request,
        _(
            "Your links are reset: the sign-in links in our earlier messages and your old calendar address "
            "no longer work, and any other browser is signed out. You stay signed in here. If your calendar "
            "app follows your dates, add the new address below to it."
        ),
    )
    return redirect(reverse("portal:preferences") + "#links")


# --- Calendar feed ------------------------------------------------------------------------------


def _calendar_event(milestone: Milestone, *, host: str) -> ics.AllDayEvent:
    job = milestone.job
    stage = milestone.stage
    reached = milestone.completed_at is not None
    day = timezone.localdate(milestone.completed_at) if milestone.completed_at else milestone.forecast_date
    assert day is not None  # the selector only returns dated milestones
    if reached:
        note = _("Reached.")
    elif job.status == Job.Status.ON_HOLD:
        note = _("Expected date; the job is on hold for now.")
    else:
        note = _("Expected date. If it moves, this calendar moves with it.")
    description = [f"{job.title} ({job.reference})", note]
    if not reached and stage.instructions:
        description.append(_("To prepare: %(instructions)s") % {"instructions": stage.instructions})
    return ics.AllDayEvent(
        # The same job and stage is the same event, whatever its date: apps move it, never copy it.
        uid=f"{job.public_id}-{stage.pk}@{host}",
        day=day,
        summary=f"{stage.label} — {job.title} ({job.reference})",
        description="\n".join(description),
        url=absolute(reverse("portal:job", args=[job.public_id])),
        status="TENTATIVE" if job.status == Job.Status.ON_HOLD and not reached else "CONFIRMED",
        last_modified=job.updated_at,
    )


def _visit_event(visit: Visit, *, host: str) -> ics.TimedEvent:
    """A visit in its window, in the active language and the contact's time zone (the times the
    description gives)."""
    job = visit.job
    start, end = timezone.localtime(visit.window_start), timezone.localtime(visit.window_end)
    if visit.all_day:
        window = _("During the working day: we cannot give you a narrower window.")
    else:
        window = _("We arrive between %(start)s and %(end)s.") % {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    description = [f"{job.title} ({job.reference})", window]
    if who := crew_names(visit, [person_card(person) for person in visit.installers.all()]):
        description.append(_("Who is coming: %(names)s") % {"names": who})
    # Closing a job cancels its visits to come (crm.services.jobs), bumping their version.
    cancelled = visit.status == Visit.Status.CANCELLED
    if cancelled:
        description.append(_("This visit is cancelled."))
    elif visit.is_upcoming and visit.what_to_prepare:
        description.append(_("To prepare: %(instructions)s") % {"instructions": visit.what_to_prepare})
    return ics.TimedEvent(
        # The same visit is the same event wherever it is found (this feed, its own .ics), and
        # SEQUENCE (its version) says which copy is the newer.
        uid=f"{visit.public_id}@{host}",
        start=visit.window_start,
        end=visit.window_end,
        sequence=visit.version,
        summary=f"{visit.kind.label} — {job.title} ({job.reference})",
        location=visit.address,
        description="\n".join(description),
        url=absolute(reverse("portal:job", args=[job.public_id])),
        status="CANCELLED" if cancelled else "CONFIRMED",
        last_modified=visit.updated_at,
    )


def _calendar_host() -> str:
    return urlparse(settings.SITE_URL).hostname or "portal"


def _ics_response(body: str, *, filename: str, attachment: bool = False) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'{"attachment" if attachment else "inline"}; filename="{filename}"'
    patch_cache_control(response, private=True, no_cache=True)
    return response


@require_safe
def calendar(request: HttpRequest, token: str) -> HttpResponse:
    """The contact's calendar feed (.ics): their customer's dated milestones and visits (in their
    windows; cancelled ones cancelled), in their language. Each day's first fetch is noted."""
    try:
        payload = read_calendar_token(token)
    except signing.BadSignature:
        raise Http404("No such calendar") from None
    # A calendar address taken back (a reset, a new email address) is a 404 like a bad one.
    contact = calendar_contact(payload)
    if contact is None:
        raise Http404("No such calendar")
    contact_link_use_record(
        contact=contact, kind=ContactLinkUse.Kind.CALENDAR, user_agent=request.headers.get("User-Agent", "")
    )
    host = _calendar_host()
    now = timezone.now()
    visits_since = now - timedelta(days=selectors.CALENDAR_KEEPS_CLOSED_DAYS)
    with translation.override(contact.language), timezone.override(contact.time_zone):
        events: list[ics.Event] = [_calendar_event(m, host=host) for m in selectors.calendar_milestones(contact)]
        events += [
            _visit_event(v, host=host)
            for v in selectors.customer_calendar_visits(contact.customer_id, since=visits_since)
        ]
        body = ics.calendar(
            product=settings.COMPANY_NAME,
            name=_("%(company)s — your jobs") % {"company": settings.COMPANY_NAME},
            events=events,
            stamp=now,
        )
    return _ics_response(body, filename="jobs.ics")


@require_safe
def visit_calendar(request: HttpRequest, token: str) -> HttpResponse:
    """A visit's own .ics, the booking confirmation's "add to my calendar": the visit as it now is
    (moved: the new window; cancelled: cancelled), while it is one of the contact's customer's."""
    named = read_visit_calendar_token(token)
    contact = Contact.objects.filter(pk=named[1]).first() if named is not None else None
    visit = selectors.customer_calendar_visit(contact.customer_id, named[0]) if named and contact else None
    if contact is None or visit is None:
        raise Http404("No such visit")
    with translation.override(contact.language), timezone.override(contact.time_zone):
        event = _visit_event(visit, host=_calendar_host())
        body = ics.calendar(
            product=settings.COMPANY_NAME, name=visit.kind.label, events=[event], stamp=timezone.now(), feed=False
        )
        day = timezone.localdate(visit.window_start)
    return _ics_response(body, filename=f"visit-{day:%Y-%m-%d}.ics", attachment=True)


# --- Unsubscribe (one click, from non-essential emails) -----------------------------------------


@csrf_exempt  # RFC 8058 one-click: the mail provider POSTs without our cookie; the token is the proof.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm (a link scanner must not opt anyone out); POST opts out. Once opted
    out, the page says so (a GET too: the link opened again, or the language switched) and shows
    the way back: the preferences page for this contact's portal session, else a sign-in link."""
    try:
        contact_id = payload_contact_id(read_unsubscribe_token(token))
    except signing.BadSignature:
        contact_id = None
    contact = Contact.objects.filter(pk=contact_id).first() if contact_id is not None else None
    language = request.session.get(SESSION_LANGUAGE_KEY) or (contact.language if contact else portal_language(request))
    with translation.override(language):
        if contact is None:
            response = render(request, "portal/unsubscribe.html", {"invalid": True}, status=404)
        else:
            if request.method == "POST":
                contact = contact_opt_out(contact=contact)
            context = {
                "contact": contact,
                "done": contact.opted_out_at is not None,
                # Only this contact's own session reaches their preferences from here; anyone else
                # (another contact on a shared browser, nobody) asks for a link first.
                "signed_in": session_contact_id(request) == contact.pk,
            }
            response = render(request, "portal/unsubscribe.html", context)
    response.headers["Content-Language"] = language
    return response
