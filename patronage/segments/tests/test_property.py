"""Segments, property-based: random customers, orders, promo codes and offers, random rule trees, and the
members of the one compiled query held against a plain-Python reading of the same rules (``reference``).

Every example starts from an empty database: its rows are inserted in a savepoint that is rolled back at
its end. The rows every example shares (the shops, two customer groups, two groups of promo codes, two
offers, and one of each in the sandbox) are made once per test. Sandbox customers are in every world and
must never be members of a live segment.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from patronage.core import clock
from patronage.customer_sessions.models import CustomerSession
from patronage.customers.models import CustomerGroup, CustomerProfile, birth_md_of
from patronage.offers.models import OfferAssignment, OfferClaim, OfferFavourite, OfferRedemption
from patronage.promocodes.models import PromoCodeGroup, PromoCodeIssue
from patronage.segments.compiler import members_of_rules
from patronage.segments.registry import CONDITIONS, MAX_COUNT, MAX_DAYS, Condition, Value
from patronage.testing.factories import make_application
from patronage.testing.offers import make_offer
from patronage.workspace.models import Application, Environment
from patronage.workspace.services import environment_get

from . import reference as ref
from .reference import Customer, Issue, Order, Tracked, World

pytestmark = pytest.mark.django_db

LIVE, SANDBOX = Environment.LIVE, Environment.SANDBOX
TREES_PER_WORLD = 6
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# "Now" is one of these: windows that wrap over New Year, Feb 29 birthdays in common and leap years.
NOWS = (
    dt.datetime(2025, 12, 28, 12, tzinfo=dt.UTC),
    dt.datetime(2025, 2, 28, 12, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC),
    dt.datetime(2025, 6, 15, 12, tzinfo=dt.UTC),
)
# Text is ASCII (SQLite's LIKE folds only ASCII letters), with LIKE's wildcards and escape among it.
FRAGMENTS = (
    "ann",
    "Bo",
    "a_b",
    "50%",
    "x y",
    "o'neil",
    "back\\slash",
    'say "hi"',
    "Zed",
    "ANNA",
    "e",
    "%",
    "_",
)
LOCAL_PARTS = ("ann", "Ann.B", "bo_1", "x%y", "zed")
DOMAINS = ("example.com", "Example.ORG", "mail.example.com", "a_b.io", "shop.co.uk")
PHONES = ("", "+14155550123", "+447700900123", "+4420123")
PHONE_PARTS = ("+44", "+1", "4155", "0123", "+4")
# Attributes customers have; a rule may also name one nobody has, or one in another case.
ATTRIBUTE_NAMES = ("tier", "spend", "since", "vip", "a.b", "with space", "it's [0]")
RULE_ATTRIBUTE_NAMES = (*ATTRIBUTE_NAMES, "Tier", "missing")
# Instants fall in the last SPAN days (and a couple of days ahead).
SPAN = 21
# Numbers compare exactly as written: 2**53 + 1 is not 2**53 (a double could not tell them apart).
NUMBERS = (-3, -0.5, 0, 1, 2, 2.5, 3, 3.0, 10, 99.75, 1000, 2**53, 2**53 + 1, -(2**53) - 1, 10**20, 1e20)
STATES = ("open", "closed", "cancelled", "partially_returned")


@dataclass
class Static:
    """Rows every example shares."""

    environments: dict[str, Environment]
    applications: dict[str, Application]
    groups: dict[str, list[int]]
    promo_groups: dict[str, list[int]]
    offers: dict[str, list[int]]


@dataclass
class Scene:
    world: World
    orphan_orders: list[Order] = field(default_factory=list)  # sessions of deleted customers


@pytest.fixture
def static() -> Static:
    environments = {slug: environment_get(slug) for slug in (LIVE, SANDBOX)}
    applications = {slug: make_application(environment=slug) for slug in (LIVE, SANDBOX)}
    counts = {LIVE: 2, SANDBOX: 1}
    groups = {
        slug: [
            CustomerGroup.objects.create(environment=environments[slug], name=f"{slug} group {n}").pk
            for n in range(counts[slug])
        ]
        for slug in counts
    }
    promo_groups = {
        slug: [
            PromoCodeGroup.objects.create(environment=environments[slug], name=f"{slug} codes {n}").pk
            for n in range(counts[slug])
        ]
        for slug in counts
    }
    offers = {
        slug: [
            make_offer(environment=environments[slug], shops=[applications[slug]]).pk
            for _ in range(counts[slug])
        ]
        for slug in counts
    }
    return Static(environments, applications, groups, promo_groups, offers)


# --- worlds -------------------------------------------------------------------------------------------------


def midnight(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)


def instants(now: dt.datetime) -> st.SearchStrategy[dt.datetime]:
    """Midnights and noons of the last SPAN days (day starts, and ``now - N days`` as "now" is a noon),
    give or take a second."""
    start = midnight(now)

    def instant(k: int, s: int) -> dt.datetime:
        return start + dt.timedelta(hours=12 * k, seconds=s)

    return st.builds(instant, st.integers(-2 * SPAN, 4), st.sampled_from((0, 0, -1, 1)))


def mixed_case(text: str) -> st.SearchStrategy[str]:
    def cased(flips: list[bool]) -> str:
        return "".join(c.upper() if up else c.lower() for c, up in zip(text, flips, strict=True))

    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(cased)


# Named functions rather than lambdas: Hypothesis describes a lambda by reading its source, every time.


def quarter(n: int) -> float:
    return n / 4


def days_from(today: dt.date, low: int, high: int) -> st.SearchStrategy[dt.date]:
    def day(offset: int) -> dt.date:
        return today + dt.timedelta(days=offset)

    return st.integers(low, high).map(day)


def timestamp(day: dt.date) -> str:
    return f"{day.isoformat()}T10:00:00Z"


def unpadded(day: dt.date) -> str:
    return f"{day.year}-{day.month}-{day.day}"


def near_birthdays(today: dt.date) -> st.SearchStrategy[dt.date]:
    def in_year(offset: int, year: int) -> dt.date:
        day = today + dt.timedelta(days=offset)
        try:
            return day.replace(year=year)
        except ValueError:  # Feb 29
            return day.replace(year=2000)

    return st.builds(in_year, st.integers(-5, 12), st.integers(1940, 2012))


def birth_dates(today: dt.date) -> st.SearchStrategy[dt.date | None]:
    return st.one_of(
        st.none(),
        st.dates(dt.date(1940, 1, 1), dt.date(2012, 12, 31)),
        near_birthdays(today),
        st.sampled_from((dt.date(2000, 2, 29), dt.date(1999, 12, 31), dt.date(1990, 1, 1))),
    )


def date_texts(today: dt.date) -> st.SearchStrategy[str]:
    """Strings a date attribute may hold: a date, a timestamp, and things that only look like one."""
    day = days_from(today, -SPAN - 1, 3)
    return st.one_of(
        day.map(dt.date.isoformat),
        day.map(timestamp),
        day.map(unpadded),
        st.sampled_from(("2025-13-45", "1999-12-31xyz", "20250301", "")),
    )


def json_values(today: dt.date) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.sampled_from(FRAGMENTS),
        st.sampled_from(NUMBERS),
        st.integers(-5, 1005),
        st.integers(-40, 40).map(quarter),
        st.booleans(),
        st.none(),
        date_texts(today),
        st.sampled_from(("5", "true", "2.5")),
    )
    return st.one_of(scalars, st.dictionaries(st.sampled_from(("a", "tier")), scalars, max_size=2))


def attributes(today: dt.date) -> st.SearchStrategy[dict[str, Any]]:
    """Most attributes hold one type (a tier is text, a spend a number), some hold anything."""
    anything = json_values(today)
    typical = {
        "tier": st.sampled_from(FRAGMENTS),
        "spend": st.one_of(st.sampled_from(NUMBERS), st.integers(-40, 40).map(quarter)),
        "since": date_texts(today),
        "vip": st.booleans(),
    }
    return st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(typical[name], typical[name], anything) if name in typical else anything
            for name in ATTRIBUTE_NAMES
        },
    )


# Composites live at module level: Hypothesis inspects a composite's source each time one is defined.


@st.composite
def orders(draw: st.DrawFn, now: dt.datetime) -> Order:
    state = draw(st.sampled_from(STATES))
    closed_at = None if state == "open" else draw(instants(now))
    total = Decimal(draw(st.integers(0, 50_000))) / 100
    returned = Decimal("0")
    if state == "partially_returned":
        returned = Decimal(draw(st.integers(0, int(total * 100)))) / 100
    return Order(state=state, closed_at=closed_at, total=total, returned_total=returned)


def offer_of(row: Tracked) -> int:
    return row.offer


def address(parts: tuple[str, str]) -> st.SearchStrategy[str]:
    return mixed_case("@".join(parts))


@st.composite
def customers(draw: st.DrawFn, static: Static, environment: str, now: dt.datetime) -> Customer:
    when = instants(now)
    offers = static.offers[environment]
    tracked = st.lists(
        st.builds(Tracked, offer=st.sampled_from(offers), at=when),
        max_size=len(offers),
        unique_by=offer_of,
    )
    email = draw(
        st.one_of(
            st.none(),
            st.just(""),
            *[st.tuples(st.sampled_from(LOCAL_PARTS), st.sampled_from(DOMAINS)).flatmap(address)] * 3,
        )
    )
    return Customer(
        environment=environment,
        integration_id=draw(st.sampled_from(FRAGMENTS)),
        name=" ".join(draw(st.lists(st.sampled_from(FRAGMENTS), max_size=3))),
        email=email,
        phone=draw(st.sampled_from(PHONES)),
        birth_date=draw(birth_dates(now.date())),
        group=draw(st.sampled_from([None, *static.groups[environment]])),
        tax_exempt=draw(st.booleans()),
        accepts_marketing=draw(st.booleans()),
        attributes=draw(attributes(now.date())),
        created=draw(when),
        last_activity=draw(when),
        orders=draw(st.lists(orders(now), max_size=4)),
        issues=draw(
            st.lists(
                st.builds(
                    Issue,
                    group=st.sampled_from([*static.promo_groups[environment], None]),
                    kind=st.sampled_from(("initial", "repeat")),
                    created=when,
                ),
                max_size=4,
            )
        ),
        favourites=draw(tracked),
        claims=draw(tracked),
        redemptions=draw(tracked),
    )


def _make_unique(people: list[Customer]) -> None:
    """Integration IDs and emails (ignoring case) are unique within an environment."""
    ids: set[str] = set()
    emails: set[str] = set()
    for n, person in enumerate(people):
        if person.integration_id in ids:
            person.integration_id = f"{person.integration_id}-{n}"
        ids.add(person.integration_id)
        if person.email is not None:
            if person.email.lower() in emails:
                person.email = None
            else:
                emails.add(person.email.lower())


@st.composite
def scenes(draw: st.DrawFn, static: Static) -> Scene:
    now = draw(st.sampled_from(NOWS))
    live = draw(st.lists(customers(static, LIVE, now), min_size=2, max_size=8))
    sandbox = draw(st.lists(customers(static, SANDBOX, now), min_size=1, max_size=2))
    _make_unique(live)
    _make_unique(sandbox)
    # Assignments are by email, in whatever case they were typed; the same email may be a customer in both
    # environments, and a sandbox offer's assignment must not count in live.
    known = sorted({c.email for c in live + sandbox if c.email} | {"stray@example.com"})
    offers = [
        ref.Offer(
            pk=pk,
            environment=slug,
            emails=draw(
                st.lists(st.sampled_from(known).flatmap(mixed_case), max_size=4, unique_by=str.lower)
            ),
        )
        for slug in (LIVE, SANDBOX)
        for pk in static.offers[slug]
    ]
    orphans = draw(st.lists(orders(now), max_size=2))
    return Scene(World(now=now, customers=live + sandbox, offers=offers), orphans)


def insert(scene: Scene, static: Static) -> list[int]:
    """The scene's rows, in bulk; the pks of ``scene.world.customers`` in order."""
    world = scene.world
    profiles = CustomerProfile.objects.bulk_create(
        [
            CustomerProfile(
                environment=static.environments[c.environment],
                integration_id=c.integration_id,
                name=c.name,
                email=c.email,
                phone=c.phone,
                birth_date=c.birth_date,
                birth_md=birth_md_of(c.birth_date),
                group_id=c.group,
                tax_exempt=c.tax_exempt,
                accepts_marketing=c.accepts_marketing,
                attributes=c.attributes,
                closed_sessions=c.closed_sessions,
                total_sales=c.total_sales,
                created=c.created,
                last_activity=c.last_activity,
            )
            for c in world.customers
        ]
    )
    pks = [p.pk for p in profiles]
    serial = itertools.count(1)

    def session(order: Order, application: Application, profile_id: int | None) -> CustomerSession:
        return CustomerSession(
            application=application,
            integration_id=f"session-{next(serial)}",
            profile_id=profile_id,
            state=order.state,
            closed_at=order.closed_at,
            total=order.total,
            returned_total=order.returned_total,
            created=world.now - dt.timedelta(days=100),
            updated=world.now,
        )

    sessions = [
        session(o, static.applications[c.environment], pk)
        for c, pk in zip(world.customers, pks, strict=True)
        for o in c.orders
    ]
    sessions += [session(o, static.applications[LIVE], None) for o in scene.orphan_orders]
    CustomerSession.objects.bulk_create(sessions)
    PromoCodeIssue.objects.bulk_create(
        PromoCodeIssue(
            profile_id=pk,
            group_id=issue.group,
            code=f"CODE-{next(serial)}",
            group_name="codes",
            kind=issue.kind,
            created=issue.created,
        )
        for c, pk in zip(world.customers, pks, strict=True)
        for issue in c.issues
    )
    OfferAssignment.objects.bulk_create(
        OfferAssignment(offer_id=offer.pk, email=email.strip().lower())
        for offer in world.offers
        for email in offer.emails
    )
    OfferFavourite.objects.bulk_create(
        OfferFavourite(offer_id=t.offer, profile_id=pk, created=t.at)
        for c, pk in zip(world.customers, pks, strict=True)
        for t in c.favourites
    )
    OfferClaim.objects.bulk_create(
        OfferClaim(offer_id=t.offer, profile_id=pk, created=t.at)
        for c, pk in zip(world.customers, pks, strict=True)
        for t in c.claims
    )
    # A redemption counts when redeemed, not when recorded: ``created`` is set apart from ``redeemed_at``.
    OfferRedemption.objects.bulk_create(
        OfferRedemption(
            offer_id=t.offer,
            profile_id=pk,
            redeemed_at=t.at,
            created=world.now - dt.timedelta(days=365),
            source="api",
        )
        for c, pk in zip(world.customers, pks, strict=True)
        for t in c.redemptions
    )
    return pks


