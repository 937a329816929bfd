"""Progress of long CLI jobs (imports, mailings): a rich bar on a terminal, a line a second otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

PLAIN_PROGRESS_SECONDS = 1.0


class Listener(Protocol):
    def __call__(self, *, phase: str, rows: int, fraction: float) -> None: ...


class PlainProgress:
    """Progress as a line a second, for logs and pipes (a bar only makes sense on a terminal)."""

    def __init__(self, write: Callable[[str], Any], unit: str = "rows") -> None:
        self.write = write
        self.unit = unit
        self.last = 0.0

    def __call__(self, *, phase: str, rows: int, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last >= PLAIN_PROGRESS_SECONDS:
            self.last = now
            self.write(f"{phase}: {rows:,} {self.unit}, {fraction:.0%}")


@contextmanager
def cli_progress(write: Callable[[str], Any], *, unit: str = "rows") -> Iterator[Listener]:
    """A listener drawing a bar on stderr when it is a terminal, else writing lines through ``write``."""
    if not sys.stderr.isatty():
        yield PlainProgress(write, unit)
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} " + unit),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("Starting", total=1.0, rows=0)

        def show(*, phase: str, rows: int, fraction: float) -> None:
            bar.update(task, description=phase, completed=fraction, rows=rows)

        yield show
        bar.update(task, completed=1.0)
