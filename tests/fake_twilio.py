"""A local stand-in for Twilio's REST API (Programmable Messaging), over real HTTP.

The product's Twilio backend (``crm.sms_twilio``) sends with Twilio's own Python library; the tests
point that library at this server (``TWILIO_API_URL``), so a text counts as handed to Twilio once
this server has accepted it over HTTP, exactly where the real Twilio would take over. Nothing
inside the product is replaced.

It answers like Twilio does (https://www.twilio.com/docs/messaging/api/message-resource):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``, ``From`` or
  ``MessagingServiceSid``, ``Body``, ``StatusCallback``: HTTP Basic auth checked (Account SID and
  auth token), ``To`` in E.164, a sender, a body of at most 1,600 characters, a StatusCallback
  that is an http(s) URL; 201 with the Message resource's JSON (``sid`` "SM" + 32 hex characters,
  ``status`` "queued" — "accepted" through a Messaging Service, whose ``from`` is null until a
  sender of its pool is picked —, ``num_segments``, RFC 2822 dates, ``uri``, …);
* ``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``: the message as it stands;
* every error with Twilio's error JSON: ``{"code", "message", "more_info", "status"}``.

It records every accepted message (``messages``: to, body, from or Messaging Service, status
callback, the whole form) and every request (``requests``: refused ones too), and can be told to
misbehave: refuse a number with a given error code (``refuse``), answer 500 or 429 with Retry-After
the next N times (``fail_next``), or hold the answer longer than the client waits (``hang_next``),
with or without having taken the message.

For the webhook tests, it makes the requests Twilio would make to the product: a status callback
for a message it accepted (``status_callback`` / ``post_status_callback``) and an incoming text
(``inbound`` / ``post_inbound``), signed with the auth token as Twilio signs them
(``X-Twilio-Signature``: twilio's own ``RequestValidator``).

Run alone, ``python -m tests.fake_twilio --port 8026`` serves it for a trial by hand: set
``TWILIO_API_URL=http://127.0.0.1:8026`` and the test credentials it prints.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import RequestValidator

# Credentials and senders the tests configure (an Account SID is AC + 32 hex characters).
TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "fake-twilio-auth-token"
TEST_FROM = "+15005550006"
TEST_MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
API_VERSION = "2010-04-01"

MAX_BODY = 1600
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_ALPHANUMERIC = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_MESSAGES = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json")
_MESSAGE = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>SM[0-9a-f]{{32}})\.json")
# GSM 03.38's basic character set (and its extension table, two septets each): a text of these
# alone is 160 characters a segment (153 when split), any other character makes it UCS-2 (70, 67).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")

REASONS = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
}


def error_body(code: int, message: str, status: int) -> dict[str, Any]:
    """Twilio's error JSON (https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def segments(body: str) -> int:
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in body):
        septets = sum(2 if ch in _GSM_EXTENDED else 1 for ch in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=False).replace("-0000", "+0000")


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the fake accepted, as posted."""

    sid: str
    account_sid: str
    to: str
    body: str
    from_: str  # the From posted ("" when sent through a Messaging Service)
    messaging_service_sid: str
    status_callback: str  # "" when none was given
    form: dict[str, str]
    date_created: datetime
    status: str = "queued"

    @property
    def sender(self) -> str:
        """The From number, or the Messaging Service the message went through."""
        return self.from_ or self.messaging_service_sid


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    form: dict[str, str]
    status: int  # what the fake answered (0: no answer, it hung)


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    retry_after: int | None


@dataclass
class _Hang:
    seconds: float
    accept: bool


@dataclass
class _State:
    messages: list[ReceivedMessage] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    refusals: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    hangs: list[_Hang] = field(default_factory=list)


class FakeTwilio:
    """The server (see the module's docstring). ``start()`` / ``stop()``, or ``with FakeTwilio() as
    fake:``; ``url`` is its address once started."""

    def __init__(
        self,
        *,
        account_sid: str = TEST_ACCOUNT_SID,
        auth_token: str = TEST_AUTH_TOKEN,
        pool_number: str = TEST_FROM,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        # The number a Messaging Service picks from its pool (its messages' From in callbacks).
        self.pool_number = pool_number
        self._address = (host, port)
        self._lock = threading.Lock()
        self._state = _State()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # --- Running -------------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        self._stopping.clear()
        self._server = ThreadingHTTPServer(self._address, _handler(self))
        # A short poll: stop() (shutdown) returns within it.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-twilio", daemon=True
        ).start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes the requests held by hang_next
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- What it received ----------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every message accepted, in order."""
        with self._lock:
            return list(self._state.messages)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, refused ones included, in order."""
        with self._lock:
            return list(self._state.requests)

    def message(self, sid: str) -> ReceivedMessage:
        with self._lock:
            return next(m for m in self._state.messages if m.sid == sid)

    def reset(self) -> None:
        """Forget what was received and behave again."""
        with self._lock:
            self._state = _State()

    # --- Misbehaving ---------------------------------------------------------------------------

    def refuse(self, to: str, code: int, *, status: int = 400, message: str = "") -> None:
        """Answer every message to ``to`` (E.164) with this Twilio error, e.g. 21610 (unsubscribed),
        21614 (not a mobile number)."""
        text = message or f"Twilio error {code} for the 'To' number {to}."
        with self._lock:
            self._state.refusals[to] = (code, status, text)

    def fail_next(
        self, times: int = 1, *, status: int = 500, code: int | None = None, retry_after: int | None = None
    ) -> None:
        """Answer the next ``times`` requests with this HTTP status (500, 503, 429…) and nothing
        taken; a 429 says ``Retry-After`` (1 second unless given)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        code = code if code is not None else {429: 20429, 503: 20503}.get(status, 20500)
        failure = _Failure(status, code, REASONS.get(code, "Error"), retry_after)
        with self._lock:
            self._state.failures.extend(replace(failure) for _ in range(times))

    def hang_next(self, seconds: float, times: int = 1, *, accept: bool = False) -> None:
        """Hold the next ``times`` requests this long before answering (longer than the client's
        timeout: it gives up). ``accept``: the message is taken all the same (Twilio has it, the
        answer was lost)."""
        with self._lock:
            self._state.hangs.extend(_Hang(seconds, accept) for _ in range(times))

    # --- Twilio's requests to the product -------------------------------------------------------

    def sign(self, url: str, form: Mapping[str, str]) -> str:
        """The ``X-Twilio-Signature`` Twilio puts on a request to ``url`` with this form."""
        return str(RequestValidator(self.auth_token).compute_signature(url, dict(form)))

    def status_callback(self, sid: str, status: str = "delivered", *, error_code: int | None = None) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback when its status becomes ``status``
        (queued, sent, delivered, undelivered, failed…); ``ErrorCode`` with a failure. The message's
        status here moves with it."""
        with self._lock:
            index, message = next((i, m) for i, m in enumerate(self._state.messages) if m.sid == sid)
            self._state.messages[index] = replace(message, status=status)
        form = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_ or self.pool_number,
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if message.messaging_service_sid:
            form["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return form

    def post_status_callback(
        self, client: Any, sid: str, status: str = "delivered", *, error_code: int | None = None, url: str = ""
    ) -> Any:
        """Post the status callback of message ``sid`` with a Django test ``client``, signed, to the
        StatusCallback the message was sent with (or ``url``); the response."""
        target = url or self.message(sid).status_callback
        if not target:
            raise ValueError(f"Message {sid} was sent without a StatusCallback: pass url=")
        form = self.status_callback(sid, status, error_code=error_code)
        return client.post(target, form, HTTP_X_TWILIO_SIGNATURE=self.sign(target, form))

    def inbound(self, *, from_: str, body: str, to: str = "", messaging_service_sid: str = "") -> dict[str, str]:
        """The form Twilio posts to a number's "A message comes in" webhook for a text from ``from_``."""
        sid = "SM" + secrets.token_hex(16)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(segments(body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to or self.pool_number,
        }
        if messaging_service_sid:
            form["MessagingServiceSid"] = messaging_service_sid
        return form

    def post_inbound(self, client: Any, url: str, *, from_: str, body: str, to: str = "", **extra: str) -> Any:
        """Post an incoming text to ``url`` (absolute, e.g. SITE_URL + its path) with a Django test
        ``client``, signed as Twilio signs it; the response. ``extra``: more form fields."""
        form = {**self.inbound(from_=from_, body=body, to=to), **extra}
        return client.post(url, form, HTTP_X_TWILIO_SIGNATURE=self.sign(url, form))

    # --- Answering (the handler's thread) --------------------------------------------------------

    def _answer(
        self, method: str, path: str, authorization: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str], float]:
        """(status, JSON, headers, seconds to hold the answer first); status 0: no answer."""
        with self._lock:
            hang = self._state.hangs.pop(0) if self._state.hangs else None
            failure = None if hang else (self._state.failures.pop(0) if self._state.failures else None)
        if hang is not None:
            if hang.accept:
                self._create(path, authorization, form)
            return 0, {}, {}, hang.seconds
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, error_body(failure.code, failure.message, failure.status), headers, 0
        status, answer = (
            self._create(path, authorization, form) if method == "POST" else self._fetch(path, authorization)
        )
        return status, answer, {}, 0

    def _authenticated(self, authorization: str, account: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password, self.auth_token)
            and account == self.account_sid
        )

    def _fetch(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        match = _MESSAGE.fullmatch(path)
        if match is None:
            return 404, error_body(20404, f"The requested resource {path} was not found", 404)
        if not self._authenticated(authorization, match["account"]):
            return 401, error_body(20003, REASONS[20003], 401)
        with self._lock:
            message = next((m for m in self._state.messages if m.sid == match["sid"]), None)
        if message is None:
            return 404, error_body(20404, f"The requested resource {path} was not found", 404)
        return 200, self._resource(message)

    def _create(self, path: str, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        match = _MESSAGES.fullmatch(path)
        if match is None:
            return 404, error_body(20404, f"The requested resource {path} was not found", 404)
        if not self._authenticated(authorization, match["account"]):
            return 401, error_body(20003, REASONS[20003], 401)
        refused = self._invalid(form)
        if refused is not None:
            code, text = refused
            return 400, error_body(code, text, 400)
        to = form["To"]
        with self._lock:
            refusal = self._state.refusals.get(to)
        if refusal is not None:
            code, status, text = refusal
            return status, error_body(code, text, status)
        service = form.get("MessagingServiceSid", "")
        message = ReceivedMessage(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=to,
            body=form["Body"],
            from_="" if service else form["From"],
            messaging_service_sid=service,
            status_callback=form.get("StatusCallback", ""),
            form=dict(form),
            date_created=datetime.now(UTC).replace(microsecond=0),
            status="accepted" if service else "queued",
        )
        with self._lock:
            self._state.messages.append(message)
        return 201, self._resource(message)

    @staticmethod
    def _invalid(form: dict[str, str]) -> tuple[int, str] | None:
        """Twilio's validation of a new message, in its order: (code, message) when refused."""
        to = form.get("To", "")
        if not to:
            return 21604, "A 'To' phone number is required."
        if not _E164.fullmatch(to):
            return 21211, f"The 'To' number {to} is not a valid phone number."
        service = form.get("MessagingServiceSid", "")
        sender = form.get("From", "")
        if not service and not sender:
            return 21603, "A 'From' phone number is required."
        if service and not _SERVICE_SID.fullmatch(service):
            return 21701, f"The Messaging Service Sid {service} is invalid."
        if not service and not (_E164.fullmatch(sender) or _ALPHANUMERIC.fullmatch(sender)):
            return (
                21212,
                f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID.",
            )
        body = form.get("Body", "")
        if not body:
            return 21602, "Message body is required."
        if len(body) > MAX_BODY:
            return 21617, "The concatenated message body exceeds the 1600 character limit."
        callback = form.get("StatusCallback", "")
        if callback and (urlsplit(callback).scheme not in ("http", "https") or not urlsplit(callback).netloc):
            return 21609, f"The StatusCallback URL {callback} is not a valid URL."
        return None

    def _resource(self, message: ReceivedMessage) -> dict[str, Any]:
        """The Message resource's JSON, as Twilio documents it."""
        uri = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
        created = rfc2822(message.date_created)
        return {
            "account_sid": message.account_sid,
            "api_version": API_VERSION,
            "body": message.body,
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": message.from_ or None,
            "messaging_service_sid": message.messaging_service_sid or None,
            "num_media": "0",
            # Through a Messaging Service, 0 until a sender is picked (Twilio's documentation).
            "num_segments": "0" if message.messaging_service_sid else str(segments(message.body)),
            "price": None,
            "price_unit": "USD",
            "sid": message.sid,
            "status": message.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": message.to,
            "uri": f"{uri}.json",
        }

    def _record(self, method: str, path: str, form: dict[str, str], status: int) -> None:
        with self._lock:
            self._state.requests.append(ReceivedRequest(method, path, form, status))


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeTwilio/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
            path = urlsplit(self.path).path
            status, answer, headers, hold = fake._answer(method, path, self.headers.get("Authorization", ""), form)
            fake._record(method, path, form, status)
            if hold and fake._stopping.wait(hold):
                return
            if not status:
                self.close_connection = True
                return
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake of Twilio's Messaging REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    options = parser.parse_args()
    fake = FakeTwilio(host=options.host, port=options.port).start()
    print(
        f"Fake Twilio on {fake.url}\n"
        f"  TWILIO_API_URL={fake.url} TWILIO_ACCOUNT_SID={fake.account_sid} "
        f"TWILIO_AUTH_TOKEN={fake.auth_token} TWILIO_FROM={fake.pool_number}\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