# --- rule trees ---------------------------------------------------------------------------------------------


@st.composite
def text_values(draw: st.DrawFn, pool: list[str], *, whole: bool = False) -> str:
    """A member of ``pool`` or (unless ``whole``) a piece of one, in any case, sometimes in spaces."""
    text = draw(st.sampled_from(pool))
    if not whole and draw(st.booleans()):
        start = draw(st.integers(0, len(text)))
        text = text[start : draw(st.integers(start, len(text)))]
    text = draw(mixed_case(text))
    if draw(st.integers(0, 5)) == 0:
        text = f" {text} "
    return text if text.strip() else "e"


def rule_dates(today: dt.date) -> st.SearchStrategy[dt.date]:
    near = days_from(today, -SPAN - 2, 3)
    return st.one_of(near, near, near, st.sampled_from((dt.date.min, dt.date.max, dt.date(2000, 2, 29))))


def iso(day: dt.date) -> str:
    return day.isoformat()


def date_pairs(days: st.SearchStrategy[dt.date]) -> st.SearchStrategy[list[str]]:
    def in_order(pair: list[dt.date]) -> list[str]:
        return [iso(d) for d in sorted(pair)]

    return st.lists(days, min_size=2, max_size=2).map(in_order)


def days_values(world: World) -> st.SearchStrategy[int]:
    """A number of days; often one that puts ``now - N days`` right at (or a second off) someone's instant."""
    instants = [c.created for c in world.customers] + [c.last_activity for c in world.customers]
    instants += [o.closed_at for c in world.customers for o in c.orders if o.closed_at]
    instants += [i.created for c in world.customers for i in c.issues]
    instants += [t.at for c in world.customers for t in c.favourites + c.claims + c.redemptions]
    ages = sorted({n for t in instants for n in ((world.now - t).days, (world.now - t).days + 1) if n >= 0})
    return _or_seen(
        st.one_of(st.integers(0, SPAN + 1), st.sampled_from((7, 364, 365, 365, 366, MAX_DAYS))), ages
    )


