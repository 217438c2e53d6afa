"""Whether creating a job welcomes its contacts, on every form that creates one."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class WelcomeFields(forms.Form):
    """Whether creating a job welcomes its contacts (crm.services.jobs.job_create), and why not:
    the staff page's form and the admin's."""

    notify_customer = forms.BooleanField(
        label=_("Welcome the customer now"),
        required=False,
        initial=True,
        help_text=_(
            "Each contact is thanked and told the stages ahead with their dates, who their contact is and "
            "how to follow the job online."
        ),
    )
    not_told_reason = forms.CharField(
        label=_("Why not"),
        required=False,
        max_length=300,
        help_text=_("Only when the customer is not welcomed: recorded on the job."),
    )

    def clean_welcome(self) -> None:
        """Call from clean(): not welcoming needs a reason."""
        data = self.cleaned_data
        data["not_told_reason"] = data.get("not_told_reason", "").strip()
        if not data.get("notify_customer") and not data["not_told_reason"]:
            self.add_error(
                "not_told_reason",
                _("Say why the customer is not welcomed: they will hear nothing until the next stage."),
            )
