"""Files in forms: the field both the portal's "send us photos or a document" (portal.forms) and
the staff's "share a document" use.

Each file is inspected here (crm.uploads), so the form names every file it refuses and why; a form
with any refused file is not valid, and nothing of it is stored (the person sends the others
again, knowing exactly which one failed and why)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from crm.forms.jobs import JobForm
from crm.models import Commitment
from crm.services.files import MAX_TITLE_LENGTH
from crm.services.promises import KEEPABLE_STATES
from crm.uploads import Inspected, UploadRefused, accept_attribute, max_file_bytes, read_upload, types_said


class FilesInput(forms.FileInput):
    allow_multiple_selected = True


class FilesField(forms.Field):
    """Several files from one input (``<input type=file multiple>``): the list of uploads, each
    inspected (a list of Inspected once clean)."""

    widget = FilesInput

    def __init__(self, *, max_files: int, **kwargs: Any) -> None:
        self.max_files = max_files
        super().__init__(**kwargs)

    def to_python(self, data: Any) -> list[UploadedFile]:
        uploads = data if isinstance(data, list | tuple) else [data] if data else []
        return [u for u in uploads if isinstance(u, UploadedFile)]

    def validate(self, value: list[UploadedFile]) -> None:
        if not value and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        if len(value) > self.max_files:
            raise ValidationError(
                _("Send at most %(n)s files at once."), code="max_files", params={"n": self.max_files}
            )

    def clean(self, value: Any) -> list[Inspected]:
        uploads = super().clean(value)
        return inspected(uploads)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        return {**super().widget_attrs(widget), "accept": accept_attribute()}


def inspected(uploads: list[UploadedFile]) -> list[Inspected]:
    """Every upload inspected, or one error naming each refused file and why."""
    kept, refused = [], []
    for upload in uploads:
        try:
            kept.append(read_upload(upload))
        except UploadRefused as refusal:
            refused.append(ValidationError(refusal.message, code="refused"))
    if refused:
        raise ValidationError(refused)
    return kept


def files_help() -> str:
    return str(_("%(types)s, up to %(size)s each.") % {"types": types_said(), "size": filesizeformat(max_file_bytes())})


class DocumentShareForm(JobForm):
    """Staff: put a document in front of the customer, optionally keeping the promise of it."""

    prefix = "document"
    document = FilesField(label=_("Document"), max_files=1, error_messages={"required": _("Choose the file.")})
    title = forms.CharField(
        label=_("Title"),
        max_length=MAX_TITLE_LENGTH,
        required=False,
        help_text=_("What the customer reads, e.g. “Quote for the heat pump”. Empty: the file's name."),
    )
    keeps = forms.ChoiceField(label=_("This keeps the promise"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["document"].help_text = files_help()
        # From the job page's prefetch when there is one (no query of its own).
        commitments = getattr(self.job, "all_commitments", None)
        self.promised = (
            [c for c in commitments if c.kind == Commitment.Kind.DOCUMENT and c.state in KEEPABLE_STATES]
            if commitments is not None
            else list(promised_documents(self.job.pk))
        )
        keeps = self.fields["keeps"]
        assert isinstance(keeps, forms.ChoiceField)
        keeps.choices = [("", _("— no promise —")), *((str(c.pk), c.title) for c in self.promised)]

    def clean_document(self) -> Inspected:
        (document,) = self.cleaned_data["document"]
        return document

    def clean_keeps(self) -> Commitment | None:
        chosen = self.cleaned_data["keeps"]
        return next((c for c in self.promised if str(c.pk) == chosen), None)


def promised_documents(job_id: int) -> QuerySet[Commitment]:
    """The job's promised documents still to deliver (a broken one can still be kept, late)."""
    return Commitment.objects.filter(job_id=job_id, kind=Commitment.Kind.DOCUMENT, state__in=KEEPABLE_STATES).order_by(
        "due_at", "pk"
    )


class DocumentWithdrawForm(forms.Form):
    reason = forms.CharField(
        label=_("Why it is withdrawn"),
        max_length=300,
        help_text=_("The customer reads it on their page, e.g. “Replaced by the new quote”."),
        error_messages={"required": _("Say why it is withdrawn: the customer reads it.")},
    )
