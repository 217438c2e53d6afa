"""The codes of two-factor sign-in: what a person types is checked for its shape here (six digits
from an app, or a backup code); whether it is right is crm.services.two_factor's, which counts the
wrong ones."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.services.two_factor import is_app_code, is_backup_code, normalised_code

# Room for a backup code (eight characters) typed with spaces or dashes.
CODE_MAX_LENGTH = 24


def _code_input(*, app_only: bool) -> forms.TextInput:
    attrs = {
        "autocomplete": "one-time-code",
        "autocapitalize": "off",
        "spellcheck": "false",
        "autofocus": True,
        "class": "font-monospace",
    }
    if app_only:
        # A phone shows the number pad; a backup code has letters, so the other forms do not.
        attrs.update({"inputmode": "numeric", "pattern": "[0-9 ]*"})
    return forms.TextInput(attrs=attrs)


class CodeForm(forms.Form):
    """A code from the authenticator app, or one of the backup codes."""

    code = forms.CharField(
        label=_("Code"),
        max_length=CODE_MAX_LENGTH,
        help_text=_("The 6-digit code your authenticator app shows now, or one of your backup codes."),
        widget=_code_input(app_only=False),
    )

    def __init__(self, *args: Any, autofocus: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not autofocus:
            # Several forms on one page: only the first one takes the focus.
            self.fields["code"].widget.attrs.pop("autofocus", None)

    def clean_code(self) -> str:
        code = normalised_code(self.cleaned_data["code"])
        if not code:
            raise ValidationError(_("Enter a code."), code="required")
        if not (is_app_code(code) or is_backup_code(code)):
            raise ValidationError(
                _("That is not a code: type the 6 digits your app shows, or a backup code of 8 letters and digits."),
                code="shape",
            )
        return code


class AppCodeForm(CodeForm):
    """The first code of the app being set up: only the app's six digits."""

    code = forms.CharField(
        label=_("Code from the app"),
        max_length=CODE_MAX_LENGTH,
        help_text=_("The 6-digit code the app now shows for this account."),
        widget=_code_input(app_only=True),
    )

    def clean_code(self) -> str:
        code = normalised_code(self.cleaned_data["code"])
        if not is_app_code(code):
            raise ValidationError(_("Type the 6 digits the app shows."), code="shape")
        return code
