from __future__ import annotations

import argparse
from typing import Any

from dateutil import parser as date_parser
from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core import clock
from patronage.core.errors import DomainError
from patronage.workspace.models import ApiKey, Application
from patronage.workspace.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Create, list and revoke Integration API keys of an application."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key and print it once.")
        create.add_argument("--application", required=True, help="Application slug, e.g. demo-shop")
        create.add_argument(
            "--environment",
            choices=["sandbox", "live"],
            help="Refuse unless the application is in this environment (a guard for scripts).",
        )
        create.add_argument("--name", default="", help="What the key is for (default: created from the CLI)")
        create.add_argument("--expires", help="Expiry, ISO 8601 (e.g. 2027-01-31T00:00:00Z); default never")
        listing = sub.add_parser("list", help="List the keys of an application (never the secrets).")
        listing.add_argument("--application", required=True, help="Application slug, e.g. demo-shop")
        revoke = sub.add_parser("revoke", help="Revoke a key by its prefix.")
        revoke.add_argument("--application", required=True, help="Application slug, e.g. demo-shop")
        revoke.add_argument("prefix", help="The first characters of the key, as shown by list")
        for p in (create, listing, revoke):
            p.formatter_class = argparse.ArgumentDefaultsHelpFormatter

    def _application(self, slug: str) -> Application:
        app = Application.objects.select_related("environment").filter(slug=slug).first()
        if app is None:
            known = ", ".join(Application.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No application with slug {slug!r} (known: {known})")
        return app

    def handle(self, *args: Any, **options: Any) -> None:
        app = self._application(options["application"])
        action = options["action"]
        if action == "create":
            if options["environment"] and app.environment.slug != options["environment"]:
                raise CommandError(
                    f"Application {app.slug} is in {app.environment.slug}, not {options['environment']}"
                )
            expires = None
            if options["expires"]:
                try:
                    expires = date_parser.isoparse(options["expires"])
                except ValueError as exc:
                    raise CommandError(f"--expires: {exc}") from exc
                if expires.tzinfo is None:
                    raise CommandError("--expires needs a time zone, e.g. 2027-01-31T00:00:00Z")
            try:
                _, plaintext = api_key_create(
                    application=app,
                    name=options["name"] or f"CLI {clock.now():%Y-%m-%d %H:%M}",
                    expires_at=expires,
                )
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stderr.write(f"API key for {app.slug} ({app.environment.slug}); it is shown only this once:")
            self.stdout.write(plaintext)
        elif action == "list":
            for key in ApiKey.objects.filter(application=app):
                expiry = key.expires_at.isoformat() if key.expires_at else "never"
                self.stdout.write(f"{key.prefix}  {key.status:8}  expires {expiry}  {key.name}")
        else:
            matches = list(ApiKey.objects.filter(application=app, prefix__startswith=options["prefix"]))
            if len(matches) != 1:
                raise CommandError(f"{len(matches)} keys match {options['prefix']!r}; give more characters")
            api_key_revoke(api_key=matches[0])
            self.stdout.write(f"Revoked {matches[0]}")
