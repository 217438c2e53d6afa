"""API keys: made by a manager (the key shown once, its digest kept), revoked, and the lookup each
API call makes (crm.models.ApiKey)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import DomainError
from crm.models import ApiKey

# last_used_at is written at most this often per key (not one UPDATE per call).
LAST_USED_PRECISION = timedelta(minutes=1)


@transaction.atomic
def api_key_create(*, name: str, owner: User, scopes: Iterable[str], actor: User) -> tuple[ApiKey, str]:
    """A new key acting as ``owner``: (the row, the whole key — shown once, never stored)."""
    name = name.strip()
    if not name:
        raise DomainError(_("Name the key after the system that will use it."))
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in ApiKey.Scope.values]
    if unknown:
        raise DomainError(_("Unknown scope: %(scopes)s.") % {"scopes": ", ".join(unknown)})
    if not chosen:
        raise DomainError(_("Choose at least one scope."))
    if not owner.is_active or not owner.is_staff:
        raise DomainError(_("A key acts as an active staff member."))
    prefix, secret = ApiKey.new_secret()
    key = ApiKey.objects.create(
        name=name, owner=owner, prefix=prefix, digest=ApiKey.digest_of(secret), scopes=chosen, created_by=actor
    )
    return key, secret


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: User) -> ApiKey:
    """The key stops working at once (revoking twice keeps the first time)."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.revoked_by = actor
        key.save(update_fields=["revoked_at", "revoked_by"])
    return key


def api_key_for(secret: str) -> ApiKey | None:
    """The live key ``secret`` is, with its owner; None for anything else (unknown, revoked, an
    owner no longer active or no longer on the staff). Found by its prefix, compared by digest in constant time."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or not all(parts) or len(secret) > 100:
        return None
    prefix = f"{parts[0]}_{parts[1]}"
    key = ApiKey.objects.select_related("owner").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.digest, ApiKey.digest_of(secret)):
        return None
    if key.revoked_at is not None or not (key.owner.is_active and key.owner.is_staff):
        return None
    return key


def api_key_used(key: ApiKey) -> None:
    """Note the call (once a minute at most: a conditional UPDATE, no read)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
