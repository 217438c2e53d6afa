"""Two-factor sign-in for staff (django-otp): an authenticator app (a TOTP device) and ten backup
codes (one static device whose tokens each work once). Writes about the staff themselves, so no
JobEvent; the pages are crm/views/two_factor.py, who must have it is crm.access.

A code is always checked against the person's own confirmed devices, with the device rows locked,
by the device's own verify_token: django-otp's throttling (each wrong code doubles the wait before
the next try on that device) and its "a code works once" (the TOTP step last used; a backup code
deleted as it is used) apply everywhere. A wrong code is an answer, not an error: the service
returns it rather than raising, so the failure it counted is committed with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.access import two_factor_required
from crm.errors import DomainError

BACKUP_CODES = 10
APP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"
# An authenticator app's code: six digits (TOTPDevice.digits' default); anything else typed is
# tried as a backup code (eight letters and digits, StaticToken.random_token).
APP_CODE_LENGTH = 6
BACKUP_CODE_LENGTH = 8


@dataclass(frozen=True)
class CodeCheck:
    """What a code someone typed did: the device that took it, or none — and then, when too many
    wrong codes came before it, until when no code is tried at all."""

    device: Any = None
    locked_until: datetime | None = None
    # New backup codes, to be shown once (enrolment and "make new backup codes"); only their
    # device keeps them afterwards.
    backup_codes: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.device is not None

    @property
    def used_backup_code(self) -> bool:
        return isinstance(self.device, StaticDevice)


def normalised_code(code: str) -> str:
    """A code as it is stored: without the spaces or dashes someone may type, in lower case
    (backup codes are lower case; app codes are digits)."""
    return "".join(code.split()).replace("-", "").lower()


def is_app_code(code: str) -> bool:
    return len(code) == APP_CODE_LENGTH and code.isascii() and code.isdigit()


def is_backup_code(code: str) -> bool:
    return len(code) == BACKUP_CODE_LENGTH and code.isascii() and code.isalnum()


def _verify(devices: list[Any], code: str) -> CodeCheck:
    """The first of ``devices`` (rows locked by the caller) that takes ``code``; a device still
    waiting after wrong codes is not tried."""
    locked_until = None
    for device in devices:
        allowed, why = device.verify_is_allowed()
        if not allowed:
            locked_until = (why or {}).get("locked_until")
            continue
        if device.verify_token(code):
            return CodeCheck(device=device)
    return CodeCheck(locked_until=locked_until)


def _confirmed_devices(user: User, code: str) -> list[Any]:
    model = TOTPDevice if is_app_code(code) else StaticDevice
    return list(model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk"))


def _new_backup_codes(user: User) -> tuple[str, ...]:
    """Ten new backup codes for ``user``, replacing every earlier one."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes = tuple(StaticToken.random_token() for _number in range(BACKUP_CODES))
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@transaction.atomic
def second_factor_verify(*, user: User, code: str) -> CodeCheck:
    """The code someone gave after their password: from their app, or one of their backup codes
    (which then works no more)."""
    code = normalised_code(code)
    return _verify(_confirmed_devices(user, code), code)


@transaction.atomic
def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """A new authenticator app for ``user``, not yet confirmed (so it signs nobody in): its secret
    is shown as a QR code and as text. An earlier unfinished one is replaced; a confirmed one goes
    on working until the new one is confirmed (a new phone)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)


@dataclass(frozen=True)
class TwoFactorState:
    """Where a person's two-factor sign-in stands (a read, for the pages): their confirmed app, the
    one being set up, how many backup codes are left."""

    app: TOTPDevice | None
    pending: TOTPDevice | None
    backup_codes_left: int
    has_backup_device: bool

    @property
    def enrolled(self) -> bool:
        """A confirmed device of either kind, as django_otp.user_has_device counts them."""
        return self.app is not None or self.has_backup_device


def two_factor_state(user: User) -> TwoFactorState:
    apps = list(TOTPDevice.objects.filter(user=user).order_by("-pk"))
    backup = StaticDevice.objects.filter(user=user, confirmed=True).annotate(left=Count("token_set")).first()
    return TwoFactorState(
        app=next((device for device in apps if device.confirmed), None),
        pending=next((device for device in apps if not device.confirmed), None),
        backup_codes_left=backup.left if backup else 0,
        has_backup_device=backup is not None,
    )


@transaction.atomic
def totp_enrolment_confirm(*, user: User, code: str) -> CodeCheck:
    """The first code of the app being set up: it is confirmed (an earlier app of ``user`` stops
    working) and ten new backup codes replace any earlier ones. Without a device being set up,
    a DomainError."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        raise DomainError(_("Start setting up two-factor sign-in first."))
    code = normalised_code(code)
    check = _verify([device], code) if is_app_code(code) else CodeCheck()
    if not check.accepted:
        return check
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return CodeCheck(device=device, backup_codes=_new_backup_codes(user))


@transaction.atomic
def backup_codes_replace(*, user: User, code: str) -> CodeCheck:
    """Ten new backup codes for ``user``, given a current code (app or backup); the old ones stop
    working."""
    code = normalised_code(code)
    check = _verify(_confirmed_devices(user, code), code)
    if not check.accepted:
        return check
    return CodeCheck(device=check.device, backup_codes=_new_backup_codes(user))


@transaction.atomic
def two_factor_turn_off(*, user: User, code: str) -> CodeCheck:
    """Two-factor sign-in off for ``user``, given a current code (app or backup): their app and
    backup codes are deleted. Refused (DomainError) to someone STAFF_2FA_REQUIRED applies to."""
    if two_factor_required(user):
        raise DomainError(
            _(
                "Your role needs two-factor sign-in, so it cannot be turned off. To move it to a new "
                "phone, set up the new phone instead."
            )
        )
    code = normalised_code(code)
    check = _verify(_confirmed_devices(user, code), code)
    if check.accepted:
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    return check
