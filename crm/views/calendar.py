"""An installer's private calendar feed (.ics): the visits they are booked on, from a month ago to
three months ahead, at an address that is the secret (crm.links.staff_calendar_url: no sign-in, so
a phone's calendar app can fetch it). "Make a new link" ends every older one: the link's version,
kept on the person's StaffProfile, is bumped.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from crm import ics, selectors
from crm.access import StaffRequest, staff_required
from crm.links import absolute, staff_calendar_user
from crm.models import Visit
from crm.people import staff_language
from crm.services.staff import calendar_link_replace
from crm.text import person_name
from crm.workdays import business_zone

# What the feed covers: a month back (what happened, for the timesheet), three months ahead.
FEED_PAST = timedelta(days=30)
FEED_AHEAD = timedelta(days=90)
SOURCE = "Staff calendar"


def _visit_event(visit: Visit, *, host: str) -> ics.TimedEvent:
    """A visit as the person going reads it, in their language: what, for whom, where, what the
    customer prepares, and the job page (its visits section: Move and Cancel are there)."""
    job = visit.job
    description = [f"{job.reference} — {job.title}"]
    others = [person_name(person) for person in visit.installers.all()]
    if visit.subcontractor:
        others.append(visit.subcontractor)
    if len(others) > 1:
        description.append(_("Going: %(names)s") % {"names": ", ".join(others)})
    if visit.what_to_prepare:
        description.append(_("The customer should prepare: %(instructions)s") % {"instructions": visit.what_to_prepare})
    if visit.status in (Visit.Status.DONE, Visit.Status.MISSED, Visit.Status.CANCELLED):
        description.append(visit.get_status_display() + (f": {visit.close_reason}" if visit.close_reason else ""))
    url = absolute(job.get_absolute_url()) + "#visits"
    description.append(url)
    return ics.TimedEvent(
        uid=f"{visit.public_id}@{host}",
        start=visit.window_start,
        end=visit.window_end,
        sequence=visit.version,
        summary=f"{visit.kind.label} — {job.customer.name}",
        location=visit.address,
        description="\n".join(description),
        url=url,
        status="CANCELLED" if visit.status == Visit.Status.CANCELLED else "CONFIRMED",
        last_modified=visit.updated_at,
    )


@require_safe
def staff_calendar(request: HttpRequest, token: str) -> HttpResponse:
    """The feed a calendar link opens; a bad, foreign or replaced link is a 404."""
    person = staff_calendar_user(token)
    if person is None:
        raise Http404("No such calendar")
    now = timezone.now()
    host = urlparse(settings.SITE_URL).hostname or "crm"
    visits = selectors.staff_calendar_visits(person, since=now - FEED_PAST, until=now + FEED_AHEAD)
    with translation.override(staff_language(person)), timezone.override(business_zone()):
        said = {"company": settings.COMPANY_NAME, "name": person_name(person)}
        body = ics.calendar(
            product=settings.COMPANY_NAME,
            source=SOURCE,
            name=_("%(company)s — visits of %(name)s") % said,
            events=[_visit_event(visit, host=host) for visit in visits],
            stamp=now,
        )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="visits.ics"'
    # The address is the secret: no shared cache keeps a copy, and no search engine lists it.
    patch_cache_control(response, private=True, no_cache=True)
    response["X-Robots-Tag"] = "noindex"
    return response


@staff_required
@require_POST
def staff_calendar_reset(request: StaffRequest) -> HttpResponse:
    """ "Make a new link": the signed-in person's calendar link changes; the old one stops working."""
    calendar_link_replace(request.user)
    messages.success(
        request,
        _("Here is your new calendar link: the old one no longer works. Subscribe again with the new one."),
    )
    return redirect(reverse("crm:schedule") + "#calendar-link")


urlpatterns: list[URLPattern] = [
    path("calendar/<str:token>.ics", staff_calendar, name="staff_calendar"),
    path("calendar/new-link/", staff_calendar_reset, name="staff_calendar_reset"),
]
