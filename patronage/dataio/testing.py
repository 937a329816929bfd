"""The real job worker (`patronage worker`) in a thread, for tests that need background jobs to run."""

from __future__ import annotations

import threading
from types import TracebackType

from django.db import connection
from django_tasks_db.management.commands.db_worker import Worker


class BackgroundWorker:
    """django-tasks-db's worker loop in a thread with its own database connection.

    ``batch=True`` runs what is queued and stops; otherwise it polls until :meth:`stop`. The command's
    signal handling is left out (signals belong to the main thread).
    """

    def __init__(self, *, batch: bool = False, interval: float = 0.1) -> None:
        self.worker = Worker(
            queue_names=["*"],
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="test-worker",
            excluded_queue_names=[],
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        finally:
            connection.close()

    def start(self) -> BackgroundWorker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.worker.running = False
        self.thread.join(timeout=60)

    def __enter__(self) -> BackgroundWorker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def run_queued_jobs() -> None:
    """Run every queued job to its end, as `patronage worker` would."""
    worker = BackgroundWorker(batch=True).start()
    worker.thread.join(timeout=120)
