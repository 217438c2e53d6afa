"""Forms of the CSV import: the file, which column is which, and the go-ahead.

They validate what a person can fix on the page; crm.services.csv_import reads, checks and writes.
"""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm import csv_import
from crm.models import ImportRun


def _helper(submit_label: str, *, form_id: str = "", form_action: str = "") -> FormHelper:
    helper = FormHelper()
    helper.form_method = "post"
    helper.form_id = form_id
    if form_action:
        helper.form_action = form_action
    helper.add_input(Submit("submit", submit_label))
    return helper


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("Comma or semicolon separated, UTF-8 or Windows encoding, at most 5 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # crispy adds enctype="multipart/form-data" for a form with a file field.
        self.helper = _helper(gettext("Upload and check"), form_id="import-upload")

    def clean_file(self) -> UploadedFile:
        file: UploadedFile = self.cleaned_data["file"]
        if file.size is not None and file.size > csv_import.MAX_FILE_BYTES:
            raise forms.ValidationError(
                gettext("The file is %(size)s MB; the limit is %(max)s MB. Split it into smaller files.")
                % {"size": f"{file.size / 1024 / 1024:.1f}", "max": csv_import.MAX_FILE_BYTES // 1024 // 1024}
            )
        return file


class ImportMappingForm(forms.Form):
    """One select per field of ours, offering the file's columns; pre-filled from the header names."""

    def __init__(self, *args: Any, run: ImportRun, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        columns = [("", gettext("— not in the file —"))] + [
            (str(index), csv_import.column_label(run.headers, index)) for index in range(len(run.headers))
        ]
        for field in csv_import.FIELDS:
            self.fields[field.key] = forms.ChoiceField(
                label=str(field.label),
                choices=columns,
                required=False,
                initial=str(run.mapping[field.key]) if field.key in run.mapping else "",
            )
        self.helper = _helper(gettext("Check the rows"), form_id="import-mapping")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mapping = self.mapping
        for field in csv_import.missing_fields(mapping):
            if field.required:
                self.add_error(field.key, gettext("Choose the column that holds this."))
        if "email" not in mapping and "phone" not in mapping:
            self.add_error(None, gettext("Choose a column for the email, the phone, or both."))
        seen: dict[int, str] = {}
        for key, index in mapping.items():
            if index in seen:
                self.add_error(
                    key,
                    gettext("This column is already chosen for “%(field)s”.")
                    % {"field": csv_import.FIELDS_BY_KEY[seen[index]].label},
                )
            else:
                seen[index] = key
        return data

    @property
    def mapping(self) -> dict[str, int]:
        data = getattr(self, "cleaned_data", {})
        return {field.key: int(data[field.key]) for field in csv_import.FIELDS if data.get(field.key)}


class ImportStartForm(forms.Form):
    """The go-ahead; with rows in error, the person must say that only the valid rows go in."""

    valid_only = forms.BooleanField(required=False)

    def __init__(self, *args: Any, run: ImportRun, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run = run
        if run.invalid_rows:
            field = self.fields["valid_only"]
            field.required = True
            field.label = gettext(
                "Import only the rows without errors (%(valid)s), and leave out the rows with errors (%(invalid)s)"
            ) % {"valid": run.valid_rows, "invalid": run.invalid_rows}
            field.error_messages["required"] = gettext("Tick the box to import the rows without errors only.")
            submit = gettext("Import the rows without errors")
        else:
            del self.fields["valid_only"]
            submit = ngettext("Import %(count)s row", "Import %(count)s rows", run.valid_rows) % {
                "count": run.valid_rows
            }
        self.helper = _helper(
            submit, form_id="import-start", form_action=reverse("crm:import_start", args=[run.public_id])
        )
