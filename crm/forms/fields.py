"""What people type or a page carries that names a row or a day, or is searched for: read
strictly, so that junk or an absurd value is an ordinary "no such …" or a form error, never a crash.

Ids: read by crm.ids (max_id, id_from_input; below forms and selectors alike), which the id
fields here use to refuse a value before any query is made.

Search text: what PostgreSQL refuses in text (a NUL) taken out, as if it had not been typed —
a search box or a filter has no error to show, and a NUL in a query is a 500 there (SQLite takes it).

Days: within reach of today (see crm.workdays.EARLIEST_DAY and latest_day): a date in the year 1
or 9999 is a slip of the keyboard, and computing with it overflows the calendar.
A date given to a customer that falls on a weekend or a holiday is asked about ("keep it?",
NonWorkingDayForm) rather than refused: staff may mean it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.dates import said_date
from crm.ids import id_from_input, max_id
from crm.text import clean_text
from crm.workdays import EARLIEST_DAY, business_today, is_business_day, out_of_reach

# --- Ids ----------------------------------------------------------------------------------------


class IdField(forms.IntegerField):
    """The id of a ``model`` row carried by a page (a filter, a hidden field): a whole number
    between 1 and what the column holds, or the usual form error."""

    def __init__(self, *, model: type[models.Model], **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.HiddenInput)
        super().__init__(min_value=1, max_value=max_id(model), **kwargs)


class ModelChoiceField(forms.ModelChoiceField):
    """Django's, refusing an id its table cannot hold before it queries (SQLite would raise
    OverflowError, PostgreSQL a DataError, on some lookups)."""

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        assert self.queryset is not None
        model = self.queryset.model
        if self.to_field_name is None and not isinstance(value, model) and id_from_input(value, model) is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class ModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Django's, refusing ids their table cannot hold before it queries (``pk__in`` with a huge
    number is an OverflowError on SQLite)."""

    def clean(self, value: Any) -> Any:
        assert self.queryset is not None
        model = self.queryset.model
        if self.to_field_name is None and isinstance(value, list | tuple):
            for pk in value:
                if not isinstance(pk, model) and id_from_input(pk, model) is None:
                    raise ValidationError(
                        self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                    )
        return super().clean(value)


# --- Search text --------------------------------------------------------------------------------

# Longer than anyone types in a search box; a query string can carry far more.
SEARCH_MAX_LENGTH = 100


def search_text(value: Any) -> str:
    """What a search box or a text filter of the query string searches for: stripped, at most
    SEARCH_MAX_LENGTH characters, with NUL and lone surrogates cleaned away (crm.text.clean_text)."""
    return clean_text(str(value or "")).strip()[:SEARCH_MAX_LENGTH]


# --- Days ---------------------------------------------------------------------------------------


def check_day(day: date, *, earliest: date = EARLIEST_DAY, latest: date | None = None) -> date:
    """``day`` if it lies between ``earliest`` and ``latest`` (crm.workdays.out_of_reach), else
    the form error that says which days can be chosen."""
    problem = out_of_reach(day, earliest=earliest, latest=latest)
    if problem is not None:
        code, message = problem
        raise ValidationError(message, code=code)
    return day


KEEP_NON_WORKING_DAY = "keep_non_working_day"


def non_working_day_question(day: date) -> str:
    """ "Saturday 5 December is not a working day — keep it?" (the year said when it is not this
    year's)."""
    fmt = "l j F" if day.year == business_today().year else "l j F Y"
    return gettext("%(date)s is not a working day — keep it?") % {"date": capfirst(said_date(day, fmt))}


class NonWorkingDayForm(forms.Form):
    """A form whose date (``non_working_day_field``) may fall on a weekend or a holiday only when
    the person says so: the box "keep this date" is asked for then, and only then.

    The services take such a date (staff may keep a Saturday on purpose); the form asks, so that
    a slip of the date picker is not promised to a customer. The box is always on the form, next
    to the date, so that a preview asking the question can be answered where it is shown."""

    non_working_day_field = "new_date"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[KEEP_NON_WORKING_DAY] = forms.BooleanField(
            label=_("Keep this date even though it is not a working day"),
            required=False,
            help_text=_("Only needed for a weekend or a holiday."),
        )
        names = [name for name in self.fields if name != KEEP_NON_WORKING_DAY]
        after = names.index(self.non_working_day_field) + 1
        self.order_fields([*names[:after], KEEP_NON_WORKING_DAY, *names[after:]])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day = data.get(self.non_working_day_field)
        if isinstance(day, date) and not is_business_day(day) and not data.get(KEEP_NON_WORKING_DAY):
            self.add_error(
                self.non_working_day_field, ValidationError(non_working_day_question(day), code="non_working_day")
            )
            self.add_error(
                KEEP_NON_WORKING_DAY,
                ValidationError(_("Tick the box to keep it, or choose a working day."), code="non_working_day"),
            )
        return data
