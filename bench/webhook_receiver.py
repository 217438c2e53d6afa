"""A webhook receiver for the benchmark, in a process of its own: answers 204 to every POST and
counts the webhook-ids it saw; ``GET /stats`` answers ``{"requests": N, "distinct": M}``.

``python -m bench.webhook_receiver PORT``; prints "receiving on PORT" once it listens."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen: dict[str, int] = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            webhook_id = self.headers.get("webhook-id", "")
            seen[webhook_id] = seen.get(webhook_id, 0) + 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        with lock:
            body = json.dumps({"requests": sum(seen.values()), "distinct": len(seen)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"receiving on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
