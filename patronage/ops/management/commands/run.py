import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Everything for local use: migrate, first-start setup, a job worker and the web app until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            default=os.environ.get("PORT", "8000"),
            help="Port on 127.0.0.1 to serve on, also from PORT (default: %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Migrates, creates the admin account and loads the demo data on the first start.
        call_command("bootstrap")
        port = options["port"]
        if "EMAIL_BACKEND" not in os.environ and "EMAIL_HOST" not in os.environ:
            # No SMTP server to talk to on a fresh machine: the worker writes mail to files instead, and the
            # back office shows every recipient's message either way.
            os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
            self.stdout.write(f"Email: written to {settings.EMAIL_FILE_PATH} (set EMAIL_HOST for SMTP)")
        worker = subprocess.Popen([sys.executable, "-m", "patronage.cli", "worker"])
        # A plain `kill` must also stop the worker, not only Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(f"Back office: http://127.0.0.1:{port}/admin/  (Integration API docs: /docs)")
        self.stdout.write(f"Customer panel of the demo shop: http://127.0.0.1:{port}/panel/demo-shop/")
        try:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True)
        finally:
            worker.terminate()
            worker.wait(timeout=10)
