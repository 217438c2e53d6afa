"""crm.phones: the one rule a phone number follows (form, services and CSV import share it)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from crm.phones import is_dialable, validate_phone


@pytest.mark.parametrize(
    "phone",
    [
        "+33 6 12 34 56 78",
        "+33612345678",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "030/1234567",  # a slash after the area code, as written in Germany
        "(514) 555-0199",
        "+1 (514) 555-0199",
        "123456",  # six digits: the shortest
        "+123456789012345",  # fifteen: the longest E.164 allows
        "  +33 6 12 34 56 78  ",
    ],
)
def test_it_accepts_a_number_people_can_dial(phone: str) -> None:
    assert is_dialable(phone)
    validate_phone(phone)


@pytest.mark.parametrize(
    "phone",
    [
        "call me maybe",
        "06 12 34 56 7a",
        "12345",  # five digits
        "+1234567890123456",  # sixteen
        "33+ 6 12 34 56 78",  # a + that is not in front
        "++33 6 12 34 56 78",
        "+33 6 12 34 56 78 ext. 12",
        "０６１２３４５６７８",  # full-width digits: not ASCII
        "06 12 34 56 78²",
        "+",
        "-- -- --",
    ],
)
def test_it_refuses_what_cannot_be_dialled(phone: str) -> None:
    assert not is_dialable(phone)
    with pytest.raises(ValidationError) as error:
        validate_phone(phone)
    assert error.value.messages == [
        "Enter a phone number that can be dialled: 6 to 15 digits, with an optional + in front; "
        "spaces, dots, dashes, slashes and brackets are fine."
    ]


@pytest.mark.parametrize("phone", ["", "   "])
def test_a_phone_is_optional(phone: str) -> None:
    validate_phone(phone)


def test_digits_are_what_numbers_are_compared_on() -> None:
    from crm.phones import digits

    assert digits("+33 6 12 34 56 78") == digits("0033-612-345-678".removeprefix("00")) == "33612345678"
    assert digits("٠٦١٢") == ""  # other scripts' digits are not dialled
