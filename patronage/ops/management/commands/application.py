from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.errors import DomainError
from patronage.workspace.models import Application
from patronage.workspace.services import application_create

# The model's field names as the command's options, so an error names what the user typed.
OPTION_OF_FIELD = {
    "name": "--name",
    "slug": "--slug",
    "environment": "--environment",
    "currency": "--currency",
    "time_zone": "--time-zone",
    "description": "--description",
}


class Command(BaseCommand):
    help = "Create and list applications (shops): what Integration API keys and customer sessions belong to."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create an application.")
        create.add_argument("--name", required=True, help="Name staff see, e.g. 'Berlin web shop'")
        create.add_argument(
            "--slug",
            required=True,
            help="Short unique identifier used by the CLI and the panel URL (letters, digits, - and _)",
        )
        create.add_argument(
            "--environment",
            required=True,
            choices=["live", "sandbox"],
            help="Live for real customers, sandbox for trying things out (customer data is per environment)",
        )
        create.add_argument(
            "--currency", default="USD", help="ISO 4217 currency code, e.g. EUR (default: %(default)s)"
        )
        create.add_argument(
            "--time-zone",
            default="UTC",
            help="IANA time zone for dates and calendar rules, e.g. Europe/Berlin (default: %(default)s)",
        )
        create.add_argument("--description", default="", help="Free text for staff (default: empty)")
        sub.add_parser("list", help="List every application with its environment, currency and time zone.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for app in Application.objects.select_related("environment").order_by("slug"):
                self.stdout.write(
                    f"{app.slug}  {app.environment.slug:7}  {app.currency}  {app.time_zone}  {app.name}"
                )
            return
        slug = options["slug"]
        if Application.objects.filter(slug=slug).exists():
            raise CommandError(f"--slug: an application with slug {slug!r} exists already; choose another")
        try:
            app = application_create(
                name=options["name"],
                slug=slug,
                environment=options["environment"],
                currency=options["currency"].strip().upper(),
                time_zone=options["time_zone"].strip(),
                description=options["description"],
            )
        except ValidationError as exc:
            problems = [
                f"{OPTION_OF_FIELD.get(field, field)}: {' '.join(messages)}"
                for field, messages in exc.message_dict.items()
            ]
            raise CommandError("\n".join(problems)) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Created application {app.slug} ({app.environment.slug}, {app.currency}, {app.time_zone}). "
            f"Next: patronage apikey create --application {app.slug}"
        )
