"""Visits on the staff pages: booked, moved and cancelled from the job page (its "Visits" section:
htmx swaps the detail block, otherwise post/redirect/get, or the page again with the form's
errors), and lived through on the installers' "Today" page, made for a phone: each button is its
own small POST form, so it works without JavaScript, and answers with /today/ and what happened.

Staff share the work: anyone on the team may act on any visit (a colleague covering a round);
a visit is found by its public id only, and an unknown one is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm import selectors
from crm.access import StaffRequest, staff_required
from crm.dates import said_date
from crm.errors import ConflictError, DomainError
from crm.forms.visits import DayActionForm, VisitCancelForm, VisitCrewForm, VisitForm, VisitMoveForm
from crm.models import Job, Visit
from crm.services import visits as visit_services
from crm.views.jobs import act_on_job, action_preview, job_response, preview_response
from crm.workdays import business_today, business_zone


def get_visit(public_id: Any) -> Visit:
    """Every visit view finds its visit here (staff see every visit; a bad id is a 404)."""
    return get_object_or_404(Visit.objects.select_related("job__customer", "job__owner", "kind"), public_id=public_id)


def _when(visit: Visit) -> str:
    start = visit.window_start.astimezone(business_zone())
    day = said_date(start.date(), "l j F")
    if visit.all_day:
        return _("%(day)s, all day") % {"day": day}
    end = visit.window_end.astimezone(business_zone())
    return _("%(day)s, %(start)s–%(end)s") % {"day": day, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


# --- The job page -------------------------------------------------------------------------------


def _book(request: StaffRequest) -> Callable[[Job, dict[str, Any]], str]:
    def perform(job: Job, data: dict[str, Any]) -> str:
        visit = visit_services.visit_book(
            job=job,
            kind=data["kind"],
            window_start=data["window_start"],
            window_end=data["window_end"],
            all_day=data["all_day"],
            installers=data["installers"],
            subcontractor=data["subcontractor"],
            address=data["address"],
            prepare=data["prepare"],
            tell_customer=data["tell_customer"],
            double_booking=data["double_booking"],
            actor=request.user,
        )
        said = {"kind": visit.kind.label, "when": _when(visit)}
        if data["tell_customer"]:
            return _("%(kind)s booked for %(when)s; the customer is being told now.") % said
        return _("%(kind)s booked for %(when)s.") % said

    return perform


@staff_required
@require_POST
def visit_book(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_job(request, public_id, "visit_book", _book(request))


@staff_required
@require_GET
def visit_book_preview(request: StaffRequest, public_id: Any) -> HttpResponse:
    """What booking would tell the customer (the service run and rolled back)."""
    return action_preview(request, public_id, "visit_book", _book(request))


def act_on_visit(
    request: StaffRequest,
    public_id: Any,
    form_class: type[VisitForm],
    perform: Callable[[Visit, dict[str, Any]], str],
) -> HttpResponse:
    """The visit's form validated, its service called, and the job page as it now is (the form
    kept, with the service's refusal, when it did not go through)."""
    visit = get_visit(public_id)
    form = form_class(request.POST, visit=visit)
    if form.is_valid():
        try:
            done = perform(visit, form.cleaned_data)
        except ConflictError as error:
            # What they typed is kept with the visit as it now is: sent again, it is their choice.
            fresh = Visit.objects.get(pk=visit.pk)
            data = request.POST.copy()
            data[form.add_prefix("expected_version")] = str(fresh.version)
            form = form_class(data, visit=fresh)
            form.is_valid()
            form.add_error(None, error.message)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, done)
            if request.htmx:
                return job_response(request, visit.job)
            return redirect("crm:job", visit.job.public_id)
    return job_response(
        request, visit.job, bound={f"visit_{form_class.action}": form}, status=200 if request.htmx else 400
    )


def _move(request: StaffRequest) -> Callable[[Visit, dict[str, Any]], str]:
    def perform(visit: Visit, data: dict[str, Any]) -> str:
        visit = visit_services.visit_move(
            visit=visit,
            window_start=data["window_start"],
            window_end=data["window_end"],
            all_day=data["all_day"],
            reason=data["reason"],
            expected_version=data["expected_version"],
            tell_customer=data["tell_customer"],
            actor=request.user,
        )
        said = {"kind": visit.kind.label, "when": _when(visit)}
        if data["tell_customer"]:
            return _("%(kind)s moved to %(when)s; the customer is being told now.") % said
        return _("%(kind)s moved to %(when)s.") % said

    return perform


@staff_required
@require_POST
def visit_move(request: StaffRequest, public_id: Any) -> HttpResponse:
    return act_on_visit(request, public_id, VisitMoveForm, _move(request))


