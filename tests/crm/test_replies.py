"""crm.replies: keep what the customer wrote, drop the history their mail client quoted.

Each case is a reply as a real client lays it out: Gmail and Apple Mail ("On … wrote:", sometimes
wrapped over two lines), French clients ("Le … a écrit :"), Outlook ("-----Original Message-----",
or a rule and a "From:" block), "> " quoting and a "-- " signature.
"""

from __future__ import annotations

import pytest

from crm.replies import html_to_text, strip_quoted

QUOTED = "> Hello Marie,\n> Your job J-2026-0001 has moved on: Proposal sent.\n"


def test_it_keeps_a_reply_without_history_as_it_is() -> None:
    assert strip_quoted("Thursday works for us.\n\nMarie") == "Thursday works for us.\n\nMarie"


def test_it_drops_the_history_under_an_english_header() -> None:
    reply = (
        "Thursday works for us.\n"
        "\n"
        "On Mon, 2 Mar 2026 at 10:00, Brightside Installations <care@reply.example.com> wrote:\n" + QUOTED
    )

    assert strip_quoted(reply) == "Thursday works for us."


def test_it_drops_the_history_under_an_english_header_wrapped_over_two_lines() -> None:
    reply = (
        "Thursday works for us.\n"
        "\n"
        "On Mon, 2 Mar 2026 at 10:00, Brightside Installations <\n"
        "care@reply.example.com> wrote:\n"
        "\n"
        "Hello Marie, your job has moved on.\n"
    )

    assert strip_quoted(reply) == "Thursday works for us."


@pytest.mark.parametrize(
    "header",
    [
        "Le lun. 2 mars 2026 à 10:00, Brightside Installations <care@reply.example.com> a écrit :",
        # French typography puts a no-break space before the colon.
        "Le lun. 2 mars 2026 à 10:00, Brightside Installations <care@reply.example.com> a écrit\u00a0:",
        "Le 2 mars 2026 à 10:00, Bob Durand a écrit:",
    ],
)
def test_it_drops_the_history_under_a_french_header(header: str) -> None:
    reply = f"Jeudi nous convient.\n\n{header}\n" + QUOTED

    assert strip_quoted(reply) == "Jeudi nous convient."


def test_it_drops_the_history_under_a_french_header_wrapped_over_two_lines() -> None:
    reply = (
        "Jeudi nous convient.\n\nLe lun. 2 mars 2026 à 10:00, Brightside Installations\n<care@x.example> a écrit :\n"
    )

    assert strip_quoted(reply) == "Jeudi nous convient."


def test_it_drops_an_outlook_original_message_block() -> None:
    reply = (
        "Thursday works for us.\r\n"
        "\r\n"
        "-----Original Message-----\r\n"
        "From: Brightside Installations <care@reply.example.com>\r\n"
        "Sent: Monday, March 2, 2026 10:00 AM\r\n"
        "To: Marie Dupont <marie@example.com>\r\n"
        "Subject: Proposal sent - your job J-2026-0001\r\n"
        "\r\n"
        "Hello Marie,\r\n"
    )

    assert strip_quoted(reply) == "Thursday works for us."


@pytest.mark.parametrize(
    "block",
    [
        # Outlook on the web and newer desktop Outlook: a rule, then the header block.
        "________________________________\nFrom: Brightside Installations <care@reply.example.com>\nSent: 2 March",
        # Some clients only leave the header block.
        "From: Brightside Installations <care@reply.example.com>\nSent: Monday, March 2, 2026 10:00",
        # French Outlook.
        "De : Brightside Installations <care@reply.example.com>\nEnvoyé : lundi 2 mars 2026 10:00",
        "-----Message d'origine-----\nDe : Brightside Installations",
    ],
)
def test_it_drops_an_outlook_from_block(block: str) -> None:
    reply = f"Thursday works for us.\n\n{block}\nHello Marie,\nYour job has moved on.\n"

    assert strip_quoted(reply) == "Thursday works for us."


def test_it_drops_quoted_lines_and_keeps_answers_written_between_them() -> None:
    reply = (
        "> When can the installer come?\n"
        "Thursday morning.\n"
        ">Is there parking?\n"
        "  > (indented quote)\n"
        "Yes, in front of the house.\n"
    )

    assert strip_quoted(reply) == "Thursday morning.\nYes, in front of the house."


def test_it_drops_the_signature() -> None:
    reply = "Thursday works for us.\n\n-- \nMarie Dupont\n06 12 34 56 78\n"

    assert strip_quoted(reply) == "Thursday works for us."


def test_it_keeps_a_dash_line_that_is_not_a_signature_delimiter() -> None:
    reply = "Options:\n- Thursday\n--\n- Friday"

    assert strip_quoted(reply) == reply


def test_it_stops_at_the_first_marker_whichever_it_is() -> None:
    reply = (
        "Thursday works for us.\n"
        "-- \n"
        "Marie\n"
        "On Mon, 2 Mar 2026 at 10:00, Brightside <care@reply.example.com> wrote:\n"
        "> Hello\n"
    )

    assert strip_quoted(reply) == "Thursday works for us."


def test_it_keeps_a_line_starting_with_on_right_above_the_header() -> None:
    reply = (
        "Thursday is fine.\n"
        "On second thought, Friday is better.\n"
        "On Mon, 2 Mar 2026 at 10:00, Bob Durand <bob@example.com> wrote:\n"
        "> Hello Marie\n"
    )

    assert strip_quoted(reply) == "Thursday is fine.\nOn second thought, Friday is better."


def test_it_reads_text_out_of_an_html_only_reply() -> None:
    markup = "<div>Thursday works &amp; suits us.<br>Marie</div><p>Thanks</p>"

    assert html_to_text(markup).split("\n")[:3] == ["Thursday works & suits us.", "Marie", "Thanks"]