def month_days(today: dt.date) -> st.SearchStrategy[str]:
    near = days_from(today, -10, 40)
    anyday = st.dates(dt.date(2000, 1, 1), dt.date(2000, 12, 31))

    def month_day(choice: tuple[dt.date, bool]) -> str:
        day, padded = choice
        return f"{day.month:02d}-{day.day:02d}" if padded else f"{day.month}-{day.day}"

    return st.tuples(st.one_of(near, anyday), st.booleans()).map(month_day)


def ordered(pair: list[Any]) -> list[Any]:
    return sorted(pair)


def _json_number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def seen(world: World) -> dict[str, list[Any]]:
    """Values the live customers have, by kind, for rules to pick so that they often match someone."""
    live = [c for c in world.customers if c.environment == LIVE]
    attributes = [v for c in live for v in c.attributes.values()]
    instants = [c.created for c in live] + [c.last_activity for c in live]
    instants += [o.closed_at for c in live for o in c.orders if o.closed_at]
    instants += [i.created for c in live for i in c.issues]
    instants += [t.at for c in live for t in c.favourites + c.claims + c.redemptions]
    return {
        "profile.name": [c.name for c in live if c.name.strip()],
        "profile.integration_id": [c.integration_id for c in live],
        "profile.phone": [c.phone for c in live if c.phone],
        "profile.email": [c.email for c in live if c.email],
        "attribute.text": [v for v in attributes if isinstance(v, str) and v.strip()],
        "attribute.number": [v for v in attributes if isinstance(v, int | float) and not isinstance(v, bool)],
        "orders.total_spent": [_json_number(c.total_sales) for c in live],
        "attribute.date": [
            dt.date.fromisoformat(v[:10]) for v in attributes if isinstance(v, str) and _is_date(v[:10])
        ],
        "profile.birth_date": [c.birth_date for c in live if c.birth_date],
        "instant": [moment.date() for moment in instants],
    }


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _or_seen(strategy: st.SearchStrategy[Any], pool: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.sampled_from(pool)) if pool else strategy


