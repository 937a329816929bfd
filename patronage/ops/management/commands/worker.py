from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from patronage.ops.sweeper import StalledWorkSweeper


class Command(BaseCommand):
    help = (
        "Run a background job worker (imports, exports, mailings). Start several to scale out. "
        "Each also resumes mailings whose sender stopped and fails imports whose process went away "
        "(a killed worker), every 30 seconds."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sweeper = StalledWorkSweeper()
        sweeper.start()
        try:
            call_command("db_worker", verbosity=options["verbosity"])
        finally:
            sweeper.stop()
