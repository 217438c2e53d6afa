"""Sending SMS through Twilio's Programmable Messaging API, with Twilio's own Python library.

``SMS_BACKEND = "crm.sms_twilio.TwilioSmsBackend"``. Each send is one ``POST
/2010-04-01/Accounts/{AccountSid}/Messages.json`` (``client.messages.create``): from the Messaging
Service ``TWILIO_MESSAGING_SERVICE_SID`` when it is set, else from ``TWILIO_FROM`` (an E.164
number, or an alphanumeric sender ID where the destination country allows one), with Twilio's
status callbacks sent to ``SITE_URL`` + ``reverse("twilio_status")`` when that view is installed.
The answer's message SID is the provider message id the outbox stores. Twilio's Messages API has no
client reference field, so the outbox id (``reference``) rides in the StatusCallback's query
(``?outbox=<id>``): a status callback finds its row even before the SID is stored.

Numbers are stored in E.164 (crm.phones) and the outbox hands the backend the number as crm.phones
reads it; a number given some other way ("06 12 34 56 78") is read by the same rule
(``PHONE_DEFAULT_REGION`` for a number without its country code) and sent as "+33612345678". One
it cannot read is sent as given, and Twilio's refusal (21211) fails it.

What Twilio's answer means for the outbox (``crm.sms``):

* a code of PERMANENT_CODES (the recipient cannot be reached with this text, whatever we do) →
  ``SmsRefused``: the message fails at once; ``opted_out`` for 21610 (the recipient replied STOP);
* HTTP 429 or 5xx, a timeout, a connection error, a Twilio library error without an HTTP status →
  ``SmsError``: retried with the outbox's backoff;
* any other 4xx — a wrong token (20003), a sender Twilio does not accept (21606), … — is our
  configuration, not the recipient: ``SmsError`` too, logged at ERROR, so the messages waiting go
  out once the configuration is fixed (within their OUTBOX_MAX_ATTEMPTS) instead of each failing
  for good.

``TWILIO_API_URL`` sends the library's requests elsewhere than https://api.twilio.com: the local
fake Twilio of the tests (``tests/fake_twilio.py``) or of a trial by hand.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from crm import phones
from crm.sms import SmsError, SmsRefused

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"

# The opt-out code: the recipient replied STOP (or another opt-out keyword) to our sender. As a
# string too: the status callback's ErrorCode is form text (crm.sms_webhooks compares it).
UNSUBSCRIBED = 21610
OPTED_OUT_CODE = str(UNSUBSCRIBED)

# Twilio error codes (https://www.twilio.com/docs/api/errors/<code>) that say this recipient
# cannot be reached with this message whatever we retry: the message fails at once. The 211xx and
# 216xx codes come back when the message is created (this backend); the 300xx codes are delivery
# failures Twilio reports later, in the status callback's ErrorCode (the webhook reads them here).
PERMANENT_CODES: dict[int, str] = {
    21211: "the 'To' number is not a valid phone number",
    21217: "the phone number does not appear to be valid",
    21265: "the 'To' number is a short code, which Twilio numbers cannot text",
    21408: "texts to the recipient's country are not enabled in the account's Messaging Geo Permissions",
    21608: "a trial account can only text verified numbers, and this one is not verified",
    UNSUBSCRIBED: "the recipient has unsubscribed (replied STOP): no text reaches them until they reply START",
    21612: "Twilio cannot send to this 'To' number with this sender (the country or network does not allow it)",
    21614: "the 'To' number is not a mobile number (a landline, or not valid)",
    21635: "the 'To' number is a landline",
    30004: "message blocked: the recipient cannot receive it (blocked, opted out, or on a do-not-disturb list)",
    30005: "unknown destination handset: the number is unknown or no longer in service",
    30006: "landline or unreachable carrier: the number cannot receive texts",
    30007: "message filtered as spam or against policy by Twilio or the carrier",
}

# Codes that are about our account or sender, not the recipient (known ones, for the log: any 4xx
# not in PERMANENT_CODES is handled the same way). Retried: once the configuration is fixed, the
# messages waiting go out.
CONFIGURATION_CODES: dict[int, str] = {
    20003: "authentication failed: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
    20404: "not found: check TWILIO_ACCOUNT_SID and TWILIO_MESSAGING_SERVICE_SID",
    21212: "the 'From' number is not a valid phone number, short code or alphanumeric sender ID",
    21606: "the 'From' number is not a message-capable Twilio number of this account for this destination",
    21659: "the 'From' number is not a Twilio number of this account",
    21703: "the Messaging Service has no sender (phone number) in its pool",
}

# Codes that pass (retried with the outbox's backoff), named for the log and the status callback.
TEMPORARY_CODES: dict[int, str] = {
    20429: "too many requests: Twilio's rate limit",
    20500: "Twilio internal server error",
    20503: "Twilio service unavailable",
    30001: "the carrier's queue overflowed",
    30003: "the handset is unreachable (off, or out of coverage)",
    30008: "unknown error from the carrier",
}

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# Twilio: up to 11 characters, ASCII letters, digits and spaces, at least one letter.
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")


def is_sender_id(sender: str) -> bool:
    """An E.164 number or an alphanumeric sender ID, as Twilio accepts them in ``From``."""
    return bool(_E164.fullmatch(sender) or _ALPHANUMERIC_SENDER.fullmatch(sender))


def e164(phone: str) -> str:
    """The number as Twilio wants it ("06 12 34 56 78" → "+33612345678" with the FR region), by
    crm.phones' one rule; as given when that rule cannot read it (Twilio then refuses it: 21211)."""
    return phones.e164_or_none(phone) or phone.strip()


class ApiHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client (requests), with a timeout on every call and, when ``api_url``
    is not Twilio's, every request to Twilio's API host sent there instead (the fake Twilio)."""

    def __init__(self, *, api_url: str = TWILIO_API_URL, timeout: float) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(api_url.rstrip("/"))
        self.api_scheme, self.api_netloc, self.api_path = parts.scheme, parts.netloc, parts.path

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if (self.api_scheme, self.api_netloc, self.api_path) == ("https", "api.twilio.com", ""):
            return url
        if host != "api.twilio.com" and not (host.startswith("api.") and host.endswith(".twilio.com")):
            return url
        return urlunsplit((self.api_scheme, self.api_netloc, self.api_path + parts.path, parts.query, ""))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def configuration() -> dict[str, Any]:
    """The settings the backend needs, checked: ImproperlyConfigured says what to fix."""
    account_sid = str(getattr(settings, "TWILIO_ACCOUNT_SID", "") or "").strip()
    auth_token = str(getattr(settings, "TWILIO_AUTH_TOKEN", "") or "").strip()
    service_sid = str(getattr(settings, "TWILIO_MESSAGING_SERVICE_SID", "") or "").strip()
    sender = str(getattr(settings, "TWILIO_FROM", "") or "").strip()
    api_url = str(getattr(settings, "TWILIO_API_URL", "") or TWILIO_API_URL).strip()
    timeout = getattr(settings, "TWILIO_TIMEOUT_SECONDS", 10)
    if not account_sid or not auth_token:
        raise ImproperlyConfigured(
            _("The Twilio SMS backend needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio console, Account Info).")
        )
    if not _ACCOUNT_SID.fullmatch(account_sid):
        raise ImproperlyConfigured(
            _("TWILIO_ACCOUNT_SID must be the account's SID: AC followed by 32 hexadecimal characters, not %(value)r.")
            % {"value": account_sid}
        )
    if service_sid and not _MESSAGING_SERVICE_SID.fullmatch(service_sid):
        raise ImproperlyConfigured(
            _(
                "TWILIO_MESSAGING_SERVICE_SID must be a Messaging Service SID: MG followed by 32 hexadecimal "
                "characters, not %(value)r."
            )
            % {"value": service_sid}
        )
    if not service_sid and not sender:
        raise ImproperlyConfigured(
            _(
                "The Twilio SMS backend needs a sender: TWILIO_MESSAGING_SERVICE_SID (a Messaging Service), "
                "or TWILIO_FROM (a Twilio number in E.164 form such as +33612345678, or an alphanumeric sender ID)."
            )
        )
    if sender and not is_sender_id(sender):
        raise ImproperlyConfigured(
            _(
                "TWILIO_FROM must be a phone number in E.164 form (+ and the country code, digits only, such as "
                "+33612345678) or an alphanumeric sender ID (up to 11 letters, digits and spaces, at least one "
                "letter, such as Brightside), not %(value)r. A short code is used through a Messaging Service "
                "(TWILIO_MESSAGING_SERVICE_SID)."
            )
            % {"value": sender}
        )
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            _("TWILIO_API_URL must be an http(s) address such as https://api.twilio.com, not %(value)r.")
            % {"value": api_url}
        )
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ImproperlyConfigured(
            _("TWILIO_TIMEOUT_SECONDS must be a number of seconds above 0, not %(value)r.") % {"value": timeout}
        )
    return {
        "account_sid": account_sid,
        "auth_token": auth_token,
        "service_sid": service_sid,
        "sender": sender,
        "api_url": api_url,
        "timeout": float(timeout),
    }


def error_description(code: str | int) -> str:
    """A Twilio error code as staff read it ("Twilio error 30006: landline or unreachable carrier…"),
    for the outbox's last error when a status callback reports a failure."""
    text = str(code).strip()
    number = int(text) if text.isdigit() else None
    meaning = None
    if number is not None:
        meaning = PERMANENT_CODES.get(number) or CONFIGURATION_CODES.get(number) or TEMPORARY_CODES.get(number)
    return f"Twilio error {text}: {meaning}" if meaning else f"Twilio error {text}"


