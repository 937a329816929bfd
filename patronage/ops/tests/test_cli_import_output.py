"""What `patronage import` prints when a file has problems: its own flag's name, each line number once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from patronage.promocodes.services import promo_code_group_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db


def run_import(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("import", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exit_:
        return out.getvalue(), int(exit_.code or 0)
    return out.getvalue(), 0


def test_a_refused_import_names_the_command_lines_flag(tmp_path: Path) -> None:
    # given: a customer file with one bad row among three
    path = tmp_path / "customers.csv"
    path.write_text("name,email,password\nAnn,ann@example.com,\nBob,not-an-email,\nCid,cid@example.com,\n")
    # when: it is imported without --skip-bad-rows
    out, status = run_import("customers", str(path))
    # then: nothing is imported, and the way on is the CLI's flag, not the back office's checkbox
    assert status == 1
    assert out.splitlines()[:3] == [
        "1 row has problems, so nothing was imported. Fix them and run the import again, or add "
        "--skip-bad-rows to import the other 2 rows.",
        "Problems:",
        "  line 3: email: 'not-an-email' is not a valid email address",
    ]
    assert "Skip bad rows" not in out


def test_promo_code_problems_show_their_line_number_once(tmp_path: Path) -> None:
    # given: a group and a file with a bad code and a code repeated
    promo_code_group_create(environment=environment_get(Environment.LIVE), name="G", codes=["OLD1"])
    path = tmp_path / "codes.csv"
    path.write_text("code\nGOOD1\nbad code\nGOOD1\nOLD1\n")
    # when: it is imported, refused and then with --skip-bad-rows
    refused, status = run_import("promocodes", "--group", "G", str(path))
    skipped, skipped_status = run_import("promocodes", "--group", "G", "--skip-bad-rows", str(path))
    # then: each problem is printed with its line number once
    assert status == 1 and skipped_status == 0
    assert "  line 3: 'bad code' has the character U+0020" in refused
    assert "  line 4: GOOD1 repeats line 2; skipped" in skipped
    assert "  line 5: OLD1 is already in" in skipped
    assert "Line " not in refused + skipped


def test_a_file_with_a_bad_header_says_so_once(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("name,email,password,birth_date\nAnn,ann@example.com,,1990-01-01\n")
    out, status = run_import("customers", str(path))
    assert status == 1
    assert out.count("unknown column 'birth_date'") == 1
