"""``{% load sms %}``, then ``{% sms_length text %}``: a text message's length as the staff need to
see it before it is sent: "142 characters · GSM-7 · 1 text message" (crm.sms_segments counts),
in a span whose ``data-sms-segments`` is the number of text messages."""

from __future__ import annotations

from typing import Any

from django import template

from crm.sms_segments import UCS2, measure

register = template.Library()


@register.inclusion_tag("crm/_sms_length.html")
def sms_length(text: Any) -> dict[str, Any]:
    length = measure("" if text is None else str(text))
    return {"length": length, "ucs2": length.encoding == UCS2}
