"""A local stand-in for Postmark's email API: the edge of the notification benchmark.

The benchmark points anymail's real Postmark backend at it (``ANYMAIL_POSTMARK_API_URL``), so a
message counts as "handed to the email backend" once this server has accepted it over HTTP,
exactly where the real provider would take over.

It answers ``POST /email`` like Postmark does (the token header is checked, the answer is
Postmark's success JSON with a fresh ``MessageID``), and counts what it accepted:

* ``accepted`` and the time of the first and last acceptance live in shared memory, so the
  benchmark can poll them without adding HTTP requests of its own;
* ``GET /stats`` also tells how many distinct outbox ids (anymail metadata ``outbox_id``) were
  seen, so a message sent twice shows up as a duplicate;
* ``POST /reset`` zeroes everything between phases.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from types import TracebackType
from typing import Any
from urllib.request import Request, urlopen

AUTH_HEADER = "X-Postmark-Server-Token"


@dataclass(frozen=True)
class EspStats:
    accepted: int
    rejected: int
    distinct_outbox_ids: int
    duplicate_outbox_ids: int
    first_accepted_at: float
    last_accepted_at: float


class _Counters:
    """What the server process shares with its parent, plus what only it keeps."""

    def __init__(self, accepted: Synchronized[int], first_at: Synchronized[float], last_at: Synchronized[float]):
        self.accepted = accepted
        self.first_at = first_at
        self.last_at = last_at
        self.lock = threading.Lock()
        self.rejected = 0
        self.outbox_ids: set[str] = set()
        self.duplicates = 0

    def accept(self, outbox_id: str | None) -> None:
        now = time.time()
        with self.lock:
            if outbox_id is not None:
                if outbox_id in self.outbox_ids:
                    self.duplicates += 1
                self.outbox_ids.add(outbox_id)
            with self.accepted.get_lock():
                if self.accepted.value == 0:
                    self.first_at.value = now
                self.accepted.value += 1
                self.last_at.value = now

    def reject(self) -> None:
        with self.lock:
            self.rejected += 1

    def reset(self) -> None:
        with self.lock, self.accepted.get_lock():
            self.accepted.value = 0
            self.first_at.value = 0.0
            self.last_at.value = 0.0
            self.rejected = 0
            self.outbox_ids.clear()
            self.duplicates = 0

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accepted": self.accepted.value,
                "rejected": self.rejected,
                "distinct_outbox_ids": len(self.outbox_ids),
                "duplicate_outbox_ids": self.duplicates,
                "first_accepted_at": self.first_at.value,
                "last_accepted_at": self.last_at.value,
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

        def _reply(self, status: int, body: dict[str, Any]) -> None:
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
            if self.path == "/stats":
                self._reply(200, counters.stats())
            else:
                self._reply(404, {"ErrorCode": 404, "Message": "Not found"})

        def do_POST(self) -> None:
            raw = self._body()
            if self.path == "/reset":
                counters.reset()
                self._reply(200, counters.stats())
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
            counters.accept(str(outbox_id) if outbox_id is not None else None)
            self._reply(
                200,
                {
                    "To": to,
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

    def _call(self, method: str, path: str) -> dict[str, Any]:
        request = Request(self.url + path.lstrip("/"), method=method, data=b"" if method == "POST" else None)  # noqa: S310 - our own 127.0.0.1 server
        with urlopen(request, timeout=10) as response:  # noqa: S310
            return dict(json.loads(response.read()))

    def stats(self) -> EspStats:
        return EspStats(**self._call("GET", "/stats"))

    def reset(self) -> None:
        self._call("POST", "/reset")


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake Postmark /email API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--token", default="bench")
    args = parser.parse_args()
    with FakeEsp(token=args.token, port=args.port) as esp:
        print(f"Fake Postmark at {esp.url} (token {esp.token!r}); Ctrl-C stops it.")
        print(f"  ANYMAIL_ESP=postmark ANYMAIL_POSTMARK_SERVER_TOKEN={esp.token} ANYMAIL_POSTMARK_API_URL={esp.url}")
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
