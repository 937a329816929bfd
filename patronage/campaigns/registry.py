"""What rules can say: attributes, functions (conditions and values), effects, budget scopes and loaders.

The Talang compiler (``talang``) knows only the language's core (logic, comparison, arithmetic, lists,
``catch``); everything a rule reads or does comes from here. A feature adds its own from its
``AppConfig.ready()`` (coupons register ``couponValid`` and ``acceptCoupon``, loyalty its balances and
``addLoyaltyPoints``, ...) without touching the compiler or the engine:

- :func:`register_attribute`: ``[".", "Profile", "Email"]`` and its type;
- :func:`register_function`: ``["inSegment", 12]``, with a **loader** that fetches, before evaluation and
  in the documented lock order, what the function reads (evaluation itself never queries);
- :func:`register_effect`: ``["setDiscount", name, value]``, the budget actions it counts, and how it is
  committed on close and rolled back;
- :func:`register_entity`: a budget scope (``Profile``, ``Store``, ...) and how it keys a counter.

Types are checked when a ruleset is saved: a wrong arity or type is a 400 pointing into the ruleset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The engine and the compiler import this registry; naming their classes here would close a circle.
Env = Any  # evaluation.Env
Facts = Any  # facts.Facts
Compiler = Any  # talang.Compiler
Compiled = Any  # talang.Compiled


class T:
    """Talang value types, checked at compile time. ``ANY`` (an attribute whose type only the data knows)
    matches everything and is checked when the rule runs."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    ITEMS = "items"  # a list of cart items (or units)
    ITEM = "item"
    LIST = "list"
    ANY = "any"
    EFFECT = "effect"
    NAME = "name"  # a literal name (a parameter, an attribute name), not an expression


@dataclass(frozen=True)
class Attribute:
    root: str  # "Session", "Profile", "Item", "Event", "Application"
    name: str
    type: str
    get: Callable[[Any], Any]  # from the root object (SessionFacts, ProfileFacts, ItemFacts, ...)
    label: str = ""
    # True: a free-form sub-path follows (["." "Profile" "Attributes" "tier"]) read from the dict ``get``
    # returns.
    nested: bool = False


@dataclass(frozen=True)
class Function:
    """A Talang operator from outside the core: its argument types, result type and implementation.

    ``build(args)`` receives the compiled arguments (callables of the env, or the literal for ``NAME``
    arguments) and returns a callable of the env. ``loader(facts, literals)`` (optional) runs before
    evaluation with every literal argument list the rulesets in play use, and returns what ``build``'s
    callable reads from ``env.loaded[name]``.
    """

    name: str
    args: tuple[str, ...]
    result: str
    build: Callable[[list[Any]], Callable[[Env], Any]]
    label: str = ""
    help: str = ""
    loader: Callable[[Facts, list[tuple[Any, ...]]], Any] | None = None
    literal_args: bool = False  # every argument must be a literal (what the loader keys on)


EffectCompile = Callable[
    ["Compiler", list[Any], str, dict[str, "Compiled"], int], Callable[["Env"], None] | None
]


@dataclass(frozen=True)
class Effect:
    """An effect builder: ``["setDiscount", name, value, scope?]``.

    ``compile(compiler, args, pointer, scope, depth)`` checks and compiles the arguments (reporting
    problems through the compiler) and returns a callable of the env that emits through ``env.emit`` (which
    counts budgets), or None when an argument was wrong. ``args`` names the argument types for the arity
    check, the docs and the builder.
    """

    name: str
    args: tuple[str, ...]
    compile: EffectCompile
    optional: int = 0  # how many trailing args may be left out
    label: str = ""
    help: str = ""
    failure_allowed: bool = False  # may be a failure effect of a rule (notifications, custom effects)


@dataclass(frozen=True)
class Entity:
    """A budget scope of Talon.One's LimitConfig ``entities``: the values a session has for it (one
    counter each; none: the budget cannot be checked, e.g. a Profile budget for an anonymous session).

    ``scope`` names a :class:`CodeScope` root ("Coupon"): the counter is keyed by the code the rule is
    checking, not by the session (``values`` is then unused)."""

    name: str
    values: Callable[[Facts], list[str]]
    missing_reason: str = "CampaignLimitReached"
    scope: str = ""


