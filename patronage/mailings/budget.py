"""What one mailing message may cost to render: an output budget and an operation budget, enforced while
the template runs (in the save check's trial render, the preview, the test message and the send alike: they
all render through ``templating.render``).

- **Output** (``PATRONAGE_MAILING_MAX_OUTPUT``, default 1,000,000 characters): the rendered part is streamed
  into a bounded accumulator, so a loop printing a gigabyte stops after the first megabyte; the text a
  template makes along the way (a ``{% set %}`` block, a macro's body, a loop inside either) counts against
  the same limit as it is made; and no single value (``'x' * n``, ``|join``, ``|replace``, ``|center``,
  ``'%*d'``, ``'{:>n}'.format``, ``.ljust(n)``...) may be built larger than it: sizes are checked before
  the value exists.
- **Operations** (``PATRONAGE_MAILING_MAX_OPERATIONS``, default 1,000,000 per message): every loop
  iteration, every call (a method, a filter, a macro) and every 1,000 characters a call makes count one.
  Counting keeps rendering deterministic (a message is rendered once when it is prepared and again when it
  is sent, and both must agree); a wall-clock limit (``PATRONAGE_MAILING_RENDER_SECONDS``, default 5 s) is
  only the backstop for work the count cannot see.

Running out raises :class:`BudgetExceeded` with a message staff can act on; the send marks that recipient's
delivery with it and goes on with the others.
"""

from __future__ import annotations

import functools
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from django.conf import settings
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SecurityError

DEFAULT_MAX_OUTPUT = 1_000_000
DEFAULT_MAX_OPERATIONS = 1_000_000
DEFAULT_RENDER_SECONDS = 5.0
# Characters, or items of a list, made or read per counted operation.
CHARACTERS_PER_OPERATION = 1000
ITEMS_PER_OPERATION = 50
# The clock is read once per this many operations.
CLOCK_EVERY = 256


class BudgetExceeded(SecurityError):
    """A template went beyond what one message may cost."""


class Budget:
    """The allowance of one message (its subject and bodies share it)."""

    __slots__ = (
        "deadline",
        "made_left",
        "max_operations",
        "max_output",
        "operations_left",
        "seconds",
        "tick",
    )

    def __init__(self, *, max_output: int, max_operations: int, seconds: float) -> None:
        self.max_output = max_output
        self.max_operations = max_operations
        self.seconds = seconds
        self.operations_left = max_operations
        self.made_left = max_output  # text made along the way (buffers, captured blocks)
        self.deadline = time.monotonic() + seconds
        self.tick = CLOCK_EVERY

    @classmethod
    def from_settings(cls) -> Budget:
        return cls(**limits())

    def spend(self, operations: int = 1) -> None:
        self.operations_left -= operations
        if self.operations_left < 0:
            raise BudgetExceeded(
                f"the template needs more than {self.max_operations:,} operations (loop rounds and calls) "
                "for one message"
            )
        self.tick -= operations
        if self.tick <= 0:
            self.tick = CLOCK_EVERY
            if time.monotonic() > self.deadline:
                raise BudgetExceeded(f"the template takes longer than {self.seconds:g} s for one message")

    def make(self, characters: int) -> None:
        """``characters`` of text made on the way to the message (output or captured)."""
        self.made_left -= characters
        if self.made_left < 0:
            raise BudgetExceeded(
                f"the template makes more than {self.max_output:,} characters for one message"
            )

    def allow(self, size: int, what: str = "a value") -> None:
        """Refuse, before it is built, a value of ``size`` characters or items beyond the output budget."""
        if size > self.max_output:
            raise BudgetExceeded(f"{what} of more than {self.max_output:,} characters is not allowed")

    def charge(self, value: Any) -> None:
        """One operation for a call, plus the size of the value it made (see :func:`cost`)."""
        if isinstance(value, str | list | tuple | dict):
            if len(value) > self.max_output:
                self.allow(len(value))
            self.spend(1 + cost(value))
        else:
            self.spend(1)


def cost(value: Any) -> int:
    """The operations reading or making ``value`` counts: one per 1,000 characters of a text, one per 50
    items of a list or mapping (comparing items is slower than comparing characters)."""
    if isinstance(value, str):
        return len(value) // CHARACTERS_PER_OPERATION
    if isinstance(value, list | tuple | dict | set):
        return len(value) // ITEMS_PER_OPERATION
    return 0


