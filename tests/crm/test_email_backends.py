"""The providers that honour an idempotency key get the outbox's, where each documents it, and the
same one on every attempt of a row: Resend in the ``Idempotency-Key`` HTTP header, Brevo as
``headers.idempotencyKey`` in its JSON. Each is anymail's real backend (crm.email_backends)
talking HTTP to a local server that answers as the provider's API does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crm.models import Job, Message
from crm.services.delivery import deliver, provider_idempotency_key
from crm.services.jobs import job_advance


@dataclass
class Provider:
    """What the local server received, and whether it answers 500 (a lost answer: it took it)."""

    url: str = ""
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    fail: bool = False


def serve(provider: Provider, success: tuple[int, dict[str, Any]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            provider.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status, answer = (500, {"message": "Internal server error"}) if provider.fail else success
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}/"
    return server


@pytest.fixture
def resend(settings) -> Iterator[Provider]:
    provider = Provider()
    server = serve(provider, (200, {"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}))
    settings.EMAIL_BACKEND = "crm.email_backends.ResendEmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "RESEND_API_KEY": "re_test", "RESEND_API_URL": provider.url}
    yield provider
    server.shutdown()


@pytest.fixture
def brevo(settings) -> Iterator[Provider]:
    provider = Provider()
    server = serve(provider, (201, {"messageId": "<202603020900.123456789@smtp-relay.mailin.fr>"}))
    settings.EMAIL_BACKEND = "crm.email_backends.BrevoEmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "BREVO_API_KEY": "xkeysib-test", "BREVO_API_URL": provider.url}
    yield provider
    server.shutdown()


@pytest.fixture
def queued(job: Job) -> Message:
    job_advance(job=job, to_stage=job.pipeline.stages.get(name="Proposal sent"), actor=job.owner)
    return Message.objects.get(job=job)


def retried(message: Message) -> None:
    """Due again now, as its retry schedule would find it."""
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)


def test_it_sends_resend_the_same_idempotency_key_on_every_attempt(resend: Provider, queued: Message) -> None:
    resend.fail = True
    assert deliver(message_id=queued.pk) == "retry"
    retried(queued)
    resend.fail = False
    assert deliver(message_id=queued.pk) == "sent"

    keys = [headers["idempotency-key"] for headers, _ in resend.requests]
    assert keys == [provider_idempotency_key(queued)] * 2
    assert keys[0].startswith(f"outbox-{queued.pk}-")
    # The key is the provider's, not an email header the customer's mail client would see.
    assert all("Idempotency-Key" not in body.get("headers", {}) for _, body in resend.requests)
    assert Message.objects.get(pk=queued.pk).provider_message_id == "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"


def test_it_sends_brevo_the_same_idempotency_key_on_every_attempt(brevo: Provider, queued: Message) -> None:
    brevo.fail = True
    assert deliver(message_id=queued.pk) == "retry"
    retried(queued)
    brevo.fail = False
    assert deliver(message_id=queued.pk) == "sent"

    keys = [body["headers"]["idempotencyKey"] for _, body in brevo.requests]
    assert keys == [provider_idempotency_key(queued)] * 2
    assert Message.objects.get(pk=queued.pk).status == "sent"


def test_it_gives_a_message_sent_again_to_a_corrected_address_a_new_key(queued: Message) -> None:
    before = provider_idempotency_key(queued)
    queued.to_address = "marie.dupont@example.com"

    assert provider_idempotency_key(queued) != before
