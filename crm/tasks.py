"""django-q2 entry points: load by id, call a service. Nothing else lives here."""

from crm.services import (
    access_log,
    alerts,
    campaigns,
    checkins,
    csv_import,
    delivery,
    file_retention,
    scan,
    surveys,
    visit_scan,
    webhook_delivery,
)


def send_messages(message_ids: list[int]) -> dict[int, str]:
    return delivery.deliver_many(message_ids=message_ids)


def send_message(message_id: int) -> str:
    # Tasks enqueued one per message (before batches) may still be waiting in a broker.
    return delivery.deliver(message_id=message_id)


def sweep_outbox() -> dict[str, int]:
    return delivery.sweep()


def sweep_webhooks() -> dict[str, int]:
    return webhook_delivery.sweep()


def deliver_webhooks(delivery_ids: list[int]) -> dict[int, str]:
    return webhook_delivery.deliver_many(delivery_ids=delivery_ids)


def send_staff_email(to: str, subject: str, body: str) -> None:
    # Alerts enqueued before staff alerts were outbox rows may still wait in a broker: they become
    # rows now, and are sent (and retried) like every other.
    alerts.alert_address(to, subject=subject, body=body)


def run_import(run_id: int) -> str:
    run = csv_import.import_run(run_id=run_id)
    return run.status if run is not None else "not running"


def scan_commitments() -> dict[str, int]:
    return scan.scan()


def scan_visits() -> dict[str, int]:
    return visit_scan.scan()


def send_campaign(campaign_id: int) -> str:
    return campaigns.campaign_send_run(campaign_id=campaign_id)


def send_survey_invitations() -> int:
    return surveys.invitations_send()


def send_check_ins() -> int:
    return checkins.check_ins_send()


def expire_files() -> int:
    return file_retention.files_expire()


def prune_access_log() -> int:
    return access_log.access_records_prune()
