import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patronage.core.errors import DomainError
from patronage.core.progress import cli_progress
from patronage.mailings.models import Mailing
from patronage.mailings.selectors import mailing_progress
from patronage.mailings.sending import mailing_send_run
from patronage.mailings.services import mailing_start


class Command(BaseCommand):
    help = (
        "Send a mailing in the foreground with a progress bar: `patronage mailing send ID` starts a draft "
        "(after the same checks as the back office) or goes on with one that is sending. Exit status 1 when "
        "the send stopped before the end (the reason is printed; run it again to resume)."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("verb", choices=["send"], help="What to do: send (the only verb for now)")
        parser.add_argument(
            "mailing_id", type=int, help="The mailing's number, as in its back-office address (/mailing/ID/)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        mailing = Mailing.objects.filter(pk=options["mailing_id"]).first()
        if mailing is None:
            raise CommandError(f"No mailing #{options['mailing_id']}", returncode=2)
        if mailing.status == Mailing.Status.SENT:
            self.stdout.write(f"Mailing “{mailing}” was already sent.")
            return
        if mailing.status == Mailing.Status.DRAFT:
            try:
                mailing = mailing_start(mailing=mailing, enqueue=False)
            except DomainError as exc:
                raise CommandError(exc.message, returncode=2) from exc
        total = mailing_progress(mailing).total
        done = {"prepare": 0, "deliver": 0}

        with cli_progress(self.stderr.write, unit="messages") as listener:

            def progress(phase: str, count: int) -> None:
                done[phase] += count
                label = "Preparing (codes, rendering)" if phase == "prepare" else "Delivering"
                listener(phase=label, rows=done[phase], fraction=done[phase] / total if total else 1.0)

            outcome = mailing_send_run(mailing_id=mailing.pk, progress=progress)
        counts = mailing_progress(Mailing.objects.get(pk=mailing.pk)).counts
        summary = ", ".join(f"{counts.get(status, 0):,} {status}" for status in ("sent", "failed", "skipped"))
        if outcome.finished:
            self.stdout.write(self.style.SUCCESS(f"Mailing “{mailing}” sent: {summary}."))
            return
        self.stdout.write(self.style.ERROR(f"Stopped: {outcome.stopped or 'not finished'} ({summary})."))
        sys.exit(1)
