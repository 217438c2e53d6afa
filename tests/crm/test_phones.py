"""crm.phones: every number read with libphonenumber and stored in E.164 (a number without its
country code read as one of PHONE_DEFAULT_REGION), texts only to mobiles, numbers shown as their
reader expects; migration 0019 converting the numbers on record, and what it could not read listed
(the phones_unparsed command, the Contact admin's filter)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import translation

from crm import phones
from crm.models import Contact, Customer, StaffProfile

INVALID = (
    "Enter a valid phone number, e.g. 06 12 34 56 78 or +33 6 12 34 56 78. "
    "A number without a country code is read as a number in France."
)


@pytest.fixture(autouse=True)
def _france(settings) -> None:
    settings.PHONE_DEFAULT_REGION = "FR"


# --- Reading what people type --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        # French, however it is written: national, international, with the 00 prefix.
        ("06 12 34 56 78", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("  06 12 34 56 78  ", "+33612345678"),
        ("06\u00a012\u00a034\u00a056\u00a078", "+33612345678"),  # pasted, with no-break spaces
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("+33612345678", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("07 98 76 54 32", "+33798765432"),
        ("01 42 68 53 00", "+33142685300"),  # a Paris landline
        # Canadian and US numbers, with their country code.
        ("+1 514 555 0123", "+15145550123"),
        ("+1 (514) 555-0142", "+15145550142"),
        ("+1 438 555 0199", "+14385550199"),
        ("+1 212 555 0123", "+12125550123"),
        ("+1 650-253-0000", "+16502530000"),
        # British: a mobile and a London landline.
        ("+44 7400 123456", "+447400123456"),
        ("0044 7911 123456", "+447911123456"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_a_number_is_stored_in_e164(typed: str, e164: str) -> None:
    assert phones.parse(typed) is not None
    assert phones.to_e164(typed) == e164
    assert phones.e164_or_none(typed) == e164
    assert phones.is_e164(e164)


@pytest.mark.parametrize(
    "typed",
    [
        "abc",
        "123",
        "+999 1234",  # no such country code
        "06 12 3",  # too short
        "06 12 34 56 78 9",  # too long
        "+44 7700 900123",  # kept for drama: no number anybody has
        "+33 6 39 98 12 34",  # the same in France
        "call me on 06 12 34 56 78",  # words around it would be dropped from what is stored
        "+33 6 12 34 56 78 ext. 12",  # E.164 has no room for an extension
        "+33 6 12 34 56 78 x12",
        "06 12 34 56 78²",
        "+",
        "-- -- --",
    ],
)
def test_what_is_not_a_valid_number_is_refused_with_what_to_type(typed: str) -> None:
    assert phones.parse(typed) is None
    assert phones.e164_or_none(typed) is None
    with pytest.raises(ValidationError) as error:
        phones.to_e164(typed)
    assert error.value.code == "invalid_phone"
    assert error.value.messages == [INVALID]


@pytest.mark.parametrize("typed", ["", "   "])
def test_a_phone_is_optional(typed: str) -> None:
    assert phones.to_e164(typed) == ""
    assert phones.e164_or_none(typed) is None


def test_a_number_without_its_country_code_is_read_in_the_default_region(settings) -> None:
    settings.PHONE_DEFAULT_REGION = "CA"
    assert phones.to_e164("(514) 555-0123") == "+15145550123"
    assert phones.to_e164("+33 6 12 34 56 78") == "+33612345678"  # a country code says it all
    assert phones.e164_or_none("06 12 34 56 78") is None  # no Canadian number
    settings.PHONE_DEFAULT_REGION = "GB"
    assert phones.to_e164("07400 123456") == "+447400123456"
    with pytest.raises(ValidationError) as error:
        phones.to_e164("12")
    assert error.value.messages == [
        "Enter a valid phone number, e.g. 07400 123456 or +44 7400 123456. "
        "A number without a country code is read as a number in United Kingdom."
    ]


def test_the_country_is_named_in_the_readers_language(settings) -> None:
    assert phones.region_name("FR") == "France"
    with translation.override("fr"):
        assert phones.region_name("GB") == "Royaume-Uni"
        assert phones.region_name("CA") == "Canada"
    with translation.override("en"):
        assert phones.region_name("GB") == "United Kingdom"
        assert phones.region_name("US") == "United States"
    settings.PHONE_DEFAULT_REGION = "BE"
    assert phones.region_name() == "Belgium"


# --- What a stored number can do, and how it is shown --------------------------------------------


@pytest.mark.parametrize(
    ("number", "textable"),
    [
        ("+33612345678", True),  # French mobile
        ("+33798765432", True),
        ("+447400123456", True),  # British mobile
        ("+15145550142", True),  # North America: "fixed line or mobile", the plan does not say
        ("+12125550123", True),
        ("+33142685300", False),  # French landline
        ("+442079460958", False),  # London landline
        ("+33800123456", False),  # toll-free
        ("06 12 3", False),  # kept as typed before E.164: not a number
        ("", False),
    ],
)
def test_only_a_mobile_number_is_offered_texts(number: str, textable: bool) -> None:
    assert phones.can_text(number) is textable


@pytest.mark.parametrize(
    ("number", "shown", "international"),
    [
        ("+33612345678", "06 12 34 56 78", "+33 6 12 34 56 78"),  # of the default region: national
        ("+33142685300", "01 42 68 53 00", "+33 1 42 68 53 00"),
        ("+447400123456", "+44 7400 123456", "+44 7400 123456"),  # any other: international
        ("+15145550142", "+1 514-555-0142", "+1 514-555-0142"),
        ("06 12 3", "06 12 3", "06 12 3"),  # not a number: as it was typed
        ("+44 7700 900123", "+44 7700 900123", "+44 7700 900123"),
    ],
)
def test_a_number_is_shown_as_its_reader_expects(number: str, shown: str, international: str) -> None:
    assert phones.display(number) == shown
    assert phones.display(number, international=True) == international


def test_in_another_default_region_the_national_form_is_that_regions(settings) -> None:
    settings.PHONE_DEFAULT_REGION = "GB"
    assert phones.display("+447400123456") == "07400 123456"
    assert phones.display("+33612345678") == "+33 6 12 34 56 78"


def test_the_template_filter_shows_a_number_and_the_tel_link_dials_it() -> None:
    template = Template(
        '{% load crm_tags %}<a href="{{ n|tel }}">{{ n|phone }}</a> {{ n|phone:"international" }} [{{ blank|phone }}]'
    )
    page = template.render(Context({"n": "+33612345678", "blank": ""}))
    assert page == '<a href="tel:+33612345678">06 12 34 56 78</a> +33 6 12 34 56 78 []'


def test_the_search_still_reads_numbers_by_their_digits() -> None:
    assert phones.digits("+33 6 12 34 56 78") == "33612345678"
    assert phones.search_key("06 12 34 56 78") == phones.search_key("+33612345678") == "612345678"


# --- Migration 0019: the numbers on record in E.164, the others kept and listed ------------------

MIGRATION = ("crm", "0019_phones_e164")

CONTACT_NUMBERS = {
    # as typed before → as stored after
    "Paul": ("06 12 34 56 78", "+33612345678"),
    "Marie": ("+33 6.98.76.54.32", "+33698765432"),
    "Jean": ("0033 1 42 68 53 00", "+33142685300"),
    "Luc": ("+1 (514) 555-0142", "+15145550142"),
    "John": ("+44 7400 123456", "+447400123456"),
    "Zoé": ("+33612345679", "+33612345679"),  # already E.164
    # not understood: kept exactly as typed
    "Drama": ("+44 7700 900123", "+44 7700 900123"),
    "Short": ("06 12 3", "06 12 3"),
    "Words": ("call me on 06 12 34 56 78", "call me on 06 12 34 56 78"),
    "Extension": ("+33 1 42 68 53 00 poste 12", "+33 1 42 68 53 00 poste 12"),
    "Email only": ("", ""),
}
UNPARSED = ("Drama", "Short", "Words", "Extension")


def migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrated(transactional_db) -> dict[str, int]:
    """The numbers above typed before migration 0019, then migrated: the contacts' ids by name."""
    graph = MigrationExecutor(connection).loader.graph
    [before] = graph.node_map[MIGRATION].parents
    old = migrate([before.key])
    try:
        User = old.get_model("auth", "User")
        customer = old.get_model("crm", "Customer").objects.create(name="Dupont household")
        ids = {
            name: old.get_model("crm", "Contact")
            .objects.create(customer=customer, name=name, email=f"{len(typed)}@example.com", phone=typed)
            .pk
            for name, (typed, _stored) in CONTACT_NUMBERS.items()
        }
        profile = old.get_model("crm", "StaffProfile")
        ids["bob"] = profile.objects.create(user=User.objects.create(username="bob"), phone="+33 1 99 00 12 02").pk
        ids["eve"] = profile.objects.create(user=User.objects.create(username="eve"), phone="poste 12").pk
        migrate([MIGRATION])
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    return ids


