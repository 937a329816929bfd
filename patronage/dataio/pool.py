"""A process pool for CPU-bound import work (checking rows, hashing passwords) over all cores.

Workers are spawned, not forked: the parent holds a database connection and may run threads. A spawned
worker starts blank, so this module imports no models: the worker sets Django up first, applies the
settings the parent changed at runtime (tests do), and only then imports the function it is asked to
run, by dotted path.

Workers die with their parent, however it ends (a ``kill -9`` of the CLI or the worker included): on Linux
the kernel kills them when the parent goes (``PR_SET_PDEATHSIG``; the pool is started and shut down by the
one thread that runs the import, which is the "parent" the kernel watches), and on every system a watchdog
thread in each worker exits once its parent is gone. Left alone they would wait for work forever on a queue
whose other end is dead. multiprocessing's resource tracker (spawn starts it to unlink the pool's named
semaphores if the parent cannot) then sees every holder of its pipe gone, cleans up and exits too.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_parent_pid: int | None = None
# How often a worker's watchdog looks for its parent (where the kernel cannot be asked to tell it).
WATCHDOG_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init(settings_module: str, overrides: dict[str, Any], parent_pid: int) -> None:
    global _parent_pid
    _parent_pid = parent_pid
    _die_with_parent(parent_pid)
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
        initargs=(settings_module, settings_overrides, os.getpid()),
    )