def status_callback_url(reference: str = "") -> str | None:
    """Where Twilio reports the message's status: the status view's public address, with the outbox
    id (``?outbox=``: the client reference Twilio's API lacks, so a report that comes before the
    SID is stored still finds its row); None while the view is not installed."""
    try:
        url = settings.SITE_URL + reverse("twilio_status")
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode({'outbox': reference})}" if reference else url


def _code(error: Any) -> int | None:
    try:
        return int(error.code)
    except (TypeError, ValueError):
        return None


def _twilio_text(error: Any) -> str:
    """What Twilio said, without the library's "Unable to create record: " in front."""
    text = str(getattr(error, "msg", "") or getattr(error, "detail", "") or getattr(error, "title", "") or "")
    return text.removeprefix("Unable to create record: ").strip()


def sms_error(error: TwilioRestException | TwilioServiceException, *, to: str) -> SmsError:
    """The outbox's reading of an error answer from Twilio (see the module's docstring)."""
    status = int(getattr(error, "status", 0) or 0)
    code = _code(error)
    said = _twilio_text(error)
    if 400 <= status < 500 and code in PERMANENT_CODES:
        return SmsRefused(
            f"Twilio refused the SMS to {to} (error {code}: {PERMANENT_CODES[code]}): {said}",
            code=str(code),
            opted_out=code == UNSUBSCRIBED,
        )
    if status == 429 or status >= 500 or status < 400:
        return SmsError(f"Twilio did not take the SMS this time (HTTP {status}, error {code}): {said}")
    meaning = CONFIGURATION_CODES.get(code or 0, "a request Twilio refused that is not about the recipient")
    logger.error(
        "Twilio refused an SMS because of our configuration (HTTP %s, error %s: %s): %s. "
        "It is retried; fix the configuration and it will be sent.",
        status,
        code,
        meaning,
        said,
    )
    return SmsError(f"Twilio refused the request (HTTP {status}, error {code}: {meaning}): {said}")


class TwilioSmsBackend:
    """``send(to, text, *, reference) -> message SID`` through Twilio (see the module's docstring)."""

    def __init__(self) -> None:
        config = configuration()
        self.messaging_service_sid: str = config["service_sid"]
        self.sender: str = config["sender"]
        self.http_client = ApiHttpClient(api_url=config["api_url"], timeout=config["timeout"])
        self.client = Client(config["account_sid"], config["auth_token"], http_client=self.http_client)

    def send(self, to: str, text: str, *, reference: str = "") -> str:
        recipient = e164(to)
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.sender}
        )
        callback = status_callback_url(reference)
        extra: dict[str, str] = {"status_callback": callback} if callback else {}
        try:
            message = self.client.messages.create(to=recipient, body=text, **sender, **extra)
        except (TwilioRestException, TwilioServiceException) as error:
            raise sms_error(error, to=recipient) from error
        except requests.RequestException as error:
            raise SmsError(f"Twilio could not be reached ({type(error).__name__}): {error}") from error
        except TwilioException as error:
            raise SmsError(f"The Twilio library failed to send ({type(error).__name__}): {error}") from error
        except ValueError as error:  # an answer that is not JSON: whether Twilio took it is unknown
            raise SmsError(f"Twilio's answer could not be read ({type(error).__name__}): {error}") from error
        sid = str(getattr(message, "sid", "") or "")
        logger.info("Twilio took SMS %s (outbox %s)", sid or "(no SID)", reference or "-")
        return sid
