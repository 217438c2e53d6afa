"""crm.forms.fields: ids, search text and days read from what people type or a page carries."""

from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from crm.forms.fields import (
    IdField,
    ModelChoiceField,
    ModelMultipleChoiceField,
    check_day,
    search_text,
)
from crm.ids import id_from_input, max_id
from crm.models import Contact, Customer, Pipeline

INT_MAX = 2**31 - 1  # PostgreSQL integer: Django's own tables (auth_user)
BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint: ours (BigAutoField)


def test_it_knows_each_tables_range() -> None:
    assert max_id(User) == INT_MAX
    assert max_id(Pipeline) == BIGINT_MAX
    assert max_id(Contact) == BIGINT_MAX


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (" 42 ", 42),
        (42, 42),
        ("007", 7),
        (str(BIGINT_MAX), BIGINT_MAX),
        (str(BIGINT_MAX + 1), None),
        ("99999999999999999999999", None),
        ("1" * 5000, None),  # int() would refuse it, slowly
        ("0", None),
        ("-1", None),
        (-1, None),
        ("²", None),
        ("٣", None),  # an Arabic-Indic three: a digit, not an ASCII one
        ("1.5", None),
        ("1e3", None),
        ("", None),
        (None, None),
        (True, None),
        ("mine", None),
    ],
)
def test_it_reads_an_id_strictly(value: object, expected: int | None) -> None:
    assert id_from_input(value, Pipeline) == expected


def test_it_bounds_a_user_id_to_postgresqls_integer() -> None:
    assert id_from_input(str(INT_MAX), User) == INT_MAX
    assert id_from_input(str(INT_MAX + 1), User) is None


@pytest.mark.django_db
def test_it_takes_a_row_as_its_own_id(customer: Customer) -> None:
    assert id_from_input(customer, Customer) == customer.pk


@pytest.mark.parametrize("value", ["99999999999999999999999", str(INT_MAX + 1), "²", "0"])
def test_an_id_field_refuses_what_cannot_be_a_row(value: str) -> None:
    field = IdField(model=User, required=False)
    with pytest.raises(ValidationError):
        field.clean(value)


def test_an_id_field_reads_an_id() -> None:
    field = IdField(model=User, required=False)
    assert field.clean("12") == 12
    assert field.clean("") is None


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["99999999999999999999999", "²", "-1"])
def test_a_choice_field_refuses_an_id_before_any_query(
    value: str, customer: Customer, django_assert_num_queries
) -> None:
    field = ModelChoiceField(queryset=Customer.objects.all())
    with django_assert_num_queries(0), pytest.raises(ValidationError) as error:
        field.clean(value)
    assert error.value.code == "invalid_choice"


@pytest.mark.django_db
def test_a_choice_field_still_finds_its_row(customer: Customer) -> None:
    assert ModelChoiceField(queryset=Customer.objects.all()).clean(str(customer.pk)) == customer


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["99999999999999999999999", "²"])
def test_a_multiple_choice_field_refuses_an_id_before_any_query(
    value: str, contact: Contact, django_assert_num_queries
) -> None:
    field = ModelMultipleChoiceField(queryset=Contact.objects.all())
    with django_assert_num_queries(0), pytest.raises(ValidationError) as error:
        field.clean([str(contact.pk), value])
    assert error.value.messages == [f"“{value}” is not a valid value."]


@pytest.mark.django_db
def test_a_multiple_choice_field_still_finds_its_rows(contact: Contact) -> None:
    assert list(ModelMultipleChoiceField(queryset=Contact.objects.all()).clean([str(contact.pk)])) == [contact]


# --- Days ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2000, 1, 1), date(2026, 3, 2), date(2031, 3, 2)])
def test_a_day_within_reach_is_kept(day: date) -> None:
    assert check_day(day, latest=date(2031, 3, 2)) == day


@pytest.mark.parametrize(
    ("day", "code", "message"),
    [
        (date(1, 1, 1), "too_early", "Choose a date on or after Sat 1 Jan 2000."),
        (date(1999, 12, 31), "too_early", "Choose a date on or after Sat 1 Jan 2000."),
        (date(2031, 3, 3), "too_late", "Choose a date no later than Sun 2 Mar 2031."),
        (date.max, "too_late", "Choose a date no later than Sun 2 Mar 2031."),
    ],
)
def test_a_day_out_of_reach_is_explained(day: date, code: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        check_day(day, latest=date(2031, 3, 2))
    assert error.value.code == code
    assert error.value.messages == [message]


def test_the_furthest_day_is_five_years_from_today(time_machine) -> None:
    time_machine.move_to("2026-03-02 10:00:00+01:00", tick=False)
    assert check_day(date(2031, 3, 2)) == date(2031, 3, 2)
    with pytest.raises(ValidationError):
        check_day(date(2031, 3, 3))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Dupont ", "Dupont"),
        ("Du\x00pont\x00", "Dupont"),
        ("\x00", ""),
        ("Dupont \ud800", "Dupont \ufffd"),  # half a UTF-16 pair, as a JSON body's "\ud800" decodes to
        (None, ""),
        ("x" * 500, "x" * 100),
    ],
)
def test_it_reads_search_text_as_typed_without_what_no_database_stores(value: object, expected: str) -> None:
    assert search_text(value) == expected
