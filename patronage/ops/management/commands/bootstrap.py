import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from patronage.ops.demo import (
    demo_campaigns,
    demo_load,
    demo_mailing,
    demo_offers,
    demo_panel_customer,
    demo_segment,
)
from patronage.ops.demo_codes import demo_codes
from patronage.workspace.models import Application

CREDENTIALS_FILE = "admin-credentials.txt"


class Command(BaseCommand):
    help = (
        "First-start setup: apply migrations, create the first admin account with a random password (printed "
        "once) and, unless --no-demo, load demo data into an empty database. Safe to run again: what exists "
        "stays as it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-demo",
            action="store_true",
            help="Load no demo shops or customers (for a production database)",
        )
        parser.add_argument(
            "--demo-customers",
            type=int,
            default=3000,
            help="Demo customers to load into an empty database (default: %(default)s; 0 = none)",
        )
        parser.add_argument(
            "--admin-username",
            default=os.environ.get("PATRONAGE_ADMIN_USERNAME", "admin"),
            help="First admin account's username, or PATRONAGE_ADMIN_USERNAME (default: %(default)s)",
        )
        parser.add_argument(
            "--admin-email",
            default=os.environ.get("PATRONAGE_ADMIN_EMAIL", "admin@localhost"),
            help="First admin account's email, or PATRONAGE_ADMIN_EMAIL (default: %(default)s)",
        )
        parser.add_argument(
            "--no-migrate",
            action="store_true",
            help="Skip applying migrations first (they are applied already)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["admin_username"].strip()
        if not username:
            raise CommandError("--admin-username: give a username")
        try:
            validate_email(options["admin_email"])
        except ValidationError as exc:
            # admin@localhost, the default, is valid to Django's validator.
            raise CommandError(f"--admin-email: {options['admin_email']!r} is not an email address") from exc
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("createcachetable", verbosity=0)
        self._admin(username, options["admin_email"])
        if options["no_demo"] or options["demo_customers"] <= 0:
            return
        if not Application.objects.exists():
            self._demo(options["demo_customers"])

    def _admin(self, username: str, email: str) -> None:
        user_model = get_user_model()
        existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(f"An admin account exists already ({existing.get_username()}); not changed.")
            return
        if user_model.objects.filter(username=username).exists():
            raise CommandError(
                f"--admin-username: a user named {username!r} exists already and is not an admin"
            )
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username, email, password)
        path = settings.VAR_DIR / CREDENTIALS_FILE
        path.write_text(f"username: {username}\npassword: {password}\n")
        path.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(f"Created the admin account: username {username}, password {password}")
            + f"\n(also written to {path}; this is the only time it is printed)"
        )

    def _demo(self, customers: int) -> None:
        path = settings.VAR_DIR / CREDENTIALS_FILE
        self.stdout.write(f"Loading demo data ({customers} customers)...")
        demo_load(customers=customers)
        email, password = demo_panel_customer()
        demo_offers(email=email)
        demo_mailing()
        demo_segment()
        demo_campaigns()
        demo_codes(email=email)
        with path.open("a") as f:
            f.write(f"customer panel (/panel/demo-shop/): {email} / {password}\n")
        path.chmod(0o600)
        self.stdout.write(
            f"Customer panel: /panel/demo-shop/ - sign in as {email}, password {password} (also in {path})"
        )
