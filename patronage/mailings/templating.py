"""Mailing templates: Jinja2's immutable sandbox, a ``client`` that exposes an allow-list, and the two
promo-code macros of the seed, ``{{client.promocode('Group')}}`` and ``{{client.last_promocode('Group')}}``.

Why the belt and braces:
- Templates are written by staff but rendered for every customer, so they run in
  ``ImmutableSandboxedEnvironment`` (Jinja2 >= 3.1.6 closes the ``|attr``/``format`` escapes).
- ``client`` is a plain snapshot (:class:`Client`), never a model: there is no path from a template to the
  ORM, settings or a password hash, whatever the sandbox lets through. Its attributes are an allow-list.
- Before a mailing is saved, :func:`check` parses each part, walks the tree for unknown variables, unknown
  ``client`` fields, private attributes and unknown groups, and trial-renders it for a sample customer, so
  mistakes are reported with their line and column instead of surfacing mid-send.

The HTML body is autoescaped; the subject and the text body are not (they are not HTML).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

# What a template may read of a customer. Nothing else exists on ``client``.
CLIENT_FIELDS = (
    "integration_id",
    "name",
    "first_name",
    "email",
    "phone",
    "birth_date",
    "group",
    "tax_exempt",
    "orders",
    "total_sales",
    "created",
    "attributes",
)
INITIAL, REPEAT = "promocode", "last_promocode"
MACROS = (INITIAL, REPEAT)

PARTS = {"subject": "Subject", "html_body": "HTML body", "text_body": "Text body"}


class Client:
    """What one message knows of its customer, plus the codes reserved for it.

    ``codes`` maps a group's folded name to the code reserved for this message (initial issue);
    ``last_codes`` to the code most recently issued before. Calls are recorded in ``used_initial`` and
    ``used_repeat`` so that only codes a message really shows are issued.
    """

    __slots__ = (*CLIENT_FIELDS, "codes", "last_codes", "used_initial", "used_repeat")

    def __init__(
        self,
        *,
        integration_id: str = "",
        name: str = "",
        email: str = "",
        phone: str = "",
        birth_date: dt.date | None = None,
        group: str = "",
        tax_exempt: bool = False,
        orders: int = 0,
        total_sales: Decimal = Decimal(0),
        created: dt.datetime | None = None,
        attributes: Mapping[str, Any] | None = None,
        codes: Mapping[str, str] | None = None,
        last_codes: Mapping[str, str] | None = None,
    ) -> None:
        self.integration_id = integration_id
        self.name = name
        self.first_name = name.split(" ", 1)[0] if name else ""
        self.email = email
        self.phone = phone
        self.birth_date = birth_date
        self.group = group
        self.tax_exempt = tax_exempt
        self.orders = orders
        self.total_sales = total_sales
        self.created = created
        self.attributes = dict(attributes or {})
        self.codes = codes or {}
        self.last_codes = last_codes or {}
        self.used_initial: set[str] = set()
        self.used_repeat: set[str] = set()

    def __repr__(self) -> str:
        return f"client {self.integration_id}"

    __str__ = __repr__

    def promocode(self, group: str) -> str:
        """The code this message issues from the group; the same one for every call in the message."""
        key = fold(group)
        code = self.codes.get(key, "")
        if code:
            self.used_initial.add(key)
        return code

    def last_promocode(self, group: str) -> str:
        """The code most recently issued to the customer from the group, or "" when there is none."""
        key = fold(group)
        if key in self.codes:  # this very message issues one from the group: that is now the latest
            return self.promocode(group)
        code = self.last_codes.get(key, "")
        if code:
            self.used_repeat.add(key)
        return code


def fold(group_name: str) -> str:
    """Group names are unique ignoring case (the database's rule), so macros match them that way."""
    return group_name.strip().casefold()


class _Sandbox(ImmutableSandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Client):
            return attr in CLIENT_FIELDS or attr in MACROS
        return bool(super().is_safe_attribute(obj, attr, value))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default renders a refused attribute as an empty string; a refusal must be an error.
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")


@cache
def _environment(autoescape: bool) -> _Sandbox:
    environment = _Sandbox(autoescape=autoescape, keep_trailing_newline=True)
    # Only pure helpers stay global; the rest (cycler, joiner, namespace, lipsum) serve no mailing.
    environment.globals = {"range": environment.globals["range"], "dict": dict}
    return environment


def environment_for(part: str) -> _Sandbox:
    return _environment(part == "html_body")


@dataclass(frozen=True)
class TemplateProblem:
    part: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = PARTS.get(self.part, self.part)
        if self.line:
            where += f", line {self.line}"
            if self.column:
                where += f", column {self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class MacroCall:
    macro: str  # INITIAL or REPEAT
    group: str  # as written
    part: str
    line: int
    column: int | None


@dataclass
class Analysis:
    problems: list[TemplateProblem] = field(default_factory=list)
    calls: list[MacroCall] = field(default_factory=list)

    def groups(self, macro: str) -> list[str]:
        """Folded names of the groups the templates call ``macro`` with, in first-use order."""
        seen: dict[str, None] = {}
        for call in self.calls:
            if call.macro == macro:
                seen.setdefault(fold(call.group), None)
        return list(seen)


def _column(source: str, line: int | None, *needles: str) -> int | None:
    if not line:
        return None
    lines = source.splitlines()
    if line > len(lines):
        return None
    for needle in needles:
        found = lines[line - 1].find(needle)
        if found >= 0:
            return found + 1
    return None


def _is_client(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "client"


def _walk(part: str, source: str, tree: nodes.Template, analysis: Analysis) -> None:
    def problem(line: int | None, message: str, *needles: str) -> None:
        analysis.problems.append(TemplateProblem(part, line, _column(source, line, *needles), message))

    allowed = set(CLIENT_FIELDS) | set(MACROS)
    for name in sorted(find_undeclared_variables(tree) - {"client"}):
        first = next(node for node in tree.find_all(nodes.Name) if node.name == name)
        problem(first.lineno, f"unknown variable {name!r}; templates see only 'client'", name)
    node: Any
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(attr, str) and attr.startswith("_"):
            problem(node.lineno, f"access to the private attribute {attr!r} is not allowed", attr)
        elif _is_client(node.node) and isinstance(attr, str) and attr not in allowed:
            problem(
                node.lineno,
                f"unknown field client.{attr}; a client has {', '.join(CLIENT_FIELDS)}",
                f".{attr}",
                attr,
            )
    for call in tree.find_all(nodes.Call):
        target = call.node
        if not (isinstance(target, nodes.Getattr) and _is_client(target.node) and target.attr in MACROS):
            continue
        macro = target.attr
        argument = call.args[0] if len(call.args) == 1 else None
        if (
            call.kwargs
            or call.dyn_args
            or call.dyn_kwargs
            or not isinstance(argument, nodes.Const)
            or not isinstance(argument.value, str)
        ):
            problem(
                call.lineno,
                f"client.{macro} takes one group name in single quotes, e.g. 'Summer sale'",
                macro,
            )
            continue
        column = _column(source, call.lineno, f"{macro}(")
        analysis.calls.append(MacroCall(macro, argument.value, part, call.lineno, column))


def analyse(templates: Mapping[str, str]) -> Analysis:
    """Parse each part (``subject``, ``html_body``, ``text_body``) and collect problems and macro calls."""
    analysis = Analysis()
    for part, source in templates.items():
        try:
            tree = environment_for(part).parse(source)
        except TemplateSyntaxError as exc:
            analysis.problems.append(
                TemplateProblem(part, exc.lineno, None, f"syntax error: {exc.message or exc}")
            )
            continue
        _walk(part, source, tree, analysis)
    return analysis


def check(
    templates: Mapping[str, str], *, group_names: Iterable[str], sample: Client | None = None
) -> Analysis:
    """Everything :func:`analyse` finds, plus unknown groups and what a trial render for ``sample`` hits
    (a sandbox violation, a filter misused): the problems a person must fix before sending."""
    analysis = analyse(templates)
    known = {fold(name) for name in group_names}
    for call in analysis.calls:
        if fold(call.group) not in known:
            analysis.problems.append(
                TemplateProblem(
                    call.part,
                    call.line,
                    call.column,
                    f"there is no group of promo codes named {call.group!r}",
                )
            )
    if analysis.problems:
        return analysis
    client = sample or Client(name="Sample Customer", email="sample@example.com")
    client.codes = {fold(call.group): "SAMPLECODE" for call in analysis.calls if call.macro == INITIAL}
    for part, source in templates.items():
        try:
            render(compile_part(part, source), client)
        except RenderFailed as exc:
            analysis.problems.append(exc.problem)
    return analysis


class RenderFailed(Exception):
    def __init__(self, problem: TemplateProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True)
class CompiledPart:
    part: str
    source: str
    template: Template


def compile_part(part: str, source: str) -> CompiledPart:
    environment = environment_for(part)
    return CompiledPart(part, source, environment.from_string(source))


def _template_line(part: CompiledPart, error: BaseException) -> int | None:
    """The template line an exception was raised at: Jinja rewrites tracebacks to point at template lines
    in frames named after the template."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def render(part: CompiledPart, client: Client) -> str:
    try:
        return part.template.render(client=client)
    except SecurityError as exc:
        line = _template_line(part, exc)
        raise RenderFailed(TemplateProblem(part.part, line, None, f"not allowed: {exc}")) from exc
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        line = _template_line(part, exc)
        message = re.sub(r"\s+", " ", str(exc)) or type(exc).__name__
        raise RenderFailed(TemplateProblem(part.part, line, None, message)) from exc
    except RecursionError as exc:  # pragma: no cover - a template recursing without end
        raise RenderFailed(TemplateProblem(part.part, None, None, "the template recurses too deep")) from exc


def renderer(templates: Mapping[str, str]) -> Callable[[Client], dict[str, str]]:
    """A function rendering every part of a mailing for one client (compiled once)."""
    compiled = [compile_part(part, source) for part, source in templates.items() if source]

    def render_all(client: Client) -> dict[str, str]:
        return {part.part: render(part, client) for part in compiled}

    return render_all
