"""crm.people and crm.text: how a staff member is shown to customers, and phone links."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from crm.models import StaffProfile
from crm.people import person_card, staff_language
from crm.text import tel_href


@pytest.mark.parametrize(
    ("phone", "href"),
    [
        ("+33 1 99 00 12 01", "tel:+33199001201"),
        ("(514) 555-0199", "tel:5145550199"),
        (" +44 7700 900123 ", "tel:+447700900123"),
        ("01.23.45.67.89", "tel:0123456789"),
        ("", ""),
        ("ask at reception", ""),
    ],
)
def test_tel_href_keeps_only_what_can_be_dialled(phone: str, href: str) -> None:
    assert tel_href(phone) == href


@pytest.mark.django_db
def test_a_card_shows_the_profile_and_a_dialable_link() -> None:
    user = User.objects.create_user("dana", "dana@example.com", first_name="Dana", last_name="Léger", is_staff=True)
    StaffProfile.objects.create(user=user, phone="+33 6 12 34 56 78", job_title="Installer")

    card = person_card(User.objects.select_related("staff_profile").get(pk=user.pk))

    assert (card.name, card.first_name, card.initials) == ("Dana Léger", "Dana", "DL")
    assert (card.job_title, card.phone, card.email) == ("Installer", "+33 6 12 34 56 78", "dana@example.com")
    assert card.phone_href == "tel:+33612345678"


@pytest.mark.django_db
def test_a_user_without_a_profile_or_full_name_is_named_by_username() -> None:
    user = User.objects.create_user("eve", "", is_staff=True)

    card = person_card(user)

    assert (card.name, card.first_name, card.initials) == ("eve", "eve", "E")
    assert (card.job_title, card.phone, card.phone_href, card.email) == ("", "", "", "")


@pytest.mark.django_db
def test_staff_are_written_to_in_their_profiles_language_else_the_sites(settings) -> None:
    settings.LANGUAGE_CODE = "en"
    nobody = User.objects.create_user("no-profile", is_staff=True)
    unset = User.objects.create_user("unset", is_staff=True)
    StaffProfile.objects.create(user=unset)
    french = User.objects.create_user("french", is_staff=True)
    StaffProfile.objects.create(user=french, language="fr")

    assert [staff_language(u) for u in (nobody, unset, french)] == ["en", "en", "fr"]
