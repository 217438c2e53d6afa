"""Visits on the staff pages: book one (the job page), move or cancel it, and the crew's day on
the "Today" page. The day and times people type are read in the business time zone
(crm.workdays.business_zone), wherever the server is; crm.services.visits checks the rest (the
window has not passed, nobody is in two places) under the job's lock and may still refuse."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from crm.forms.fields import ModelChoiceField, NonWorkingDayForm, check_day
from crm.forms.jobs import DateInput, JobForm, PersonField
from crm.models import Subcontractor, Visit, VisitKind
from crm.services.visits import ETA_CHOICES_MINUTES
from crm.text import person_name
from crm.workdays import business_today, business_zone, opening_hours


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M", **kwargs)


def at_business_time(day: date, at: time) -> datetime:
    """``day`` at ``at`` on the team's clock, as an aware datetime."""
    return datetime.combine(day, at, tzinfo=business_zone())


class KindField(ModelChoiceField):
    def label_from_instance(self, obj: VisitKind) -> str:  # type: ignore[override]
        return obj.label


class WindowForm(NonWorkingDayForm, JobForm):
    """A day and an arrival window: a start, an end (optional: the kind's window), or the whole
    working day. cleaned_data gains ``window_start`` and ``window_end`` (None: the kind's length)."""

    non_working_day_field = "day"
    day = forms.DateField(label=_("Day"), widget=DateInput)
    start = forms.TimeField(label=_("Arrival from"), required=False, widget=TimeInput)
    end = forms.TimeField(
        label=_("Arrival by"),
        required=False,
        widget=TimeInput,
        help_text=_("Optional: the kind of visit's usual window."),
    )
    all_day = forms.BooleanField(
        label=_("All day"),
        required=False,
        help_text=_("No narrower window can be given: the customer is told it is the whole working day."),
    )

    def clean_day(self) -> date:
        day = self.cleaned_data["day"]
        if day < business_today():
            raise forms.ValidationError(_("The day cannot be in the past."))
        return check_day(day)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, start, end = data.get("day"), data.get("start"), data.get("end")
        if data.get("all_day"):
            # The service makes it the working day; the opening hour only names which day.
            start, end = opening_hours()[0], None
        elif start is None:
            self.add_error("start", _("Give the time the window starts, or tick “All day”."))
        elif end is not None and end <= start:
            self.add_error("end", _("The window must end after it starts."))
        if isinstance(day, date) and start is not None and not self.errors:
            data["window_start"] = at_business_time(day, start)
            data["window_end"] = at_business_time(day, end) if end is not None else None
        return data


class SuggestionsInput(forms.TextInput):
    """A text box that suggests values (an HTML datalist) and still takes any typed."""

    template_name = "crm/widgets/suggestions.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.suggestions: Any = ()

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        list_id = f"{context['widget']['attrs'].get('id') or name}-suggestions"
        context["widget"]["attrs"]["list"] = list_id
        context["widget"]["list_id"] = list_id
        context["widget"]["suggestions"] = list(self.suggestions)
        return context


