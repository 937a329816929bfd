"""Groups of promo codes and uploading codes into them, as staff do it: back office, API or CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from patronage.core.errors import ValidationFailed
from patronage.customers.models import CustomerProfile
from patronage.promocodes.models import MAX_CODE_LENGTH, PromoCode, PromoCodeGroup, PromoCodeIssue
from patronage.promocodes.services import (
    promo_code_group_create,
    promo_code_group_delete,
    promo_code_group_update,
    promo_codes_upload,
)
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def live() -> Environment:
    return environment_get(Environment.LIVE)


def codes_of(group: PromoCodeGroup) -> list[str]:
    return list(PromoCode.objects.filter(group=group).order_by("id").values_list("code", flat=True))


def test_create_a_group_with_pasted_codes_keeps_them_in_upload_order(live: Environment) -> None:
    # given: codes pasted with stray spaces and blank lines
    pasted = "  ZETA-1 \n\nALPHA_2\n   \nmid3\n"
    # when
    group, result = promo_code_group_create(
        environment=live, name="Spring 10%", description=" ten off ", codes=pasted.splitlines()
    )
    # then: trimmed codes in the order given, blank lines ignored (no problems)
    assert (result.added, result.duplicates, result.invalid, result.problems) == (3, 0, 0, [])
    assert codes_of(group) == ["ZETA-1", "ALPHA_2", "mid3"]
    assert group.description == "ten off"
    assert all(code.environment_id == live.pk for code in PromoCode.objects.all())


def test_group_names_are_unique_in_an_environment_whatever_the_case(live: Environment) -> None:
    promo_code_group_create(environment=live, name="Gifts")
    with pytest.raises(ValidationFailed) as caught:
        promo_code_group_create(environment=live, name="  gIFTS ")
    assert caught.value.details[0].pointer == "name"
    # the same name in the other environment is another group
    promo_code_group_create(environment=environment_get(Environment.SANDBOX), name="Gifts")
    assert PromoCodeGroup.objects.count() == 2


def test_rename_checks_the_other_groups_only(live: Environment) -> None:
    gifts, _ = promo_code_group_create(environment=live, name="Gifts")
    promo_code_group_create(environment=live, name="Other")
    promo_code_group_update(group=gifts, name="GIFTS", description="now upper case")
    gifts.refresh_from_db()
    assert (gifts.name, gifts.description) == ("GIFTS", "now upper case")
    with pytest.raises(ValidationFailed, match="already a group named 'other'"):
        promo_code_group_update(group=gifts, name="other", description="")


def test_invalid_lines_are_reported_by_number_and_skipped(live: Environment) -> None:
    group, _ = promo_code_group_create(environment=live, name="G")
    lines = ["GOOD1", "has space", "", "X" * (MAX_CODE_LENGTH + 1), "ünï", "GOOD2", "semi;colon"]
    result = promo_codes_upload(group=group, lines=lines)
    assert (result.added, result.duplicates, result.invalid) == (2, 0, 4)
    assert [p.line for p in result.problems] == [2, 4, 5, 7]
    assert "' '" not in result.problems[0].details and "U+0020" in result.problems[0].details
    assert f"longer than {MAX_CODE_LENGTH} characters" in result.problems[1].details
    assert "'ü'" in result.problems[2].details
    assert "';'" in result.problems[3].details
    assert codes_of(group) == ["GOOD1", "GOOD2"]


def test_duplicates_in_the_upload_and_in_the_environment_are_reported_and_skipped(
    live: Environment,
) -> None:
    # given: a code already in another group of the environment, and one in the sandbox
    promo_code_group_create(environment=live, name="Old", codes=["TAKEN"])
    promo_code_group_create(environment=environment_get(Environment.SANDBOX), name="S", codes=["SANDBOXED"])
    group, _ = promo_code_group_create(environment=live, name="New", codes=["MINE"])
    # when
    result = promo_codes_upload(group=group, lines=["A", "TAKEN", "A", "MINE", "SANDBOXED", "B"])
    # then: repeated and existing codes are skipped and named by line; other environments do not count
    assert (result.added, result.duplicates, result.invalid) == (3, 3, 0)
    by_line = {p.line: p.details for p in result.problems}
    assert by_line == {
        2: "Line 2: TAKEN is already in group 'Old'; skipped",
        3: "Line 3: A repeats line 1; skipped",
        4: "Line 4: MINE is already in this group; skipped",
    }
    assert all(p.title == "Duplicate code" for p in result.problems)
    assert codes_of(group) == ["MINE", "A", "SANDBOXED", "B"]


def test_codes_are_case_sensitive(live: Environment) -> None:
    _, result = promo_code_group_create(environment=live, name="G", codes=["abc", "ABC"])
    assert result.added == 2


def test_a_failed_upload_writes_nothing(live: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    group, _ = promo_code_group_create(environment=live, name="G", codes=["KEEP"])

    def broken(self: object, group: PromoCodeGroup) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("patronage.promocodes.services._Staging.merge", broken)
    with pytest.raises(RuntimeError):
        promo_code_group_create(environment=live, name="H", codes=["A", "B"])
    assert not PromoCodeGroup.objects.filter(name="H").exists()
    assert codes_of(group) == ["KEEP"]


def test_staff_uploads_leave_an_audit_entry(live: Environment) -> None:
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    group, _ = promo_code_group_create(environment=live, name="G", codes=["A"], actor=staff)
    promo_codes_upload(group=group, lines=["B", "B"], actor=staff)
    messages = list(LogEntry.objects.order_by("id").values_list("change_message", flat=True))
    assert messages == [
        "Created",
        "Uploaded codes: 1 added, 0 duplicate, 0 invalid",
        "Uploaded codes: 1 added, 1 duplicate, 0 invalid",
    ]


def test_deleting_a_group_keeps_what_customers_were_issued(live: Environment) -> None:
    # given: a group with one code issued to Ann
    group, _ = promo_code_group_create(environment=live, name="Gifts", codes=["G1", "G2"])
    ann = CustomerProfile.objects.create(environment=live, integration_id="ann", email="ann@example.com")
    code = PromoCode.objects.get(code="G1")
    PromoCodeIssue.objects.create(
        profile=ann, promo_code=code, group=group, code="G1", group_name="Gifts", kind="initial"
    )
    # when
    kept = promo_code_group_delete(group=group)
    # then: the group and its codes are gone, Ann's history is not; its codes can be uploaded again
    assert kept == 1
    assert not PromoCode.objects.exists() and not PromoCodeGroup.objects.exists()
    issue = PromoCodeIssue.objects.get()
    assert (issue.code, issue.group_name, issue.group_id, issue.promo_code_id) == ("G1", "Gifts", None, None)
    _, result = promo_code_group_create(environment=live, name="Gifts", codes=["G1"])
    assert result.added == 1


def test_more_problems_than_reported_are_still_counted(live: Environment) -> None:
    group, _ = promo_code_group_create(environment=live, name="G")
    result = promo_codes_upload(group=group, lines=["bad code"] * 1500 + ["OK"])
    assert (result.added, result.invalid) == (1, 1500)
    assert len(result.problems) == 1001
    assert result.problems[-1].details == "500 more invalid or duplicate lines are not listed"


# --- the file import (CLI and the back office's Import/Export) ---------------------------------------------


@pytest.fixture
def registered() -> None:
    # What PromocodesConfig.ready() does once the lead adds it (see the report).
    from patronage.promocodes.imports import register

    register()


def test_the_cli_imports_a_file_into_a_group_named_in_any_case(
    live: Environment, registered: None, tmp_path: Path, capsys: Any
) -> None:
    group, _ = promo_code_group_create(environment=live, name="Spring Sale", codes=["OLD"])
    path = tmp_path / "codes.csv"
    path.write_text('\ufeffCode\n"A1"\nB2\n\nOLD\nB2\n', encoding="utf-8")
    call_command("import", "promocodes", str(path), "--group", "spring sale")
    out = capsys.readouterr().out
    assert "Created 2, 2 unchanged (already there)" in out
    assert "line 5: OLD is already in this group; skipped" in out
    assert codes_of(group) == ["OLD", "A1", "B2"]


def test_an_invalid_line_stops_the_file_unless_bad_rows_are_skipped(
    live: Environment, registered: None, tmp_path: Path, capsys: Any
) -> None:
    group, _ = promo_code_group_create(environment=live, name="G")
    path = tmp_path / "codes.txt"
    path.write_text("A1\nnot valid\nB2\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        call_command("import", "promocodes", str(path), "--group", "G")
    assert "line 2:" in capsys.readouterr().out
    assert codes_of(group) == []
    call_command("import", "promocodes", str(path), "--group", "G", "--skip-bad-rows")
    assert codes_of(group) == ["A1", "B2"]


def test_the_cli_needs_an_existing_group(live: Environment, registered: None, tmp_path: Path) -> None:
    path = tmp_path / "codes.txt"
    path.write_text("A1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="No group of promo codes named 'Nope'"):
        call_command("import", "promocodes", str(path), "--group", "Nope")
