"""The customer's answers to a visit: "That works", "I need another time", and — when the
pipeline lets customers book themselves — "this free time instead".

Each answer has its own page: a GET shows the visit as it stands now and the one button that
gives the answer (the page a message's one-click link opens, crm.links.visit_answer_url), and
changes nothing, so a mail scanner opening the link answers nothing. The POST goes through
crm.services.visits, then back to the job page, where the next visit says what happened (a flash
says "thank you", or why nothing changed). A visit no longer waiting for an answer (done,
cancelled, past) sends its page on to the job page with a word why: no link dead-ends. A visit
is found by ``_get_visit_for_contact`` only, among the visits of the signed-in contact's
customer's job: any other visit is a 404.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm import ratelimit
from crm.dates import said_date
from crm.errors import ConflictError, DomainError
from crm.models import Job, Visit
from crm.people import person_card
from crm.services.visits import visit_ask_to_move, visit_choose_time, visit_confirm
from crm.visit_slots import free_times
from portal import selectors
from portal.access import PortalRequest, contact_required
from portal.forms import AnotherTimeForm, ChooseTimeForm, VisitAnswerForm
from portal.job_page import answer_by
from portal.views import QUESTIONS_PER_CONTACT, _get_job_for_contact

# The states in which a visit's time may still be answered (see portal.selectors.VisitCard).
ANSWERABLE = ("to_confirm", "move_asked", "confirmed")


def _get_visit_for_contact(request: PortalRequest, public_id: uuid.UUID, visit_id: uuid.UUID) -> tuple[Job, Visit]:
    """The one way these views find a visit: a visit of one of the contact's customer's jobs."""
    job = _get_job_for_contact(request, public_id)
    visit = selectors.job_visit(job, visit_id)
    if visit is None:
        raise Http404("No such visit")
    return job, visit


def _answer_page(
    request: PortalRequest,
    job: Job,
    visit_id: uuid.UUID,
    *,
    answer: str,
    form: AnotherTimeForm | None = None,
    error: str = "",
) -> HttpResponse:
    """The page of one answer to the visit: what it is (read afresh, with its crew), and the
    button that answers; another job's visit is a 404. A visit whose time can no longer be
    answered goes on to the job page, which shows where it stands."""
    card = selectors.visit_card(job, visit_id)
    if card is None:
        raise Http404("No such visit")
    if card.state not in ANSWERABLE:
        messages.info(request, _("This visit is no longer waiting for an answer: here is where it stands."))
        return _back_to(job)
    self_booking = job.pipeline.visit_self_booking
    return render(
        request,
        "portal/visit_answer.html",
        {
            "nav": "jobs",
            "job": job,
            "card": card,
            "visit": card.visit,
            "state": card.state,
            "answer": answer,
            "form": form or AnotherTimeForm(initial={"version": card.visit.version}),
            "free_times": free_times(card.visit) if self_booking and answer == "another-time" else [],
            "self_booking": self_booking,
            "error": error,
            "answer_by": answer_by(),
            "owner": person_card(job.owner),
        },
    )


def _back_to(job: Job) -> HttpResponse:
    return redirect(reverse("portal:job", args=[job.public_id]) + "#visit")


def _said_window(visit: Visit) -> str:
    """ "Tuesday 8 December, 09:00–11:00" where the contact is (the portal's time zone)."""
    start, end = timezone.localtime(visit.window_start), timezone.localtime(visit.window_end)
    day = said_date(start, "l j F")
    if visit.all_day:
        return _("%(day)s, during the day") % {"day": day}
    return _("%(day)s, %(start)s–%(end)s") % {"day": day, "start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}


def _changed_since_shown(request: PortalRequest) -> None:
    """The page showed another version of the visit (moved, or on its way, since): the answer was
    to a time that is no longer the one planned, so it is not taken; the page shows it as it is."""
    messages.warning(
        request, _("This visit has changed since the page was shown. Here it is as it stands now: please look again.")
    )


@require_http_methods(["GET", "HEAD", "POST"])
@contact_required
def confirm(request: PortalRequest, public_id: uuid.UUID, visit_id: uuid.UUID) -> HttpResponse:
    """ "That works": the customer confirms the visit's time (confirming twice changes nothing)."""
    if request.method != "POST":
        return _answer_page(request, _get_job_for_contact(request, public_id), visit_id, answer="confirm")
    job, visit = _get_visit_for_contact(request, public_id, visit_id)
    form = VisitAnswerForm(request.POST)
    form.is_valid()  # Its one field never refuses: a garbled version is simply not checked.
    try:
        visit_confirm(visit=visit, contact=request.contact, expected_version=form.cleaned_data.get("version"))
    except ConflictError:
        _changed_since_shown(request)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Thank you: the visit is confirmed. We will see you then."))
    return _back_to(job)


@require_http_methods(["GET", "HEAD", "POST"])
@contact_required
def another_time(request: PortalRequest, public_id: uuid.UUID, visit_id: uuid.UUID) -> HttpResponse:
    """ "I need another time": a question on the job (crm.services.visits.visit_ask_to_move),
    acknowledged at once with the date of the answer, like one asked with the question form."""
    if request.method != "POST":
        return _answer_page(request, _get_job_for_contact(request, public_id), visit_id, answer="another-time")
    job, visit = _get_visit_for_contact(request, public_id, visit_id)
    form = AnotherTimeForm(request.POST)
    if not form.is_valid():
        return _answer_page(request, job, visit_id, answer="another-time", form=form)
    # It opens a question, so it counts with the questions: the same inbox fills up.
    limit, window = QUESTIONS_PER_CONTACT
    if not ratelimit.allow("question", str(request.contact.pk), limit=limit, window=window):
        form.add_error(
            None,
            _("You have sent us many requests in a short time. Please wait a little, or call %(name)s.")
            % {"name": person_card(job.owner).name},
        )
        return _answer_page(request, job, visit_id, answer="another-time", form=form)
    try:
        question = visit_ask_to_move(
            visit=visit,
            contact=request.contact,
            note=form.cleaned_data["note"],
            expected_version=form.cleaned_data.get("version"),
        )
    except ConflictError:
        _changed_since_shown(request)
        return _back_to(job)
    except DomainError as error:
        messages.error(request, error.message)
        return _back_to(job)
    messages.success(
        request,
        _("Thank you: we will find another time with you. You will have our answer by %(date)s at the latest.")
        % {"date": said_date(question.answer_due_on, "l j F")},
    )
    return _back_to(job)


@require_http_methods(["GET", "HEAD", "POST"])
@contact_required
def choose_time(request: PortalRequest, public_id: uuid.UUID, visit_id: uuid.UUID) -> HttpResponse:
    """One of the crew's free times, chosen by the customer (crm.services.visits.visit_choose_time);
    a time taken in the meantime is said so, with the times free now. A GET shows the free times."""
    if request.method != "POST":
        return _answer_page(request, _get_job_for_contact(request, public_id), visit_id, answer="another-time")
    job, visit = _get_visit_for_contact(request, public_id, visit_id)
    form = ChooseTimeForm(request.POST)
    if not form.is_valid():
        return _answer_page(
            request, job, visit_id, answer="another-time", error=_("Please choose one of the times below.")
        )
    try:
        chosen = visit_choose_time(
            visit=visit,
            contact=request.contact,
            window_start=form.cleaned_data["start"],
            expected_version=form.cleaned_data.get("version"),
        )
    except ConflictError:
        _changed_since_shown(request)
        return _answer_page(request, job, visit_id, answer="another-time")
    except DomainError as error:
        return _answer_page(request, job, visit_id, answer="another-time", error=error.message)
    messages.success(
        request,
        _("Thank you: the visit is booked for %(when)s. We have sent you the details.")
        % {"when": _said_window(chosen)},
    )
    return _back_to(job)
