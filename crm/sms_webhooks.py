"""Twilio's two webhooks: the status callback of every text we send (StatusCallback, set by
crm.sms_twilio) and the texts customers send us (the number's or Messaging Service's "A message
comes in" URL). Each request must carry Twilio's signature (``X-Twilio-Signature``: an HMAC of the
public URL and the form fields with the account's auth token, checked by twilio's own
RequestValidator); without a valid one it is refused (403) and changes nothing. Without an auth
token configured the URLs do not exist (404; POST only). The views read the form and hand it to the
services; a text that cannot be filed is kept as it arrived (nothing is lost: Twilio does not
send an inbound text twice when we fail)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from crm.models import SmsOptOut
from crm.services.sms_consent import sms_opt_out
from crm.services.sms_inbound import InboundSms, sms_keep_raw, sms_receive
from crm.services.tracking import sms_status_track
from crm.sms_twilio import OPTED_OUT_CODE, error_description
from crm.text import clean_text

logger = logging.getLogger(__name__)

# A message's SID: SM (text) or MM (with media), then 32 hex digits.
SID_RE = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
# An outbox id, a count: ASCII digits only (str.isdigit() takes "²", which int() refuses).
DIGITS_RE = re.compile(r"[0-9]{1,18}")
# An empty TwiML answer: nothing said back here (answers go through the outbox).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed(request: HttpRequest) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    # The address Twilio called: the public one (behind a proxy, the request's host may differ).
    url = settings.SITE_URL.rstrip("/") + request.get_full_path()
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, request.POST, signature)


def twilio_webhook(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """A view Twilio posts to: no CSRF token (the signature stands for it), POST only, 404 while no
    auth token is configured, 403 without a valid signature."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def checked(request: HttpRequest) -> HttpResponse:
        if not settings.TWILIO_AUTH_TOKEN:
            raise Http404
        if not _signed(request):
            logger.warning("Twilio webhook %s refused: missing or wrong signature", request.path)
            return HttpResponseForbidden("Invalid or missing X-Twilio-Signature.")
        return view(request)

    return checked


def _field(request: HttpRequest, *names: str, limit: int = 255) -> str:
    for name in names:
        value = request.POST.get(name, "")
        if value:
            return clean_text(value)[:limit]
    return ""


@twilio_webhook
def twilio_status(request: HttpRequest) -> HttpResponse:
    sid = _field(request, "MessageSid", "SmsSid")
    status = _field(request, "MessageStatus", "SmsStatus", limit=32).lower()
    if not SID_RE.match(sid) or not status:
        return HttpResponseBadRequest("MessageSid and MessageStatus are required.")
    code = _field(request, "ErrorCode", limit=16)
    outbox = request.GET.get("outbox", "")
    message = sms_status_track(
        provider_message_id=sid,
        status=status,
        outbox_id=outbox if DIGITS_RE.fullmatch(outbox) else None,
        description=error_description(code) if code else "",
    )
    if message is not None and code == OPTED_OUT_CODE:
        sms_opt_out(number=message.to_address, source=SmsOptOut.Source.PROVIDER, said=code)
    return HttpResponse(status=204)


@twilio_webhook
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    sid = _field(request, "MessageSid", "SmsSid")
    sender = _field(request, "From", limit=64)
    if not SID_RE.match(sid) or not sender:
        return HttpResponseBadRequest("MessageSid and From are required.")
    media = _field(request, "NumMedia", limit=3)
    sms = InboundSms(
        provider_id=sid,
        sender=sender,
        recipient=_field(request, "To", limit=64),
        # Twilio's longest inbound text is 1,600 characters; anything more is kept too.
        body=clean_text(request.POST.get("Body", "")),
        media_count=int(media) if DIGITS_RE.fullmatch(media) else 0,
    )
    try:
        sms_receive(sms=sms)
    except Exception as error:
        logger.exception("Inbound text %s could not be filed; kept as it arrived", sid)
        sms_keep_raw(sms=sms, error=error)
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