@staff_required
@require_GET
def visit_move_preview(request: StaffRequest, public_id: Any) -> HttpResponse:
    """What moving the visit would tell the customer: "tell the customer?" answered by seeing it."""
    visit = get_visit(public_id)
    form = VisitMoveForm(request.GET, visit=visit)
    perform = _move(request)
    return preview_response(
        request, visit.job, form, lambda data: perform(visit, data), bound_as="visit_move", name=form.prefix or ""
    )


@staff_required
@require_POST
def visit_crew(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(visit: Visit, data: dict[str, Any]) -> str:
        visit = visit_services.visit_crew_set(
            visit=visit,
            installers=data["installers"],
            subcontractor=data["subcontractor"],
            expected_version=data["expected_version"],
            double_booking=data["double_booking"],
            actor=request.user,
        )
        return _("Who goes on %(kind)s (%(when)s) is saved.") % {"kind": visit.kind.label, "when": _when(visit)}

    return act_on_visit(request, public_id, VisitCrewForm, perform)


@staff_required
@require_POST
def visit_cancel(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(visit: Visit, data: dict[str, Any]) -> str:
        visit = visit_services.visit_cancel(
            visit=visit,
            reason=data["reason"],
            tell_customer=data["tell_customer"],
            expected_version=data["expected_version"],
            actor=request.user,
        )
        if data["tell_customer"]:
            return _("%(kind)s cancelled; the customer is being told why.") % {"kind": visit.kind.label}
        return _("%(kind)s cancelled.") % {"kind": visit.kind.label}

    return act_on_visit(request, public_id, VisitCancelForm, perform)


# --- Today --------------------------------------------------------------------------------------


@staff_required
@require_GET
def today(request: StaffRequest) -> HttpResponse:
    day = business_today()
    return render(
        request,
        "crm/visits/today.html",
        {
            "nav": "today",
            "day": day,
            "visits": list(selectors.visits_today(request.user, day)),
            "eta_choices": visit_services.ETA_CHOICES_MINUTES,
            "now": timezone.now(),
        },
    )


def _day_action(request: StaffRequest, visit: Visit, data: dict[str, Any]) -> str:
    """The service behind the button pressed, and what the person is told it did."""
    action, kind = data["action"], visit.kind.label
    if action == "on_the_way":
        visit = visit_services.visit_on_the_way(visit=visit, minutes=data["minutes"], actor=request.user)
        assert visit.expected_at is not None
        at = visit.expected_at.astimezone(business_zone())
        return _("On your way to %(customer)s: they are told you will be there about %(at)s.") % {
            "customer": visit.job.customer.name,
            "at": f"{at:%H:%M}",
        }
    if action == "running_late":
        visit = visit_services.visit_running_late(visit=visit, at=data["at"], reason=data["reason"], actor=request.user)
        assert visit.expected_at is not None
        at = visit.expected_at.astimezone(business_zone())
        return _("%(customer)s is told you will be there about %(at)s, and why.") % {
            "customer": visit.job.customer.name,
            "at": f"{at:%H:%M}",
        }
    if action == "arrived":
        visit_services.visit_arrived(visit=visit, actor=request.user)
        return _("%(kind)s: arrived.") % {"kind": kind}
    if action == "done":
        visit_services.visit_done(visit=visit, actor=request.user)
        return _("%(kind)s: done. Thank you!") % {"kind": kind}
    visit_services.visit_missed(visit=visit, reason=data["reason"], actor=request.user)
    return _("%(kind)s: couldn't get in. %(owner)s is asked to call the customer and find another time.") % {
        "kind": kind,
        "owner": visit.job.owner.get_full_name() or visit.job.owner.get_username(),
    }


@staff_required
@require_POST
def visit_action(request: StaffRequest, public_id: Any) -> HttpResponse:
    visit = get_visit(public_id)
    form = DayActionForm(request.POST)
    if not form.is_valid():
        # A phone, one thumb: the first thing to correct, said at the top of the page.
        messages.error(request, str(next(iter(form.errors.values()))[0]))
        return redirect("crm:today")
    try:
        done = _day_action(request, visit, form.cleaned_data)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect("crm:today")


urlpatterns: list[URLPattern] = [
    path("today/", today, name="today"),
    path("jobs/<uuid:public_id>/visits/new/", visit_book, name="visit_book"),
    path("jobs/<uuid:public_id>/visits/new/preview/", visit_book_preview, name="visit_book_preview"),
    path("visits/<uuid:public_id>/move/", visit_move, name="visit_move"),
    path("visits/<uuid:public_id>/move/preview/", visit_move_preview, name="visit_move_preview"),
    path("visits/<uuid:public_id>/crew/", visit_crew, name="visit_crew"),
    path("visits/<uuid:public_id>/cancel/", visit_cancel, name="visit_cancel"),
    path("visits/<uuid:public_id>/action/", visit_action, name="visit_action"),
]