def limits() -> dict[str, Any]:
    return {
        "max_output": int(getattr(settings, "PATRONAGE_MAILING_MAX_OUTPUT", DEFAULT_MAX_OUTPUT)),
        "max_operations": int(getattr(settings, "PATRONAGE_MAILING_MAX_OPERATIONS", DEFAULT_MAX_OPERATIONS)),
        "seconds": float(getattr(settings, "PATRONAGE_MAILING_RENDER_SECONDS", DEFAULT_RENDER_SECONDS)),
    }


def _outside_a_render() -> Budget:
    """Jinja folds constant expressions when it compiles (``{{ 'x'|center(10**9) }}`` would be built
    then): no value beyond the default output budget even there (refused, the expression is left to the
    render), but nothing is counted."""
    budget = Budget(max_output=DEFAULT_MAX_OUTPUT, max_operations=2**62, seconds=1e9)
    budget.made_left = 2**62
    return budget


class _Local(threading.local):
    budget: Budget = _outside_a_render()


# The budget of the message this thread is rendering (the send renders in several threads at once).
_local = _Local()


def current() -> Budget:
    return _local.budget


def enter(budget: Budget) -> Budget:
    """Render on ``budget`` from now on in this thread; returns the one it replaces (to restore after)."""
    outer = _local.budget
    _local.budget = budget
    return outer


def bounded_join(chunks: Iterable[str], budget: Budget) -> str:
    """The rendered part, refused as soon as it passes the output budget (nothing beyond is kept)."""
    out: list[str] = []
    keep = out.append
    left = budget.max_output
    for chunk in chunks:
        left -= len(chunk)
        if left < 0:
            raise BudgetExceeded(f"the message is longer than {budget.max_output:,} characters")
        keep(chunk)
    return "".join(out)


def made(value: Any) -> Any:
    """Text printed into a buffer (a macro's body, a ``{% set %}`` or ``{% filter %}`` block) counts as made
    as it is made: such text is only kept, so the output accumulator does not see it yet."""
    if isinstance(value, str):
        _local.budget.make(len(value))
    elif isinstance(value, list | tuple | dict | set):
        _local.budget.make(len(str(value)))
    return value


def loop(iterable: Iterable[Any], text: int) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through here: one operation a round, plus the loop body's own text."""
    budget = current()
    for item in iterable:
        budget.spend(1)
        if text:
            budget.make(text)
        yield item


def value(made: Any) -> Any:
    """A value an expression made or reads whole: one operation, plus one per 1,000 characters or items."""
    _local.budget.charge(made)
    return made


def _body_text(body: list[nodes.Node]) -> int:
    """The characters of literal text a loop body prints each round (nested loops count their own)."""
    total = 0
    stack: list[nodes.Node] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock):
            stack.extend(node.iter_child_nodes())
    return total


class BudgetCodeGenerator(CodeGenerator):
    """Jinja's code generator with every loop's iterable passed through :func:`loop`, and what is printed
    into a buffer passed through :func:`made` (what is printed at the top goes to the output accumulator)."""

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_pre(node, frame, finalize)
        if frame.buffer is not None:
            self.write("environment.budget_made(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if frame.buffer is not None:
            self.write(")")
        super()._output_child_post(node, frame, finalize)

    # ``a ~ b`` makes a new text and ``x in big`` reads all of ``big``: both count, sized like a call.
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.budget_value(")
        super().visit_Concat(node, frame)
        self.write(")")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        # Jinja slices directly (``big[1:]``, a copy), without the sandbox's getitem.
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        self.write("environment.budget_value(")
        super().visit_Getitem(node, frame)
        self.write(")")

    def visit_Operand(self, node: nodes.Operand, frame: Frame) -> None:
        if node.op not in ("in", "notin"):
            super().visit_Operand(node, frame)
            return
        self.write(" not in " if node.op == "notin" else " in ")
        self.write("environment.budget_value(")
        self.visit(node.expr, frame)
        self.write(")")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if node.recursive:
            # Its inner rounds would iterate outside the budget; a mailing has no tree to walk.
            self.fail("recursive loops are not allowed in mailings", node.lineno)
        if not getattr(node, "budgeted", False):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("budget_loop"),
                [node.iter, nodes.Const(_body_text(node.body))],
                [],
                None,
                None,
                lineno=node.lineno,
            )
            node.budgeted = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)


