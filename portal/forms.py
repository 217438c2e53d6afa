"""The portal's forms: what a contact may type, checked before any service is called."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from crm import phones
from crm.forms.files import FilesField, files_help
from crm.ids import parse_public_id
from crm.models import Contact, known_time_zones
from crm.services.files import MAX_NOTE_LENGTH
from crm.services.questions import MAX_QUESTION_LENGTH

# Time zones offered in the list: the "Area/City" ones people recognise (the legacy aliases such
# as "US/Eastern" or "Etc/GMT+5" still validate, they are just not listed).
TIME_ZONE_AREAS = frozenset(
    {"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"}
)


def time_zone_choices(current: str = "") -> list[tuple[str, str]]:
    names = {tz for tz in known_time_zones() if tz.split("/", 1)[0] in TIME_ZONE_AREAS and "/" in tz}
    names |= {"UTC"} | ({current} if current else set())
    return [(name, name.replace("_", " ")) for name in sorted(names)]


class LinkRequestForm(forms.Form):
    """ "Send me a new link": the email address or mobile number our messages reach the person at,
    and the job the expired link was about.

    ``address`` comes out as the email address as typed, or the number in E.164, as numbers are
    stored (``crm.phones``: typed without a country code, a number of PHONE_DEFAULT_REGION); a
    number has no "@", an address always has.
    """

    address = forms.CharField(
        label=_("Your email address or mobile number"),
        max_length=254,
        error_messages={"required": _("Enter the email address or mobile number our messages reach you at.")},
        # Text, not email: a number must be typeable too. "username" is what password managers
        # and phones expect of a field that takes either.
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}),
    )
    # The job the expired link was about; anything else is simply dropped (never an error the
    # person cannot see or fix). A plain Field, not a CharField: a CharField refuses a NUL with an
    # error, which this hidden field could not show.
    job = forms.Field(required=False, widget=forms.HiddenInput)

    def clean_address(self) -> str:
        typed = self.cleaned_data["address"].strip()
        if "@" in typed:
            try:
                validate_email(typed)
            except ValidationError:
                raise ValidationError(_("Enter a full email address, like name@example.com."), code="invalid") from None
            return typed
        number = phones.e164_or_none(typed)
        if number is None:
            raise ValidationError(
                _("Enter a full email address, like name@example.com, or a mobile number, like +33 6 12 34 56 78."),
                code="invalid",
            )
        return number

    def clean_job(self) -> uuid.UUID | None:
        return parse_public_id(self.cleaned_data.get("job"))

    @property
    def identity(self) -> str:
        """What the rate limit counts per person: the address, or the number's digits (so
        "+33 6 12 34 56 78" and "+33612345678" count together)."""
        address: str = self.cleaned_data["address"]
        return address.lower() if "@" in address else phones.digits(address)


class QuestionForm(forms.Form):
    body = forms.CharField(
        label=_("Your question"),
        max_length=MAX_QUESTION_LENGTH,
        strip=True,
        error_messages={
            "required": _("Write your question first."),
            "max_length": _("Please keep your question under %(limit_value)s characters."),
        },
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class UploadForm(forms.Form):
    """The portal's "Send us photos or a document": several files (a phone offers its camera), a
    note."""

    attachments = FilesField(
        label=_("Photos or documents"),
        max_files=settings.FILES_PER_UPLOAD,
        error_messages={"required": _("Choose at least one photo or document.")},
    )
    note = forms.CharField(
        label=_("A note (optional)"),
        required=False,
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"max_length": _("Please keep the note under %(limit_value)s characters.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["attachments"].help_text = files_help()

    @property
    def refused_files(self) -> bool:
        """Some chosen files were refused (each named with why): nothing of this send is kept."""
        return any(e.code == "refused" for e in self.errors.as_data().get("attachments", []))


# The note goes into the question the request opens, after the visit's day and window.
MAX_VISIT_NOTE_LENGTH = 2000


class VisitAnswerForm(forms.Form):
    """ "That works" for a visit: the version of the visit the page showed, so an answer given to
    a time that has changed since is not taken for the new one. Missing or garbled: not checked
    (a hidden field's error is one nobody could see or fix)."""

    version = forms.Field(required=False, widget=forms.HiddenInput)

    def clean_version(self) -> int | None:
        value = self.cleaned_data.get("version")
        try:
            return int(value) if value else None
        except (TypeError, ValueError):
            return None


class AnotherTimeForm(VisitAnswerForm):
    """ "I need another time", with what suits better, if they want to say."""

    note = forms.CharField(
        label=_("What would suit you better? (optional)"),
        required=False,
        max_length=MAX_VISIT_NOTE_LENGTH,
        strip=True,
        error_messages={"max_length": _("Please keep this under %(limit_value)s characters.")},
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ChooseTimeForm(VisitAnswerForm):
    """One of the free times offered (crm.visit_slots): its start, as the page gave it (the service
    checks it is still free)."""

    start = forms.DateTimeField(widget=forms.HiddenInput)


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=_("Language of our messages"), choices=settings.LANGUAGES)
    preferred_channel = forms.ChoiceField(label=_("How should we reach you?"), widget=forms.RadioSelect)
    sms_consent = forms.BooleanField(required=False)
    non_essential = forms.BooleanField(
        required=False,
        label=_("Also send me check-ins, tips and satisfaction surveys"),
        help_text=_("Messages about your jobs (dates, changes, answers) always reach you."),
    )
    time_zone = forms.ChoiceField(
        label=_("Your time zone"), help_text=_("Times on this portal are shown in this time zone.")
    )

    def __init__(self, *args: Any, contact: Contact, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "language": contact.language,
                "preferred_channel": contact.preferred_channel,
                "sms_consent": contact.has_sms_consent,
                "non_essential": contact.opted_out_at is None,
                "time_zone": contact.time_zone,
            },
        )
        super().__init__(*args, **kwargs)
        self.contact = contact
        channels: list[tuple[str, str]] = []
        if contact.email:
            channels.append((Contact.Channel.EMAIL, _("By email, at %(address)s") % {"address": contact.email}))
        number = phones.display(contact.phone)
        # Texts only to a number they can reach (a mobile); a landline is still called.
        textable = phones.can_text(contact.phone)
        if textable:
            channels.append((Contact.Channel.SMS, _("By text message, at %(number)s") % {"number": number}))
        if contact.phone:
            channels.append((Contact.Channel.PHONE, _("By phone call, at %(number)s") % {"number": number}))
        cast(forms.ChoiceField, self.fields["preferred_channel"]).choices = channels
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = time_zone_choices(contact.time_zone)
        if textable:
            self.fields["sms_consent"].label = _("I agree to receive text messages about my jobs at %(number)s.") % {
                "number": number
            }
            self.fields["sms_consent"].help_text = _("You can withdraw this at any time, here.")
        else:
            del self.fields["sms_consent"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("preferred_channel") == Contact.Channel.SMS and not data.get("sms_consent"):
            self.add_error(
                "sms_consent",
                _("Tick this box to get text messages: we only send them once you have agreed."),
            )
        return data


# --- After the job: the survey and the check-in -------------------------------------------------


def _score_field(label: Any, low: int, high: int) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=[(n, str(n)) for n in range(low, high + 1)],
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )


