"""The periodic work django-q2 runs. ``manage.py setup_schedules`` makes the Schedule rows match."""

from dataclasses import dataclass

from django_q.models import Schedule


@dataclass(frozen=True)
class Periodic:
    name: str
    func: str
    minutes: int


PERIODIC = [
    # Requeue sends whose worker died, send retries that are due and rows whose enqueue was lost.
    Periodic(name="outbox-sweep", func="crm.tasks.sweep_outbox", minutes=1),
    # Webhook deliveries: retries that are due, sends whose worker died, enqueues that were lost.
    Periodic(name="webhook-sweep", func="crm.tasks.sweep_webhooks", minutes=1),
    # Nudge owners before a promise slips, mark broken promises and tell managers, silence alarm.
    Periodic(name="promise-scan", func="crm.tasks.scan_commitments", minutes=5),
    # Visits: the reminder before each one, and today's at risk (a late crew) told once.
    Periodic(name="visit-scan", func="crm.tasks.scan_visits", minutes=5),
    # After the job: survey invitations and check-ins whose morning has come in the contact's
    # time zone (each once per job and contact, however often this runs).
    Periodic(name="survey-invitations", func="crm.tasks.send_survey_invitations", minutes=15),
    Periodic(name="check-ins", func="crm.tasks.send_check_ins", minutes=15),
    # Retention: the bytes of files of jobs closed more than FILE_RETENTION_MONTHS ago, once a day
    # (nothing while the setting is empty).
    Periodic(name="file-retention", func="crm.tasks.expire_files", minutes=24 * 60),
    # The access log keeps ACCESS_LOG_RETENTION_DAYS, pruned once a day.
    Periodic(name="access-log-prune", func="crm.tasks.prune_access_log", minutes=24 * 60),
    # The answers kept for the API's Idempotency-Keys, once past API_IDEMPOTENCY_HOURS.
    Periodic(name="api-idempotency-prune", func="api.tasks.prune_idempotent_requests", minutes=24 * 60),
]


def ensure_schedules() -> list[str]:
    """Create or update each schedule by name; running it again changes nothing."""
    changed = []
    for periodic in PERIODIC:
        _, created = Schedule.objects.update_or_create(
            name=periodic.name,
            defaults={
                "func": periodic.func,
                "schedule_type": Schedule.MINUTES,
                "minutes": periodic.minutes,
                "repeats": -1,
            },
        )
        changed.append(
            f"{'created' if created else 'kept'} {periodic.name} ({periodic.func} every {periodic.minutes} min)"
        )
    return changed
