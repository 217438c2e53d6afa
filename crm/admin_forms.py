"""Forms of the crm admin.

The job and milestone forms only validate: crm.admin hands their cleaned data to the services in
crm.services.jobs, which write the change and its JobEvent. The checks here are the ones a person
can fix on the page (a stage that is not allowed from here, a contact of another customer); the
services check again under a row lock when saving.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.contrib.admin import helpers, widgets
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import phones
from crm.errors import DomainError
from crm.forms.welcome import WelcomeFields
from crm.ids import id_from_input
from crm.models import Contact, Job, JobRole, Milestone, Pipeline, PipelineRole, StaffProfile, StageTemplate
from crm.services.customers import contact_deletion_refusals
from crm.services.jobs import ensure_can_advance, last_mover
from crm.workdays import business_today


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: StageTemplate) -> str:  # type: ignore[override]
        # Not str(stage): that names the pipeline too, one query per option.
        return f"{obj.position}. {obj.name}"


class ContactsOfCustomerField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Contact) -> str:  # type: ignore[override]
        return obj.name  # The customer is the job's; str(contact) would repeat it.


def _active_staff(*keep: int | None) -> QuerySet[Any]:
    """Active staff members, plus the users already chosen so an unchanged form stays valid."""
    return get_user_model().objects.filter(Q(is_active=True, is_staff=True) | Q(pk__in=[pk for pk in keep if pk]))


def _limit_choices(form: forms.BaseForm, name: str, queryset: QuerySet[Any]) -> None:
    # A view-only page has no form fields to limit.
    field = form.fields.get(name)
    if isinstance(field, forms.ModelChoiceField):
        field.queryset = queryset


def _not_its_role(role: PipelineRole, pipeline: Pipeline) -> str:
    return gettext("“%(role)s” is not a role of the %(pipeline)s pipeline.") % {
        "role": role.name,
        "pipeline": pipeline.name,
    }


class RoleChoiceField(forms.ModelChoiceField):
    """A stage's role, offered from its pipeline's own roles once the pipeline is known (else from
    every pipeline's, each named with its pipeline). A role of another pipeline is refused by name
    rather than as an unknown choice."""

    pipeline: Pipeline | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queryset = PipelineRole.objects.select_related("pipeline").order_by("pipeline__name", "name")

    def limit_to(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        # A pipeline being added has no roles yet: they are chosen once it is saved.
        roles = PipelineRole.objects.filter(pipeline=pipeline.pk) if pipeline.pk else PipelineRole.objects.none()
        self.queryset = roles.order_by("name")

    def label_from_instance(self, obj: PipelineRole) -> str:  # type: ignore[override]
        return obj.name if self.pipeline is not None else f"{obj.pipeline.name}: {obj.name}"

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except ValidationError:
            pk = id_from_input(value, PipelineRole)
            other = PipelineRole.objects.select_related("pipeline").filter(pk=pk).first() if pk else None
            if other is None or self.pipeline is None:
                raise
            raise ValidationError(_not_its_role(other, self.pipeline), code="invalid_choice") from None


class PipelineRoleForm(forms.ModelForm):
    """A pipeline's role; its usual holder is chosen among active staff."""

    class Meta:
        model = PipelineRole
        fields = ["pipeline", "name", "default_holder"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _limit_choices(self, "default_holder", _active_staff(self.instance.default_holder_id))


class PipelineStageForm(forms.ModelForm):
    """A stage of the pipeline page (StageTemplateFormSet offers that pipeline's roles); the role
    that answers for the customer during it must be one of its pipeline's."""

    class Meta:
        model = StageTemplate
        fields = [
            "pipeline",
            "position",
            "name",
            "name_fr",
            "customer_visible",
            "default_duration_days",
            "role",
            "message_key",
            "customer_instructions",
            "customer_instructions_fr",
        ]
        field_classes = {"role": RoleChoiceField}

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        role, pipeline = data.get("role"), data.get("pipeline")
        if role is not None and pipeline is not None and role.pipeline_id != pipeline.pk:
            self.add_error("role", _not_its_role(role, pipeline))
        return data


class StageTemplateForm(PipelineStageForm):
    """A stage on its own page: an existing one offers its pipeline's roles, a new one every
    pipeline's (named with it) until it is saved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("role")
        if isinstance(field, RoleChoiceField) and self.instance.pipeline_id is not None:
            field.limit_to(self.instance.pipeline)


class StageTemplateFormSet(BaseInlineFormSet):
    """The stages of the pipeline page: each offers the roles of that pipeline."""

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        field = form.fields.get("role")
        if isinstance(field, RoleChoiceField):
            field.limit_to(self.instance)


class ContactFormSet(BaseInlineFormSet):
    """The contacts of the customer page: removing one that an open job cannot do without is
    refused here, next to the contacts, with everything else typed on the page kept (the service
    checks again when saving)."""

    def clean(self) -> None:
        super().clean()
        leaving = [form.instance for form in self.deleted_forms if form.instance.pk is not None]
        if leaving and (refusals := contact_deletion_refusals(leaving)):
            raise ValidationError(refusals)


class VisitKindFormSet(BaseInlineFormSet):
    """The visit kinds of the pipeline page: each offers that pipeline's stages only."""

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        field = form.fields.get("stage")
        if isinstance(field, forms.ModelChoiceField):
            pipeline = self.instance if self.instance.pk else None
            field.queryset = StageTemplate.objects.filter(pipeline=pipeline).order_by("position")


class JobRoleForm(forms.ModelForm):
    """Who holds one role on a job; crm.admin saves it through crm.services.jobs.job_roles_set."""

    class Meta:
        model = JobRole
        fields = ["holder"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _limit_choices(self, "holder", _active_staff(self.instance.holder_id))


def cleaned_phone(form: forms.ModelForm) -> str:
    """The number a form was given, as it is stored: E.164, read with PHONE_DEFAULT_REGION when
    typed without a country code; "" for none. A number on record from before E.164 that cannot
    be read is kept while it is left as it is (the rest can still be edited; phones_unparsed lists
    it); any other number that is not valid is a ValidationError saying what to type."""
    typed = form.cleaned_data.get("phone", "")
    stored = getattr(form.instance, "phone", "") if form.instance.pk else ""
    try:
        return phones.to_e164(typed)
    except ValidationError:
        if stored and typed.strip() == stored:
            return stored
        raise


def shown_as_stored_number(form: forms.ModelForm) -> None:
    """The number a form edits shown as people read it ("06 12 34 56 78"), not as stored
    (E.164): saved unchanged, it is read back to the same number."""
    stored = getattr(form.instance, "phone", "")
    if stored and "phone" in form.fields and form.initial.get("phone") == stored:
        form.initial["phone"] = phones.display(stored)


class ContactForm(forms.ModelForm):
    """A contact's details; crm.admin saves them through crm.services.customers. Consent to SMS and
    opting out are evidence the contact gave (recorded with their time by the CRM contact page and
    the portal): shown here, never typed in."""

    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)

    class Meta:
        model = Contact
        fields = ["customer", "name", "email", "phone", "language", "preferred_channel", "time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shown_as_stored_number(self)

    def clean_phone(self) -> str:
        return cleaned_phone(self)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # The instance as it was read: the ModelForm has copied the typed values onto it, not
        # consent, which is not a field here.
        if data.get("preferred_channel") == Contact.Channel.SMS and self.instance.sms_consent_at is None:
            self.add_error(
                "preferred_channel",
                gettext(
                    "SMS can only be the preferred channel once the contact has consented to SMS "
                    "(recorded on the contact's page in the CRM, or by the contact on the portal)."
                ),
            )
        elif (
            data.get("preferred_channel") == Contact.Channel.SMS
            and data.get("phone")
            and not phones.can_text(data["phone"])
        ):
            self.add_error("preferred_channel", phones.cannot_text_error(data["phone"]))
        return data


class StaffProfileForm(forms.ModelForm):
    """A staff member's profile; the direct phone is stored in E.164 like every number."""

    class Meta:
        model = StaffProfile
        fields = ["user", "phone", "job_title", "language", "goes_on_visits"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shown_as_stored_number(self)

    def clean_phone(self) -> str:
        return cleaned_phone(self)


class JobAddForm(WelcomeFields, forms.ModelForm):
    """The fields of crm.services.jobs.job_create."""

    start_date = forms.DateField(
        label=_("Start date"),
        required=False,
        widget=widgets.AdminDateWidget,
        help_text=_("When the first stage is reached; empty for today. Later stages are planned from it."),
    )

    class Meta:
        model = Job
        fields = ["customer", "pipeline", "owner", "title", "contacts"]
        help_texts = {"contacts": _("Leave empty for every contact of the customer.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _limit_choices(self, "pipeline", Pipeline.objects.filter(is_active=True))
        _limit_choices(self, "owner", _active_staff())

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        pipeline = data.get("pipeline")
        if pipeline is not None and not pipeline.stages.exists():
            self.add_error("pipeline", gettext("This pipeline has no stages yet."))
        customer = data.get("customer")
        strangers = [c.name for c in data.get("contacts", []) if customer and c.customer_id != customer.pk]
        if strangers:
            self.add_error(
                "contacts",
                gettext("%(names)s is not a contact of %(customer)s.")
                % {"names": ", ".join(strangers), "customer": customer},
            )
        self.clean_welcome()
        return data


class JobChangeForm(forms.ModelForm):
    """Details, owner and stage of a job; status changes are actions of the job list."""

    # Who is changing it (set by crm.admin): a stage change over a colleague's names them, or
    # "you" when it was this person in another window.
    actor: User | None = None

    advance_to = StageChoiceField(
        label=_("Move to stage"),
        queryset=StageTemplate.objects.none(),
        required=False,
        help_text=_("Milestones up to this stage are marked reached now; later forecasts move out if needed."),
    )
    backwards_reason = forms.CharField(
        label=_("Reason for going back"),
        required=False,
        max_length=500,
        help_text=_("Needed only to move the job to an earlier stage."),
    )
    notify_customer = forms.BooleanField(
        label=_("Tell the customer"),
        required=False,
        initial=True,
        help_text=_("Reaching a stage shown to the customer sends them its message."),
    )
    # The stage this page showed: if a colleague moved the job since, saving says so instead of
    # silently overriding them.
    expected_stage = forms.ModelChoiceField(queryset=StageTemplate.objects.none(), widget=forms.HiddenInput)
    # The customer is fixed once the job exists, so its contacts make a short list.
    contacts = ContactsOfCustomerField(
        label=_("Contacts"),
        queryset=Contact.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The people who hear about this job."),
    )

    class Meta:
        model = Job
        fields = ["title", "owner", "contacts", "installers"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        job: Job = self.instance
        stages = StageTemplate.objects.filter(pipeline=job.pipeline_id).order_by("position")
        _limit_choices(self, "advance_to", stages)
        _limit_choices(self, "expected_stage", stages)
        self.fields["expected_stage"].initial = job.current_stage_id
        _limit_choices(self, "contacts", Contact.objects.filter(customer=job.customer_id))
        _limit_choices(self, "owner", _active_staff(job.owner_id))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        job: Job = self.instance
        if "owner" in self.changed_data and not job.is_open:
            self.add_error(
                "owner",
                gettext("Job %(ref)s is %(status)s: its owner can no longer change.")
                % {"ref": job.reference, "status": job.get_status_display().lower()},
            )
        to_stage = data.get("advance_to")
        expected = data.get("expected_stage")
        if to_stage is None:
            return data
        if expected is not None and expected.pk != job.current_stage_id:
            self.add_error(
                "advance_to",
                gettext("%(who)s moved job %(ref)s to “%(stage)s” in the meantime; look again before changing it.")
                % {"who": last_mover(job, self.actor), "ref": job.reference, "stage": job.current_stage.name},
            )
            return data
        try:
            ensure_can_advance(job, to_stage, backwards=bool(data.get("backwards_reason", "").strip()))
        except DomainError as error:
            self.add_error("advance_to", str(error))
        return data


class MilestoneMoveForm(forms.ModelForm):
    """The fields of crm.services.jobs.milestone_move."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why the date moves; the customer will ask."),
    )
    tell_customer = forms.BooleanField(label=_("Tell the customer"), required=False)

    class Meta:
        model = Milestone
        fields = ["forecast_date"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "forecast_date" in self.fields:  # Not on the view-only page of a reached milestone.
            self.fields["forecast_date"].required = True

    def clean_forecast_date(self) -> Any:
        new_date = self.cleaned_data["forecast_date"]
        if "forecast_date" not in self.changed_data:
            raise forms.ValidationError(gettext("Choose the new date."))
        if new_date < business_today():
            raise forms.ValidationError(gettext("The new date cannot be in the past."))
        return new_date


class JobActionForm(helpers.ActionForm):
    """The job list's action bar, with the reason some actions need."""

    reason = forms.CharField(
        label=_("Reason:"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": _("needed to hold or cancel"), "size": 30}),
    )
