from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from crm.roles import roles_ensure


class Command(BaseCommand):
    help = (
        "Make the groups “Staff” and “Managers” carry exactly the permissions of crm/roles.py "
        "(migrate does it too). Safe to run at every deploy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database to set up.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = roles_ensure(using=options["database"])
        for line in result.changes:
            self.stdout.write(line)
        if not result.changes:
            self.stdout.write("The roles are as crm/roles.py defines them: nothing changed.")
        if result.skipped:
            self.stdout.write(f"Not in this database (their app is not installed): {', '.join(result.skipped)}.")
