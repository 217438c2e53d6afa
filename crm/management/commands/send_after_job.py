from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.services.checkins import check_ins_send
from crm.services.surveys import invitations_send
from crm.workdays import business_zone


class Command(BaseCommand):
    help = (
        "Send the survey invitations and check-ins that are due, as the schedule does every 15 minutes. "
        "--days-ahead or --as-of run it as if the clock said so (to try it out: a survey is due the "
        "morning after the stage, a check-in weeks after completion)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--days-ahead", type=int, default=0, help="Run as if it were this many days later.")
        group.add_argument(
            "--as-of", default="", help="Run as if it were this time (ISO 8601; without an offset: business time)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        at = self._moment(options["as_of"], options["days_ahead"])
        surveys = invitations_send(now=at)
        check_ins = check_ins_send(now=at)
        self.stdout.write(f"As of {at.astimezone(business_zone()):%Y-%m-%d %H:%M %Z}:")
        self.stdout.write(f"  survey invitations queued: {surveys}")
        self.stdout.write(f"  check-ins queued: {check_ins}")

    def _moment(self, as_of: str, days_ahead: int) -> datetime:
        if not as_of:
            return timezone.now() + timedelta(days=days_ahead)
        moment = parse_datetime(as_of)
        if moment is None:
            raise CommandError(f"Not a date and time: {as_of!r} (try 2026-03-04T10:00).")
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=business_zone())
