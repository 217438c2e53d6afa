"""The managers' integration forms: a new API key (its name, who it acts as, its scopes) and a
webhook endpoint (its address, what it is for, the events it hears of).

They validate what a person can fix on the page, with the services' own rules where there are
some (crm.services.webhooks.check_url); crm.services.api_keys and crm.services.webhooks write, and
check again.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Layout, Submit
from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.errors import DomainError
from crm.forms.fields import ModelChoiceField
from crm.models import ApiKey, WebhookEndpoint
from crm.selectors import staff_users
from crm.services.webhooks import check_url
from crm.text import person_name

EventType = WebhookEndpoint.EventType

# The event types under the headings the form shows them in, in this order: what each group's
# types start with (before the dot), and its heading.
EVENT_GROUPS: list[tuple[tuple[str, ...], Any]] = [
    (("job", "milestone"), _("Jobs and their dates")),
    (("commitment",), _("Promises")),
    (("request", "message"), _("Requests and messages")),
    (("survey",), _("Surveys")),
    (("visit",), _("Visits")),
]


def event_type_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """WebhookEndpoint.EventType as grouped choices (a heading per group, in the reader's
    language); a type no group names goes under "Other events", so none is ever left out."""
    grouped: list[tuple[str, list[tuple[str, str]]]] = []
    placed: set[str] = set()
    for starts, heading in EVENT_GROUPS:
        options = [(value, str(label)) for value, label in EventType.choices if value.split(".")[0] in starts]
        placed.update(value for value, _label in options)
        if options:
            grouped.append((str(heading), options))
    others = [(value, str(label)) for value, label in EventType.choices if value not in placed]
    if others:
        grouped.append((gettext("Other events"), others))
    return grouped


class StaffMemberField(ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return person_name(obj)


class ApiKeyForm(forms.Form):
    """ "New API key" on the API keys page; ``actor`` (the manager) is who it acts as unless
    another staff member is chosen."""

    name = forms.CharField(
        label=_("Name"),
        max_length=80,
        help_text=ApiKey._meta.get_field("name").help_text,
        error_messages={"required": _("Name the key after the system that will use it.")},
    )
    owner = StaffMemberField(
        queryset=User.objects.none(),
        label=_("Acts as"),
        empty_label=None,
        help_text=ApiKey._meta.get_field("owner").help_text,
        error_messages={
            "required": _("Choose the staff member the key acts as."),
            "invalid_choice": _("Choose an active staff member: the key acts as them."),
        },
    )
    scopes = forms.MultipleChoiceField(
        label=_("What it may do"),
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Give it only what the other system needs."),
        error_messages={
            "required": _("Choose at least one scope."),
            "invalid_choice": _("%(value)s is not one of the scopes offered."),
        },
    )

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = staff_users()
        self.initial.setdefault("owner", actor.pk)
        self.helper = FormHelper()
        self.helper.form_method = "post"
        self.helper.form_id = "api-key-form"
        self.helper.layout = Layout("name", "owner", "scopes")
        self.helper.add_input(Submit("submit", gettext("Make the key")))

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(gettext("Name the key after the system that will use it."))
        return name


class WebhookEndpointForm(forms.Form):
    """A webhook endpoint's address, description and events: "Add an endpoint" on the webhooks
    page, and the endpoint page's edit form (``endpoint``)."""

    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("Where the events are posted, starting with https://."),
        error_messages={
            "required": _("Enter the endpoint's full address, starting with https://."),
            "invalid": _("Enter the endpoint's full address, starting with https://."),
        },
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=200,
        required=False,
        help_text=_("Optional: which system it is and who looks after it."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Events to send"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose at least one event to send."),
            "invalid_choice": _("%(value)s is not one of the events offered."),
        },
    )

    def __init__(self, *args: Any, endpoint: WebhookEndpoint | None = None, **kwargs: Any) -> None:
        if endpoint is not None:
            kwargs.setdefault(
                "initial",
                {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types},
            )
        super().__init__(*args, **kwargs)
        event_types = self.fields["event_types"]
        assert isinstance(event_types, forms.MultipleChoiceField)
        event_types.choices = event_type_choices()
        self.helper = FormHelper()
        self.helper.form_method = "post"
        self.helper.form_id = "webhook-form"
        self.helper.layout = Layout("url", "description", "event_types")
        self.helper.add_input(Submit("submit", gettext("Save") if endpoint else gettext("Add the endpoint")))

    def clean_url(self) -> str:
        # The service's rule (https, a public address), told next to the field.
        try:
            return check_url(self.cleaned_data["url"])
        except DomainError as error:
            raise forms.ValidationError(error.message) from error

    def clean_description(self) -> str:
        description: str = self.cleaned_data["description"]
        return description.strip()


class EndpointActiveForm(forms.Form):
    """Pause an endpoint, or turn it back on (the endpoint page's button)."""

    active = forms.TypedChoiceField(
        choices=[("1", _("Turn back on")), ("0", _("Pause"))],
        coerce=lambda value: value == "1",
        error_messages={"required": _("Choose to pause the endpoint or to turn it back on.")},
    )
