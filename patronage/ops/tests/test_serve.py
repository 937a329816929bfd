"""`patronage serve` starts gunicorn for real: the product by default, another WSGI app when asked."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HELLO_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["PATH_INFO"].encode()]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_text(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()  # type: ignore[no-any-return]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_runs_the_wsgi_app_it_is_given(tmp_path: Path) -> None:
    # given: a WSGI app of someone else's (the session benchmark serves its floor this way)
    (tmp_path / "hello_app.py").write_text(HELLO_APP)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "patronage.settings"}
    # when: `patronage serve` is told to serve it
    serve = ["serve", "--no-migrate", "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [sys.executable, "-m", "patronage.cli", *serve, "--wsgi-app", "hello_app:application"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # then: gunicorn answers with that app, not with the product
        assert get_text(f"http://127.0.0.1:{port}/anywhere") == "hello from /anywhere"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert f"Serving on http://127.0.0.1:{port} with 1 workers" in stderr.decode()
