"""The words a text may consist of to give an instruction instead of a message: the carriers' and
Twilio's standard opt-out, opt-in and help keywords, and their French forms (« ARRET », « STOP SMS »,
« AIDE »). A whole text is a keyword only when it is nothing else: case, accents, spaces and
punctuation aside ("Stop.", "arrêt", " STOP SMS " are STOP; "Please stop by on Tuesday" is not).
No database, no Django: what crm.services.sms_inbound asks."""

from __future__ import annotations

import enum
import re
import unicodedata


class Keyword(enum.Enum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    # "Yes" restarts texts only for a number that opted out (then it is Twilio's START keyword);
    # from anyone else it is an answer to read.
    YES = "yes"


# Twilio's default opt-out, opt-in and help keywords (which it also enforces on its side), with
# the French ones customers use.
KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"),
        Keyword.STOP,
    ),
    **dict.fromkeys(("ARRET", "STOP SMS", "STOPSMS", "DESABONNER", "DESINSCRIRE"), Keyword.STOP),
    **dict.fromkeys(("START", "UNSTOP", "RESTART"), Keyword.START),
    **dict.fromkeys(("YES", "OUI"), Keyword.YES),
    **dict.fromkeys(("HELP", "INFO", "AIDE"), Keyword.HELP),
}

_NOT_LETTERS = re.compile(r"[^A-Z]+")


def normalized(text: str) -> str:
    """The text's letters, upper case, without accents, single spaces between words."""
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    return " ".join(_NOT_LETTERS.sub(" ", letters).split())


def keyword_of(text: str) -> Keyword | None:
    """The keyword the whole text is, or None for a message like any other."""
    if len(text) > 40:
        return None
    return KEYWORDS.get(normalized(text))
