"""Create the demo world (crm.demo): staff logins, two pipelines, customers, about twenty jobs and
their visits."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import F, Q

from crm.checks import TWILIO_BACKEND
from crm.demo import DEFAULT_PASSWORD, USERS, seed_demo_world
from crm.errors import DomainError
from crm.models import Contact, Customer, Job, JobEvent, Message, Milestone, Pipeline, StageTemplate, Visit
from crm.sms_twilio import TWILIO_API_URL
from crm.workdays import business_today

DEMO_SMS_BACKENDS = ("crm.sms.ConsoleSmsBackend", "crm.sms.MemorySmsBackend")


def demo_texts_stay_local() -> bool:
    if settings.SMS_BACKEND in DEMO_SMS_BACKENDS:
        return True
    return settings.SMS_BACKEND == TWILIO_BACKEND and settings.TWILIO_API_URL.rstrip("/") != TWILIO_API_URL


class Command(BaseCommand):
    help = (
        "Create demo users, pipelines, customers, jobs and visits. Safe to run again: whatever exists is "
        "left alone. The password comes from DEMO_PASSWORD (default 'demo', only allowed with DEBUG on)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing unless something goes wrong.")

    def handle(self, *args: Any, quiet: bool = False, verbosity: int = 1, **options: Any) -> None:
        password = os.environ.get("DEMO_PASSWORD", "")
        # A superuser with a well-known password must never reach a real deployment by accident.
        if not password and not settings.DEBUG:
            raise CommandError(
                "DEBUG is off: set DEMO_PASSWORD to seed demo logins outside development "
                f"(the default '{DEFAULT_PASSWORD}' is only used with DJANGO_DEBUG=1)."
            )
        # The demo's contacts who agreed to texts have numbers texts reach (crm.demo): only ever
        # printed, kept, or handed to a fake Twilio (TWILIO_API_URL another address), never sent.
        if not demo_texts_stay_local():
            raise CommandError(
                f"SMS_BACKEND is {settings.SMS_BACKEND}: the demo's contacts would be texted for real. "
                "Seed the demo with the console SMS backend (leave SMS_BACKEND unset), or Twilio's pointed at "
                "the fake one (TWILIO_API_URL, python -m tests.fake_twilio)."
            )
        verbosity = 0 if quiet else verbosity
        try:
            result = seed_demo_world(
                password=password or DEFAULT_PASSWORD,
                log=self.stdout.write if verbosity >= 2 else lambda line: None,
            )
        except DomainError as error:
            # E.g. an existing "bob" who is not staff cannot own jobs; nothing was written.
            raise CommandError(f"Nothing was created: {error}") from error
        for problem in result.skipped:
            self.stderr.write(f"Skipped {problem}")
        if verbosity < 1:
            return

        if result.created:
            made = ", ".join(f"{count} {kind}" for kind, count in result.created.items())
            self.stdout.write(self.style.SUCCESS(f"Demo data created: {made}."))
        else:
            self.stdout.write("Demo data already present: nothing to create.")
        self._write_logins(password_from_env=bool(password), new_users=result.new_users)
        self._write_counts()

    def _write_logins(self, *, password_from_env: bool, new_users: list[str]) -> None:
        shown = "the value of DEMO_PASSWORD" if password_from_env else f"'{DEFAULT_PASSWORD}'"
        self.stdout.write(f"Logins (password {shown}, set only when the user was created):")
        for spec in USERS:
            note = "" if spec.username in new_users else " (already existed, password unchanged)"
            self.stdout.write(f"  {spec.username:<8} {spec.first_name} {spec.last_name}, {spec.role}{note}")

    def _write_counts(self) -> None:
        today = business_today()
        statuses = dict.fromkeys(Job.Status.values, 0)
        for status in Job.objects.values_list("status", flat=True):
            statuses[status] += 1
        late = (
            Job.objects.filter(status__in=Job.OPEN_STATUSES)
            .filter(
                Q(milestones__completed_at__isnull=True)
                & (
                    Q(milestones__forecast_date__lt=today)
                    | Q(milestones__forecast_date__gt=F("milestones__planned_date"))
                )
            )
            .distinct()
            .count()
        )
        status_line = ", ".join(f"{count} {Job.Status(status).label.lower()}" for status, count in statuses.items())
        self.stdout.write(
            f"In the database: {User.objects.filter(is_staff=True).count()} staff users, "
            f"{Group.objects.count()} groups, {Pipeline.objects.count()} pipelines "
            f"({StageTemplate.objects.count()} stages), {Customer.objects.count()} customers "
            f"({Contact.objects.count()} contacts), {Job.objects.count()} jobs ({status_line}; "
            f"{late} open running late), {Milestone.objects.count()} milestones, {Visit.objects.count()} visits, "
            f"{JobEvent.objects.count()} events, {Message.objects.count()} messages."
        )
