"""Talang, Talon.One's JSON rule language (the subset docs/RULES.md documents), compiled to Python closures.

A ruleset is compiled once per version (``plan`` caches it per process); a request only calls closures.
Compiling checks everything it can: unknown operators, attributes and effects, arity and types. Every
problem is reported at once, each with a JSON pointer into the ruleset (``/rules/0/condition/1/2``), as a
:class:`RulesetInvalid` (400). What only the data can tell (an attribute holding text where a number is
compared, a division by zero) raises :class:`RuleError` while the rule runs: the rule fails (its failure
reason says why) unless a ``catch`` gives a fallback.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from patronage.core.errors import ErrorDetail, ValidationFailed

from .registry import ATTRIBUTES, EFFECTS, FUNCTIONS, T, roots

Env = Any  # evaluation.Env, which imports this module
Run = Callable[[Any], Any]
MAX_DEPTH = 64


class RulesetInvalid(ValidationFailed):
    code = "ruleset_invalid"
    title = "Invalid rule"


class RuleError(Exception):
    """A rule could not be evaluated on this data (the message says why, in the marketer's words)."""


@dataclass(frozen=True)
class Compiled:
    run: Run
    type: str
    literal: Any = None
    is_literal: bool = False


@dataclass
class CompiledRule:
    index: int
    title: str
    # The conditions joined by the root "and" (or the one condition), so a failure names its index.
    conditions: list[Run]
    effects: list[Run]
    failure_effects: list[Run]
    # Literal argument lists of each loader-backed function used, by function name.
    uses: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise RuleError(f"{value!r} is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RuleError(f"{value!r} is not a number")
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise RuleError(f"{value!r} is not a number") from None
        if number.is_finite():
            return number
    raise RuleError(f"{value!r} is not a number")


def _const(value: Any) -> Run:
    return lambda env: value


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(op: str) -> Callable[[Any, Any], bool]:
    if op == "=":
        return _equal
    if op == "!=":
        return lambda a, b: not _equal(a, b)
    test = _ORDER[op]

    def ordered(a: Any, b: Any) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return bool(test(a, b))  # dates as "YYYY-MM-DD" compare as text
        return bool(test(to_decimal(a), to_decimal(b)))

    return ordered


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        try:
            return to_decimal(a) == to_decimal(b)
        except RuleError:
            return False
    return bool(a == b)


def _against_constant(op: str, left: Run, constant: Any) -> Run:
    """A comparison with a literal right-hand side, the same answers as :func:`_compare` without
    converting the constant on every call."""
    if op in ("=", "!="):
        negate = op == "!="
        if isinstance(constant, Decimal):

            def equal_number(env: Env) -> bool:
                a = left(env)
                if a.__class__ is not Decimal:
                    try:
                        a = to_decimal(a)
                    except RuleError:
                        return negate
                return (a == constant) is not negate

            return equal_number

        def equal(env: Env) -> bool:
            a = left(env)
            same = _equal(a, constant) if a.__class__ is Decimal else a == constant
            return bool(same) is not negate

        return equal
    if isinstance(constant, str):
        general = _compare(op)
        return lambda env: general(left(env), constant)
    test, number = _ORDER[op], to_decimal(constant)

    def ordered(env: Env) -> bool:
        a = left(env)
        if a.__class__ is not Decimal:
            a = to_decimal(a)
        return bool(test(a, number))

    return ordered


def _arith(op: str) -> Callable[[Decimal, Decimal], Decimal]:
    if op == "/":

        def divide(a: Decimal, b: Decimal) -> Decimal:
            if not b:
                raise RuleError("division by zero")
            return a / b

        return divide
    return {"+": Decimal.__add__, "-": Decimal.__sub__, "*": Decimal.__mul__}[op]


class Compiler:
    """Compiles one ruleset; collects every problem with its pointer."""

    def __init__(self) -> None:
        self.problems: list[ErrorDetail] = []
        self.uses: dict[str, list[tuple[Any, ...]]] = {}

    def problem(self, pointer: str, message: str) -> None:
        self.problems.append(ErrorDetail(title=RulesetInvalid.title, details=message, pointer=pointer))

    # ---- expressions ----------------------------------------------------------------------------

    def expr(self, node: Any, ptr: str, scope: dict[str, Compiled], depth: int = 0) -> Compiled | None:
        if depth > MAX_DEPTH:
            self.problem(ptr, f"The expression nests deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(node, bool):
            return Compiled(_const(node), T.BOOLEAN, node, True)
        if isinstance(node, int | float):
            if isinstance(node, float) and not math.isfinite(node):
                self.problem(ptr, "Numbers must be finite")
                return None
            value = to_decimal(node)
            return Compiled(_const(value), T.NUMBER, value, True)
        if isinstance(node, str):
            return Compiled(_const(node), T.STRING, node, True)
        if node is None:
            return Compiled(_const(None), T.ANY, None, True)
        if isinstance(node, dict):
            return Compiled(_const(node), T.ANY, node, True)
        if not isinstance(node, list) or not node:
            self.problem(ptr, "An expression is a value or a non-empty list [operator, arguments...]")
            return None
        op, args = node[0], node[1:]
        if not isinstance(op, str):
            self.problem(f"{ptr}/0", f"An operator is a name, not {op!r}")
            return None
        method = CORE.get(op)
        if method is not None:
            return method(self, op, args, ptr, scope, depth + 1)
        if op in FUNCTIONS:
            return self.function(op, args, ptr, scope, depth + 1)
        if op in EFFECTS:
            self.problem(f"{ptr}/0", f"{op} is an effect: it belongs in a rule's effects, not in a condition")
            return None
        self.problem(f"{ptr}/0", f"Unknown operator {op!r}; see docs/RULES.md for the ones Patronage knows")
        return None

    def typed(
        self, node: Any, ptr: str, scope: dict[str, Compiled], depth: int, *wanted: str
    ) -> Compiled | None:
        compiled = self.expr(node, ptr, scope, depth)
        if compiled is None:
            return None
        if compiled.type == T.ANY or T.ANY in wanted or compiled.type in wanted:
            return compiled
        self.problem(ptr, f"Expected {' or '.join(wanted)} here, got {compiled.type}")
        return None

    def arity(self, op: str, args: list[Any], ptr: str, low: int, high: int | None) -> bool:
        if len(args) < low or (high is not None and len(args) > high):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            self.problem(ptr, f"{op} takes {want} argument{'s' if want != '1' else ''}, got {len(args)}")
            return False
        return True

    def _all_compiled(
        self, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int, *types: str
    ) -> list[Compiled] | None:
        compiled = [self.typed(a, f"{ptr}/{i + 1}", scope, depth, *types) for i, a in enumerate(args)]
        if any(c is None for c in compiled):
            return None
        return [c for c in compiled if c is not None]

    def _all(
        self, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int, *types: str
    ) -> list[Run] | None:
        compiled = self._all_compiled(args, ptr, scope, depth, *types)
        return None if compiled is None else [c.run for c in compiled]

    def logic(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 1, 1 if op == "not" else None):
            return None
        runs = self._all(args, ptr, scope, depth, T.BOOLEAN)
        if runs is None:
            return None
        if op == "not":
            (one,) = runs
            return Compiled(lambda env: not one(env), T.BOOLEAN)
        if len(runs) == 1:
            return Compiled(runs[0], T.BOOLEAN)
        # Plain loops: a generator inside all()/any() costs more than most conditions it runs.
        if op == "and":

            def every(env: Env) -> bool:
                for r in runs:  # noqa: SIM110 (speed, see above)
                    if not r(env):
                        return False
                return True

            return Compiled(every, T.BOOLEAN)

        def some(env: Env) -> bool:
            for r in runs:  # noqa: SIM110
                if r(env):
                    return True
            return False

        return Compiled(some, T.BOOLEAN)

    def comparison(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 2, 2):
            return None
        types = (T.ANY,) if op in ("=", "!=") else (T.NUMBER, T.STRING)
        compiled = self._all_compiled(args, ptr, scope, depth, *types)
        if compiled is None:
            return None
        left, right = compiled
        if right.is_literal and not left.is_literal:
            # The usual shape, [op, attribute, constant]: the constant is converted once, here.
            return Compiled(_against_constant(op, left.run, right.literal), T.BOOLEAN)
        test = _compare(op)
        lrun, rrun = left.run, right.run
        return Compiled(lambda env: test(lrun(env), rrun(env)), T.BOOLEAN)

    def arithmetic(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 1 if op == "-" else 2, None):
            return None
        runs = self._all(args, ptr, scope, depth, T.NUMBER)
        if runs is None:
            return None
        if len(runs) == 1:
            (one,) = runs
            return Compiled(lambda env: -to_decimal(one(env)), T.NUMBER)
        step = _arith(op)
        first, rest = runs[0], runs[1:]

        def run(env: Env) -> Decimal:
            value = to_decimal(first(env))
            for r in rest:
                value = step(value, to_decimal(r(env)))
            return value

        return Compiled(run, T.NUMBER)

    def rounding(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 1, 2 if op == "round" else 1):
            return None
        runs = self._all(args, ptr, scope, depth, T.NUMBER)
        if runs is None:
            return None
        mode = {"floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "round": ROUND_HALF_UP}[op]
        value_of = runs[0]
        places = runs[1] if len(runs) == 2 else _const(Decimal(0))

        def run(env: Env) -> Decimal:
            exponent = Decimal(1).scaleb(-int(to_decimal(places(env))))
            return to_decimal(value_of(env)).quantize(exponent, rounding=mode)

        return Compiled(run, T.NUMBER)

    def extreme(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 1, None):
            return None
        runs = self._all(args, ptr, scope, depth, T.NUMBER)
        if runs is None:
            return None
        pick = min if op == "min" else max
        return Compiled(lambda env: pick(to_decimal(r(env)) for r in runs), T.NUMBER)

    def text(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 2, 2):
            return None
        runs = self._all(args, ptr, scope, depth, T.STRING)
        if runs is None:
            return None
        left, right = runs
        tests: dict[str, Callable[[str, str], bool]] = {
            "contains": lambda a, b: b in a,
            "startsWith": str.startswith,
            "endsWith": str.endswith,
        }
        test = tests[op]

        def run(env: Env) -> bool:
            a, b = left(env), right(env)
            if not isinstance(a, str) or not isinstance(b, str):
                raise RuleError(f"{op} compares text, got {a!r} and {b!r}")
            return test(a, b)

        return Compiled(run, T.BOOLEAN)

    def make_list(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        runs = self._all(args, ptr, scope, depth, T.ANY)
        if runs is None:
            return None
        return Compiled(lambda env: [r(env) for r in runs], T.LIST)

    def member(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 2, 2):
            return None
        needle = self.typed(args[0], f"{ptr}/1", scope, depth, T.ANY)
        hay = self.typed(args[1], f"{ptr}/2", scope, depth, T.LIST)
        if needle is None or hay is None:
            return None
        n, h = needle.run, hay.run

        def run(env: Env) -> bool:
            value, values = n(env), h(env)
            if not isinstance(values, list | tuple):
                raise RuleError(f"in needs a list, got {values!r}")
            return any(_equal(value, v) for v in values)

        return Compiled(run, T.BOOLEAN)

    def attribute(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not args or not all(isinstance(a, str) for a in args):
            self.problem(
                ptr, 'An attribute is [".", root, name...] with names only, e.g. [".", "Session", "Total"]'
            )
            return None
        root, path = args[0], args[1:]
        if root in scope:
            variable = scope[root]
            if not path:
                return variable
            if variable.type == T.ITEM:
                return self._attribute_of("Item", path, ptr, variable.run)
            self.problem(f"{ptr}/2", f"{root} is a {variable.type}: it has no attribute {path[0]!r}")
            return None
        if root == "Item":
            self.problem(f"{ptr}/1", "Item is only known inside a list operation (filter, map, exists, ...)")
            return None
        if root not in roots():
            known = ", ".join(sorted(roots() - {"Item"}))
            self.problem(
                f"{ptr}/1", f"Unknown attribute root {root!r}; use one of {known} or a binding's name"
            )
            return None
        if not path:
            self.problem(ptr, f'Name an attribute of {root}, e.g. [".", "{root}", ...]')
            return None
        return self._attribute_of(root, path, ptr, None)

    def _attribute_of(self, root: str, path: list[str], ptr: str, base: Run | None) -> Compiled | None:
        attribute = ATTRIBUTES.get((root, path[0]))
        if attribute is None:
            names = ", ".join(sorted(name for r, name in ATTRIBUTES if r == root))
            self.problem(f"{ptr}/2", f"{root} has no attribute {path[0]!r}; it has {names}")
            return None
        if attribute.nested != (len(path) == 2) or len(path) > 2:
            shape = (
                f'[".", "{root}", "{path[0]}", name]' if attribute.nested else f'[".", "{root}", "{path[0]}"]'
            )
            self.problem(ptr, f"Write this attribute as {shape}")
            return None
        get = attribute.get
        root_of: Run = base if base is not None else (lambda env, r=root: env.root(r))  # type: ignore[misc]
        if attribute.nested:
            key = path[1]

            def nested(env: Env) -> Any:
                values = get(root_of(env))
                if key not in values:
                    raise RuleError(f"{root}.{path[0]}.{key} is not set")
                return values[key]

            return Compiled(nested, T.ANY)
        return Compiled(lambda env: get(root_of(env)), attribute.type)

    def over_items(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        """filter / map / exists / every: [op, ITEMS, [name], body]."""
        if not self.arity(op, args, ptr, 3, 3):
            return None
        items = self.typed(args[0], f"{ptr}/1", scope, depth, T.ITEMS)
        names = args[1]
        if not (isinstance(names, list) and len(names) == 1 and isinstance(names[0], str)):
            self.problem(f"{ptr}/2", f'{op} names the item it looks at, e.g. ["Item"]')
            return None
        name = names[0]
        slot: dict[str, Any] = {}
        variable = Compiled(lambda env: slot["item"], T.ITEM)
        inner = {**scope, name: variable}
        body = self.typed(args[2], f"{ptr}/3", inner, depth, T.BOOLEAN if op != "map" else T.ANY)
        if items is None or body is None:
            return None
        source, test = items.run, body.run

        def each(env: Env) -> list[tuple[Any, Any]]:
            out = []
            for item in source(env):
                slot["item"] = item
                out.append((item, test(env)))
            return out

        if op == "filter":
            return Compiled(lambda env: [i for i, ok in each(env) if ok], T.ITEMS)
        if op == "map":
            return Compiled(lambda env: [v for _, v in each(env)], T.LIST)
        want = op == "exists"  # exists stops at the first match, every at the first miss

        def short(env: Env) -> bool:
            for item in source(env):
                slot["item"] = item
                if bool(test(env)) is want:
                    return want
            return not want

        return Compiled(short, T.BOOLEAN)

    def aggregate(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 1, 1):
            return None
        wanted = (T.ITEMS,) if op in ("quantity", "units") else (T.LIST, T.ITEMS)
        of = self.typed(args[0], f"{ptr}/1", scope, depth, *wanted)
        if of is None:
            return None
        run = of.run
        if op == "count":
            return Compiled(lambda env: Decimal(len(run(env))), T.NUMBER)
        if op == "quantity":
            return Compiled(lambda env: Decimal(sum(i.quantity for i in run(env))), T.NUMBER)
        if op == "units":
            return Compiled(lambda env: [u for i in run(env) for u in i.units()], T.ITEMS)
        if of.type == T.ITEMS:
            return Compiled(lambda env: sum((i.total for i in run(env)), Decimal(0)), T.NUMBER)
        return Compiled(lambda env: sum((to_decimal(v) for v in run(env)), Decimal(0)), T.NUMBER)

    def ranked(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        """cheapest / mostExpensive: [op, ITEMS, N] -> the N cheapest (dearest) units."""
        if not self.arity(op, args, ptr, 2, 2):
            return None
        items = self.typed(args[0], f"{ptr}/1", scope, depth, T.ITEMS)
        count = self.typed(args[1], f"{ptr}/2", scope, depth, T.NUMBER)
        if items is None or count is None:
            return None
        source, n = items.run, count.run
        reverse = op == "mostExpensive"

        def run(env: Env) -> list[Any]:
            units = [u for i in source(env) for u in i.units()]
            units.sort(key=lambda u: (u.price, u.position, u.sub_position or 0), reverse=reverse)
            return units[: max(0, int(to_decimal(n(env))))]

        return Compiled(run, T.ITEMS)

    def catch(
        self,
        op: str,
        args: list[Any],
        ptr: str,
        scope: dict[str, Compiled],
        depth: int,
        *,
        effect: bool = False,
    ) -> Compiled | None:
        if not self.arity(op, args, ptr, 2, 2):
            return None
        compile_: Callable[[Any, str, dict[str, Compiled], int], Compiled | None] = (
            self.effect if effect else self.expr
        )
        fallback = compile_(args[0], f"{ptr}/1", scope, depth)
        body = compile_(args[1], f"{ptr}/2", scope, depth)
        if fallback is None or body is None:
            return None
        main, other = body.run, fallback.run

        def run(env: Env) -> Any:
            mark = env.mark()
            try:
                return main(env)
            except RuleError:
                env.undo_to(mark)
                return other(env)

        return Compiled(run, body.type)

    def function(
        self, op: str, args: list[Any], ptr: str, scope: dict[str, Compiled], depth: int
    ) -> Compiled | None:
        spec = FUNCTIONS[op]
        if not self.arity(op, args, ptr, len(spec.args), len(spec.args)):
            return None
        compiled = [
            self.typed(a, f"{ptr}/{i + 1}", scope, depth, t)
            for i, (a, t) in enumerate(zip(args, spec.args, strict=True))
        ]
        if any(c is None for c in compiled):
            return None
        if spec.literal_args:
            if not all(c is not None and c.is_literal for c in compiled):
                self.problem(ptr, f"{op} takes fixed values, not expressions")
                return None
            literals = tuple(c.literal for c in compiled if c is not None)
            self.uses.setdefault(op, []).append(literals)
            return Compiled(spec.build(list(literals)), spec.result)
        return Compiled(spec.build([c.run for c in compiled if c is not None]), spec.result)

    # ---- effects -------------------------------------------------------------------------------

    def effect(
        self, node: Any, ptr: str, scope: dict[str, Compiled], depth: int = 0, *, failure: bool = False
    ) -> Compiled | None:
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            self.problem(
                ptr, 'An effect is a list [effect, arguments...], e.g. ["setDiscount", "10% off", 5]'
            )
            return None
        op, args = node[0], node[1:]
        if op == "noop":
            if not self.arity(op, args, ptr, 0, 0):
                return None
            return Compiled(lambda env: None, T.EFFECT)
        if op == "catch":
            return self.catch(op, args, ptr, scope, depth + 1, effect=True)
        spec = EFFECTS.get(op)
        if spec is None:
            self.problem(
                f"{ptr}/0", f"Unknown effect {op!r}; see docs/RULES.md for the effects Patronage knows"
            )
            return None
        if failure and not spec.failure_allowed:
            self.problem(
                f"{ptr}/0", f"{op} cannot be a failure effect (only notifications and custom effects)"
            )
            return None
        if not self.arity(op, args, ptr, len(spec.args) - spec.optional, len(spec.args)):
            return None
        run = spec.compile(self, args, ptr, scope, depth + 1)
        return None if run is None else Compiled(run, T.EFFECT)

    def arguments(
        self,
        op: str,
        args: list[Any],
        types: tuple[str, ...],
        ptr: str,
        scope: dict[str, Compiled],
        depth: int,
    ) -> list[Any] | None:
        """Each argument compiled to its declared type (a ``NAME`` stays the literal string)."""
        out: list[Any] = []
        for i, (arg, kind) in enumerate(zip(args, types, strict=False)):
            if kind == T.NAME:
                if not isinstance(arg, str) or not arg:
                    self.problem(f"{ptr}/{i + 1}", f"{op} takes a name here, not {arg!r}")
                    return None
                out.append(arg)
                continue
            compiled = self.typed(arg, f"{ptr}/{i + 1}", scope, depth, kind)
            if compiled is None:
                return None
            out.append(compiled.run)
        return out

    def lambda_body(
        self,
        names: Any,
        body: Any,
        ptr: str,
        body_ptr: str,
        scope: dict[str, Compiled],
        depth: int,
        result: str,
    ) -> tuple[Callable[[Any], None], Run] | None:
        """An effect's per-item part: ``["Item"]`` and a body using it; returns (bind the item, run)."""
        if not (isinstance(names, list) and len(names) == 1 and isinstance(names[0], str)):
            self.problem(ptr, 'Name the item the amount is computed for, e.g. ["Item"]')
            return None
        slot: dict[str, Any] = {}
        variable = Compiled(lambda env: slot["item"], T.ITEM)
        compiled = self.typed(body, body_ptr, {**scope, names[0]: variable}, depth, result)
        if compiled is None:
            return None
        return (lambda item: slot.__setitem__("item", item)), compiled.run


CORE: dict[str, Callable[..., Compiled | None]] = {
    **dict.fromkeys(("and", "or", "not"), Compiler.logic),
    **dict.fromkeys(("=", "!=", "<", "<=", ">", ">="), Compiler.comparison),
    **dict.fromkeys(("+", "-", "*", "/"), Compiler.arithmetic),
    **dict.fromkeys(("floor", "ceil", "round"), Compiler.rounding),
    **dict.fromkeys(("min", "max"), Compiler.extreme),
    **dict.fromkeys(("contains", "startsWith", "endsWith"), Compiler.text),
    **dict.fromkeys(("filter", "map", "exists", "every"), Compiler.over_items),
    **dict.fromkeys(("count", "sum", "quantity", "units"), Compiler.aggregate),
    **dict.fromkeys(("cheapest", "mostExpensive"), Compiler.ranked),
    "list": Compiler.make_list,
    "in": Compiler.member,
    ".": Compiler.attribute,
    "catch": Compiler.catch,
}
OPERATORS = sorted(CORE)


def _bindings(compiler: Compiler, bindings: Any, ptr: str, scope: dict[str, Compiled]) -> dict[str, Compiled]:
    """Named expressions (Talon.One's cart item filters and values), computed at most once per campaign
    evaluation and only when something reads them."""
    if bindings in (None, []):
        return scope
    if not isinstance(bindings, list):
        compiler.problem(ptr, "bindings is a list of {name, expression}")
        return scope
    scope = dict(scope)
    for i, binding in enumerate(bindings):
        here = f"{ptr}/{i}"
        if (
            not isinstance(binding, dict)
            or not isinstance(binding.get("name"), str)
            or "expression" not in binding
        ):
            compiler.problem(here, 'A binding is {"name": ..., "expression": [...]}')
            continue
        name = binding["name"]
        if name in roots() or name in scope:
            compiler.problem(f"{here}/name", f"The name {name!r} is already taken")
            continue
        compiled = compiler.expr(binding["expression"], f"{here}/expression", scope)
        if compiled is None:
            continue
        run, key = compiled.run, object()

        def lazy(env: Env, run: Run = run, key: object = key) -> Any:
            cache = env.bindings
            if key not in cache:
                cache[key] = run(env)
            return cache[key]

        scope[name] = Compiled(lazy, compiled.type)
    return scope


def compile_ruleset(rules: Any, bindings: Any = None) -> list[CompiledRule]:
    """Compile a ruleset's rules, or raise :class:`RulesetInvalid` listing every problem."""
    compiler = Compiler()
    compiled: list[CompiledRule] = []
    if not isinstance(rules, list):
        compiler.problem("/rules", "rules is a list of rules")
        rules = []
    scope = _bindings(compiler, bindings, "/bindings", {})
    for index, rule in enumerate(rules):
        ptr = f"/rules/{index}"
        if not isinstance(rule, dict):
            compiler.problem(ptr, "A rule is an object {title, condition, effects}")
            continue
        compiler.uses = {}
        title = rule.get("title")
        if not isinstance(title, str) or not title.strip():
            compiler.problem(f"{ptr}/title", "Give the rule a title")
        rule_scope = _bindings(compiler, rule.get("bindings"), f"{ptr}/bindings", scope)
        conditions = _conditions(compiler, rule.get("condition"), f"{ptr}/condition", rule_scope)
        effects = _effects(compiler, rule.get("effects"), f"{ptr}/effects", rule_scope, failure=False)
        failure = _effects(
            compiler, rule.get("failureEffects", []), f"{ptr}/failureEffects", rule_scope, failure=True
        )
        if conditions is not None and effects is not None and failure is not None:
            compiled.append(
                CompiledRule(index, str(title or ""), conditions, effects, failure, compiler.uses)
            )
    if compiler.problems:
        first = compiler.problems[0]
        more = f" (and {len(compiler.problems) - 1} more)" if len(compiler.problems) > 1 else ""
        raise RulesetInvalid(f"{first.details} at {first.pointer}{more}", details=compiler.problems)
    return compiled


def _conditions(compiler: Compiler, node: Any, ptr: str, scope: dict[str, Compiled]) -> list[Run] | None:
    if not isinstance(node, list) or not node:
        compiler.problem(ptr, 'A condition is a list, e.g. ["and", true]')
        return None
    if node[0] == "and":  # each part separately, so a failure can name the one that failed
        parts = [
            compiler.typed(part, f"{ptr}/{i + 1}", scope, 1, T.BOOLEAN) for i, part in enumerate(node[1:])
        ]
        if not parts:
            compiler.problem(ptr, 'and takes at least 1 argument, e.g. ["and", true]')
            return None
        return None if any(p is None for p in parts) else [p.run for p in parts if p is not None]
    one = compiler.typed(node, ptr, scope, 0, T.BOOLEAN)
    return None if one is None else [one.run]


def _effects(
    compiler: Compiler, node: Any, ptr: str, scope: dict[str, Compiled], *, failure: bool
) -> list[Run] | None:
    if not isinstance(node, list):
        compiler.problem(ptr, "effects is a list of effects")
        return None
    runs = [compiler.effect(e, f"{ptr}/{i}", scope, failure=failure) for i, e in enumerate(node)]
    return None if any(r is None for r in runs) else [r.run for r in runs if r is not None]
