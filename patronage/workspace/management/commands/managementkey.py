from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil import parser as date_parser
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.errors import DomainError
from patronage.workspace.models import ManagementKey
from patronage.workspace.services import management_key_create, management_key_revoke

EXPIRES_HELP = (
    "When the key stops working: a date (YYYY-MM-DD, at 00:00 UTC that day) or an ISO 8601 time with "
    "its zone (e.g. 2027-01-31T18:00:00+01:00); default never"
)


def parse_expiry(text: str) -> dt.datetime:
    """``--expires``: a plain date means the start of that day in UTC; a time must name its zone."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
        moment = date_parser.isoparse(text)
    except ValueError as exc:
        raise CommandError(f"--expires {text!r}: {exc}; use YYYY-MM-DD or an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise CommandError(f"--expires {text!r} needs a time zone, e.g. {text}Z, or give only the date")
    return moment


class Command(BaseCommand):
    help = (
        "Create, list and revoke Management API keys. A key belongs to a staff user and can do what that "
        "user can do, never more; send it as 'Authorization: ManagementKey-v1 <key>'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key and print it once.")
        create.add_argument("--name", required=True, help="What the key is for, e.g. 'nightly export'")
        create.add_argument("--expires", metavar="DATE", help=EXPIRES_HELP)
        create.add_argument(
            "--user",
            metavar="USERNAME",
            help="Username of the staff user the key acts as (default: the only superuser, if there is one)",
        )
        listing = sub.add_parser("list", help="List keys (prefixes only, never the secrets).")
        listing.add_argument(
            "--user", metavar="USERNAME", help="Only this staff user's keys (default: everyone's)"
        )
        revoke = sub.add_parser("revoke", help="Revoke a key by its prefix; it is refused with 401 at once.")
        revoke.add_argument("prefix", help="The first characters of the key, as shown by list")

    def _user(self, username: str | None) -> Any:
        users = get_user_model().objects
        if username:
            user = users.filter(username=username).first()
            if user is None:
                raise CommandError(f"No user {username!r}")
            return user
        superusers = list(users.filter(is_superuser=True, is_active=True).order_by("username")[:10])
        if len(superusers) == 1:
            return superusers[0]
        if not superusers:
            raise CommandError("No superuser yet: say whose key it is with --user USERNAME")
        names = ", ".join(user.get_username() for user in superusers)
        raise CommandError(f"Several superusers ({names}): say whose key it is with --user USERNAME")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            user = self._user(options["user"])
            expires = parse_expiry(options["expires"]) if options["expires"] else None
            try:
                _, plaintext = management_key_create(user=user, name=options["name"], expires_at=expires)
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stderr.write(
                f"Management API key of {user.get_username()}; it is shown only this once. "
                "Send it as 'Authorization: ManagementKey-v1 <key>':"
            )
            self.stdout.write(plaintext)
        elif action == "list":
            keys = ManagementKey.objects.select_related("user")
            if options["user"]:
                keys = keys.filter(user=self._user(options["user"]))
            for key in keys:
                expiry = key.expires_at.isoformat() if key.expires_at else "never"
                used = key.last_used_at.isoformat(timespec="minutes") if key.last_used_at else "never"
                self.stdout.write(
                    f"{key.prefix}  {key.status:8}  {key.user.get_username()}  expires {expiry}  "
                    f"last used {used}  {key.name}"
                )
        else:
            matches = list(ManagementKey.objects.filter(prefix__startswith=options["prefix"])[:2])
            if not matches:
                raise CommandError(f"No Management API key starts with {options['prefix']!r}")
            if len(matches) > 1:
                raise CommandError(f"Several keys start with {options['prefix']!r}; give more characters")
            management_key_revoke(key=matches[0])
            self.stdout.write(f"Revoked {matches[0]} of {matches[0].user.get_username()}")
