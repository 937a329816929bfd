import os
import shutil
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, then run the production web server (gunicorn, several workers) on DATABASE_URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=f"127.0.0.1:{os.environ.get('PORT', '8000')}",
            help="Address and port to listen on; 0.0.0.0:PORT for every interface (default: %(default)s, "
            "the port from PORT)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("WEB_CONCURRENCY", str((os.cpu_count() or 1) * 2 + 1))),
            help="gunicorn worker processes, each with its own database connection; also from "
            "WEB_CONCURRENCY (default: %(default)s, 2 x cores + 1)",
        )
        parser.add_argument("--no-migrate", action="store_true", help="Skip applying migrations first")
        parser.add_argument(
            "--wsgi-app",
            default="patronage.wsgi",
            help="WSGI application to serve, as gunicorn names it (default: patronage.wsgi)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("createcachetable", verbosity=0)
        gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
        argv = [
            gunicorn,
            options["wsgi_app"],
            "--bind",
            options["bind"],
            "--workers",
            str(options["workers"]),
            "--keep-alive",
            "30",
            # Back-office bulk actions over hundreds of thousands of customers run in the request.
            "--timeout",
            os.environ.get("REQUEST_TIMEOUT", "300"),
        ]
        if os.environ.get("ACCESS_LOG"):
            # Without it gunicorn skips the access log altogether; a log file of /dev/null would still cost
            # the formatting of every line.
            argv += ["--access-logfile", "-"]
        self.stderr.write(f"Serving on http://{options['bind']} with {options['workers']} workers")
        os.execv(gunicorn, argv)