def values(
    condition: Condition, operator: str, shape: Value, static: Static, world: World
) -> st.SearchStrategy[Any]:
    """A value of ``shape`` for the condition, drawn so that it often matches someone."""
    key = condition.key
    known = seen(world)
    if shape == Value.NONE:
        return st.none()
    if shape == Value.TEXT:
        if key == "profile.email" and operator == "domain":
            domains = [*DOMAINS, "example", *(e.rsplit("@", 1)[1] for e in known[key])]
            return text_values([f"{at}{d}" for d in domains for at in ("", "@")], whole=True)
        if key == "profile.phone":
            return text_values([*PHONE_PARTS, *known[key]])
        if operator == "is" and known.get(key):
            return st.one_of(text_values(known[key], whole=True), text_values(list(FRAGMENTS)))
        extra = LOCAL_PARTS if key == "profile.email" else ()
        return text_values([*FRAGMENTS, *extra, *known.get(key, [])])
    if shape in (Value.NUMBER, Value.NUMBER_RANGE):
        numbers = st.one_of(st.sampled_from(NUMBERS), st.integers(-40, 4000).map(quarter))
        numbers = _or_seen(numbers, known[key])
        if shape == Value.NUMBER:
            return numbers
        return st.lists(numbers, min_size=2, max_size=2).map(ordered)
    if shape in (Value.COUNT, Value.COUNT_RANGE):
        counts = st.one_of(st.integers(0, 3), st.integers(0, 3), st.integers(4, 6), st.just(MAX_COUNT))
        if shape == Value.COUNT:
            return counts
        return st.lists(counts, min_size=2, max_size=2).map(ordered)
    if shape == Value.BOOLEAN:
        return st.booleans()
    if shape in (Value.DATE, Value.DATE_RANGE):
        days = _or_seen(rule_dates(world.today), known.get(key, known["instant"]))
        return days.map(iso) if shape == Value.DATE else date_pairs(days)
    if shape == Value.DAYS:
        return days_values(world)
    if shape == Value.MONTH_DAYS:
        return st.lists(month_days(world.today), min_size=2, max_size=2)
    if shape == Value.IDS:
        ids = {"customer_groups": static.groups, "promo_groups": static.promo_groups, "offers": static.offers}
        return st.lists(st.sampled_from(ids[condition.reference][LIVE]), min_size=1, max_size=2, unique=True)
    raise AssertionError(f"no values for {shape}")


