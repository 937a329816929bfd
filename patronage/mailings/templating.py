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
from functools import cache, lru_cache
from typing import Any

from jinja2 import Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from . import budget

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
# The one variable besides ``client``: the recipient's own unsubscribe link.
UNSUBSCRIBE_URL = "unsubscribe_url"
MACROS = (INITIAL, REPEAT)

PARTS = {"subject": "Subject", "html_body": "HTML body", "text_body": "Text body"}


class Client:
    """What one message knows of its customer, plus the codes reserved for it.

    ``codes`` maps a group's folded name to the code reserved for this message (initial issue);
    ``last_codes`` to the code most recently issued before. Calls are recorded in ``used_initial`` and
    ``used_repeat`` so that only codes a message really shows are issued.
    """

    __slots__ = (*CLIENT_FIELDS, "codes", "last_codes", "used_initial", "used_repeat", "unsubscribe_url")

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
        unsubscribe_url: str = "",
    ) -> None:
        self.integration_id = integration_id
        self.name = name
        words = name.split()  # any whitespace, leading spaces too: "Dear ," is what a customer notices
        self.first_name = words[0] if words else ""
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
        # The template variable {{ unsubscribe_url }} (not a field of ``client``): see mailings.unsubscribe.
        self.unsubscribe_url = unsubscribe_url

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


@lru_cache(maxsize=1024)  # a template calls its macros with a few literal names, once per message
def fold(group_name: str) -> str:
    """Group names are unique ignoring case (the database's rule), so macros match them that way."""
    return group_name.strip().casefold()


_CLIENT_NAMES = frozenset((*CLIENT_FIELDS, *MACROS))


# What one message may grow to and cost: see mailings.budget (settings with these defaults).
MAX_OUTPUT = budget.DEFAULT_MAX_OUTPUT
MAX_EXPONENT = 100
# Integers may not grow beyond this many bits (``(10**100)**100`` is 33,000; a digit is 3.3 bits).
MAX_INTEGER_BITS = 100_000


class _Sandbox(ImmutableSandboxedEnvironment):
    # Checked before they are computed (Jinja then neither folds them at compile time).
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    # Every loop's rounds are counted (mailings.budget).
    code_generator_class = budget.BudgetCodeGenerator
    budget_loop = staticmethod(budget.loop)
    budget_made = staticmethod(budget.made)
    budget_value = staticmethod(budget.value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        allowance = budget.current()
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:  # noqa: SIM102
            if left.bit_length() * right > MAX_INTEGER_BITS:
                raise budget.BudgetExceeded("a number of more than 30,000 digits is not allowed")
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                big = isinstance(sized, str | list | tuple) and isinstance(times, int)
                if big and len(sized) * times > allowance.max_output:
                    raise SecurityError(
                        f"repeating to more than {allowance.max_output:,} items is not allowed"
                    )
            if isinstance(left, int) and isinstance(right, int):  # noqa: SIM102
                if left.bit_length() + right.bit_length() > MAX_INTEGER_BITS:
                    raise budget.BudgetExceeded("a number of more than 30,000 digits is not allowed")
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            allowance.allow(len(left) + len(right))
        if operator == "%" and isinstance(left, str):
            budget.check_percent(allowance, left, right)
        result = super().call_binop(context, operator, left, right)
        allowance.charge(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        allowance = budget.current()
        if isinstance(getattr(__obj, "__self__", None), Client):  # the macros: the fast path of every message
            allowance.spend(1)
            return __context.call(__obj, *args, **kwargs)
        target = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            budget.check_str_method(allowance, owner, getattr(target, "__name__", ""), args, kwargs)
            allowance.spend(budget.cost(owner))
        result = super().call(__context, __obj, *args, **kwargs)
        allowance.charge(result)
        if isinstance(result, str):  # a macro's text (made again each time it is called)
            allowance.make(len(result))
        return result

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Client):
            return attr in _CLIENT_NAMES
        return bool(super().is_safe_attribute(obj, attr, value))

    # Jinja renders a name a client lacks as an empty string. Nothing but the allow-list exists on a client,
    # so a misspelt field reached where the static check cannot see it (a loop variable, ``|attr``,
    # ``'{0.x}'.format(client)``) must fail the trial render, not print nothing for every customer.
    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Client):
            # The allow-list is all a client has, so a listed name needs no further check: the fast path
            # for the few reads every message makes.
            if attribute in _CLIENT_NAMES:
                return getattr(obj, attribute)
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Client) and argument not in _CLIENT_NAMES:
            return self.unsafe_undefined(obj, str(argument))
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's default renders a refused attribute as an empty string; a refusal must be an error.
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")


