"""Requests staff log for a customer: what they asked on the phone, face to face, or through a
colleague. The job page's form is about its job; the customer page's also chooses which of the
customer's open jobs it is about. crm.services.questions.question_create writes, and checks again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.forms.fields import ModelChoiceField, check_day
from crm.forms.jobs import JobForm
from crm.models import Contact, Customer, Job, Pipeline, Question
from crm.services.questions import MAX_QUESTION_LENGTH
from crm.workdays import business_today

# The ways a request reaches staff rather than the customer's own portal or email.
LOGGED_SOURCES = [
    (Question.Source.PHONE.value, Question.Source.PHONE.label),
    (Question.Source.IN_PERSON.value, Question.Source.IN_PERSON.label),
    (Question.Source.STAFF.value, _("Through the team, on the customer's behalf")),
]
# How far back a request may be logged: a forgotten call from last week, not a slip of the keyboard.
LOGGED_WITHIN_DAYS = 30
# A time typed as "now" on a clock a little ahead of the server's is now, not the future.
CLOCK_SLACK = timedelta(minutes=2)


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class ContactField(ModelChoiceField):
    def label_from_instance(self, obj: Contact) -> str:  # type: ignore[override]
        return f"{obj.name} ({obj.get_preferred_channel_display()})"


class OpenJobField(ModelChoiceField):
    def label_from_instance(self, obj: Job) -> str:  # type: ignore[override]
        return f"{obj.reference} · {obj.title} ({obj.current_stage.name})"


def open_jobs(customer: Customer) -> QuerySet[Job]:
    """The customer's open jobs, most recent first: what a request can be about."""
    return (
        customer.jobs.select_related("current_stage")
        .filter(status__in=Job.OPEN_STATUSES)
        .order_by("-created_at", "-pk")
    )


class QuestionFields(forms.Form):
    """What was asked, how, by whom, and when. ``customer`` is whose contacts are offered."""

    customer: Customer

    body = forms.CharField(
        label=_("What they asked"),
        max_length=MAX_QUESTION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("In their words if you can: the acknowledgement quotes it back to them."),
        error_messages={"required": _("Write what they asked first.")},
    )
    source = forms.ChoiceField(label=_("How they asked"), choices=LOGGED_SOURCES, initial=Question.Source.PHONE)
    contact = ContactField(
        # Any contact validates here so that one of another customer gets a clear message (clean);
        # only this customer's are offered.
        queryset=Contact.objects.all(),
        label=_("Who asked"),
        empty_label=_("Choose who asked"),
        error_messages={"required": _("Choose who asked.")},
    )
    received_at = forms.DateTimeField(
        label=_("When they asked"),
        widget=DateTimeInput,
        help_text=_("Now, unless you are logging it later: the answer-by date counts from then."),
    )

    def offer_contacts(self, contacts: list[Contact], *, default: Contact | None) -> None:
        contact = self.fields["contact"]
        assert isinstance(contact, ContactField)
        contact.widget.choices = [
            ("", contact.empty_label),
            *((c.pk, contact.label_from_instance(c)) for c in contacts),
        ]
        if default is not None:
            self.initial.setdefault("contact", default.pk)
        self.initial.setdefault("received_at", timezone.localtime().replace(second=0, microsecond=0))

    def clean_contact(self) -> Contact:
        contact: Contact = self.cleaned_data["contact"]
        if contact.customer_id != self.customer.pk:
            raise forms.ValidationError(
                _("%(name)s is a contact of another customer: choose one of %(customer)s's contacts.")
                % {"name": contact.name, "customer": self.customer.name}
            )
        return contact

    def clean_received_at(self) -> datetime:
        received_at: datetime = self.cleaned_data["received_at"]
        today = business_today()
        # The day as typed first: computing with a time in the year 1 or 9999 overflows.
        check_day(received_at.date(), earliest=today - timedelta(days=LOGGED_WITHIN_DAYS), latest=today)
        now = timezone.now()
        if received_at > now + CLOCK_SLACK:
            raise forms.ValidationError(_("This time is still to come: when did they ask?"))
        return min(received_at, now)


class JobQuestionForm(QuestionFields, JobForm):
    """The job page's "Log a request": about this job, from one of its customer's contacts."""

    prefix = "request"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customer = self.job.customer
        on_job = list(self.job.contacts.all())
        contacts = list(self.customer.contacts.order_by("name", "pk"))
        only = on_job if len(on_job) == 1 else contacts if len(contacts) == 1 else []
        self.offer_contacts(contacts, default=only[0] if only else None)


class CustomerQuestionForm(QuestionFields):
    """The customer page's "Log a request": which of the customer's open jobs it is about, or a
    new job for it (a new enquiry: crm.services.questions.enquiry_create), with its pipeline and
    title."""

    prefix = "request"
    job = OpenJobField(
        queryset=Job.objects.none(),
        label=_("About the job"),
        required=False,
        empty_label=_("No job yet: open one for this request"),
        error_messages={"invalid_choice": _("Choose one of this customer's open jobs.")},
    )
    pipeline = ModelChoiceField(
        queryset=Pipeline.objects.filter(is_active=True),
        label=_("Pipeline of the new job"),
        required=False,
        help_text=_("Only for a request about no job yet: the job opens at its first stage."),
    )
    title = forms.CharField(
        label=_("Title of the new job"),
        required=False,
        max_length=200,
        help_text=_("Only for a request about no job yet, e.g. “Heat pump quote”."),
    )
    field_order = ["job", "pipeline", "title", "body", "source", "contact", "received_at"]

    def __init__(
        self,
        *args: Any,
        customer: Customer,
        contacts: list[Contact] | None = None,
        jobs: list[Job] | None = None,
        **kwargs: Any,
    ) -> None:
        """``contacts`` and ``jobs``: the customer's contacts (by name) and open jobs (most recent
        first) when the page has read them already."""
        self.customer = customer
        super().__init__(*args, **kwargs)
        jobs = list(open_jobs(customer)) if jobs is None else jobs
        contacts = list(customer.contacts.order_by("name", "pk")) if contacts is None else contacts
        self.has_open_jobs = bool(jobs)
        self.has_contacts = bool(contacts)
        job = self.fields["job"]
        assert isinstance(job, OpenJobField)
        # Validation reads the chosen job again, among the open ones only.
        job.queryset = open_jobs(customer)
        # The open jobs, most recent first, then "no job yet" (a new enquiry opens its own).
        job.widget.choices = [*((j.pk, job.label_from_instance(j)) for j in jobs), ("", job.empty_label)]
        if jobs:
            self.initial.setdefault("job", jobs[0].pk)
        else:
            # Only a new job to choose: no question to ask about it.
            job.widget = forms.HiddenInput()
        # The pipelines read once, for the choices and the default (validation reads the chosen one).
        pipelines = list(Pipeline.objects.filter(is_active=True).order_by("name"))
        self.fields["pipeline"].widget.choices = [("", "---------"), *((p.pk, p.name) for p in pipelines)]
        if len(pipelines) == 1:
            self.initial.setdefault("pipeline", pipelines[0].pk)
        self.offer_contacts(contacts, default=contacts[0] if len(contacts) == 1 else None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "job" in data and data["job"] is None:
            data["title"] = data.get("title", "").strip()
            if data.get("pipeline") is None and "pipeline" not in self.errors:
                self.add_error("pipeline", _("Choose the pipeline of the new job."))
            if not data["title"]:
                self.add_error("title", _("Give the new job a title the customer will recognise."))
        return data
