"""Reading a customer's email reply: keep what they wrote, drop the history their client quoted."""

import html
import re

from django.utils.html import strip_tags

# Lines where a mail client starts quoting the message being answered (English and French).
QUOTE_HEADERS = [
    re.compile(r"^On .{0,300}wrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^Le .{0,300}a écrit\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^-{2,}\s*(Original Message|Message d'origine|Forwarded message|Message transféré)\s*-{2,}", re.I),
    re.compile(r"^_{10,}\s*$"),
    re.compile(r"^(From|De)\s?:\s.+", re.IGNORECASE),
]
SIGNATURE_DELIMITER = "-- "


def html_to_text(markup: str) -> str:
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", markup)
    return html.unescape(strip_tags(markup))


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything before the quoted history and the signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        # Some clients wrap "On <date>, <name> wrote:" over two lines; a sentence of the reply that
        # happens to start with "On" ends with punctuation and is not a header's first half.
        wrapped = index + 1 < len(lines) and not line.rstrip().endswith((".", "!", "?"))
        two_lines = f"{line} {lines[index + 1]}" if wrapped else line
        if any(p.match(line.strip()) or p.match(two_lines.strip()) for p in QUOTE_HEADERS[:2]):
            break
        if any(p.match(line.strip()) for p in QUOTE_HEADERS[2:]):
            break
        if line.rstrip("\n") == SIGNATURE_DELIMITER:
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()