# --- sizes checked before a value is built --------------------------------------------------------------
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d+|\*)?(?:\.(\d+|\*))?")
_DIGITS = re.compile(r"\d+")


def check_percent(budget: Budget, template: str, args: Any) -> None:
    """``template % args``: no width or precision beyond the budget (``*`` takes them from the args)."""
    stars = False
    for match in _PERCENT_FIELD.finditer(template):
        for number in match.groups():
            if number == "*":
                stars = True
            elif number and int(number) > budget.max_output:
                budget.allow(int(number), "a formatted field")
    if stars:
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            if isinstance(value, int) and value > budget.max_output:
                budget.allow(value, "a formatted field")


def check_format(budget: Budget, template: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    """``template.format(...)``: no field width beyond the budget, written or passed in (``{:>{}}``)."""
    nested = False
    for _, _, spec, _ in string.Formatter().parse(template):
        if not spec:
            continue
        nested = nested or "{" in spec
        for number in _DIGITS.findall(spec):
            if int(number) > budget.max_output:
                budget.allow(int(number), "a formatted field")
    if nested:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and value > budget.max_output:
                budget.allow(value, "a formatted field")


def _join_size(items: list[Any], separator: str) -> int:
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        size += len(item) if isinstance(item, str) else len(str(item))
    return size


def check_str_method(
    budget: Budget, text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Methods of a string that can make a much larger one from a small call."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        budget.allow(args[0], "a padded text")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            budget.allow(len(text) + text.count("\t") * tabsize, "a text")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        budget.allow(_replace_size(text, args[0], args[1], args[2] if len(args) > 2 else -1), "a text")
    elif name == "join" and args and not isinstance(args[0], str):
        items = list(args[0])
        budget.allow(_join_size(items, text), "a joined text")
    elif name in ("format", "format_map"):
        mapping = args[0] if name == "format_map" and args else kwargs
        check_format(budget, text, args if name == "format" else (), mapping)


def _replace_size(text: str, old: str, new: str, count: Any) -> int:
    occurrences = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    return len(text) + occurrences * max(len(new) - len(old), 0)


# The filters that can make a large value from small arguments: each checks its arguments first.
def _check_center(budget: Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    if isinstance(width, int):
        budget.allow(width, "a padded text")


def _check_indent(budget: Budget, value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(value)
    pad = width if isinstance(width, str) else " " * 0
    unit = len(pad) if isinstance(width, str) else (width if isinstance(width, int) else 0)
    budget.allow(len(text) + (text.count("\n") + 1) * unit, "an indented text")


def _check_wordwrap(budget: Budget, value: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
    wrapstring = kwargs.get("wrapstring") or (args[1] if len(args) > 1 else None) or "\n"
    text = str(value)
    lines = len(text) // max(width, 1) + 1 if isinstance(width, int) else len(text)
    budget.allow(len(text) + lines * len(str(wrapstring)), "a wrapped text")


def _check_replace(
    budget: Budget, value: Any, old: Any, new: Any, count: Any = None, *_: Any, **__: Any
) -> None:
    budget.allow(_replace_size(str(value), str(old), str(new), count), "a text")


def _check_format(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent(budget, str(value), tuple(args) or kwargs)


def _check_count(budget: Budget, value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
    if isinstance(count, int):
        budget.allow(count, "a list")


_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "format": _check_format,
    "batch": _check_count,
    "slice": _check_count,
}


def bounded_test(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a Jinja test, ``x is in big``) counted as a call reading its arguments whole."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _local.budget.spend(1 + sum(cost(arg) for arg in args))
        return original(*args, **kwargs)

    return wrapper


def bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a Jinja filter) counted as a call, its result's size charged, its arguments checked
    first where a small call can make a large value (``|join`` materializes its items to size them)."""
    skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0
    check = _CHECKS.get(name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        given = args[skip:]
        if name == "join" and given:
            items = list(given[0])
            separator = given[1] if len(given) > 1 else kwargs.get("d", "")
            if len(given) < 3 and "attribute" not in kwargs:
                budget.allow(_join_size(items, str(separator)), "a joined text")
            args = (*args[:skip], items, *given[1:])
        elif check is not None and given:
            check(budget, *given, **kwargs)
        if given:
            budget.spend(cost(given[0]))
        result = original(*args, **kwargs)
        budget.charge(result)
        return result

    return wrapper