class CodeScope:
    """Codes a session carries that rules check one at a time, and that count when the session closes:
    coupons (``["couponValid"]``), the referral code (``["referralValid"]``).

    The engine runs a rule that uses ``condition`` once per code of the campaign (``candidates``), with
    the code readable as ``[".", root, ...]`` and keying ``Entity(scope=root)`` budgets; the condition
    answers ``check``. What follows is the feature's: the accept and reject effects, the codes no rule
    decided (``settle``), and the life cycle around evaluation (``load`` in the documented lock order,
    ``commit`` at close, ``rollback_*`` on cancel, return and reopen, ``content`` for responseContent).
    Methods left as they are here do nothing.
    """

    condition = ""
    root = ""

    # ---- evaluation (pure) ------------------------------------------------------------------------
    def candidates(self, env: Env, campaign: Any) -> list[Any]:
        return []

    def key(self, code: Any) -> str:
        """The code's value for budgets scoped by it."""
        return str(code)

    def stamp(self, code: Any) -> dict[str, Any]:
        """What every effect of a rule run for this code carries in its envelope."""
        return {}

    def check(self, env: Env, code: Any) -> str:
        """ "" when the code may be used in this evaluation, else the rejection reason."""
        return ""

    def discount_left(self, env: Env, code: Any) -> Any:
        """What the code may still discount (None: no cap of its own)."""
        return None

    def accept(self, env: Env, code: Any) -> str:
        """Emit the acceptance; "" or the reason it could not be (a budget)."""
        return ""

    def reject(self, env: Env, code: Any, reason: str, condition_index: int | None) -> None:
        return None

    def settle(self, env: Env, root: Any, only: set[int] | None) -> None:
        """After the whole tree ran: the answer for every code no rule decided."""
        return None

    # ---- the life cycle around evaluation (database) --------------------------------------------------
    def load(self, facts: Facts, *, lock: bool) -> Any:
        """What the request's codes name (locked when the session closes), as ``env.loaded[condition]``."""
        return None

    def budget_keys(self, loaded: Any, campaign_id: int) -> list[str]:
        """The keys of the loaded codes of a campaign, for ``Entity(scope=root)`` budget counters."""
        return []

    def commit(self, work: Any, session: Any, profile: Any, now: Any) -> dict[str, list[Any]]:
        """What a close (or an event) commits; answers what it made: ``{"createdCoupons": [...]}``."""
        return {}

    def rollback_load(self, session: Any) -> Any:
        """Before a rollback locks budget counters: what it will give back, locked."""
        return None

    def rollback(self, ctx: Any, state: Any) -> list[dict[str, Any]]:
        """The rollback effects of a cancel or reopen (``ctx.transition``), applied in ``release``."""
        return []

    def release(self, state: Any) -> None:
        return None

    def content(self, ctx: Any, work: Any) -> dict[str, Any]:
        """responseContent parts this feature answers (``coupons``, ``referral``)."""
        return {}


ATTRIBUTES: dict[tuple[str, str], Attribute] = {}
FUNCTIONS: dict[str, Function] = {}
EFFECTS: dict[str, Effect] = {}
ENTITIES: dict[str, Entity] = {}
# By condition name, in the documented lock order of what they load (coupons before referrals).
SCOPES: dict[str, CodeScope] = {}
# Budget actions whose counters a rollback never gives back (Talon.One: coupon creation).
KEPT_ON_ROLLBACK: set[str] = set()
# Budget actions any effect may count, beyond those effects declare: later features add theirs.
BUDGET_ACTIONS: dict[str, str] = {}


@dataclass
class Loaded:
    """What loaders fetched for one evaluation, by function name."""

    data: dict[str, Any] = field(default_factory=dict)


def register_attribute(*attributes: Attribute) -> None:
    for attribute in attributes:
        ATTRIBUTES[(attribute.root, attribute.name)] = attribute


def register_function(function: Function) -> None:
    FUNCTIONS[function.name] = function


def register_effect(effect: Effect) -> None:
    EFFECTS[effect.name] = effect


def register_entity(entity: Entity) -> None:
    ENTITIES[entity.name] = entity


def register_budget_action(action: str, label: str, *, kept_on_rollback: bool = False) -> None:
    BUDGET_ACTIONS[action] = label
    if kept_on_rollback:
        KEPT_ON_ROLLBACK.add(action)


def register_scope(scope: CodeScope) -> None:
    SCOPES[scope.condition] = scope


def roots() -> set[str]:
    return {root for root, _ in ATTRIBUTES}


def catalogue() -> dict[str, Any]:
    """Everything the rule builder offers, as JSON-ready data."""
    return {
        "attributes": [
            {"path": [a.root, a.name], "type": a.type, "label": a.label or a.name, "nested": a.nested}
            for a in ATTRIBUTES.values()
        ],
        "functions": [
            {"name": f.name, "args": list(f.args), "result": f.result, "label": f.label, "help": f.help}
            for f in FUNCTIONS.values()
        ],
        "effects": [
            {
                "name": e.name,
                "args": list(e.args),
                "optional": e.optional,
                "label": e.label,
                "help": e.help,
                "failure": e.failure_allowed,
            }
            for e in EFFECTS.values()
        ],
        "budgetActions": dict(BUDGET_ACTIONS),
        "entities": list(ENTITIES),
    }
