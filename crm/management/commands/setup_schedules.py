from typing import Any

from django.core.management.base import BaseCommand

from crm.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules (outbox sweep, ...). Safe to run at every deploy."

    def handle(self, *args: Any, **options: Any) -> None:
        for line in ensure_schedules():
            self.stdout.write(line)
