"""The reports' filters: the period, and whose charts to show (an owner; on the satisfaction page
an owner, an installer or a pipeline). Empty fields mean the default."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.forms.fields import IdField, check_day
from crm.models import Pipeline
from crm.reports import MAX_PERIOD_DAYS, Period


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class HealthForm(forms.Form):
    """The period and, for managers, whose charts to show. Empty fields mean the default.

    Either end of the period lies between crm.workdays.EARLIEST_DAY and latest_day() (a date
    typed in the year 1 or 9999 would run the period off the calendar)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so the fields are added by name.
        self.fields["from"] = forms.DateField(label=gettext_lazy("From"), required=False, widget=DateInput())
        self.fields["to"] = forms.DateField(label=gettext_lazy("To"), required=False, widget=DateInput())
        self.fields["owner"] = IdField(model=get_user_model(), label=gettext_lazy("Owner"), required=False)

    def clean_from(self) -> Any:
        day = self.cleaned_data.get("from")
        return check_day(day) if day is not None else None

    def clean_to(self) -> Any:
        day = self.cleaned_data.get("to")
        return check_day(day) if day is not None else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("from"), data.get("to")
        if first and last and first > last:
            raise forms.ValidationError(_("The period must start before it ends."))
        period = self.period_from(data)
        if period.days > MAX_PERIOD_DAYS:
            raise forms.ValidationError(_("Choose a period of at most a year."))
        return data

    @staticmethod
    def period_from(data: dict[str, Any]) -> Period:
        default = Period.last_weeks()
        first, last = data.get("from"), data.get("to")
        if first and last:
            return Period(first, last)
        if first:
            return Period(first, max(first, default.last_day))
        if last:
            return Period(last - timedelta(days=default.days - 1), last)
        return default

    @property
    def period(self) -> Period:
        return self.period_from(self.cleaned_data)


class SatisfactionForm(HealthForm):
    """The period and whose charts to show: an owner, an installer or a pipeline (none: the
    team's, or for an owner their own)."""

    CHOICES = ("owner", "installer", "pipeline")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["installer"] = IdField(model=get_user_model(), label=gettext_lazy("Installer"), required=False)
        self.fields["pipeline"] = IdField(model=Pipeline, label=gettext_lazy("Pipeline"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if len([name for name in self.CHOICES if data.get(name) is not None]) > 1:
            raise forms.ValidationError(_("Choose the charts of one owner, installer or pipeline."))
        return data

    @property
    def chosen(self) -> tuple[str, int] | None:
        return next(
            ((name, self.cleaned_data[name]) for name in self.CHOICES if self.cleaned_data.get(name) is not None),
            None,
        )