def test_the_migration_stores_what_it_reads_in_e164_and_keeps_the_rest_as_typed(migrated) -> None:
    for name, (_typed, stored) in CONTACT_NUMBERS.items():
        assert Contact.objects.get(pk=migrated[name]).phone == stored, name
    assert Contact.objects.get(pk=migrated["Paul"]).phone_digits == "33612345678"  # the database's digits follow
    assert StaffProfile.objects.get(pk=migrated["bob"]).phone == "+33199001202"
    assert StaffProfile.objects.get(pk=migrated["eve"]).phone == "poste 12"


def test_reversing_the_migration_changes_nothing(migrated) -> None:
    graph = MigrationExecutor(connection).loader.graph
    [before] = graph.node_map[MIGRATION].parents
    try:
        old = migrate([before.key])
        assert old.get_model("crm", "Contact").objects.get(pk=migrated["Paul"]).phone == "+33612345678"
        assert old.get_model("crm", "Contact").objects.get(pk=migrated["Short"]).phone == "06 12 3"
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_the_command_lists_every_number_not_understood(migrated) -> None:
    out = StringIO()
    call_command("phones_unparsed", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "kind\tid\tname\tcustomer\tnumber as stored"
    expected = [
        f"contact\t{migrated[name]}\t{name}\tDupont household\t{CONTACT_NUMBERS[name][0]!r}" for name in UNPARSED
    ]
    assert lines[1:-1] == [*expected, f"staff\t{migrated['eve']}\teve\t—\t'poste 12'"]
    assert lines[-1] == "5 numbers not understood: 4 of contacts, 1 of staff."
    quiet = StringIO()
    call_command("phones_unparsed", stdout=quiet, verbosity=0)
    assert quiet.getvalue() == "5 numbers not understood: 4 of contacts, 1 of staff.\n"


def test_the_command_says_when_every_number_is_understood(db) -> None:
    out = StringIO()
    call_command("phones_unparsed", stdout=out)
    assert out.getvalue() == "0 numbers not understood: 0 of contacts, 0 of staff.\n"


def test_the_admin_filters_contacts_by_what_their_number_is(migrated, client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    changelist = reverse("admin:crm_contact_changelist")

    def listed(kind: str) -> set[str]:
        response = client.get(changelist, {"phone_number": kind})
        assert response.status_code == 200
        return {contact.name for contact in response.context["cl"].result_list}

    assert listed("unparsed") == set(UNPARSED)
    assert listed("mobile") == {"Paul", "Marie", "Luc", "John", "Zoé"}
    assert listed("landline") == {"Jean"}
    page = client.get(changelist).content.decode()
    assert all(choice in page for choice in ("?phone_number=unparsed", "not understood", "mobile", "landline"))
    assert "06 12 34 56 78" in page  # the list shows numbers as people read them


# --- Where a number is typed ---------------------------------------------------------------------


@pytest.fixture
def root(client: Client, superuser: User) -> Client:
    client.force_login(superuser)
    return client


def test_a_staff_members_direct_phone_is_stored_in_e164(root: Client, bob: User) -> None:
    profile = StaffProfile.objects.create(user=bob, phone="+33199001202", job_title="Project manager")
    change = reverse("admin:crm_staffprofile_change", args=[profile.pk])
    page = root.get(change)
    assert page.context["adminform"].form["phone"].value() == "01 99 00 12 02"
    data = {"job_title": "Project manager", "language": "", "goes_on_visits": "on"}
    response = root.post(change, {**data, "phone": "01 99 00 12 03"})
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.phone == "+33199001203"
    response = root.post(change, {**data, "phone": "poste 12"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["phone"] == [INVALID]


def test_the_contact_admin_stores_e164_and_refuses_texts_to_a_landline(root: Client, customer: Customer) -> None:
    contact = Contact.objects.create(customer=customer, name="Paul", email="paul@example.com", phone="+33142685300")
    Contact.objects.filter(pk=contact.pk).update(sms_consent_at="2026-03-02T10:00Z", sms_consent_source="form")
    change = reverse("admin:crm_contact_change", args=[contact.pk])
    data = {
        "customer": customer.pk,
        "name": "Paul",
        "email": "paul@example.com",
        "language": "fr",
        "time_zone": "Europe/Paris",
    }
    response = root.post(change, {**data, "phone": "01 42 68 53 00", "preferred_channel": "sms"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["preferred_channel"] == [
        "01 42 68 53 00 cannot receive text messages: it is not a mobile number."
    ]
    response = root.post(change, {**data, "phone": "06 12 34 56 78", "preferred_channel": "sms"})
    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.phone, contact.preferred_channel) == ("+33612345678", "sms")


def test_the_contact_admin_finds_a_number_however_it_is_typed(root: Client, customer: Customer) -> None:
    Contact.objects.create(customer=customer, name="Paul", phone="+33612345678", preferred_channel="phone")
    Contact.objects.create(customer=customer, name="Marie", email="marie@example.com")
    changelist = reverse("admin:crm_contact_changelist")
    for typed in ("06 12 34 56 78", "+33 6 12 34 56 78", "0612345678", "Paul"):
        response = root.get(changelist, {"q": typed})
        assert [c.name for c in response.context["cl"].result_list] == ["Paul"], typed