class VisitBookForm(WindowForm):
    """ "Book a visit" on the job page."""

    prefix = "visit_book"
    kind = KindField(queryset=VisitKind.objects.none(), label=_("Kind of visit"))
    installers = PersonField(
        queryset=get_user_model().objects.none(),
        label=_("Who is going"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    subcontractor = forms.CharField(
        label=_("Subcontractor"),
        required=False,
        max_length=200,
        widget=SuggestionsInput,
        help_text=_("One of your subcontractors (kept in the admin), or a name typed."),
    )
    address = forms.CharField(
        label=_("Address"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Left empty: the customer's address."),
    )
    prepare = forms.CharField(
        label=_("What the customer should prepare"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional. Left empty: what the visit's stage asks the customer to prepare, if anything."),
    )
    tell_customer = forms.BooleanField(label=_("Tell the customer"), required=False, initial=True)
    double_booking = forms.BooleanField(
        label=_("Book it even though someone is already busy then"),
        required=False,
        help_text=_("Only when the booking was refused because someone going is elsewhere at that time."),
    )

    field_order = ["kind", "day", "start", "end", "all_day", "installers", "subcontractor", "address", "prepare"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, forms.ModelChoiceField)
        kind.queryset = VisitKind.objects.filter(pipeline=self.job.pipeline_id).order_by("name")
        installers = self.fields["installers"]
        assert isinstance(installers, forms.ModelMultipleChoiceField)
        installers.queryset = visit_staff()
        widget = self.fields["subcontractor"].widget
        assert isinstance(widget, SuggestionsInput)
        widget.suggestions = Subcontractor.objects.filter(is_active=True).values_list("name", flat=True)
        self.initial.setdefault("address", self.job.customer.address)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Empty: the service's defaults (the customer's address, the stage's instructions).
        data["address"] = data.get("address", "").strip() or None
        data["prepare"] = data.get("prepare", "").strip() or None
        return data


class VisitForm(JobForm):
    """A form about one visit of the job; the prefix keeps each visit's forms apart on the page."""

    action = ""

    def __init__(self, *args: Any, visit: Visit, **kwargs: Any) -> None:
        self.visit = visit
        kwargs.setdefault("prefix", f"visit-{visit.pk}-{self.action}")
        super().__init__(*args, job=visit.job, **kwargs)


class VisitMoveForm(WindowForm, VisitForm):
    action = "move"
    reason = forms.CharField(label=_("Why"), max_length=300, help_text=_("Said to the customer when you tell them."))
    tell_customer = forms.BooleanField(label=_("Tell the customer now"), required=False, initial=True)
    # The visit as the person saw it: if someone changed it since, they are told who, not overridden.
    expected_version = forms.IntegerField(min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = business_zone()
        start, end = self.visit.window_start.astimezone(zone), self.visit.window_end.astimezone(zone)
        self.initial.update(
            day=start.date(),
            start=start.time(),
            end=end.time(),
            all_day=self.visit.all_day,
            expected_version=self.visit.version,
        )


class VisitCancelForm(VisitForm):
    action = "cancel"
    reason = forms.CharField(label=_("Why"), max_length=300, help_text=_("Said to the customer when you tell them."))
    tell_customer = forms.BooleanField(label=_("Tell the customer"), required=False, initial=True)
    # As for a move: a colleague's change since the page was shown is not overridden.
    expected_version = forms.IntegerField(min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("expected_version", self.visit.version)


def visit_staff() -> QuerySet[Any]:
    """Who may go on visits: active staff whose profile does not say otherwise."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .exclude(staff_profile__goes_on_visits=False)
        .order_by("first_name", "last_name", "username")
    )


class VisitCrewForm(VisitForm):
    """Who goes: the installers and a subcontractor. The choices come from the page (one query for
    all the visits' forms), else from the database."""

    action = "crew"
    installers = forms.MultipleChoiceField(label=_("Who is going"), required=False, widget=forms.CheckboxSelectMultiple)
    subcontractor = forms.CharField(label=_("Subcontractor"), required=False, max_length=200, widget=SuggestionsInput)
    double_booking = forms.BooleanField(
        label=_("Even though someone is already busy then"),
        required=False,
        help_text=_("Only when the change was refused because someone joining is elsewhere at that time."),
    )
    expected_version = forms.IntegerField(min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        staff: list[Any] | None = None,
        subcontractors: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.staff = {person.pk: person for person in (staff if staff is not None else visit_staff())}
        installers = self.fields["installers"]
        assert isinstance(installers, forms.MultipleChoiceField)
        installers.choices = [(str(pk), person_name(person)) for pk, person in self.staff.items()]
        widget = self.fields["subcontractor"].widget
        assert isinstance(widget, SuggestionsInput)
        widget.suggestions = (
            subcontractors
            if subcontractors is not None
            else Subcontractor.objects.filter(is_active=True).values_list("name", flat=True)
        )
        self.initial.update(
            installers=[str(person.pk) for person in self.visit.installers.all()],
            subcontractor=self.visit.subcontractor,
            expected_version=self.visit.version,
        )

    def clean_installers(self) -> list[Any]:
        return [self.staff[int(pk)] for pk in self.cleaned_data["installers"]]


class VisitRows(JobForm):
    """Not an action: each of the job's visits with its Move and Cancel forms (upcoming ones),
    built from the job page's prefetch (job.all_visits), so that every visit's forms render alike."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        visits = getattr(self.job, "all_visits", None)
        if visits is None:
            visits = list(self.job.visits.select_related("kind").prefetch_related("installers"))
        upcoming = [v for v in visits if v.is_upcoming]
        # Who may go, and the subcontractors: read once for every visit's "Who goes" form.
        staff = list(visit_staff()) if upcoming else []
        names = list(Subcontractor.objects.filter(is_active=True).values_list("name", flat=True)) if upcoming else []
        self.rows = [
            (
                v,
                VisitMoveForm(visit=v),
                VisitCancelForm(visit=v),
                VisitCrewForm(visit=v, staff=staff, subcontractors=names),
            )
            if v.is_upcoming
            else (v, None, None, None)
            for v in visits
        ]


class DayActionForm(forms.Form):
    """One button of the "Today" page: on my way (in how many minutes), running late (arriving at
    what time, and why), arrived, done, couldn't get in (why)."""

    ACTIONS = [
        ("on_the_way", _("On my way")),
        ("running_late", _("Running late")),
        ("arrived", _("Arrived")),
        ("done", _("Done")),
        ("missed", _("Couldn't get in")),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    minutes = forms.TypedChoiceField(
        label=_("In"), choices=[(m, m) for m in ETA_CHOICES_MINUTES], coerce=int, required=False
    )
    at = forms.TimeField(label=_("New arrival time"), required=False, widget=TimeInput)
    reason = forms.CharField(label=_("Why"), required=False, max_length=300)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = data.get("action")
        if action == "on_the_way" and data.get("minutes") in (None, ""):
            self.add_error("minutes", _("Say in how many minutes you will be there."))
        if action == "running_late":
            if data.get("at") is None:
                self.add_error("at", _("Give the time you will be there."))
            else:
                data["at"] = at_business_time(business_today(), data["at"])
        if action in ("running_late", "missed") and not data.get("reason", "").strip():
            self.add_error("reason", _("Say why: the customer will want to know."))
        return data
