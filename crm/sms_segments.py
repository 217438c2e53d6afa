"""How long a text message is as the phone network counts it, and how to make one fit.

A text message travels in segments. In the GSM 03.38 default alphabet (GSM-7) one segment holds
160 septets; a character of the extension table (``^{}\\[~]|€`` and form feed) is an escape and a
septet, so it counts 2. One character outside both tables and the whole message goes in UCS-2
(UTF-16): 70 code units, an emoji (outside the Basic Multilingual Plane) counting 2. A longer
message is split into segments of 153 septets or 67 units (the rest is the header that joins
them), never splitting an escape pair or a surrogate pair: a character that would straddle a
boundary starts the next segment. French is mostly GSM-7 (é è à ù are in the table) but ê, ç,
the typographic apostrophe ’ or the ellipsis … are not: one of them and the message holds less
than half as much.

``measure(text)`` counts; ``fit(text, max_segments, keep=links)`` shortens a text to a number of
segments, its links whole. Pure Python: no Django, no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 default alphabet, by code (row 0x00 to 0x70, 16 a row). 0x1B is the escape to the
# extension table, not a character: it is left out of the set below.
_ESC = "\x1b"
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00
    "Δ_ΦΓΛΩΠΨΣΘΞ" + _ESC + "ÆæßÉ"  # 0x10
    " !\"#¤%&'()*+,-./"  # 0x20
    "0123456789:;<=>?"  # 0x30
    "¡ABCDEFGHIJKLMNO"  # 0x40
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50
    "¿abcdefghijklmno"  # 0x60
    "pqrstuvwxyzäöñüà"  # 0x70
)
GSM7_BASIC = frozenset(GSM7_BASIC_TABLE) - {_ESC}
# The extension table: each is sent as ESC + a septet (form feed 0x0A, ^ 0x14, { 0x28, } 0x29,
# \ 0x2F, [ 0x3C, ~ 0x3D, ] 0x3E, | 0x40, € 0x65).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (one segment, each segment of a longer message), in septets or UTF-16 code units.
SEGMENT_SIZES = {GSM7: (160, 153), UCS2: (70, 67)}

# What is taken off the end of a cut text before its ellipsis.
_CUT_TRAIL = " \t\n\r,;:.—–-"


# Typography that has a GSM-7 twin: curly quotes, guillemets, dashes, the ellipsis and the narrow
# or no-break spaces French puts before « : ; ! ? ». Sent as the plain character — what the
# providers' own "smart encoding" does — one of them no longer turns a whole text into UCS-2
# (half the room). Letters are never replaced: « ê » or « ç » stay and the text is UCS-2.
PLAIN_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",  # ‘
        "\u2019": "'",  # ’
        "\u201a": "'",  # ‚
        "\u2032": "'",  # ′
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201e": '"',  # „
        "\u00ab": '"',  # «
        "\u00bb": '"',  # »
        "\u2013": "-",  # –
        "\u2014": "-",  # —
        "\u2212": "-",  # −
        "\u2026": "...",  # …
        "\u00a0": " ",  # no-break space
        "\u202f": " ",  # narrow no-break space
        "\u2009": " ",  # thin space
    }
)


def plain_punctuation(text: str) -> str:
    """``text`` with its typographic punctuation as the GSM-7 characters that look like it."""
    return text.translate(PLAIN_PUNCTUATION)


@dataclass(frozen=True)
class SmsLength:
    """``characters``: what the customer sees (Unicode code points). ``units``: septets (GSM-7) or
    UTF-16 code units (UCS-2). ``segments``: text messages it is sent as (0 for no text).
    ``per_segment``: units a segment holds (160/70 alone, 153/67 in a longer message).
    ``remaining``: units still free in the last segment."""

    characters: int
    encoding: str
    units: int
    segments: int
    per_segment: int
    remaining: int


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM-7 alphabet (its basic set and extension table)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def encoding_of(text: str) -> str:
    return GSM7 if is_gsm7(text) else UCS2


def _costs(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def measure(text: str) -> SmsLength:
    """``text`` as the network counts it: its encoding, units and segments (see the module)."""
    encoding = encoding_of(text)
    costs = _costs(text, encoding)
    single, multi = SEGMENT_SIZES[encoding]
    units = sum(costs)
    if units <= single:
        segments, per_segment, used = (1 if units else 0), single, units
    else:
        # Greedily, as carriers split: a character that does not fit whole starts the next segment.
        segments, per_segment, used = 1, multi, 0
        for cost in costs:
            if used + cost > multi:
                segments += 1
                used = 0
            used += cost
    return SmsLength(
        characters=len(text),
        encoding=encoding,
        units=units,
        segments=segments,
        per_segment=per_segment,
        remaining=per_segment - used,
    )


def fits(text: str, max_segments: int) -> bool:
    return measure(text).segments <= max_segments


def _pieces(text: str, keep: Sequence[str]) -> list[tuple[bool, str]]:
    """``text`` as (kept, piece) in order: the occurrences of ``keep`` (overlapping ones merged)
    and the free text around them."""
    spans: list[tuple[int, int]] = []
    for part in {k for k in keep if k}:
        start = text.find(part)
        while start != -1:
            spans.append((start, start + len(part)))
            start = text.find(part, start + len(part))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces: list[tuple[bool, str]] = []
    position = 0
    for start, end in merged:
        if start > position:
            pieces.append((False, text[position:start]))
        pieces.append((True, text[start:end]))
        position = end
    if position < len(text):
        pieces.append((False, text[position:]))
    return pieces


def _shortened(pieces: list[tuple[bool, str]], room: int) -> str:
    """The text with only ``room`` characters of its free text, in order: the piece where they run
    out is cut there (with an ellipsis unless nothing of it is left), the free text after it is
    left out and the kept pieces after it follow, one space apart."""
    head: list[str] = []
    tail: list[str] = []
    done = cut = False
    for kept, piece in pieces:
        if done:
            if kept:
                tail.append(piece)
        elif kept:
            head.append(piece)
        elif len(piece) <= room:
            head.append(piece)
            room -= len(piece)
        else:
            done = True
            part = piece[:room].rstrip(_CUT_TRAIL)
            cut = bool(part.strip())
            head.append(part)
    text = "".join(head).strip()
    rest = " ".join(tail)
    if cut:
        # "..." unless the message is in UCS-2 anyway: "…" alone would switch it to UCS-2.
        text += "..." if is_gsm7(text + rest) else "…"
    return " ".join(p for p in (text, rest) if p)


def fit(text: str, max_segments: int, *, keep: Sequence[str] = ()) -> str:
    """``text`` if it fits in ``max_segments`` text messages; else shortened until it does.

    The substrings in ``keep`` (links) are never cut nor left out; the rest is cut at a word (in
    the middle of one only when no word ends in the last half of what fits), and ends with "..."
    — or "…" when the message is in UCS-2 anyway, so that the ellipsis alone never switches it to
    UCS-2. Free text after the cut is left out, the kept parts after it follow one space apart.
    When the kept parts alone do not fit, they are returned joined by spaces, whole."""
    if fits(text, max_segments):
        return text
    pieces = _pieces(text, keep)
    if not fits(_shortened(pieces, 0), max_segments):
        return " ".join(piece for kept, piece in pieces if kept)
    free = "".join(piece for kept, piece in pieces if not kept)
    # The most free text that fits (the count grows with it: a binary search).
    low, high = 0, len(free)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(_shortened(pieces, middle), max_segments):
            low = middle
        else:
            high = middle - 1
    # Where a piece of free text ends (before a kept one) a word ends too.
    ends: set[int] = set()
    total = 0
    for kept, piece in pieces:
        if not kept:
            total += len(piece)
            ends.add(total)
    for room in range(low, low // 2, -1):
        at_word = room in ends or free[room].isspace() or free[room - 1].isspace()
        if at_word and fits(candidate := _shortened(pieces, room), max_segments):
            return candidate
    return _shortened(pieces, low)
