"""CSV primitives: formula neutralizing and its inverse, quoting as PostgreSQL does, reading with lines."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from patronage.core.csvio import (
    FORMULA_TRIGGERS,
    Columns,
    CsvReader,
    check_header,
    format_row,
    header_of,
    neutralize,
    neutralize_sql,
    restore,
)
from patronage.core.errors import ValidationFailed

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@given(text)
def test_an_exported_cell_imports_back_unchanged(cell: str) -> None:
    assert restore(neutralize(cell)) == cell


@given(text)
def test_an_exported_cell_never_starts_like_a_formula(cell: str) -> None:
    exported = neutralize(cell)
    if exported.startswith(tuple(c for c in FORMULA_TRIGGERS if c != "'")):
        # only a value a spreadsheet cannot run: an E.164 phone number, a plain negative number
        assert re.fullmatch(r"\+[0-9]+|-[0-9]+(\.[0-9]+)?", exported), exported


@given(st.from_regex(r"\A(\+[0-9]{1,15}|-[0-9]{1,9}(\.[0-9]{1,4})?)\Z"))
def test_phones_and_plain_numbers_are_written_as_they_are(cell: str) -> None:
    assert neutralize(cell) == cell
    assert restore(neutralize(cell)) == cell


@given(st.sampled_from("=+-@\t\r'"), text)
def test_a_cell_starting_like_a_formula_imports_back_whatever_follows(first: str, rest: str) -> None:
    assert restore(neutralize(first + rest)) == first + rest


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+48601234567", "+48601234567"),
        ("-1", "-1"),
        ("-12.5", "-12.5"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+", "'+"),
        ("-", "'-"),
        ("-1.", "'-1."),
        ("-.5", "'-.5"),
        ("-1.2.3", "'-1.2.3"),
        ("+1 201 555", "'+1 201 555"),
        ("+12015550123\n=1", "'+12015550123\n=1"),
        ("'+12015550123", "''+12015550123"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'quoted", "''quoted"),
        ("plain", "plain"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_formula_characters_get_one_quote_in_front(cell: str, exported: str) -> None:
    assert neutralize(cell) == exported
    assert restore(exported) == cell


@given(st.lists(text, min_size=2, max_size=6))
def test_a_formatted_row_reads_back_as_the_same_cells(cells: list[str]) -> None:
    assert next(csv.reader(io.StringIO(format_row(cells), newline=""))) == cells


def test_fields_are_quoted_only_when_they_must_be() -> None:
    assert format_row(["a", "b c", "", "x,y", 'say "hi"', "two\nlines", "cr\r"]) == (
        'a,b c,,"x,y","say ""hi""","two\nlines","cr\r"\n'
    )


def read(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = CsvReader(io.BytesIO(data))
    return reader.header, list(reader)


def test_reading_skips_a_byte_order_mark_and_numbers_lines_as_an_editor_does() -> None:
    header, records = read(b'\xef\xbb\xbfname,email\r\nAda,a@x.io\r\n\r\n"Multi\nline",m@x.io\n,\nBob,b@x.io')
    assert header == ["name", "email"]
    assert records == [(2, ["Ada", "a@x.io"]), (4, ["Multi\nline", "m@x.io"]), (7, ["Bob", "b@x.io"])]


def test_a_line_that_is_not_utf8_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        read("name,email\nAda,a@x.io\nZo\xeb,z@x.io\n".encode("latin-1"))
    assert caught.value.details[0].line == 3
    assert "Line 3 is not UTF-8" in caught.value.message


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(ValidationFailed, match="empty"):
        read(data)


def test_broken_csv_is_refused_with_its_line() -> None:
    with pytest.raises(ValidationFailed) as caught:
        read(b'name,email\nAda,a@x.io\n"unterminated,x\n')
    assert "not valid CSV" in caught.value.message


COLUMNS = Columns(required=("name", "email"), optional=("phone",), prefix="attr.")


def test_header_names_are_case_insensitive_and_prefixed_names_keep_their_case() -> None:
    header = [" Name", "EMAIL", "attr.LoyaltyTier"]
    assert check_header(header, COLUMNS) == ["name", "email", "attr.LoyaltyTier"]


def test_every_header_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_header(["name", "nmae", "name", "attr."], COLUMNS)
    messages = [detail.details for detail in caught.value.details]
    assert any("unknown column 'nmae'" in m and "name, email, phone, attr.<name>" in m for m in messages)
    assert any("'name' appears twice" in m for m in messages)
    assert any("needs a name after 'attr.'" in m for m in messages)
    assert any("missing: email" in m for m in messages)
    assert all(detail.line == 1 for detail in caught.value.details)


def test_the_header_is_read_from_the_first_bytes_of_an_upload() -> None:
    assert header_of(b"\xef\xbb\xbfname,email\nAda,a@x.io\nB") == ["name", "email"]
    with pytest.raises(ValidationFailed, match="binary"):
        header_of(b"PK\x03\x04\x00\x00")
    with pytest.raises(ValidationFailed, match="not UTF-8"):
        header_of("naïve,email\n".encode("latin-1"))


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_neutralizes_exactly_as_python() -> None:
    with connection.cursor() as cursor:
        for cell in SQL_CELLS:
            sql = neutralize_sql("%s::text")
            cursor.execute(f"SELECT {sql}", [cell] * sql.count("%s"))
            assert cursor.fetchone()[0] == neutralize(cell), cell


SQL_CELLS = [
    *["=1", "+1", "-1", "@a", "\tx", "\rx", "'x", "", "x", "é=", " =x", "+", "-", "+1+1", "-2+3"],
    *["+12015550123", "-12.5", "-1.", "-.5", "-1.2.3", "+1 2", "+12\n3", "-12\n", "+1a", "-1e5", "-0.0"],
]


def test_sqlite_neutralizes_exactly_as_python() -> None:
    import sqlite3

    database = sqlite3.connect(":memory:")
    for cell in SQL_CELLS:
        sql = neutralize_sql("?", "sqlite")
        assert database.execute(f"SELECT {sql}", [cell] * sql.count("?")).fetchone()[0] == neutralize(cell), (
            cell
        )