def since_until(pair: list[str]) -> dict[str, Any]:
    return {"since": pair[0], "until": pair[1]}


def periods(world: World) -> st.SearchStrategy[dict[str, Any]]:
    days = rule_dates(world.today)
    return st.one_of(
        st.just({}),
        st.fixed_dictionaries({"last_days": days_values(world)}),
        st.fixed_dictionaries({"since": days.map(iso)}),
        st.fixed_dictionaries({"until": days.map(iso)}),
        date_pairs(days).map(since_until),
        st.sampled_from(({"since": None}, {"until": ""}, {"last_days": None})),
    )


def merged(dicts: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {k: v for d in dicts for k, v in d.items()}


def params(condition: Condition, static: Static, world: World) -> st.SearchStrategy[dict[str, Any]]:
    names = {p.name for p in condition.params}
    known = {"name", "group", "kind", "since", "until", "last_days"}
    assert names <= known, f"no parameters for {condition.key}: {names - known}"
    parts: list[st.SearchStrategy[dict[str, Any]]] = []
    if "name" in names:
        kind = {"text": str, "number": int | float, "boolean": bool, "date": str}[condition.key.split(".")[1]]
        held = sorted(
            {
                name
                for c in world.customers
                for name, v in c.attributes.items()
                if isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
            }
        )
        named = _or_seen(st.sampled_from(RULE_ATTRIBUTE_NAMES), held)
        parts.append(st.fixed_dictionaries({"name": named}))
    if "group" in names:
        parts.append(
            st.one_of(
                st.just({}), st.fixed_dictionaries({"group": st.sampled_from(static.promo_groups[LIVE])})
            )
        )
    if "kind" in names:
        parts.append(st.sampled_from(({}, {"kind": "initial"}, {"kind": "repeat"})))
    if "since" in names:
        parts.append(periods(world))
    return st.tuples(*parts).map(merged)


def negations() -> st.SearchStrategy[bool | None]:
    return st.sampled_from((False, True, None))  # None: the member is left out


FIELD_OPERATORS = [(key, op) for key, condition in CONDITIONS.items() for op in condition.allowed()]


@st.composite
def condition_of(draw: st.DrawFn, key: str, operator: str, static: Static, world: World) -> dict[str, Any]:
    spec = CONDITIONS[key]
    shape = spec.allowed()[operator]
    node: dict[str, Any] = {"type": "condition", "field": key, "operator": operator}
    if shape != Value.NONE or draw(st.booleans()):  # a null value or none
        node["value"] = draw(values(spec, operator, shape, static, world))
    given = draw(params(spec, static, world))
    spelled_out = draw(st.booleans())  # {} or left out
    if given or spelled_out:
        node["params"] = given
    negate = draw(negations())
    if negate is not None:
        node["negate"] = negate
    return node


def conditions(static: Static, world: World) -> st.SearchStrategy[dict[str, Any]]:
    def condition(pair: tuple[str, str]) -> st.SearchStrategy[dict[str, Any]]:
        return condition_of(*pair, static, world)

    return st.sampled_from(FIELD_OPERATORS).flatmap(condition)


@st.composite
def groups(
    draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]], max_size: int, min_size: int = 0
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": "group",
        "children": draw(st.lists(children, min_size=min_size, max_size=max_size)),
    }
    match = draw(st.sampled_from(("all", "any", None)))  # None: left out
    if match is not None:
        node["match"] = match
    negate = draw(negations())
    if negate is not None:
        node["negate"] = negate
    return node