class SurveyForm(forms.Form):
    """The satisfaction survey. Every question may be skipped; the service wants one score."""

    # Query parameters a link may carry to choose a score before the page opens (?product=5):
    # parameter -> (field, lowest, highest).
    PREFILL = {
        "product": ("product_quality", 1, 5),
        "workmanship": ("workmanship", 1, 5),
        "conduct": ("installer_conduct", 1, 5),
        "recommend": ("recommend", 0, 10),
    }

    product_quality = _score_field(_("How satisfied are you with the product?"), 1, 5)
    workmanship = _score_field(_("How satisfied are you with the quality of the work?"), 1, 5)
    installer_conduct = _score_field(_("How satisfied are you with the installer's conduct?"), 1, 5)
    recommend = _score_field(_("How likely are you to recommend us to a friend or colleague?"), 0, 10)
    comment = forms.CharField(
        label=_("Anything you want to tell us?"),
        required=False,
        max_length=5000,
        strip=True,
        error_messages={"max_length": _("Please keep your comment under %(limit_value)s characters.")},
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    @classmethod
    def prefill(cls, query: Any) -> dict[str, int]:
        """Scores chosen by the link (?product=5): only valid ones, anything else ignored."""
        chosen = {}
        for param, (name, low, high) in cls.PREFILL.items():
            value = query.get(param, "")
            if value.isascii() and value.isdigit() and low <= int(value) <= high:
                chosen[name] = int(value)
        return chosen

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scores = ("product_quality", "workmanship", "installer_conduct", "recommend")
        if not self.errors and all(data.get(name) is None for name in scores):
            raise forms.ValidationError(_("Choose at least one score before sending."))
        return data


class CheckInForm(forms.Form):
    answer = forms.ChoiceField(
        choices=[("all_good", _("All good")), ("problem", _("There is a problem"))], widget=forms.HiddenInput
    )
    details = forms.CharField(
        label=_("What is not working? (optional)"),
        required=False,
        max_length=MAX_QUESTION_LENGTH,
        strip=True,
        error_messages={"max_length": _("Please keep it under %(limit_value)s characters.")},
        widget=forms.Textarea(attrs={"rows": 4}),
    )
