"""Run every benchmark scenario (``bench/*.py`` except the helpers) one after another, for ``make bench``.

Each scenario runs in its own process with BENCH_DATABASE_URL set (default: a local PostgreSQL database
``patronage_bench``). Scenarios run sequentially because they start servers and share the machine: running
them side by side would measure the contention between them. Exits non-zero when any scenario does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
HELPERS = {"loadgen.py", "run_all.py", "floor_app.py"}
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/patronage_bench"
SCENARIO_TIMEOUT = 30 * 60  # seconds; a scenario bounds its own phases, this only catches a hang


def scenarios() -> list[Path]:
    return sorted(p for p in BENCH.glob("*.py") if p.name not in HELPERS and not p.name.startswith("_"))


def run(script: Path, env: dict[str, str]) -> int:
    print(f"=== {script.name}", flush=True)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=BENCH.parent)
    try:
        return proc.wait(SCENARIO_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"{script.name}: still running after {SCENARIO_TIMEOUT}s, stopping it", file=sys.stderr)
        return -1
    finally:
        if proc.poll() is None:
            # SIGTERM lets the scenario stop the server it started before it exits.
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = {**os.environ, "BENCH_DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL}
    results: dict[str, tuple[int, float]] = {}
    for script in scenarios():
        start = time.monotonic()
        results[script.name] = (run(script, env), time.monotonic() - start)
    print("\n=== summary")
    for name, (code, seconds) in results.items():
        verdict = {0: "ok", 1: "target missed", 2: "could not run"}.get(code, f"exit {code}")
        print(f"{name:<32} {verdict:<16} {seconds:6.0f}s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
