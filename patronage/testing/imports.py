"""Import jobs for tests: an upload stored as the back office stores it, queued or not."""

from __future__ import annotations

import io
from typing import Any

from patronage.dataio.models import ImportJob
from patronage.dataio.services import import_job_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get


def stored_import(
    data: bytes,
    *,
    kind: str = "customers",
    environment: Environment | str = Environment.LIVE,
    filename: str = "upload.csv",
    skip_bad_rows: bool = False,
    options: dict[str, str] | None = None,
    actor: Any = None,
    enqueue: bool = False,
) -> ImportJob:
    """A job holding ``data`` as its upload; not queued unless ``enqueue`` (tests run it themselves)."""
    return import_job_create(
        kind=kind,
        environment=environment if isinstance(environment, Environment) else environment_get(environment),
        filename=filename,
        size=len(data),
        skip_bad_rows=skip_bad_rows,
        upload=io.BytesIO(data),
        enqueue=enqueue,
        actor=actor,
        options=options,
    )
