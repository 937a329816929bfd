"""The rule tree: its JSON form, and the check that turns it into typed nodes or says what is wrong where.

A tree is a group at the root::

    {"type": "group", "match": "all" | "any", "negate": false, "children": [node, ...]}

and its nodes are groups or conditions::

    {"type": "condition", "field": "promo_codes.issued_count", "operator": "gte", "value": 2,
     "params": {"group": 7, "last_days": 30}, "negate": false}

An empty "all" group matches every customer, an empty "any" group none. Every problem is reported with the
JSON pointer of the node or member at fault ("/children/1/children/0/operator") and why (unknown field,
operator not valid for the type, value of the wrong type, a group that is not in the environment), all of
them at once.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from patronage.core.errors import ErrorCollector, UnprocessableInput
from patronage.customers.selectors import parse_month_day
from patronage.workspace.models import Environment

from .registry import (
    CONDITIONS,
    MAX_COUNT,
    MAX_DAYS,
    MAX_IDS,
    MAX_TEXT,
    REFERENCES,
    Clause,
    Condition,
    Param,
    Value,
)

MAX_DEPTH = 16
MAX_NODES = 300
MATCHES = ("all", "any")
GROUP_KEYS = {"type", "match", "negate", "children"}
CONDITION_KEYS = {"type", "field", "operator", "value", "params", "negate"}


def empty_tree() -> dict[str, Any]:
    return {"type": "group", "match": "all", "negate": False, "children": []}


@dataclass(frozen=True)
class Group:
    match: str
    negate: bool
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Leaf:
    condition: Condition
    clause: Clause
    negate: bool


Node = Group | Leaf


class _Checker:
    def __init__(self, environment: Environment, base: str) -> None:
        self.environment = environment
        self.base = base
        self.errors = ErrorCollector()
        self.nodes = 0
        # reference key -> ids named anywhere in the tree, with where: checked in one query per reference
        self.named: dict[str, list[tuple[int, str]]] = {}

    def problem(self, pointer: str, details: str) -> None:
        self.errors.add(details, pointer=self.base + pointer)

    def node(self, raw: Any, pointer: str, depth: int) -> Node | None:
        self.nodes += 1
        if self.nodes == MAX_NODES + 1:
            self.problem(pointer, f"a segment has at most {MAX_NODES} conditions and groups")
        if not isinstance(raw, dict):
            self.problem(pointer, "must be an object: a group or a condition")
            return None
        kind = raw.get("type")
        negate = raw.get("negate", False)
        if not isinstance(negate, bool):
            self.problem(f"{pointer}/negate", "must be true or false")
        if kind == "group":
            return self.group(raw, pointer, depth, negate is True)
        if kind == "condition":
            return self.leaf(raw, pointer, negate is True)
        self.problem(f"{pointer}/type", f"must be 'group' or 'condition', not {_shown(kind)}")
        return None

    def group(self, raw: dict[str, Any], pointer: str, depth: int, negate: bool) -> Group | None:
        self.unknown_keys(raw, GROUP_KEYS, pointer)
        match = raw.get("match", "all")
        if match not in MATCHES:
            self.problem(f"{pointer}/match", f"must be 'all' (AND) or 'any' (OR), not {_shown(match)}")
        children = raw.get("children", [])
        if not isinstance(children, list):
            self.problem(f"{pointer}/children", "must be a list of conditions and groups")
            return None
        if depth >= MAX_DEPTH and children:
            self.problem(f"{pointer}/children", f"groups nest at most {MAX_DEPTH} deep")
            return None
        nodes = [self.node(child, f"{pointer}/children/{i}", depth + 1) for i, child in enumerate(children)]
        if any(n is None for n in nodes) or match not in MATCHES:
            return None
        return Group(match=match, negate=negate, children=tuple(n for n in nodes if n is not None))

    def leaf(self, raw: dict[str, Any], pointer: str, negate: bool) -> Leaf | None:
        self.unknown_keys(raw, CONDITION_KEYS, pointer)
        key = raw.get("field")
        condition = CONDITIONS.get(key) if isinstance(key, str) else None
        if condition is None:
            self.problem(f"{pointer}/field", f"unknown field {_shown(key)}")
            return None
        allowed = condition.allowed()
        operator = raw.get("operator")
        if not isinstance(operator, str) or operator not in allowed:
            self.problem(
                f"{pointer}/operator",
                f"operator {_shown(operator)} is not valid for {condition.label} ({condition.type}); "
                f"use one of {', '.join(allowed)}",
            )
            return None
        value = self.value(raw.get("value"), allowed[operator], f"{pointer}/value", condition.reference)
        params = self.params(condition, raw.get("params"), f"{pointer}/params")
        if value is _BAD or params is None:
            return None
        clause = Clause(
            field=condition.key, operator=operator, value=value, params=params, pointer=self.base + pointer
        )
        return Leaf(condition=condition, clause=clause, negate=negate)

    def params(self, condition: Condition, raw: Any, pointer: str) -> dict[str, Any] | None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.problem(pointer, "must be an object")
            return None
        specs = {p.name: p for p in condition.params}
        for name in raw:
            if name not in specs:
                known = ", ".join(specs) or "none"
                self.problem(f"{pointer}/{name}", f"{condition.label} has no parameter {name!r} ({known})")
        parsed: dict[str, Any] = {}
        bad = False
        for spec in condition.params:
            given = raw.get(spec.name)
            if given is None or given == "":
                if spec.required:
                    self.problem(f"{pointer}/{spec.name}", f"{spec.label} is required")
                    bad = True
                continue
            value = self.param(spec, given, f"{pointer}/{spec.name}")
            if value is _BAD:
                bad = True
            else:
                parsed[spec.name] = value
        if "last_days" in parsed and ("since" in parsed or "until" in parsed):
            self.problem(f"{pointer}/last_days", "give either the last N days or since/until, not both")
            bad = True
        if "since" in parsed and "until" in parsed and parsed["since"] > parsed["until"]:
            self.problem(f"{pointer}/until", "must not be before since")
            bad = True
        return None if bad or set(raw) - set(specs) else parsed

    def param(self, spec: Param, given: Any, pointer: str) -> Any:
        if spec.choices:
            if given not in dict(spec.choices):
                allowed = ", ".join(key for key, _ in spec.choices)
                self.problem(pointer, f"must be one of {allowed}, not {_shown(given)}")
                return _BAD
            return given
        if spec.value == Value.IDS:
            ids = self.value([given], Value.IDS, pointer, spec.reference)
            return _BAD if ids is _BAD else ids[0]
        value = self.value(given, spec.value, pointer, "")
        if value is not _BAD and spec.check is not None:
            try:
                spec.check(value)
            except ValueError as exc:
                self.problem(pointer, str(exc))
                return _BAD
        return value

    def value(self, raw: Any, shape: Value, pointer: str, reference: str) -> Any:
        try:
            parsed = _parse(raw, shape)
        except ValueError as exc:
            self.problem(pointer, str(exc))
            return _BAD
        if shape == Value.IDS:
            self.named.setdefault(reference, []).extend((pk, pointer) for pk in parsed)
        return parsed

    def unknown_keys(self, raw: dict[str, Any], known: set[str], pointer: str) -> None:
        for key in raw:
            if key not in known:
                self.problem(f"{pointer}/{key}", f"unknown member {key!r}")

    def check_references(self) -> None:
        for key, named in self.named.items():
            reference = REFERENCES[key]
            existing = reference.existing(self.environment, {pk for pk, _ in named})
            for pk, pointer in named:
                if pk not in existing:
                    self.errors.add(
                        f"no {reference.label} with id {pk} in {self.environment.slug}",
                        pointer=self.base + pointer,
                    )


_BAD: Any = object()


def _shown(value: Any) -> str:
    return "nothing" if value is None else repr(value)


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("must be a non-empty string")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    return raw.strip()


def _number(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"must be a number, not {_shown(raw)}")
    return Decimal(str(raw))


def _whole(raw: Any, maximum: int, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= maximum:
        raise ValueError(f"must be {what} from 0 to {maximum}, not {_shown(raw)}")
    return raw


def _date(raw: Any) -> dt.date:
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise ValueError(f"must be a date such as 2026-05-17, not {_shown(raw)}")


def _pair(raw: Any, parse: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise ValueError(f"must be a list of two {what}: [first, last]")
    low, high = parse(raw[0]), parse(raw[1])
    return low, high


def _parse(raw: Any, shape: Value) -> Any:
    if shape == Value.NONE:
        if raw is not None:
            raise ValueError("this operator takes no value")
        return None
    if shape == Value.TEXT:
        return _text(raw)
    if shape == Value.NUMBER:
        return _number(raw)
    if shape == Value.BOOLEAN:
        if not isinstance(raw, bool):
            raise ValueError(f"must be true or false, not {_shown(raw)}")
        return raw
    if shape == Value.DATE:
        return _date(raw)
    if shape == Value.DAYS:
        return _whole(raw, MAX_DAYS, "a whole number of days")
    if shape == Value.COUNT:
        return _whole(raw, MAX_COUNT, "a whole number")
    if shape == Value.IDS:
        if not isinstance(raw, list) or not raw:
            raise ValueError("must be a non-empty list of ids")
        if len(raw) > MAX_IDS:
            raise ValueError(f"must name at most {MAX_IDS}")
        if any(isinstance(pk, bool) or not isinstance(pk, int) for pk in raw):
            raise ValueError("must be a list of whole-number ids")
        return sorted(set(raw))
    if shape == Value.MONTH_DAYS:

        def month_day(item: Any) -> int:
            if not isinstance(item, str):
                raise ValueError(f"must be days of the year such as 05-17, not {_shown(item)}")
            return parse_month_day(item)

        return _pair(raw, month_day, "days of the year such as 05-17")
    parse = {
        Value.NUMBER_RANGE: _number,
        Value.COUNT_RANGE: lambda item: _whole(item, MAX_COUNT, "a whole number"),
        Value.DATE_RANGE: _date,
    }[shape]
    low, high = _pair(raw, parse, "values")
    if low > high:
        raise ValueError("the first value must not be greater than the last")
    return low, high


def check(tree: Any, *, environment: Environment, pointer: str = "", references: bool = True) -> Group:
    """The typed tree, or ``UnprocessableInput`` listing every problem with its JSON pointer.

    ``references=False`` skips checking that named groups and offers exist (a saved segment whose group
    was deleted since still runs: that condition matches nobody)."""
    checker = _Checker(environment, pointer)
    root = checker.node(tree, "", 0)
    if isinstance(root, Leaf):
        checker.problem("/type", "the root must be a group")
    if references:
        checker.check_references()
    if checker.errors.problems:
        first = checker.errors.problems[0]
        where = f" at {first.pointer}" if first.pointer else ""
        count = len(checker.errors.problems)
        more = f" (and {count - 1} more)" if count > 1 else ""
        raise UnprocessableInput(
            f"Invalid segment rules{where}: {first.details}{more}", details=list(checker.errors.problems)
        )
    assert isinstance(root, Group)
    return root