def trees(static: Static, world: World) -> st.SearchStrategy[dict[str, Any]]:
    """A root group and groups nested up to three deep under it."""

    def nodes(depth: int) -> st.SearchStrategy[dict[str, Any]]:
        leaf = conditions(static, world)
        if depth == 0:
            return leaf
        return st.one_of(leaf, leaf, groups(nodes(depth - 1), max_size=3))

    return groups(nodes(3), min_size=1, max_size=4)


# --- the properties -----------------------------------------------------------------------------------------


def compare(static: Static, scene: Scene, pks: list[int], tree: dict[str, Any]) -> None:
    expected = {pks[i] for i in ref.members(scene.world, LIVE, tree)}
    live = sum(1 for c in scene.world.customers if c.environment == LIVE)
    kind = "none" if not expected else "all" if len(expected) == live else "some"
    event("members: " + kind)
    segment = members_of_rules(static.environments[LIVE], tree)  # checks the ids the tree names
    with CaptureQueriesContext(connection) as queries:
        got = set(segment.values_list("pk", flat=True))
    assert len(queries) <= 1, [q["sql"] for q in queries]
    if got != expected:
        by_pk = dict(zip(pks, scene.world.customers, strict=True))
        note(f"tree: {tree}")
        note(f"SQL: {queries[0]['sql'] if queries else '(none)'}")
        for pk in sorted(got ^ expected):
            note(f"{'only SQL' if pk in got else 'only reference'}: {by_pk[pk]}")
    assert got == expected