@cache
def _environment(autoescape: bool) -> _Sandbox:
    environment = _Sandbox(autoescape=autoescape, keep_trailing_newline=True)
    # Only pure helpers stay global; the rest (cycler, joiner, namespace, lipsum) serve no mailing.
    environment.globals = {"range": environment.globals["range"], "dict": dict}
    # A message is rendered twice, when it is prepared (to learn which codes it shows) and when it is sent,
    # and both must agree: nothing may depend on chance.
    del environment.filters["random"]
    # Each filter counts as a call and may not make a value beyond the output budget (mailings.budget).
    environment.filters = {name: budget.bounded_filter(name, f) for name, f in environment.filters.items()}
    environment.tests = {name: budget.bounded_test(test) for name, test in environment.tests.items()}  # type: ignore[arg-type]
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
    # The client fields the templates read by name, and whether they use ``client`` any other way (passed
    # on, printed whole, read by a computed name): then every field may be read.
    reads: set[str] = field(default_factory=set)
    reads_any: bool = False
    # Whether a template prints ``{{ unsubscribe_url }}`` (else rendering does not need the link).
    shows_unsubscribe_url: bool = False

    def client_fields(self) -> tuple[str, ...]:
        """The fields a message needs of its customer (a send keeps no other: data minimization)."""
        if self.reads_any:
            return CLIENT_FIELDS
        needed = {"name" if name == "first_name" else name for name in self.reads}
        return tuple(name for name in CLIENT_FIELDS if name in needed)

    def groups(self, macro: str) -> list[str]:
        """Folded names of the groups the templates call ``macro`` with, in first-use order."""
        seen: dict[str, None] = {}
        for call in self.calls:
            if call.macro == macro:
                seen.setdefault(fold(call.group), None)
        return list(seen)


# Jinja's line breaks; ``str.splitlines`` also breaks at U+2028, form feeds and the like, which would shift
# every later line of a template pasted from a word processor.
_NEWLINE = re.compile(r"\r\n|\r|\n")
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


def _column(source: str, line: int | None, *patterns: str) -> int | None:
    """The column of the first of ``patterns`` (regular expressions) found on ``line``. Jinja's nodes know
    their line only, so the column is searched for; a match inside a tag wins over the same word in the
    text around it ("Your request: {{ request }}")."""
    if not line:
        return None
    lines = _NEWLINE.split(source)
    if line > len(lines):
        return None
    text = lines[line - 1]
    tags = [match.span() for match in _TAG.finditer(text)]
    for pattern in patterns:
        found = [match.start() for match in re.finditer(pattern, text)]
        inside = [start for start in found if any(begin <= start < end for begin, end in tags)]
        if found:
            return (inside or found)[0] + 1
    return None


def _word(name: str) -> str:
    """A pattern for ``name`` as a whole word (``promocode`` is not found in ``last_promocode``)."""
    return rf"(?<!\w){re.escape(name)}(?!\w)"


def _is_client(node: nodes.Node | None) -> bool:
    return isinstance(node, nodes.Name) and node.name == "client"


