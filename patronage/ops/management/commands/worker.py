from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from patronage.mailings.sweeper import StalledMailingsSweeper


class Command(BaseCommand):
    help = (
        "Run a background job worker (imports, exports, mailings). Start several to scale out. "
        "Each also resumes mailings whose sender stopped (a killed worker)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sweeper = StalledMailingsSweeper()
        sweeper.start()
        try:
            call_command("db_worker", verbosity=options["verbosity"])
        finally:
            sweeper.stop()
