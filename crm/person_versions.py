"""What customers see of a staff member (the owner card on their job page: name, job title,
phone, email) follows their user and profile rows: any save of either moves the version of the
jobs they own (crm.services.versions), so the cached page and the live poll show the new card.
A save of the sign-in time alone (every staff sign-in) changes nothing customers see."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models.signals import post_save
from django.dispatch import receiver

from crm.models import StaffProfile
from crm.services.versions import owner_jobs_touch


@receiver(post_save, sender=User, dispatch_uid="crm.person_versions.user")
def _user_saved(sender: Any, instance: User, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and set(update_fields) <= {"last_login", "password"}):
        return
    owner_jobs_touch(instance.pk)


@receiver(post_save, sender=StaffProfile, dispatch_uid="crm.person_versions.profile")
def _profile_saved(sender: Any, instance: StaffProfile, **kwargs: Any) -> None:
    owner_jobs_touch(instance.user_id)