def _read_name(node: nodes.Node) -> str | None:
    """The name ``node`` reads of an object, written as ``x.name``, ``x['name']`` or ``x|attr('name')``."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem):
        argument = node.arg
    elif isinstance(node, nodes.Filter) and node.name == "attr" and len(node.args) == 1:
        argument = node.args[0]
    else:
        return None
    if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
        return argument.value
    return None


def _client_member(node: nodes.Node) -> str | None:
    """The name ``node`` reads of ``client``."""
    return _read_name(node) if _is_client(getattr(node, "node", None)) else None


def _walk(part: str, source: str, tree: nodes.Template, analysis: Analysis) -> None:
    def problem(line: int | None, message: str, *needles: str) -> None:
        analysis.problems.append(TemplateProblem(part, line, _column(source, line, *needles), message))

    undeclared = find_undeclared_variables(tree)
    analysis.shows_unsubscribe_url |= UNSUBSCRIBE_URL in undeclared
    undeclared -= {"client", UNSUBSCRIBE_URL}
    # Jinja declares ``self`` (the template's blocks) itself; a mailing has no use for it.
    if any(node.name == "self" and node.ctx == "load" for node in tree.find_all(nodes.Name)):
        undeclared.add("self")
    for name in sorted(undeclared):
        first = next(node for node in tree.find_all(nodes.Name) if node.name == name)
        message = f"unknown variable {name!r}; templates see only 'client' and '{UNSUBSCRIBE_URL}'"
        problem(first.lineno, message, rf"(?<![\w.]){re.escape(name)}(?!\w)")
    # A macro the analysis does not see called gets no code reserved in a send and prints nothing.
    called = {id(call.node) for call in tree.find_all(nodes.Call)}
    read_by_name = set()
    node: Any
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        attr = _read_name(node)
        member = _client_member(node)
        if member is not None:
            read_by_name.add(id(node.node))
            analysis.reads.add(member)
        if attr is not None and attr.startswith("_"):
            problem(node.lineno, f"access to the private attribute {attr!r} is not allowed", _word(attr))
        elif member is not None and member not in _CLIENT_NAMES:
            problem(
                node.lineno,
                f"unknown field client.{member}; a client has {', '.join(CLIENT_FIELDS)}",
                rf"\.{re.escape(member)}(?!\w)",
                _word(member),
            )
        elif member in MACROS and id(node) not in called:
            problem(
                node.lineno,
                f"client.{member} must be called with a group name in single quotes, "
                f"e.g. client.{member}('Summer sale')",
                _word(member),
            )
    if any(n.name == "client" and id(n) not in read_by_name for n in tree.find_all(nodes.Name)):
        analysis.reads_any = True
    for call in tree.find_all(nodes.Call):
        macro = _client_member(call.node)
        if macro not in MACROS:
            continue
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
                _word(macro),
            )
            continue
        written = rf"{_word(macro)}\W*?(['\"]){re.escape(argument.value)}\1"
        column = _column(source, call.lineno, written, _word(macro))
        analysis.calls.append(MacroCall(macro, argument.value, part, call.lineno, column))


def analyse(templates: Mapping[str, str]) -> Analysis:
    """Parse each part (``subject``, ``html_body``, ``text_body``) and collect problems and macro calls."""
    analysis = Analysis()
    for part, source in templates.items():
        # Unknown filters and tests ({{ x|uper }}) are found only when the tree is compiled, which the
        # walk does to find undeclared names: they are syntax errors too, not a crash of the check.
        try:
            _walk(part, source, environment_for(part).parse(source), analysis)
        except TemplateSyntaxError as exc:
            analysis.problems.append(_syntax_problem(part, exc))
    return analysis


def _syntax_problem(part: str, exc: TemplateSyntaxError) -> TemplateProblem:
    return TemplateProblem(part, exc.lineno, None, f"syntax error: {exc.message or exc}")


class _TrialCodes(dict[str, str]):
    """The codes of a trial render. A send reserves codes only for the groups the analysis saw named in
    quotes; a macro reaching any other group (``client|attr('promocode')``, a name built at render time)
    would print nothing for every customer, so the trial fails instead."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key not in self:
            raise LookupError(
                f"the promo-code group {key!r} is not named in quotes in a direct call; "
                "write it as client.promocode('Group name')"
            )
        return super().get(key, default)


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
    client = sample or Client(
        name="Sample Customer",
        email="sample@example.com",
        birth_date=dt.date(1990, 6, 15),
        created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    last_codes = dict(client.last_codes)  # a plain copy: the sample may come from an earlier check
    client.codes = _TrialCodes(
        {fold(call.group): "SAMPLECODE" for call in analysis.calls if call.macro == INITIAL}
    )
    client.last_codes = _TrialCodes(
        {
            fold(call.group): last_codes.get(fold(call.group), "")
            for call in analysis.calls
            if call.macro == REPEAT
        }
    )
    allowance = budget.Budget.from_settings()  # one message's budget, as in a send
    for part, source in templates.items():
        try:
            render(compile_part(part, source), client, allowance)
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
    """Raises :class:`RenderFailed` for a template that does not compile, as rendering would."""
    try:
        template = environment_for(part).from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderFailed(_syntax_problem(part, exc)) from exc
    # A template's globals are a ChainMap over the environment's; every render walked it twice, which was
    # 40% of a mailing's rendering time. Ours are fixed once the environment is made, so a copy will do.
    template.globals = dict(template.globals)
    return CompiledPart(part, source, template)


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


def render(part: CompiledPart, client: Client, allowance: budget.Budget | None = None) -> str:
    """One part for one client, within ``allowance`` (a message's parts share one; see mailings.budget):
    streamed, so output beyond the budget is refused before it is kept."""
    allowance = allowance or budget.Budget.from_settings()
    try:
        outer = budget.enter(allowance)
        template = part.template
        context = template.new_context({"client": client, "unsubscribe_url": client.unsubscribe_url})
        try:
            output = budget.bounded_join(template.root_render_func(context), allowance)
        except Exception:  # re-raised, pointing at the template's lines (as Template.render does)
            template.environment.handle_exception()
        finally:
            budget.enter(outer)
    except budget.BudgetExceeded as exc:
        line = _template_line(part, exc)
        raise RenderFailed(TemplateProblem(part.part, line, None, f"too costly: {exc}")) from exc
    except SecurityError as exc:
        line = _template_line(part, exc)
        raise RenderFailed(TemplateProblem(part.part, line, None, f"not allowed: {exc}")) from exc
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        line = _template_line(part, exc)
        message = re.sub(r"\s+", " ", str(exc)) or type(exc).__name__
        raise RenderFailed(TemplateProblem(part.part, line, None, message)) from exc
    except RecursionError as exc:  # pragma: no cover - a template recursing without end
        raise RenderFailed(TemplateProblem(part.part, None, None, "the template recurses too deep")) from exc
    return output


def renderer(templates: Mapping[str, str]) -> Callable[[Client], dict[str, str]]:
    """A function rendering every part of a mailing for one client (compiled once)."""
    compiled = [compile_part(part, source) for part, source in templates.items() if source]
    limits = budget.limits()

    def render_all(client: Client) -> dict[str, str]:
        allowance = budget.Budget(**limits)  # one budget for the whole message
        return {part.part: render(part, client, allowance) for part in compiled}

    return render_all


def message(rendered: Mapping[str, str]) -> tuple[str, str, str]:
    """(subject, HTML, text) of what :func:`renderer` made; a subject is one line."""
    subject = rendered.get("subject", "").replace("\r", " ").replace("\n", " ")
    return subject, rendered.get("html_body", ""), rendered.get("text_body", "")
