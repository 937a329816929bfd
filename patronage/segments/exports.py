"""``patronage export segment --segment NAME``: the members of a segment, in the customers' CSV format."""

from __future__ import annotations

import argparse
from typing import Any

from patronage.core.errors import ErrorDetail, ValidationFailed
from patronage.customers.exports import CustomerExport
from patronage.dataio.registry import Exporter, register_exporter
from patronage.workspace.models import Environment

from .models import Segment
from .selectors import segment_members


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--segment", required=True, metavar="NAME", help="the segment's name (any case)")


def _export(environment: Environment, options: dict[str, Any]) -> CustomerExport:
    name = (options.get("segment") or "").strip()
    segment = Segment.objects.filter(environment=environment, name__iexact=name).first()
    if segment is None:
        message = f"--segment: no segment named {name!r} in {environment.slug}"
        raise ValidationFailed(message, details=[ErrorDetail("Invalid value", message, pointer="segment")])
    return CustomerExport(segment_members(segment))


def register() -> None:
    register_exporter(
        Exporter(kind="segment", label="Segment members", add_arguments=_arguments, stream=_export)
    )
