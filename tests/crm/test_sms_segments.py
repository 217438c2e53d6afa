"""crm.sms_segments: a text message's encoding and segments as the network counts them, and fit()
shortening a text to a number of segments with its links whole; the {% sms_length %} tag."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.utils import translation

from crm.sms_segments import GSM7, GSM7_BASIC, GSM7_BASIC_TABLE, GSM7_EXTENSION, UCS2, fit, fits, measure

LINK = "https://portal.example.com/portal/s/AQAAAAIAAAABCMwFT4yRDvFdYShQFB1qGELh/"
OTHER_LINK = "https://portal.example.com/portal/unsubscribe/Zm9vYmFy/"


# --- The table ------------------------------------------------------------------------------------


def test_the_table_is_the_gsm_03_38_default_alphabet() -> None:
    assert len(GSM7_BASIC_TABLE) == 128
    assert len(GSM7_BASIC) == 127  # all but the escape to the extension table
    assert GSM7_BASIC_TABLE.index("@") == 0x00
    assert GSM7_BASIC_TABLE.index("Ç") == 0x09
    assert GSM7_BASIC_TABLE.index("É") == 0x1F
    assert GSM7_BASIC_TABLE.index("¤") == 0x24
    assert GSM7_BASIC_TABLE.index("¡") == 0x40
    assert GSM7_BASIC_TABLE.index("§") == 0x5F
    assert GSM7_BASIC_TABLE.index("¿") == 0x60
    assert GSM7_BASIC_TABLE.index("à") == 0x7F
    assert frozenset("\f^{}\\[~]|€") == GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("character", list("éèàùìòÉÇØøÅåÄäÖöÑñÜüßÆæ¿¡§£¥"))
def test_these_accented_letters_are_gsm_7(character: str) -> None:
    assert measure(f"Voilà {character}").encoding == GSM7


@pytest.mark.parametrize("character", [*"êâîôûçëïœÊ«»’…“”—\t", "\u00a0"])
def test_these_are_not(character: str) -> None:
    assert measure(f"Voila {character}").encoding == UCS2


# --- Measuring ------------------------------------------------------------------------------------


def test_no_text_is_no_text_message() -> None:
    length = measure("")
    assert (length.characters, length.units, length.segments, length.remaining) == (0, 0, 0, 160)


@pytest.mark.parametrize(
    ("characters", "segments", "remaining"),
    [(1, 1, 159), (160, 1, 0), (161, 2, 153 * 2 - 161), (306, 2, 0), (307, 3, 152), (459, 3, 0), (460, 4, 152)],
)
def test_plain_text_holds_160_characters_then_153_a_segment(characters: int, segments: int, remaining: int) -> None:
    length = measure("a" * characters)
    assert (length.encoding, length.units, length.segments, length.remaining) == (GSM7, characters, segments, remaining)
    assert length.per_segment == (160 if segments == 1 else 153)


def test_an_extension_character_counts_two_septets() -> None:
    length = measure("Total: 100 €")
    assert (length.characters, length.units, length.encoding) == (12, 13, GSM7)
    assert measure("€" * 80).segments == 1  # 160 septets
    assert measure("€" * 80 + "a").segments == 2


def test_an_extension_character_is_never_split_across_segments() -> None:
    # 152 septets, then € (2): it does not fit in the first segment's 153, so it starts the second.
    length = measure("a" * 152 + "€" + "a" * 10)
    assert length.units == 164
    assert (length.segments, length.remaining) == (2, 153 - 12)
    assert measure("a" * 151 + "€" + "a" * 153).segments == 2  # 153 exactly, then 153
    assert measure("a" * 152 + "€" + "a" * 152).segments == 3  # the € pushed one septet over


def test_french_with_e_acute_and_a_grave_stays_gsm_7() -> None:
    text = "Votre technicien arrivera à 9 h, après l'étude du dossier. Où se garer ? Déjà payé."
    length = measure(text)
    assert (length.encoding, length.units, length.segments) == (GSM7, len(text), 1)


@pytest.mark.parametrize("character", ["ê", "ç", "’", "…"])
def test_one_character_outside_gsm_7_makes_the_message_ucs_2_70_then_67(character: str) -> None:
    assert measure(character + "a" * 69).encoding == UCS2
    assert measure(character + "a" * 69).segments == 1
    assert measure(character + "a" * 70).segments == 2
    assert measure(character + "a" * 133).segments == 2  # 134 = 2 × 67
    assert measure(character + "a" * 134).segments == 3
    assert measure(character + "a" * 69).per_segment == 70
    assert measure(character + "a" * 70).per_segment == 67


def test_an_emoji_counts_two_units_and_is_never_split() -> None:
    length = measure("Merci 👍")
    assert (length.characters, length.units, length.encoding) == (7, 8, UCS2)
    assert measure("👍" * 35).segments == 1  # 70 units
    assert measure("👍" * 35 + "a").segments == 2
    # 66 units, then an emoji (2): it starts the second segment.
    length = measure("a" * 66 + "👍" + "a" * 10)
    assert (length.units, length.segments, length.remaining) == (78, 2, 67 - 12)
    assert measure("a" * 66 + "👍" + "a" * 65).segments == 2  # 66 | 2 + 65 = 67
    assert measure("a" * 66 + "👍" + "a" * 66).segments == 3
    assert measure("a" * 67 + "👍" + "a" * 65).segments == 2  # 67 | 2 + 65 = 67: the pair whole


def test_the_characters_are_what_the_customer_sees() -> None:
    assert measure("é€👍").characters == 3


# --- Fitting --------------------------------------------------------------------------------------

WORDS = "Your installation is confirmed and our team will come with everything needed for the day. "


def test_a_text_that_fits_is_unchanged() -> None:
    text = "  Hello: see " + LINK + " soon  "
    assert fit(text, 1, keep=[LINK]) == text
    assert fit("", 1) == ""


def test_it_keeps_a_link_at_the_end_whole_and_cuts_the_words_before_it() -> None:
    text = WORDS * 5 + LINK
    result = fit(text, 2, keep=[LINK])
    assert measure(result).segments <= 2
    assert result.endswith(" " + LINK)
    words = result.removesuffix(" " + LINK)
    assert words.endswith("...") and not words.endswith(" ...")
    assert text.startswith(words.removesuffix("..."))
    assert text[len(words.removesuffix("..."))] == " "  # cut at a word
    assert measure(result).units > 306 - 20  # and the room is used


def test_it_keeps_a_link_in_the_middle_whole() -> None:
    text = "See your job: " + LINK + " " + WORDS * 5
    result = fit(text, 1, keep=[LINK])
    assert measure(result).segments == 1
    assert result.startswith("See your job: " + LINK + " Your installation")
    assert result.endswith("...")


def test_when_the_words_before_a_link_run_out_the_link_follows() -> None:
    text = WORDS * 5 + LINK + " Thank you for your trust and see you very soon."
    result = fit(text, 2, keep=[LINK])
    assert measure(result).segments <= 2
    assert result.endswith("... " + LINK)  # the words after the link are left out


def test_it_keeps_two_links_whole() -> None:
    text = "Read it: " + LINK + " " + WORDS * 5 + "Stop: " + OTHER_LINK
    result = fit(text, 2, keep=[LINK, OTHER_LINK])
    assert measure(result).segments <= 2
    assert result.startswith("Read it: " + LINK + " Your installation")
    assert result.endswith("... " + OTHER_LINK)
    assert result.count("https://") == 2


def test_a_kept_part_is_never_cut_even_in_the_middle_of_a_word_cut() -> None:
    long_word = "x" * 400
    result = fit(long_word + " " + LINK, 1, keep=[LINK])
    assert result.endswith("... " + LINK)
    assert measure(result).segments == 1


def test_the_ellipsis_is_three_dots_in_gsm_7_and_one_character_in_ucs_2() -> None:
    gsm = fit("Réunion prévue à l'atelier. " * 20, 1)
    assert gsm.endswith("...") and measure(gsm).encoding == GSM7
    ucs2 = fit("Rendez-vous à l’atelier. " * 20, 1)
    assert ucs2.endswith("…") and measure(ucs2).encoding == UCS2
    assert measure(ucs2).segments == 1


def test_the_ellipsis_does_not_keep_ucs_2_when_the_cut_removed_what_needed_it() -> None:
    text = "a" * 150 + " words that end with a typographic apostrophe’s tail"
    result = fit(text, 1)
    assert result == "a" * 150 + " words..."
    assert measure(result).encoding == GSM7


def test_it_cuts_a_ucs_2_text_to_its_segments() -> None:
    text = ("Merci pour votre confiance 🙏 nous revenons vers vous très vite. " * 10) + LINK
    result = fit(text, 3, keep=[LINK])
    length = measure(result)
    assert (length.encoding, length.segments) == (UCS2, 3)
    assert result.endswith("… " + LINK)


def test_when_the_kept_parts_alone_do_not_fit_they_are_returned_whole() -> None:
    long_link = "https://portal.example.com/" + "p" * 200
    text = "Hello " + long_link + " and " + LINK + " bye"
    assert fit(text, 1, keep=[long_link, LINK]) == long_link + " " + LINK


def test_overlapping_kept_parts_are_both_kept() -> None:
    text = "Go " + LINK + " " + WORDS * 5
    result = fit(text, 1, keep=[LINK, LINK[:30], "Go " + LINK[:10]])
    assert result.startswith("Go " + LINK + " ")


def test_fits() -> None:
    assert fits("a" * 306, 2)
    assert not fits("a" * 307, 2)


# --- The template tag ---------------------------------------------------------------------------


def sms_length(text: str, language: str = "en") -> str:
    with translation.override(language):
        return Template("{% load sms %}{% sms_length text %}").render(Context({"text": text})).strip()


def test_the_tag_shows_length_encoding_and_segments() -> None:
    html = sms_length("a" * 142)
    assert html.startswith('<span class="small text-body-secondary" data-sms-segments="1"')
    assert "142 characters · GSM-7 · 1 text message</span>" in html


def test_the_tag_says_why_a_text_is_ucs_2() -> None:
    html = sms_length("ê" * 320)
    assert 'data-sms-segments="5"' in html
    assert "320 characters · UCS-2 (accents or emoji) · 5 text messages</span>" in html


def test_the_tag_counts_one_character_and_no_text() -> None:
    assert "1 character · GSM-7 · 1 text message<" in sms_length("a")
    assert 'data-sms-segments="0"' in sms_length("")
    assert "0 characters" in sms_length("")


def test_the_tag_in_french() -> None:
    html = sms_length("Déjà payé. " * 20 + "€", "fr")
    assert 'data-sms-segments="2"' in html
    text = re.sub(r"<[^>]+>", "", html)
    assert re.match(r"221 \w+ · GSM-7 · 2 ", text), text
    assert "UCS-2" in sms_length("ça marche", "fr")  # "Ça" would be GSM-7: Ç is in the table, ç not


def test_the_tag_counts_the_text_without_showing_it() -> None:
    html = sms_length("<b>hi</b>")
    assert "<b>" not in html and "9 characters" in html
