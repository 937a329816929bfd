from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from rich.progress import Progress

from patronage.ops.demo import demo_load


class Command(BaseCommand):
    help = "Fill the database with demo shops (demo-shop live, demo-sandbox sandbox) and customers, in bulk."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--customers", type=int, default=3000, help="Live customers to add (default 3000)"
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed, for repeatable data")

    def handle(self, *args: Any, **options: Any) -> None:
        total = options["customers"] + max(options["customers"] // 10, 1)
        with Progress(transient=True) as progress:
            bar = progress.add_task("Loading demo customers", total=total)
            made = demo_load(
                customers=options["customers"],
                seed=options["seed"],
                progress=lambda n: progress.advance(bar, n),
            )
        self.stdout.write(f"Added {made} customer profiles to demo-shop (live) and demo-sandbox (sandbox).")
