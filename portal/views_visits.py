"""The customer's answers to a visit: "That works" and "I need another time".

Both are POSTs through crm.services.visits, then back to the job page, where the next visit says
what happened (a flash says "thank you", or why nothing changed). A GET of either address goes on
to the job page and changes nothing (no portal URL dead-ends on GET). A visit is found by
``_get_visit_for_contact`` only, among the visits of the signed-in contact's customer's job: any
other visit is a 404.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.dates import said_date
from crm.errors import ConflictError, DomainError
from crm.models import Job, Visit
from crm.people import person_card
from crm.services.visits import visit_ask_to_move, visit_confirm
from portal import ratelimit, selectors
from portal.access import PortalRequest, contact_required
from portal.forms import AnotherTimeForm, VisitAnswerForm
from portal.views import QUESTIONS_PER_CONTACT, _get_job_for_contact, _job_page


def _get_visit_for_contact(request: PortalRequest, public_id: uuid.UUID, visit_id: uuid.UUID) -> tuple[Job, Visit]:
    """The one way these views find a visit: a visit of one of the contact's customer's jobs."""
    job = _get_job_for_contact(request, public_id)
    visit = selectors.job_visit(job, visit_id)
    if visit is None:
        raise Http404("No such visit")
    return job, visit


def _back_to(job: Job) -> HttpResponse:
    return redirect(reverse("portal:job", args=[job.public_id]) + "#visit")


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
    job, visit = _get_visit_for_contact(request, public_id, visit_id)
    if request.method != "POST":
        return _back_to(job)
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
    job, visit = _get_visit_for_contact(request, public_id, visit_id)
    if request.method != "POST":
        return _back_to(job)
    form = AnotherTimeForm(request.POST)
    if not form.is_valid():
        return _job_page(request, job, visit_form=form)
    # It opens a question, so it counts with the questions: the same inbox fills up.
    limit, window = QUESTIONS_PER_CONTACT
    if not ratelimit.allow("question", str(request.contact.pk), limit=limit, window=window):
        form.add_error(
            None,
            _("You have sent us many requests in a short time. Please wait a little, or call %(name)s.")
            % {"name": person_card(job.owner).name},
        )
        return _job_page(request, job, visit_form=form)
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
