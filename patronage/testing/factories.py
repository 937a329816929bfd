"""Factories for tests: real rows made through the same services the product uses."""

from __future__ import annotations

import itertools

from patronage.workspace.models import Application, Environment
from patronage.workspace.services import api_key_create, application_create

_serial = itertools.count(1)


def make_application(
    *, environment: str = Environment.LIVE, slug: str | None = None, **fields: str
) -> Application:
    n = next(_serial)
    return application_create(
        name=fields.pop("name", f"Shop {n}"),
        slug=slug or f"shop-{environment}-{n}",
        environment=environment,
        **fields,
    )


def make_api_key(application: Application, **kwargs: object) -> str:
    _, plaintext = api_key_create(application=application, name=kwargs.pop("name", "test"), **kwargs)  # type: ignore[arg-type]
    return plaintext
