"""The campaign form: what it says in each language, when it runs, and who receives it.

It validates what a person can fix on the page (the model's rules, through the ModelForm);
crm.services.campaigns writes, and checks again.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Fieldset, Layout, Submit
from django import forms
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.forms.fields import ModelChoiceField, check_day
from crm.models import Campaign, Pipeline
from crm.services.campaigns import EDITABLE_FIELDS, CampaignDetails


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class CampaignForm(forms.ModelForm):
    link_url = forms.URLField(
        label=_("Link"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=Campaign._meta.get_field("link_url").help_text,
    )

    class Meta:
        model = Campaign
        fields = EDITABLE_FIELDS
        field_classes = {"pipeline": ModelChoiceField}
        widgets = {
            "starts_on": DateInput(),
            "ends_on": DateInput(),
            "body_en": forms.Textarea(attrs={"rows": 6}),
            "body_fr": forms.Textarea(attrs={"rows": 6}),
        }
        labels = {
            "subject_en": _("Subject"),
            "body_en": _("Text"),
            "link_label_en": _("Button label"),
            "subject_fr": _("Subject"),
            "body_fr": _("Text"),
            "link_label_fr": _("Button label"),
        }
        help_texts = {
            "body_en": _("Plain text; blank lines make paragraphs. Each contact is greeted by name above it."),
            "body_fr": _("Plain text; blank lines make paragraphs. Each contact is greeted by name above it."),
            "starts_on": _("When the offer, training or event begins."),
            "ends_on": _("After this day the campaign's link says it has ended and shows what is on instead."),
            "link_label_en": _("Empty for “Read the tip”, “See the training” or “See the event”."),
            "link_label_fr": _("Empty for the same in French."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pipeline = self.fields["pipeline"]
        assert isinstance(pipeline, forms.ModelChoiceField)
        # Pipelines in use, and the one already chosen even if it has been retired since.
        pipeline.queryset = Pipeline.objects.filter(Q(is_active=True) | Q(pk=self.instance.pipeline_id or 0))
        pipeline.empty_label = gettext("Any pipeline, or none")
        self.fields["language"].choices = [("", gettext("Every language")), *self.fields["language"].choices[1:]]  # type: ignore[attr-defined]
        self.helper = FormHelper()
        self.helper.form_method = "post"
        self.helper.form_id = "campaign-form"
        self.helper.layout = Layout(
            Fieldset(gettext("The campaign"), "title", "kind", Div("starts_on", "ends_on"), "link_url"),
            Fieldset(gettext("In English"), "subject_en", "body_en", "link_label_en"),
            Fieldset(gettext("In French"), "subject_fr", "body_fr", "link_label_fr"),
            Fieldset(gettext("Who receives it"), "pipeline", "completed_jobs_only", "language"),
        )
        self.helper.add_input(Submit("submit", gettext("Save the draft")))

    def clean_starts_on(self) -> Any:
        return check_day(self.cleaned_data["starts_on"])

    def clean_ends_on(self) -> Any:
        return check_day(self.cleaned_data["ends_on"])

    @property
    def details(self) -> CampaignDetails:
        return CampaignDetails.from_data(self.cleaned_data)
