"""django-q2 entry points: load by id, call a service. Nothing else lives here."""

from crm.services import imports, outbox, promises


def send_message(message_id: int) -> str:
    return outbox.deliver(message_id=message_id)


def sweep_outbox() -> dict[str, int]:
    return outbox.sweep()


def send_staff_email(to: str, subject: str, body: str) -> None:
    outbox.send_staff_email(to, subject, body)


def run_import(run_id: int) -> str:
    run = imports.import_run(run_id=run_id)
    return run.status if run is not None else "not running"


def scan_commitments() -> dict[str, int]:
    return promises.scan()
