"""``patronage export segment --segment NAME``: a segment's members in the customers' CSV format."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from patronage.customers.models import CustomerProfile
from patronage.segments.services import segment_create
from patronage.workspace.models import Environment
from patronage.workspace.services import environment_get

pytestmark = pytest.mark.django_db

AT_EXAMPLE = {
    "type": "group",
    "match": "all",
    "negate": False,
    "children": [
        {"type": "condition", "field": "profile.email", "operator": "domain", "value": "example.com"}
    ],
}


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def add(environment: Environment, integration_id: str, email: str) -> None:
    CustomerProfile.objects.create(
        environment=environment, integration_id=integration_id, name=integration_id.title(), email=email
    )


@pytest.fixture
def live() -> Environment:
    live = environment_get(Environment.LIVE)
    add(live, "ada", "ada@example.com")
    add(live, "bob", "bob@elsewhere.org")
    add(live, "cy", "cy@example.com")
    add(environment_get(Environment.SANDBOX), "eve", "eve@example.com")
    segment_create(environment=live, name="Example customers", rules=AT_EXAMPLE)
    return live


def test_exports_the_members_to_a_file(live: Environment, tmp_path: Path, capsys: Any) -> None:
    # When staff export the segment, naming it in other case
    out = tmp_path / "members.csv"
    call_command(
        "export", "segment", "--segment", "example CUSTOMERS", "--environment", "live", "-o", str(out)
    )
    # Then the file holds its members, in the customers' format
    exported = rows(out.read_text())
    assert [(r["integration_id"], r["name"], r["email"]) for r in exported] == [
        ("ada", "Ada", "ada@example.com"),
        ("cy", "Cy", "cy@example.com"),
    ]
    assert list(exported[0])[:3] == ["integration_id", "name", "email"]
    assert not (tmp_path / "members.csv.part").exists()
    assert "Exported 2 segment members to" in capsys.readouterr().err


def test_exports_to_standard_output(live: Environment, capsysbinary: Any) -> None:
    call_command("export", "segment", "--segment", "Example customers")
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert [line.split(",")[0] for line in lines] == ["integration_id", "ada", "cy"]


def test_a_sandbox_segment_exports_sandbox_customers_only(live: Environment, tmp_path: Path) -> None:
    segment_create(environment=environment_get(Environment.SANDBOX), name="Testers", rules=AT_EXAMPLE)
    out = tmp_path / "testers.csv"
    call_command("export", "segment", "--segment", "Testers", "--environment", "sandbox", "-o", str(out))
    assert [r["integration_id"] for r in rows(out.read_text())] == ["eve"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "Nope"], "--segment: no segment named 'Nope' in live"),
        # The live segment is not the sandbox's
        (["--segment", "Example customers", "--environment", "sandbox"], "no segment named"),
    ],
)
def test_an_unknown_segment_fails_saying_so_and_writes_nothing(
    live: Environment, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "members.csv"
    with pytest.raises(CommandError) as caught:
        call_command("export", "segment", *args, "-o", str(out))
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert not out.exists() and not (tmp_path / "members.csv.part").exists()


def test_the_segment_option_is_required(live: Environment) -> None:
    with pytest.raises(CommandError, match="--segment"):
        call_command("export", "segment")
