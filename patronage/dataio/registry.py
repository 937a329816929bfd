"""Kinds of import and export, registered by the apps that own the data.

This app stores an upload, runs it as a background job, shows its progress and its bad rows, and offers
``patronage import KIND`` / ``patronage export KIND``. What a file of a kind means belongs to the app that
owns those rows: it registers an :class:`Importer` / :class:`Exporter` from its ``AppConfig.ready()``
(customers registers ``"customers"``; offers and promo codes follow). Nothing here knows any kind.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from patronage.core.errors import ErrorDetail, NotFound
from patronage.workspace.models import Environment

ProblemSink = Callable[[Sequence[ErrorDetail]], None]
"""Receives bad rows as they are found: ``ErrorDetail(line=..., pointer=<column>, details=<reason>)``."""


class Progress(Protocol):
    def __call__(self, *, phase: str, rows: int, fraction: float) -> None:
        """``rows`` read so far; ``fraction`` of the whole job done, 0..1."""


@dataclass
class ImportOutcome:
    total_rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0  # bad rows left out (only when skipping bad rows)
    unchanged: int = 0  # good rows that were already so (e.g. an email already assigned to the offer)
    bad_rows: int = 0
    applied: bool = False  # False: the database is exactly as before the import
    notes: list[str] = field(default_factory=list)  # e.g. how password hashing was spread over cores


class ImportRun(Protocol):
    def __call__(
        self,
        *,
        source: IO[bytes],
        size: int,
        environment: Environment,
        skip_bad_rows: bool,
        progress: Progress,
        problems: ProblemSink,
    ) -> ImportOutcome:
        """Apply the file all-or-nothing (good rows only with ``skip_bad_rows``).

        A file that cannot be read at all (encoding, header) raises ``ValidationFailed``. An importer
        that declares :attr:`Importer.options` is also given ``options=`` (the job's cleaned values).
        """


@dataclass(frozen=True)
class ImportOption:
    """A per-kind setting of an import besides its file, e.g. the one offer a file of emails is for.

    ``name`` is the key in ``ImportJob.options``, the CLI's ``--<name>`` and the New import page's URL
    parameter (``?kind=...&<name>=...``), so a button elsewhere in the back office can open the form
    with it filled in.
    """

    name: str
    label: str  # "Offer"
    help: str  # for the CLI and the form
    # What a person gave (CLI value, URL parameter) -> the stored value; raises DomainError when unusable,
    # also when it does not belong to the environment (None: not chosen yet, any will do).
    clean: Callable[[str, Environment | None], Any]
    # The stored value as the job page shows it.
    describe: Callable[[Any], str] = str
    # The environment the value belongs to, when it fixes one (the form then preselects it).
    environment_of: Callable[[Any], str | None] = lambda value: None


@dataclass(frozen=True)
class Importer:
    kind: str  # the CLI word and the stored job kind: "customers"
    label: str  # "Customers"
    run: ImportRun
    check_header: Callable[[Sequence[str]], object]  # raises ValidationFailed for a header it cannot take
    sample: Callable[[], str]  # a small example file, offered for download
    help: str = ""  # the columns, in a sentence or two
    permissions: tuple[str, ...] = ()  # Django permissions a staff member needs to run it
    options: tuple[ImportOption, ...] = ()
    # The counts the job page shows, of ImportOutcome's created / updated / unchanged / skipped.
    counts: tuple[str, ...] = ("created", "updated", "skipped")
    # Given ``job=`` (the ImportJob) too, e.g. to name its file and user in an audit.
    takes_job: bool = False

    def option(self, name: str) -> ImportOption:
        for option in self.options:
            if option.name == name:
                return option
        raise NotFound(f"An import of {self.label.lower()} takes no option {name!r}")


class ExportStream(Protocol):
    rows: int  # rows written so far

    def __iter__(self) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Exporter:
    kind: str
    label: str
    add_arguments: Callable[[argparse.ArgumentParser], None]  # the kind's filter options for the CLI
    # The file for parsed CLI options; bad option values raise ValidationFailed.
    stream: Callable[[Environment, dict[str, Any]], ExportStream]


_importers: dict[str, Importer] = {}
_exporters: dict[str, Exporter] = {}


def register_importer(importer: Importer) -> None:
    _importers[importer.kind] = importer


def register_exporter(exporter: Exporter) -> None:
    _exporters[exporter.kind] = exporter


# In registration order, i.e. INSTALLED_APPS order: customers first, the form's default type.
def importers() -> list[Importer]:
    return list(_importers.values())


def exporters() -> list[Exporter]:
    return list(_exporters.values())


def importer_get(kind: str) -> Importer:
    try:
        return _importers[kind]
    except KeyError:
        known = ", ".join(sorted(_importers)) or "none"
        raise NotFound(f"No import of kind {kind!r} (known: {known})") from None


def exporter_get(kind: str) -> Exporter:
    try:
        return _exporters[kind]
    except KeyError:
        known = ", ".join(sorted(_exporters)) or "none"
        raise NotFound(f"No export of kind {kind!r} (known: {known})") from None
