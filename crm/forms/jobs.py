"""The job page's actions. Each form validates what a person can correct on the page; the service
it feeds checks again under the job's row lock and may still refuse (shown as the form's error)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm import phones
from crm.dates import day_text
from crm.errors import DomainError
from crm.forms.fields import IdField, ModelChoiceField, ModelMultipleChoiceField, NonWorkingDayForm, check_day
from crm.models import Contact, Job, Milestone, SmsOptOut, StageTemplate
from crm.phones import display as display_phone
from crm.selectors import staff_users
from crm.services.guards import ensure_contacts_of
from crm.services.jobs import ensure_can_advance
from crm.services.messages import MAX_MESSAGE_LENGTH, CallOutcome
from crm.services.questions import MAX_QUESTION_LENGTH
from crm.text import person_name
from crm.workdays import business_today


class DateInput(forms.DateInput):
    input_type = "date"


class StageField(ModelChoiceField):
    def label_from_instance(self, obj: StageTemplate) -> str:  # type: ignore[override]
        return f"{obj.position}. {obj.label}"


class MilestoneField(ModelChoiceField):
    def label_from_instance(self, obj: Milestone) -> str:  # type: ignore[override]
        return f"{obj.stage.label} — {day_text(obj.forecast_date)}" if obj.forecast_date else obj.stage.label


class ContactsField(ModelMultipleChoiceField):
    def label_from_instance(self, obj: Contact) -> str:  # type: ignore[override]
        return f"{obj.name} ({obj.get_preferred_channel_display()}, {obj.get_language_display()})"


class JobForm(forms.Form):
    """A form about one job; ``prefix`` keeps several on one page apart."""

    def __init__(self, *args: Any, job: Job, **kwargs: Any) -> None:
        self.job = job
        super().__init__(*args, **kwargs)


class AdvanceForm(JobForm):
    prefix = "advance"
    to_stage = StageField(queryset=StageTemplate.objects.none(), label=_("Move to stage"))
    note = forms.CharField(
        label=_("Personal note to the customer"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional. Added to the message every contact receives."),
    )
    notify_customer = forms.BooleanField(label=_("Tell the customer"), required=False, initial=True)
    backwards_reason = forms.CharField(
        label=_("Reason for going back"),
        required=False,
        max_length=300,
        help_text=_("Only when moving to an earlier stage."),
    )
    # The stage the person saw: if a colleague moved the job since, they are told instead of overriding.
    expected_stage = IdField(model=StageTemplate)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stages = [s for s in self.job.pipeline.stages.all() if s.pk != self.job.current_stage_id]
        to_stage = self.fields["to_stage"]
        assert isinstance(to_stage, forms.ModelChoiceField)
        to_stage.queryset = StageTemplate.objects.filter(pk__in=[s.pk for s in stages]).order_by("position")
        following = [s for s in stages if s.position > self.job.current_stage.position]
        if following and not self.is_bound:
            self.initial["to_stage"] = following[0].pk
        self.initial.setdefault("expected_stage", self.job.current_stage_id)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        stage = data.get("to_stage")
        if stage is not None:
            try:
                ensure_can_advance(self.job, stage, backwards=bool(data.get("backwards_reason", "").strip()))
            except DomainError as error:
                raise forms.ValidationError(error.message) from None
        return data


class MoveDateForm(NonWorkingDayForm, JobForm):
    prefix = "move"
    milestone = MilestoneField(queryset=Milestone.objects.none(), label=_("Which date"))
    new_date = forms.DateField(label=_("New date"), widget=DateInput)
    reason = forms.CharField(label=_("Reason"), max_length=300, help_text=_("Said to the customer when you tell them."))
    tell_customer = forms.BooleanField(label=_("Tell the customer now"), required=False, initial=True)
    note = forms.CharField(
        label=_("Personal note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        milestone = self.fields["milestone"]
        assert isinstance(milestone, forms.ModelChoiceField)
        milestone.queryset = (
            Milestone.objects.select_related("stage")
            .filter(job=self.job, completed_at__isnull=True)
            .order_by("stage__position")
        )

    def clean_new_date(self) -> Any:
        new_date = self.cleaned_data["new_date"]
        if new_date < business_today():
            raise forms.ValidationError(_("The new date cannot be in the past."))
        return check_day(new_date)


class CallForm(JobForm):
    prefix = "call"
    contact = ModelChoiceField(queryset=Contact.objects.none(), label=_("With"))
    outcome = forms.ChoiceField(choices=CallOutcome.CHOICES, label=_("Outcome"))
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=MAX_MESSAGE_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )
    callback_on = forms.DateField(
        label=_("Promised to call back by"), required=False, widget=DateInput, help_text=_("Optional.")
    )
    asked = forms.CharField(
        label=_("They asked for something"),
        required=False,
        max_length=MAX_QUESTION_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Optional. E.g. “a quote for a second charger”: it becomes a request, acknowledged in writing "
            "with an answer-by date."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contact = self.fields["contact"]
        assert isinstance(contact, forms.ModelChoiceField)
        contact.queryset = self.job.customer.contacts.order_by("name")

    def clean_callback_on(self) -> Any:
        day = self.cleaned_data.get("callback_on")
        if day is not None and day < business_today():
            raise forms.ValidationError(_("A callback date cannot be in the past."))
        return check_day(day) if day is not None else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["asked"] = data.get("asked", "").strip()
        if data["asked"] and data.get("outcome") not in (None, CallOutcome.REACHED):
            self.add_error("asked", _("Only someone you spoke with can have asked for something."))
        return data


class MessageForm(JobForm):
    prefix = "message"
    contacts = ContactsField(queryset=Contact.objects.none(), label=_("To"), widget=forms.CheckboxSelectMultiple)
    body = forms.CharField(label=_("Message"), max_length=MAX_MESSAGE_LENGTH, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contacts = self.fields["contacts"]
        assert isinstance(contacts, forms.ModelMultipleChoiceField)
        contacts.queryset = self.job.customer.contacts.order_by("name")
        if not self.is_bound:
            self.initial["contacts"] = [c.pk for c in self.job.contacts.all()]


class TextContactField(ModelChoiceField):
    def label_from_instance(self, obj: Contact) -> str:  # type: ignore[override]
        return f"{obj.name} ({display_phone(obj.phone)}, {obj.get_language_display()})"


class TextForm(JobForm):
    """A text to one contact who may receive texts (consent on record, a number that did not say
    STOP); as it is typed, its preview says how long it is and in how many text messages."""

    prefix = "text"
    contact = TextContactField(queryset=Contact.objects.none(), label=_("To"))
    body = forms.CharField(label=_("Text"), max_length=MAX_MESSAGE_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contact = self.fields["contact"]
        assert isinstance(contact, forms.ModelChoiceField)
        candidates = (
            self.job.customer.contacts.exclude(phone="")
            .filter(sms_consent_at__isnull=False)
            .exclude(phone__in=SmsOptOut.objects.values("number"))
            .values_list("pk", "phone")
        )
        # A consent on record for a number texts cannot reach (a landline) is no reason to offer it.
        self.textable = [pk for pk, number in candidates if phones.can_text(number)]
        contact.queryset = self.job.customer.contacts.filter(pk__in=self.textable).order_by("name")
        # The count of text messages, live as the text is typed (htmx; the Preview button without it).
        preview = reverse("crm:job_text_preview", args=[self.job.public_id])
        self.fields["body"].widget.attrs.update(
            {
                "hx-get": preview,
                "hx-trigger": "input changed delay:400ms",
                "hx-include": "closest form",
                "hx-target": f"#{self.prefix}-preview",
                "hx-swap": "innerHTML",
            }
        )

    @property
    def offered(self) -> bool:
        """Whether anyone on the job's customer may be texted (else the page leaves the form out)."""
        return bool(self.textable)


