"""Staff as others meet them: the card customers see in every message and on the portal, and the
language we write to the staff member in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from crm.text import person_name, tel_href


@dataclass(frozen=True)
class PersonCard:
    """A staff member as the customer sees them (the job's owner, an installer)."""

    name: str
    first_name: str
    initials: str
    job_title: str
    phone: str
    email: str

    @property
    def phone_href(self) -> str:
        return tel_href(self.phone)


def person_card(user: Any) -> PersonCard:
    """``user`` with its staff profile (select_related ``staff_profile`` to save a query); a user
    without a profile has no phone or job title."""
    # A missing one-to-one row raises RelatedObjectDoesNotExist, an AttributeError.
    profile = getattr(user, "staff_profile", None)
    name = person_name(user)
    return PersonCard(
        name=name,
        first_name=getattr(user, "first_name", "") or name,
        initials="".join(part[0] for part in name.split()[:2]).upper(),
        job_title=profile.job_title if profile else "",
        phone=profile.phone if profile else "",
        email=getattr(user, "email", "") or "",
    )


def staff_language(user: Any) -> str:
    """The language to write to a staff member in: their profile's choice, else the site's."""
    profile = getattr(user, "staff_profile", None)
    return (profile.language if profile else "") or settings.LANGUAGE_CODE
