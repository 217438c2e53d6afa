"""Requests staff log for a customer ("Log a request"): from the job page, or from the customer's
page choosing which open job it is about. Either way crm.services.questions.question_create records
it, makes the answer-by promise and queues the written acknowledgement in one transaction.

The job page's form is one of its actions (crm.views.jobs.ACTION_FORMS, act_on_job: htmx swaps the
detail block, otherwise post/redirect/get); the customer page's redirects back to it, or shows it
again with the form's errors.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.access import StaffRequest, staff_required
from crm.dates import said_date
from crm.errors import DomainError
from crm.forms.questions import CustomerQuestionForm
from crm.models import Customer, Job, Question
from crm.services.questions import enquiry_create, question_create
from crm.views.customers import customer_page
from crm.views.jobs import act_on_job


def _logged(request: StaffRequest, job: Job, data: dict[str, Any]) -> Question:
    return question_create(
        job=job,
        contact=data["contact"],
        body=data["body"],
        source=data["source"],
        actor=request.user,
        received_at=data["received_at"],
    )


def _done(logged: Question) -> str:
    assert logged.contact is not None
    return _("Request logged on %(ref)s: %(name)s is told in writing they will have an answer by %(date)s.") % {
        "ref": logged.job.reference,
        "name": logged.contact.name,
        "date": said_date(logged.answer_due_on, "l j F"),
    }


@staff_required
@require_POST
def job_question_new(request: StaffRequest, public_id: Any) -> HttpResponse:
    def perform(job: Job, data: dict[str, Any]) -> str:
        return _done(_logged(request, job, data))

    return act_on_job(request, public_id, "request", perform)


@staff_required
@require_POST
def customer_question_new(request: StaffRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    form = CustomerQuestionForm(request.POST, customer=customer)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["job"] is None:
                logged = enquiry_create(
                    customer=customer,
                    pipeline=data["pipeline"],
                    title=data["title"],
                    contact=data["contact"],
                    body=data["body"],
                    source=data["source"],
                    actor=request.user,
                    received_at=data["received_at"],
                )
            else:
                logged = _logged(request, data["job"], data)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _done(logged))
            return redirect("crm:customer", customer.pk)
    return customer_page(request, customer, request_form=form, status=400)


urlpatterns: list[URLPattern] = [
    path("jobs/<uuid:public_id>/requests/new/", job_question_new, name="job_question_new"),
    path("customers/<int:pk>/requests/new/", customer_question_new, name="customer_question_new"),
]