def run(static: Static, data: st.DataObject, check: Callable[[Scene, list[int]], None]) -> None:
    scene = data.draw(scenes(static), label="scene")
    with clock.frozen_at(scene.world.now), transaction.atomic():
        pks = insert(scene, static)
        check(scene, pks)
        transaction.set_rollback(True)


@PROPERTY
@given(data=st.data())
def test_a_segment_has_the_members_its_rules_describe(static: Static, data: st.DataObject) -> None:
    def check(scene: Scene, pks: list[int]) -> None:
        for n in range(TREES_PER_WORLD):
            compare(static, scene, pks, data.draw(trees(static, scene.world), label=f"tree {n}"))

    run(static, data, check)


@settings(PROPERTY, max_examples=20)
@given(data=st.data())
def test_every_field_and_operator_alone_means_what_it_says(static: Static, data: st.DataObject) -> None:
    def check(scene: Scene, pks: list[int]) -> None:
        for key, operator in FIELD_OPERATORS:
            leaf = data.draw(condition_of(key, operator, static, scene.world), label=f"{key} {operator}")
            compare(static, scene, pks, {"type": "group", "match": "all", "children": [leaf]})

    run(static, data, check)


def test_the_whole_tree_is_one_query(static: Static, django_assert_num_queries: Any) -> None:
    """Every field and operator at once, nested and negated, still reads the database once."""
    live = static.environments[LIVE]
    plain = {
        Value.NONE: None,
        Value.TEXT: "ann",
        Value.NUMBER: 2,
        Value.NUMBER_RANGE: [1, 3.5],
        Value.COUNT: 1,
        Value.COUNT_RANGE: [0, 2],
        Value.BOOLEAN: True,
        Value.DATE: "2025-03-01",
        Value.DATE_RANGE: ["2025-01-01", "2025-03-01"],
        Value.DAYS: 7,
        Value.MONTH_DAYS: ["12-20", "01-10"],
    }
    ids = {"customer_groups": static.groups, "promo_groups": static.promo_groups, "offers": static.offers}
    leaves = []
    for n, (key, operator) in enumerate(FIELD_OPERATORS):
        spec = CONDITIONS[key]
        shape = spec.allowed()[operator]
        value = ids[spec.reference][LIVE] if shape == Value.IDS else plain[shape]
        extra: dict[str, Any] = {"name": "tier"} if any(p.name == "name" for p in spec.params) else {}
        if any(p.name == "last_days" for p in spec.params):
            extra["last_days"] = 30
        leaves.append(
            {
                "type": "condition",
                "field": key,
                "operator": operator,
                "value": value,
                "params": extra,
                "negate": n % 3 == 0,
            }
        )
    tree = {
        "type": "group",
        "match": "any",
        "children": [
            {"type": "group", "match": "all", "negate": True, "children": leaves[::2]},
            {"type": "group", "match": "any", "children": leaves[1::2]},
        ],
    }
    CustomerProfile.objects.create(environment=live, integration_id="someone", email="ann@example.com")
    segment = members_of_rules(live, tree)
    with django_assert_num_queries(1):
        list(segment.values_list("pk", flat=True))
