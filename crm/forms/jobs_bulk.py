"""Moving several jobs to one stage from the jobs list: the list's form (which jobs, where to,
what to tell the customers) and the review page's go-ahead (the same, plus the stage each job was
at when the person reviewed it).

They validate what the person chose; crm.services.jobs.jobs_advance checks each job again under
its row lock and may still refuse (shown on the review page).
"""

from __future__ import annotations

import uuid
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Layout, Row, Submit
from django import forms
from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.forms.jobs import StageField
from crm.models import Job, Pipeline, StageTemplate
from crm.services.jobs import BULK_MOVE_MAX

# The service's own limit (one transaction locks every job it moves), checked here first so the
# person is told before anything runs.
MAX_BULK_JOBS = BULK_MOVE_MAX

# The jobs list's filters, carried through the review so the person lands back on the same list.
LIST_PARAMETERS = ("q", "owner", "pipeline", "stage", "status", "late", "sort", "page")


def jobs_list_url(query: str) -> str:
    """The jobs list with the filters of ``query`` (anything else in it is dropped)."""
    given = QueryDict(query)
    kept = QueryDict(mutable=True)
    for name in LIST_PARAMETERS:
        if given.get(name):
            kept[name] = given[name][:100]
    return f"{reverse('crm:jobs')}?{kept.urlencode()}" if kept else reverse("crm:jobs")


def _too_many(count: int) -> str:
    return gettext("You selected %(count)s jobs; at most %(max)s can be moved at once. Narrow the filters.") % {
        "count": count,
        "max": MAX_BULK_JOBS,
    }


class PublicIdsField(forms.Field):
    """Jobs by their public id (never the primary key), in the order given, each once."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        for raw in value or []:
            try:
                ids.append(uuid.UUID(str(raw)))
            except ValueError:
                raise forms.ValidationError(
                    gettext("The selection names a job this page does not know. Reload the list and select again.")
                ) from None
        return list(dict.fromkeys(ids))


class SeenStagesField(forms.Field):
    """``<public id>:<stage id>`` per job: the stage each job was at when the person reviewed the move."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> dict[uuid.UUID, int]:
        seen: dict[uuid.UUID, int] = {}
        for raw in value or []:
            public_id, _sep, stage_id = str(raw).partition(":")
            try:
                seen[uuid.UUID(public_id)] = int(stage_id)
            except ValueError:
                raise forms.ValidationError(
                    gettext("The review names a job this page does not know. Review the move again.")
                ) from None
        return seen

    def validate(self, value: dict[uuid.UUID, int]) -> None:
        if not value:
            raise forms.ValidationError(gettext("Select at least one job."))
        if len(value) > MAX_BULK_JOBS:
            raise forms.ValidationError(_too_many(len(value)))


class _MoveForm(forms.Form):
    helper: FormHelper

    to_stage = StageField(
        queryset=StageTemplate.objects.select_related("pipeline"),
        label=_("Move the selected jobs to"),
        empty_label=_("Choose a stage"),
    )
    note = forms.CharField(
        label=_("Personal note to the customers"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional. Added to the message every contact receives."),
    )
    notify_customer = forms.BooleanField(label=_("Tell the customers"), required=False, initial=True)
    # The list's filters, to go back to the same list afterwards.
    back = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    @property
    def back_url(self) -> str:
        data = getattr(self, "cleaned_data", None)
        query = data.get("back", "") if data is not None else self.data.get("back", "")
        return jobs_list_url(str(query or ""))


class BulkMoveForm(_MoveForm):
    """The jobs list's form: the rows ticked (or every row of the page), the stage, the note."""

    jobs = PublicIdsField(required=False)
    all_on_page = forms.BooleanField(label=_("Select all on this page"), required=False)
    # The rows the page showed, for "select all on this page" without JavaScript.
    on_page = PublicIdsField(required=False)

    def __init__(self, *args: Any, pipeline: Pipeline | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "bulk_%s")  # apart from the filters' ids on the same page
        super().__init__(*args, **kwargs)
        if pipeline is not None:
            to_stage = self.fields["to_stage"]
            assert isinstance(to_stage, forms.ModelChoiceField)
            to_stage.queryset = pipeline.stages.select_related("pipeline").order_by("position")
        self.helper = FormHelper()
        self.helper.form_tag = False  # the list's table and these fields share one <form>
        self.helper.disable_csrf = True  # the template's <form> carries the token
        self.helper.layout = Layout(
            "back",
            Row(
                Column(Field("to_stage", css_class="form-select-sm"), css_class="col-12 col-md-4"),
                Column(Field("note", css_class="form-control-sm"), css_class="col-12 col-md-5"),
                Column("notify_customer", css_class="col-12 col-md-3 pt-md-4"),
            ),
            Submit("review", gettext("Review move"), css_class="btn-sm"),
        )

    @classmethod
    def narrowed(
        cls, *, jobs: list[Job], to_stage: StageTemplate, note: str, notify_customer: bool, back: str
    ) -> BulkMoveForm:
        """The same move for fewer jobs (those that can move), sent back to the review."""
        form = cls(
            initial={
                "jobs": [str(job.public_id) for job in jobs],
                "to_stage": to_stage.pk,
                "note": note,
                "notify_customer": "1" if notify_customer else "",
                "back": back,
            }
        )
        for name in ("to_stage", "note", "notify_customer"):
            form.fields[name].widget = forms.HiddenInput()
        form.helper = FormHelper()
        form.helper.form_action = reverse("crm:jobs_bulk_review")
        form.helper.form_id = "bulk-narrowed"
        form.helper.layout = Layout(
            "jobs",
            "to_stage",
            "note",
            "notify_customer",
            "back",
            Submit(
                "review",
                ngettext(
                    "Leave them out: review the other %(count)s job",
                    "Leave them out: review the other %(count)s jobs",
                    len(jobs),
                )
                % {"count": len(jobs)},
            ),
        )
        return form

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        selected = data.get("on_page" if data.get("all_on_page") else "jobs") or []
        if not (self.has_error("jobs") or self.has_error("on_page")):
            if not selected:
                self.add_error(None, gettext("Select at least one job, or every job on this page."))
            elif len(selected) > MAX_BULK_JOBS:
                self.add_error(None, _too_many(len(selected)))
        data["selected"] = selected
        return data


class BulkConfirmForm(_MoveForm):
    """The review page's go-ahead: everything hidden, as reviewed."""

    seen = SeenStagesField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A hidden "tell the customers" is "1" or empty: BooleanField reads the empty value as False.
        for name in ("to_stage", "note", "notify_customer"):
            self.fields[name].widget = forms.HiddenInput()

    @classmethod
    def for_review(
        cls, *, jobs: list[Job], to_stage: StageTemplate, note: str, notify_customer: bool, back: str
    ) -> BulkConfirmForm:
        form = cls(
            initial={
                "seen": [f"{job.public_id}:{job.current_stage_id}" for job in jobs],
                "to_stage": to_stage.pk,
                "note": note,
                "notify_customer": "1" if notify_customer else "",
                "back": back,
            }
        )
        form.helper = FormHelper()
        form.helper.form_action = reverse("crm:jobs_bulk_move")
        form.helper.form_id = "bulk-confirm"
        form.helper.add_input(
            Submit(
                "move",
                ngettext(
                    "Move %(count)s job to “%(stage)s”",
                    "Move %(count)s jobs to “%(stage)s”",
                    len(jobs),
                )
                % {"count": len(jobs), "stage": to_stage.name},
            )
        )
        return form