class PersonChoiceField(ModelChoiceField):
    """A staff member, by full name."""

    def label_from_instance(self, obj: Any) -> str:
        return person_name(obj)


class OwnerForm(JobForm):
    prefix = "owner"
    owner = PersonChoiceField(queryset=staff_users(), label=_("New owner"))
    reason = forms.CharField(label=_("Reason"), required=False, max_length=300)
    tell_customer = forms.BooleanField(
        label=_("Tell the customer who their contact is now"),
        required=False,
        initial=True,
        help_text=_("Each contact gets the new person's name, role and direct line."),
    )

    def clean_owner(self) -> Any:
        owner = self.cleaned_data["owner"]
        if owner.pk == self.job.owner_id:
            raise forms.ValidationError(_("This person already owns the job."))
        return owner


class PersonField(ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return person_name(obj)


class DetailsForm(JobForm):
    """What the job is called and who is on it (crm.services.jobs.job_update_details): the
    customer's contacts who hear about it, the staff who do the work (surveys and per-installer
    reports follow them). Closed jobs too: the service allows it, and a survey may still come."""

    prefix = "details"
    title = forms.CharField(label=_("Title"), max_length=200, help_text=_("The customer sees it, e.g. 'Heat pump'."))
    contacts = ContactsField(
        # Any contact validates here so that one of another customer gets a clear message (clean);
        # only the job's customer's are offered.
        queryset=Contact.objects.all(),
        label=_("Contacts"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The people who hear about this job."),
    )
    installers = PersonField(
        queryset=get_user_model().objects.none(),
        label=_("Installers"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Who does the work: surveys ask about them, and the satisfaction report counts per installer."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contacts = self.fields["contacts"]
        assert isinstance(contacts, forms.ModelMultipleChoiceField)
        contacts.widget.choices = [
            (c.pk, contacts.label_from_instance(c)) for c in self.job.customer.contacts.order_by("name", "pk")
        ]
        current_installers = [u.pk for u in self.job.installers.all()]
        installers = self.fields["installers"]
        assert isinstance(installers, forms.ModelMultipleChoiceField)
        # Active staff, and whoever is on the job already even if they have left since (kept as
        # they are unless unticked).
        installers.queryset = (
            get_user_model()
            .objects.filter(Q(is_active=True, is_staff=True) | Q(pk__in=current_installers))
            .order_by("first_name", "last_name", "username")
        )
        # The job as it is, bound or not: Form.has_changed() compares what was sent with it.
        self.initial.update(
            title=self.job.title, contacts=[c.pk for c in self.job.contacts.all()], installers=current_installers
        )

    def clean_contacts(self) -> list[Contact]:
        try:
            return ensure_contacts_of(self.job.customer, self.cleaned_data["contacts"])
        except DomainError as error:
            raise forms.ValidationError(str(error)) from error

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["changed"] = self.has_changed()
        return data


class StatusForm(JobForm):
    prefix = "status"
    ACTIONS = [
        ("hold", _("Put on hold")),
        ("resume", _("Resume")),
        ("cancel", _("Cancel the job")),
        ("complete", _("Mark as done")),
    ]
    action = forms.ChoiceField(choices=ACTIONS, label=_("Action"))
    reason = forms.CharField(
        label=_("Reason"), required=False, max_length=300, help_text=_("Needed to hold or cancel.")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") in ("hold", "cancel") and not data.get("reason", "").strip():
            self.add_error("reason", _("Say why."))
        return data


class AnswerForm(forms.Form):
    body = forms.CharField(
        label=_("Answer"),
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Write the answer first.")},
    )


class AssignForm(forms.Form):
    job = ModelChoiceField(queryset=Job.objects.none(), label=_("File on job"))

    def __init__(self, *args: Any, jobs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        job = self.fields["job"]
        assert isinstance(job, forms.ModelChoiceField)
        job.queryset = jobs


class PromiseForm(NonWorkingDayForm, JobForm):
    prefix = "promise"
    non_working_day_field = "due_on"
    title = forms.CharField(label=_("What you promised"), max_length=200, help_text=_("E.g. “the quote”."))
    due_on = forms.DateField(label=_("By"), widget=DateInput)
    contact = ModelChoiceField(queryset=Contact.objects.none(), label=_("To"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contact = self.fields["contact"]
        assert isinstance(contact, forms.ModelChoiceField)
        contact.queryset = self.job.customer.contacts.order_by("name")

    def clean_due_on(self) -> Any:
        day = self.cleaned_data["due_on"]
        if day < business_today():
            raise forms.ValidationError(_("A promise cannot be due in the past."))
        return check_day(day)


class StatusUpdateForm(JobForm):
    prefix = "update"
    note = forms.CharField(
        label=_("Personal note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional. The update already says where the job stands and what comes next."),
    )


class CommitmentMoveForm(NonWorkingDayForm):
    new_date = forms.DateField(label=_("New date"), widget=DateInput)
    reason = forms.CharField(label=_("Reason"), max_length=300, help_text=_("Said to the customer."))
    note = forms.CharField(
        label=_("Personal note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_new_date(self) -> Any:
        new_date = self.cleaned_data["new_date"]
        if new_date < business_today():
            raise forms.ValidationError(_("The new date cannot be in the past."))
        return check_day(new_date)


class RolesForm(JobForm):
    """Who answers for the customer during each stage of the job (its pipeline's roles)."""

    prefix = "roles"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rows = getattr(self.job, "role_holders", None)  # the job page's prefetch
        held = {row.role_id: row.holder_id for row in (self.job.roles.all() if rows is None else rows)}
        self.roles = sorted(self.job.pipeline.roles.all(), key=lambda role: role.name)
        for role in self.roles:
            stages = ", ".join(s.name for s in self.job.pipeline.stages.all() if s.role_id == role.pk)
            self.fields[f"role_{role.pk}"] = PersonChoiceField(
                queryset=staff_users(),
                label=role.name,
                help_text=_("The customer's contact during: %(stages)s.") % {"stages": stages} if stages else "",
            )
            self.initial.setdefault(f"role_{role.pk}", held.get(role.pk, self.job.owner_id))

    @staticmethod
    def holders(job: Job, data: dict[str, Any]) -> dict[Any, Any]:
        """The holders chosen in ``data`` (the form's cleaned data), by role."""
        return {role: data[f"role_{role.pk}"] for role in job.pipeline.roles.all() if f"role_{role.pk}" in data}
