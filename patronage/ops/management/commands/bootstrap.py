import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from patronage.ops.demo import (
    demo_load,
    demo_mailing,
    demo_offers,
    demo_panel_customer,
    demo_segment,
)
from patronage.workspace.models import Application

CREDENTIALS_FILE = "admin-credentials.txt"


class Command(BaseCommand):
    help = "First-start setup: an admin account with a random password (printed once) and demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo-customers", type=int, default=3000)

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        path = settings.VAR_DIR / CREDENTIALS_FILE
        if not user_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@localhost", password)
            path.write_text(f"username: admin\npassword: {password}\n")
            path.chmod(0o600)
            self.stdout.write(
                self.style.SUCCESS(f"Created the admin account: username admin, password {password}")
                + f"\n(also written to {path}; this is the only time it is printed)"
            )
        if not Application.objects.exists() and options["demo_customers"] > 0:
            self.stdout.write(f"Loading demo data ({options['demo_customers']} customers)...")
            demo_load(customers=options["demo_customers"])
            email, password = demo_panel_customer()
            demo_offers(email=email)
            demo_mailing()
            demo_segment()
            with path.open("a") as f:
                f.write(f"customer panel (/panel/demo-shop/): {email} / {password}\n")
            self.stdout.write(
                f"Customer panel: /panel/demo-shop/ - sign in as {email}, password {password}"
                f" (also in {path})"
            )
