"""Promo codes from a file into a group: ``patronage import promocodes --group NAME FILE``, the back office's
Import/Export ("Promo codes", opened from a group with ``?kind=promocodes&group=<id>``).

The file
    Plain text or a one-column CSV, UTF-8: one code per line, no header needed. A first line that is just
    ``Code`` / ``Promo code`` is taken as a header and skipped; a code in double quotes (as spreadsheets
    save it) loses them. Otherwise the rules are the upload's (see ``uploads``): trimmed, blank lines
    ignored, invalid lines reported by number, duplicates reported and skipped.

As every import: an invalid line stops the whole file (nothing changes) unless bad rows are skipped.
Duplicates are not bad rows: they count as unchanged. Counts: created = added, unchanged = duplicates,
skipped = invalid.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import IO, Any

from patronage.core.csvio import CountingReader
from patronage.core.errors import ErrorDetail, NotFound, ValidationFailed
from patronage.dataio.registry import (
    Importer,
    ImportOption,
    ImportOutcome,
    ProblemSink,
    Progress,
    register_importer,
)
from patronage.workspace.models import Environment

from .models import PromoCodeGroup
from .services import promo_codes_add
from .uploads import INVALID, parse_codes

KIND = "promocodes"
HEADERS = {"code", "codes", "promo code", "promo codes", "promocode", "promocodes", "promo_code"}
PROGRESS_LINES = 100_000


def check_codes_header(header: Sequence[str]) -> list[str]:
    if len(header) > 1:
        raise ValidationFailed(
            f"One code per line, please: the first line has {len(header)} columns",
            details=[ErrorDetail("Invalid value", "more than one column", line=1)],
        )
    return list(header)


def _group_by_name_or_id(value: str, environment: Environment | None) -> PromoCodeGroup:
    """The group named (case-insensitively) in the environment, or by id (the back office's link)."""
    groups = PromoCodeGroup.objects.select_related("environment")
    named = groups.filter(name__iexact=value.strip())
    if environment is not None:
        named = named.filter(environment=environment)
    found = list(named[:2])
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValidationFailed(f"Groups named {value!r} are in several environments: choose the environment")
    group = groups.filter(pk=int(value)).first() if value.isdigit() else None
    if group is None:
        where = f" in {environment}" if environment is not None else ""
        raise NotFound(f"No group of promo codes named {value!r}{where}: create it in the back office first")
    return group


def _clean_group_option(value: str, environment: Environment | None) -> int:
    group = _group_by_name_or_id(str(value), environment)
    if environment is not None and group.environment_id != environment.pk:
        raise ValidationFailed(
            f"Group {group.name} is in {group.environment}, not {environment}: import into its environment"
        )
    return group.pk


def _describe_group_option(value: Any) -> str:
    group = PromoCodeGroup.objects.filter(pk=value).first()
    return group.name if group else f"group #{value} (deleted)"


def _group_environment(value: Any) -> str | None:
    return PromoCodeGroup.objects.filter(pk=value).values_list("environment__slug", flat=True).first()


GROUP_OPTION = ImportOption(
    name="group",
    label="Group of promo codes",
    help="the name of the group the codes go into (required)",
    clean=_clean_group_option,
    describe=_describe_group_option,
    environment_of=_group_environment,
)


def _lines(
    text: Iterable[str], read: list[int], progress: Progress, size: int, counter: CountingReader
) -> Iterator[str]:
    """The file's lines as codes: a header skipped, spreadsheet quotes removed, progress now and then."""
    for number, line in enumerate(text, start=1):
        code = line.strip()
        if number == 1 and code.lstrip("\ufeff").strip('"').lower() in HEADERS:
            code = ""
        elif len(code) > 1 and code[0] == '"' and code[-1] == '"':
            code = code[1:-1]
        read[0] = number
        if number % PROGRESS_LINES == 0:
            fraction = min(1.0, counter.count / size) if size else 1.0
            progress(phase="Reading and checking codes", rows=number, fraction=0.6 * fraction)
        yield code


def _by_line(found: Sequence[ErrorDetail]) -> list[ErrorDetail]:
    """The upload's problems (their details start "Line N: ") for an import, which shows the line apart."""
    return [replace(p, details=p.details.removeprefix(f"Line {p.line}: ")) if p.line else p for p in found]


def import_promo_codes(
    *,
    source: IO[bytes],
    size: int,
    environment: Environment,
    skip_bad_rows: bool,
    progress: Progress,
    problems: ProblemSink,
    options: dict[str, Any] | None = None,
) -> ImportOutcome:
    group_id = (options or {}).get("group")
    if not group_id:
        raise ValidationFailed("Choose the group of promo codes the file goes into (--group NAME)")
    group = PromoCodeGroup.objects.filter(pk=group_id, environment=environment).first()
    if group is None:
        raise ValidationFailed(
            f"The group this import is for (#{group_id}) was deleted or is not in {environment}"
        )
    counter = CountingReader(source)
    text = io.TextIOWrapper(io.BufferedReader(counter, buffer_size=256 * 1024), encoding="utf-8-sig")
    read = [0]
    try:
        parsed = parse_codes(_lines(text, read, progress, size, counter))
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            f"The file is not UTF-8 text (near line {read[0] + 1}): save it as UTF-8 and upload it again",
            details=[ErrorDetail("Invalid value", "not UTF-8", line=read[0] + 1)],
        ) from exc
    outcome = ImportOutcome(total_rows=read[0], bad_rows=parsed.invalid)
    if parsed.invalid and not skip_bad_rows:
        problems(_by_line([problem for problem in parsed.problems if problem.title == INVALID]))
        return outcome
    progress(phase="Saving", rows=outcome.total_rows, fraction=0.65)
    result = promo_codes_add(group=group, parsed=parsed)
    problems(_by_line(result.problems))
    outcome.created = result.added
    outcome.unchanged = result.duplicates
    outcome.skipped = result.invalid
    outcome.applied = True
    return outcome


IMPORTER = Importer(
    kind=KIND,
    label="Promo codes",
    run=import_promo_codes,
    check_header=check_codes_header,
    sample=lambda: "SPRING-7Q2K\nSPRING-M4XZ\nSPRING-9HTC\n",
    help=(
        "One code per line (letters, digits, - and _), no header needed, into the group chosen. "
        "Codes already in the environment are reported and skipped."
    ),
    permissions=("promocodes.add_promocode",),
    options=(GROUP_OPTION,),
    counts=("created", "unchanged", "skipped"),
)


def register() -> None:
    """Called from ``PromocodesConfig.ready()``."""
    register_importer(IMPORTER)
