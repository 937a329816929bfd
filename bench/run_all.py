"""Run every benchmark scenario (``bench/*.py`` except the helpers) one after another, for ``make bench``.

Each scenario runs in its own process with BENCH_DATABASE_URL set (default: a local PostgreSQL database
``patronage_bench``). Scenarios run sequentially because they start servers and share the machine: running
them side by side would measure the contention between them. Exits non-zero when any scenario does.
"""

from __future__ import annotations

import argparse
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


def summary_of(script: Path) -> str:
    """The first line of the scenario's docstring, read without running it."""
    for line in script.read_text(encoding="utf-8").splitlines():
        text = line.strip().strip('"').strip()
        if text:
            return text
    return ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [script.stem for script in scenarios()]
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Scenarios: "
        + ", ".join(names)
        + ". Each takes its own options: python bench/NAME.py --help.",
    )
    p.add_argument(
        "--list", action="store_true", help="list the scenarios with what each measures, then exit"
    )
    p.add_argument(
        "--only",
        action="append",
        choices=names,
        metavar="NAME",
        help="run only this scenario, repeatable (default: every scenario, in alphabetical order)",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL server the scenarios use, also from BENCH_DATABASE_URL; each makes its own database "
        "there (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=SCENARIO_TIMEOUT,
        help="seconds after which a scenario that still runs is stopped (default: %(default)s)",
    )
    return p.parse_args(argv)


def run(script: Path, env: dict[str, str], timeout: int = SCENARIO_TIMEOUT) -> int:
    print(f"=== {script.name}", flush=True)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=BENCH.parent)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"{script.name}: still running after {timeout}s, stopping it", file=sys.stderr)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [script for script in scenarios() if not args.only or script.stem in args.only]
    if args.list:
        width = max(len(script.stem) for script in chosen)
        for script in chosen:
            print(f"{script.stem:<{width}}  {summary_of(script)}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = {**os.environ, "BENCH_DATABASE_URL": args.database_url}
    results: dict[str, tuple[int, float]] = {}
    for script in chosen:
        start = time.monotonic()
        results[script.name] = (run(script, env, args.timeout), time.monotonic() - start)
    print("\n=== summary")
    for name, (code, seconds) in results.items():
        verdict = {0: "ok", 1: "target missed", 2: "could not run"}.get(code, f"exit {code}")
        print(f"{name:<32} {verdict:<16} {seconds:6.0f}s")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
