"""Writes about the staff themselves (not about a job, so no JobEvent)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F

from crm.models import StaffProfile


@transaction.atomic
def calendar_link_replace(user: User) -> None:
    """A new private calendar link for ``user``: every older one stops working (the link carries
    the profile's version; the profile may not exist yet, its first link being version 1)."""
    profile, _created = StaffProfile.objects.select_for_update().get_or_create(user=user)
    StaffProfile.objects.filter(pk=profile.pk).update(calendar_version=F("calendar_version") + 1)
