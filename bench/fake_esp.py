"""A local stand-in for Postmark's email API: the edge of the notification benchmark and of the
recovery tests.

The benchmark and the recovery tests point anymail's real Postmark backend at it
(``ANYMAIL_POSTMARK_API_URL``), so a message counts as "handed to the email backend" once this
server has accepted it over HTTP, exactly where the real provider would take over.

It answers ``POST /email`` like Postmark does (the token header is checked, the answer is
Postmark's success JSON with a fresh ``MessageID``), and counts what it accepted:

* ``accepted`` and the time of the first and last acceptance live in shared memory, so the
  benchmark can poll them without adding HTTP requests of its own;
* ``GET /stats`` also tells how often each outbox id (anymail metadata ``outbox_id``) was
  accepted and asked for, and how many messages of each anymail tag (Postmark's ``Tag``) were
  accepted, so a message sent twice shows up as a duplicate and staff alerts can be told from
  customer messages;
* ``GET /messages?tag=…`` returns the last accepted messages of a tag (address, subject, text);
* ``POST /reset`` zeroes everything between phases (and makes the server behave again).

It can misbehave, for the recovery tests (``POST /behave``, or ``FakeEsp.behave``): answer 500
(``error``), hold the request unanswered for a while (``hang``), or accept the message but name
another recipient in its answer (``other_recipient``: anymail then reports the message id as a
set) — for every message, or only for some recipients.

It runs in its own process (``spawn``: nothing of Django is inherited), with one thread per
connection. Run it alone with ``python -m bench.fake_esp --port 8025`` to try the product by hand.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen

AUTH_HEADER = "X-Postmark-Server-Token"

# How the server answers POST /email (see Behaviour).
MODES = ("ok", "error", "hang", "other_recipient")
# The address an "other_recipient" answer names instead of the one sent.
OTHER_RECIPIENT = "someone-else@fake-esp.example"
# Accepted messages kept per tag for GET /messages (the newest; memory stays bounded in a benchmark).
KEPT_PER_TAG = 200
NO_TAG = ""


@dataclass(frozen=True)
class Behaviour:
    """How the server answers ``POST /email``.

    * ``ok``: Postmark's success answer (the default).
    * ``error``: HTTP 500 with Postmark's error JSON; nothing accepted.
    * ``hang``: no answer for ``hang_seconds``, then the connection is dropped
      (``hang_then="drop"``, what a client timeout looks like) or answered 500 (``"error"``);
      nothing accepted.
    * ``other_recipient``: accepted, but the answer's ``To`` names another address than the one
      sent (anymail's ``anymail_status.message_id`` is then a set).

    With ``recipients``, only messages to one of those addresses get the mode; the others are
    answered ``ok``.
    """

    mode: str = "ok"
    hang_seconds: float = 0.0
    hang_then: str = "drop"
    recipients: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        mode = str(data.get("mode", "ok"))
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        hang_then = str(data.get("hang_then", "drop"))
        if hang_then not in ("drop", "error"):
            raise ValueError(f"hang_then must be 'drop' or 'error', not {hang_then!r}")
        hang_seconds = float(data.get("hang_seconds", 0) or 0)
        if not 0 <= hang_seconds <= 600:
            raise ValueError(f"hang_seconds must be between 0 and 600, not {hang_seconds}")
        recipients = tuple(str(r).strip().lower() for r in data.get("recipients") or ())
        return cls(mode=mode, hang_seconds=hang_seconds, hang_then=hang_then, recipients=recipients)

    def mode_for(self, addresses: list[str]) -> str:
        if self.recipients and not any(a.lower() in self.recipients for a in addresses):
            return "ok"
        return self.mode


@dataclass(frozen=True)
class EspStats:
    accepted: int
    rejected: int
    distinct_outbox_ids: int
    # Acceptances of an outbox id already accepted before (a message sent twice counts 1).
    duplicate_outbox_ids: int
    first_accepted_at: float
    last_accepted_at: float
    # Answered 500 in mode "error" (a hang answered 500 at its end counts as hung, not here).
    errored: int = 0
    # Held unanswered (mode "hang").
    hung: int = 0
    # Accepted with another recipient named in the answer (mode "other_recipient").
    other_recipient: int = 0
    # Outbox ids accepted more than once, and the most acceptances of one id.
    outbox_ids_sent_more_than_once: int = 0
    max_sends_per_outbox_id: int = 0
    # outbox id -> acceptances; outbox id -> POST /email requests carrying it, whatever the answer.
    sends_by_outbox_id: dict[str, int] = field(default_factory=dict)
    requests_by_outbox_id: dict[str, int] = field(default_factory=dict)
    # anymail tag (Postmark's "Tag"; "" when none) -> acceptances.
    accepted_by_tag: dict[str, int] = field(default_factory=dict)
    behaviour: dict[str, Any] = field(default_factory=dict)

    def sends(self, outbox_id: int | str) -> int:
        return self.sends_by_outbox_id.get(str(outbox_id), 0)

    def requests(self, outbox_id: int | str) -> int:
        return self.requests_by_outbox_id.get(str(outbox_id), 0)

    def tag(self, tag: str) -> int:
        return self.accepted_by_tag.get(tag, 0)


class _Counters:
    """What the server process shares with its parent, plus what only it keeps."""

    def __init__(self, accepted: Synchronized[int], first_at: Synchronized[float], last_at: Synchronized[float]):
        self.accepted = accepted
        self.first_at = first_at
        self.last_at = last_at
        self.lock = threading.Lock()
        self.behaviour = Behaviour()
        self._zero()

    def _zero(self) -> None:
        self.rejected = 0
        self.errored = 0
        self.hung = 0
        self.other_recipient = 0
        self.duplicates = 0
        self.sends: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.by_tag: Counter[str] = Counter()
        self.kept: dict[str, deque[dict[str, Any]]] = {}

    def asked(self, outbox_id: str | None) -> Behaviour:
        """A well-formed request came in; the behaviour to answer it with."""
        with self.lock:
            if outbox_id is not None:
                self.requests[outbox_id] += 1
            return self.behaviour

    def accept(self, outbox_id: str | None, *, tag: str, kept: dict[str, Any], odd: bool) -> None:
        now = time.time()
        with self.lock:
            if outbox_id is not None:
                if outbox_id in self.sends:
                    self.duplicates += 1
                self.sends[outbox_id] += 1
            self.by_tag[tag] += 1
            if odd:
                self.other_recipient += 1
            self.kept.setdefault(tag, deque(maxlen=KEPT_PER_TAG)).append(kept)
            with self.accepted.get_lock():
                if self.accepted.value == 0:
                    self.first_at.value = now
                self.accepted.value += 1
                self.last_at.value = now

    def reject(self) -> None:
        with self.lock:
            self.rejected += 1

    def error(self) -> None:
        with self.lock:
            self.errored += 1

    def hang(self) -> None:
        with self.lock:
            self.hung += 1

    def behave(self, behaviour: Behaviour) -> None:
        with self.lock:
            self.behaviour = behaviour

    def reset(self) -> None:
        with self.lock, self.accepted.get_lock():
            self.accepted.value = 0
            self.first_at.value = 0.0
            self.last_at.value = 0.0
            self.behaviour = Behaviour()
            self._zero()

    def messages(self, tag: str | None) -> list[dict[str, Any]]:
        with self.lock:
            if tag is not None:
                return list(self.kept.get(tag, ()))
            return [m for kept in self.kept.values() for m in kept]

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accepted": self.accepted.value,
                "rejected": self.rejected,
                "distinct_outbox_ids": len(self.sends),
                "duplicate_outbox_ids": self.duplicates,
                "first_accepted_at": self.first_at.value,
                "last_accepted_at": self.last_at.value,
                "errored": self.errored,
                "hung": self.hung,
                "other_recipient": self.other_recipient,
                "outbox_ids_sent_more_than_once": sum(1 for n in self.sends.values() if n > 1),
                "max_sends_per_outbox_id": max(self.sends.values(), default=0),
                "sends_by_outbox_id": dict(self.sends),
                "requests_by_outbox_id": dict(self.requests),
                "accepted_by_tag": dict(self.by_tag),
                "behaviour": asdict(self.behaviour),
            }


def _make_handler(token: str, counters: _Counters) -> type[BaseHTTPRequestHandler]:
    class PostmarkHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakePostmark/1"
        # TCP_NODELAY, as production HTTP servers set on kept-alive connections (nginx's
        # tcp_nodelay): without it the body, written after the headers, waits for the client's
        # delayed ACK (40 ms on Linux) on every request but the first few of a connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/stats":
                self._reply(200, counters.stats())
            elif url.path == "/behave":
                self._reply(200, asdict(counters.behaviour))
            elif url.path == "/messages":
                tags = parse_qs(url.query).get("tag")
                self._reply(200, counters.messages(tags[0] if tags else None))
            else:
                self._reply(404, {"ErrorCode": 404, "Message": "Not found"})

        def do_POST(self) -> None:
            raw = self._body()
            if self.path == "/reset":
                counters.reset()
                self._reply(200, counters.stats())
                return
            if self.path == "/behave":
                try:
                    behaviour = Behaviour.from_json(json.loads(raw or b"{}"))
                except (ValueError, TypeError, AttributeError) as error:
                    self._reply(400, {"ErrorCode": 400, "Message": str(error)})
                    return
                counters.behave(behaviour)
                self._reply(200, asdict(behaviour))
                return
            if self.path.rstrip("/") != "/email":
                self._reply(404, {"ErrorCode": 404, "Message": "Not found"})
                return
            if self.headers.get(AUTH_HEADER) != token:
                counters.reject()
                self._reply(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
                return
            try:
                payload = json.loads(raw)
                to, sender = payload["To"], payload["From"]
            except (ValueError, KeyError, TypeError):
                counters.reject()
                self._reply(422, {"ErrorCode": 300, "Message": "Invalid email request"})
                return
            if not to or not sender or not (payload.get("TextBody") or payload.get("HtmlBody")):
                counters.reject()
                self._reply(422, {"ErrorCode": 300, "Message": "Invalid email request"})
                return
            metadata = payload.get("Metadata") or {}
            outbox_id = metadata.get("outbox_id") if isinstance(metadata, dict) else None
            outbox_id = str(outbox_id) if outbox_id is not None else None
            addresses = [address for _name, address in getaddresses([str(to)]) if address]
            behaviour = counters.asked(outbox_id)
            mode = behaviour.mode_for(addresses)
            if mode == "error":
                counters.error()
                self._reply(500, {"ErrorCode": 1, "Message": "Internal server error (the fake provider's outage)."})
                return
            if mode == "hang":
                counters.hang()
                time.sleep(behaviour.hang_seconds)
                if behaviour.hang_then == "error":
                    self._reply(500, {"ErrorCode": 1, "Message": "Internal server error (after a hang)."})
                else:
                    self.close_connection = True
                return
            odd = mode == "other_recipient"
            tag = str(payload.get("Tag") or NO_TAG)
            kept = {
                "outbox_id": outbox_id,
                "tag": tag,
                "to": str(to),
                "subject": str(payload.get("Subject") or ""),
                "text": str(payload.get("TextBody") or ""),
            }
            counters.accept(outbox_id, tag=tag, kept=kept, odd=odd)
            self._reply(
                200,
                {
                    "To": OTHER_RECIPIENT if odd else to,
                    "SubmittedAt": datetime.now(UTC).isoformat(),
                    "MessageID": str(uuid.uuid4()),
                    "ErrorCode": 0,
                    "Message": "OK",
                },
            )

    return PostmarkHandler


def _serve(
    token: str,
    port: int,
    ready: Connection,
    accepted: Synchronized[int],
    first_at: Synchronized[float],
    last_at: Synchronized[float],
) -> None:
    counters = _Counters(accepted, first_at, last_at)
    server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(token, counters), bind_and_activate=False)
    server.request_queue_size = 256
    server.daemon_threads = True
    server.server_bind()
    server.server_activate()
    ready.send(server.server_address[1])
    ready.close()
    server.serve_forever(poll_interval=0.2)


class FakeEsp:
    """The fake Postmark in a child process; a context manager that always stops it."""

    def __init__(self, *, token: str = "bench", port: int = 0) -> None:  # noqa: S107 - the fake's token
        self.token = token
        self._port = port
        ctx = multiprocessing.get_context("spawn")
        self._ctx = ctx
        self._accepted: Synchronized[int] = ctx.Value("q", 0)
        self._first_at: Synchronized[float] = ctx.Value("d", 0.0)
        self._last_at: Synchronized[float] = ctx.Value("d", 0.0)
        self._process: SpawnProcess | None = None
        self.port = 0

    def start(self) -> FakeEsp:
        parent, child = self._ctx.Pipe(duplex=False)
        self._process = self._ctx.Process(
            target=_serve,
            args=(self.token, self._port, child, self._accepted, self._first_at, self._last_at),
            name="fake-esp",
            daemon=True,
        )
        self._process.start()
        child.close()
        try:
            if not parent.poll(20):
                raise RuntimeError("The fake ESP did not start within 20 s.")
            self.port = int(parent.recv())
        except EOFError:
            self._process.join(5)
            raise RuntimeError(f"The fake ESP exited at start (exit code {self._process.exitcode}).") from None
        except BaseException:
            self.stop()
            raise
        finally:
            parent.close()
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._process = None

    def __enter__(self) -> FakeEsp:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL for ``ANYMAIL_POSTMARK_API_URL`` (anymail posts to ``<url>email``)."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def accepted(self) -> int:
        return int(self._accepted.value)

    @property
    def last_accepted_at(self) -> float:
        """time.time() of the last acceptance, 0.0 before the first."""
        return float(self._last_at.value)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = Request(self.url + path.lstrip("/"), method=method, data=data)  # noqa: S310 - our own 127.0.0.1 server
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def stats(self) -> EspStats:
        return EspStats(**self._call("GET", "/stats"))

    def reset(self) -> None:
        """Zero the counts and behave normally again."""
        self._call("POST", "/reset")

    def behave(
        self,
        mode: str = "ok",
        *,
        hang_seconds: float = 0.0,
        hang_then: str = "drop",
        recipients: list[str] | None = None,
    ) -> Behaviour:
        """From now on answer POST /email in ``mode`` (see Behaviour); requests already being held
        by a hang keep their hang."""
        answer = self._call(
            "POST",
            "/behave",
            {"mode": mode, "hang_seconds": hang_seconds, "hang_then": hang_then, "recipients": recipients or []},
        )
        return Behaviour.from_json(dict(answer))

    def messages(self, tag: str | None = None) -> list[dict[str, Any]]:
        """The last accepted messages (of ``tag``, "" for untagged): outbox_id, tag, to, subject, text."""
        path = "/messages" + (f"?tag={tag}" if tag is not None else "")
        return [dict(m) for m in self._call("GET", path)]


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Postmark /email API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--token", default="bench")
    args = parser.parse_args()
    with FakeEsp(token=args.token, port=args.port) as esp:
        print(f"Fake Postmark at {esp.url} (token {esp.token!r}); Ctrl-C stops it.")
        print(f"  ANYMAIL_ESP=postmark ANYMAIL_POSTMARK_SERVER_TOKEN={esp.token} ANYMAIL_POSTMARK_API_URL={esp.url}")
        example = json.dumps({"mode": "error"})
        print(f"  misbehave: curl -d '{example}' {esp.url}behave  (modes: {', '.join(MODES)})")
        last = -1
        try:
            while True:
                time.sleep(1)
                if esp.accepted != last:
                    last = esp.accepted
                    print(f"  accepted {last}")
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
