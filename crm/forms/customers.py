"""Forms of the customer pages: a customer, a contact and their preferences, a new job.

They validate what a person can fix on the page; crm.services.customers and crm.services.jobs
write, and check again.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout, Submit
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import phones
from crm.admin_forms import cleaned_phone, shown_as_stored_number, time_zone_choices
from crm.errors import DomainError
from crm.forms.fields import ModelChoiceField, ModelMultipleChoiceField, check_day
from crm.forms.welcome import WelcomeFields
from crm.ids import id_from_input
from crm.models import Contact, Customer, Pipeline
from crm.services.guards import ensure_contacts_of
from crm.text import person_name
from crm.workdays import business_today, years_after


def _helper(submit_label: str, *layout: Any) -> FormHelper:
    helper = FormHelper()
    helper.form_method = "post"
    helper.layout = Layout(*layout) if layout else None
    helper.add_input(Submit("submit", submit_label))
    return helper


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["name", "kind", "address", "notes"]
        widgets = {
            "address": forms.Textarea(attrs={"rows": 3}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "name": _("The household or company, as you would write it on an invoice."),
            "notes": _("Only the team sees these notes."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _helper(gettext("Save customer"))


class ContactForm(forms.ModelForm):
    """A contact's details and preferences. Consent is a tick box: the time it was given is recorded
    by the service, never typed in."""

    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        error_messages={"invalid_choice": _("%(value)s is not a known time zone.")},
        help_text=_("Dates and times in messages are shown in this time zone."),
    )
    sms_consent = forms.BooleanField(
        label=_("Has agreed to receive SMS"),
        required=False,
        help_text=_("SMS is never sent without a recorded consent."),
    )

    class Meta:
        model = Contact
        fields = [
            "name",
            "email",
            "phone",
            "language",
            "preferred_channel",
            "time_zone",
            "sms_consent",
            "sms_consent_source",
        ]
        help_texts = {
            "language": _("Messages and the portal are in this language."),
            "preferred_channel": _("How the contact hears from us. SMS needs their consent."),
            "phone": _("With the country code, e.g. +33 6 12 34 56 78."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contact: Contact = self.instance
        # What was on record when the page was built: the rules depend on it, and the ModelForm
        # changes the instance while it validates.
        self.had_consent = contact.sms_consent_at is not None
        self.preferred_sms = contact.preferred_channel == Contact.Channel.SMS
        self.fields["email"].widget.attrs["autocomplete"] = "off"
        self.fields["phone"].widget.attrs["autocomplete"] = "off"
        shown_as_stored_number(self)
        self.fields["sms_consent"].initial = self.had_consent
        source = self.fields["sms_consent_source"]
        if self.had_consent:
            # Recorded consent is evidence: its source is shown, not edited.
            source.disabled = True
            source.help_text = gettext("Consent recorded on %(date)s. Untick the box above to withdraw it.") % {
                "date": formats.date_format(timezone.localtime(contact.sms_consent_at), "SHORT_DATETIME_FORMAT")
            }
        else:
            source.help_text = gettext(
                "Needed when the contact agrees to SMS: how they agreed, e.g. 'signed order form', 'phone call'."
            )
        self.helper = _helper(
            gettext("Save contact"),
            Fieldset(gettext("Contact details"), "name", "email", "phone"),
            Fieldset(gettext("Preferences"), "language", "preferred_channel", "time_zone"),
            Fieldset(gettext("SMS consent"), "sms_consent", "sms_consent_source"),
        )

    @property
    def withdraws_sms(self) -> bool:
        """Consent withdrawn from a contact who preferred SMS: the service falls back to email."""
        return self.had_consent and self.preferred_sms and not self.cleaned_data.get("sms_consent")

    def clean_phone(self) -> str:
        return cleaned_phone(self)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.has_error("phone"):
            # The model's checks then run on the number as typed: without it they would add "this
            # channel needs a phone number" under the number the person just typed.
            self.instance.phone = str(self.data.get(self.add_prefix("phone"), "")).strip()
        consent = data.get("sms_consent")
        if consent and not self.had_consent and not data.get("phone", "").strip() and "phone" not in self.errors:
            self.add_error("phone", gettext("SMS consent needs a mobile phone number."))
        if consent and not self.had_consent and not data.get("sms_consent_source", "").strip():
            self.add_error("sms_consent_source", gettext("Say how the contact gave their consent to SMS."))
        if data.get("preferred_channel") == Contact.Channel.SMS and not consent and not self.withdraws_sms:
            self.add_error(
                "preferred_channel",
                gettext("SMS can only be the preferred channel once the contact has consented to SMS."),
            )
        phone = data.get("phone", "")
        if phone and not phones.can_text(phone):
            # Only a mobile number is offered texts: agreeing to them, or choosing them.
            if consent and not self.had_consent:
                self.add_error("phone", phones.cannot_text_error(phone))
            elif data.get("preferred_channel") == Contact.Channel.SMS and consent:
                self.add_error("preferred_channel", phones.cannot_text_error(phone))
        return data


class OwnerChoiceField(ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return person_name(obj)


class JobCreateForm(WelcomeFields):
    """The fields of crm.services.jobs.job_create."""

    customer = ModelChoiceField(label=_("Customer"), queryset=Customer.objects.all())
    pipeline = ModelChoiceField(
        label=_("Pipeline"),
        queryset=Pipeline.objects.filter(is_active=True),
        help_text=_("The stages this job goes through; every milestone is planned from them."),
    )
    owner = OwnerChoiceField(
        label=_("Owner"),
        queryset=get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .order_by("first_name", "last_name", "username"),
        help_text=_("The person who keeps the customer informed."),
    )
    title = forms.CharField(label=_("Title"), max_length=200, help_text=_("The customer sees it, e.g. 'Heat pump'."))
    contacts = ModelMultipleChoiceField(
        label=_("Contacts"),
        # Any contact validates here so that one of another customer gets a clear message (clean);
        # only the chosen customer's are offered.
        queryset=Contact.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The people who hear about this job. Leave all unticked for every contact of the customer."),
    )
    start_date = forms.DateField(
        label=_("Start date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("When the first stage is reached; empty for today. Later stages are planned from it."),
    )

    def __init__(self, *args: Any, refresh_url: str = "", customer_by_search: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        customer_field = self.fields["customer"]
        if customer_by_search:
            # Too many to list: the page finds the customer by search and the form carries it.
            customer_field.widget = forms.HiddenInput()
            customer_field.error_messages["required"] = gettext("Find the customer first.")
        elif refresh_url:
            # Choosing a customer reloads the form to offer that customer's contacts.
            customer_field.widget.attrs.update(
                {
                    "hx-get": refresh_url,
                    "hx-trigger": "change",
                    "hx-include": "#id_pipeline, #id_owner, #id_title, #id_start_date",
                    "hx-select": "#job-form",
                    "hx-target": "#job-form",
                    "hx-swap": "outerHTML",
                }
            )
        contacts = self.contacts_offered()
        self.fields["contacts"].widget.choices = [(c.pk, c.name) for c in contacts]
        if not self.is_bound:
            self.fields["contacts"].initial = [c.pk for c in contacts]
        # No form_id: crispy would repeat it on the contacts' checkbox group. The template wraps
        # the form in #job-form, which the customer select reloads, and draws the form tag and
        # its buttons (create, preview the welcome).
        self.helper = FormHelper()
        self.helper.form_tag = False

    def _chosen_customer_id(self) -> int | None:
        value = self.data.get("customer") if self.is_bound else self.initial.get("customer")
        return id_from_input(value, Customer)

    def contacts_offered(self) -> QuerySet[Contact]:
        customer_id = self._chosen_customer_id()
        if customer_id is None:
            return Contact.objects.none()
        return Contact.objects.filter(customer_id=customer_id).order_by("name").only("pk", "name")

    def clean_start_date(self) -> Any:
        day = self.cleaned_data.get("start_date")
        # A job may be recorded a while after its request came in, not years after.
        return check_day(day, earliest=years_after(business_today(), -1)) if day is not None else None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        customer = data.get("customer")
        if customer is not None:
            try:
                ensure_contacts_of(customer, data.get("contacts", []))
            except DomainError as error:
                self.add_error("contacts", str(error))
        self.clean_welcome()
        return data
