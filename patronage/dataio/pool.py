"""A process pool for CPU-bound import work (checking rows, hashing passwords) over all cores.

Workers are spawned, not forked: the parent holds a database connection and may run threads. A spawned
worker starts blank, so this module imports no models: the worker sets Django up first, applies the
settings the parent changed at runtime (tests do), and only then imports the function it is asked to
run, by dotted path.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_parent_pid: int | None = None


def _init(settings_module: str, overrides: dict[str, Any]) -> None:
    global _parent_pid
    _parent_pid = os.getppid()
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django
    from django.conf import settings

    django.setup()
    for name, value in overrides.items():
        setattr(settings, name, value)


def call(function: str, *args: Any) -> Any:
    """Run ``function`` (a dotted path) in a worker."""
    from django.utils.module_loading import import_string

    return import_string(function)(*args)


def parent_gone() -> bool:
    """True in a worker whose parent died (e.g. a killed import): long loops should stop."""
    return _parent_pid is not None and os.getppid() != _parent_pid


def process_pool(*, workers: int, settings_overrides: dict[str, Any]) -> ProcessPoolExecutor:
    from django.conf import settings

    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(settings_module, settings_overrides),
    )
