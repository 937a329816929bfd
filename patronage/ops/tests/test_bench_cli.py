"""The benchmark scripts explain themselves: `--help` exits without running anything, every option says what
it does and its default, and `bench/run_all.py --list` names the scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
SCRIPTS = sorted(
    p.name for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "floor_app.py"
)

# Runs a script as `python bench/X.py` would, but its parser describes its options instead of parsing.
DESCRIBE = """
import argparse, json, runpy, sys

def describe(self, *args, **kwargs):
    print(json.dumps([
        {"option": "/".join(a.option_strings) or a.dest, "help": a.help, "flag": a.nargs == 0,
         "default": a.default is not None}
        for a in self._actions if not isinstance(a, argparse._HelpAction)
    ]))
    sys.exit(0)

argparse.ArgumentParser.parse_args = describe
sys.argv = [sys.argv[1]]
sys.path.insert(0, str(__import__("pathlib").Path(sys.argv[0]).parent))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, cwd=BENCH.parent
    )


def test_the_scripts_are_found() -> None:
    assert {"run_all.py", "loadgen.py", "session_update.py", "customers.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_explains_every_option_and_its_default(script: str) -> None:
    # when: the script is asked for help
    result = bench(str(BENCH / script), "--help")
    # then: it answers at once with a usage, running nothing
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
    # and every option has a help text naming its default (a flag's default is its absence)
    described = bench("-c", DESCRIBE, str(BENCH / script))
    assert described.returncode == 0, described.stderr
    options = json.loads(described.stdout)
    assert options
    assert [o["option"] for o in options if not (o["help"] or "").strip()] == []
    assert [
        o["option"] for o in options if not o["flag"] and o["default"] and "default" not in o["help"]
    ] == []


def test_run_all_lists_the_scenarios_without_running_them() -> None:
    result = bench(str(BENCH / "run_all.py"), "--list")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == [
        "coupons",
        "customers",
        "engine",
        "mailings",
        "offers",
        "promocodes",
        "segments",
        "session_update",
    ]
    assert "beside the raw engine" in result.stdout


def test_run_all_refuses_an_unknown_scenario() -> None:
    result = bench(str(BENCH / "run_all.py"), "--only", "nonesuch")
    assert result.returncode == 2
    assert "invalid choice: 'nonesuch'" in result.stderr
