from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run a background job worker (imports, exports, mailings). Start several to scale out."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("db_worker", verbosity=options["verbosity"])
