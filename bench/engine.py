"""Benchmark the campaign engine: session PUTs against 100 campaigns, in-process evaluation, a raced budget.

One run, on a fresh PostgreSQL database of its own (``patronage_bench_engine`` next to BENCH_DATABASE_URL's):

1. ``PUT /v2/customer_sessions/{id}`` (5-item cart) in one application holding 100 enabled campaigns, 80 whose
   conditions fail on the cart (1 to 5 ``and``-ed conditions, the last one failing: Session.Total thresholds,
   item ``exists`` filters, profile attributes, Application.Weekday) and 20 that fire (10 ``setDiscount``, 10
   ``setDiscountPerItem`` over a filter); beside the same PUTs with the 100 campaigns disabled, on the same
   ``patronage serve`` process and data (enabled / disabled >= 70%), and beside an application with no
   campaigns at all (the floor). Then an open loop at 100 requests/s with the campaigns enabled: p99 < 25 ms.
2. ``evaluation.evaluate`` in process (no HTTP, no database) on prepared facts over compiled plans of 10, 100
   and 1000 campaigns (80% failing): microseconds per evaluation and per non-firing campaign (< 10 µs).
3. 50 clients closing 500 sessions at once against one campaign whose budget holds 200 discounts: exactly 200
   granted (responses, effect ledger rows and the budget counter agree); throughput and p99.
4. Where the time goes: SQL statements per PUT and a cProfile of a few hundred PUTs in process.

Load comes from ``bench/loadgen.py`` in its own process, the server is started and stopped as
``bench/session_update.py`` does (whose helpers this reuses). Prints a table, writes the figures to
``var/bench/engine.json`` and exits 0 when every target is met, 1 when one is missed, 2 when the benchmark
could not run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _common as steps
import psycopg
import session_update as su
from _common import DEFAULT_DATABASE_URL, ROOT, ensure_database, warn_if_disturbed
from loadgen import percentiles

DATABASE = "patronage_bench_engine"
CAMPAIGNS = 100
FIRING_SHARE = 0.2  # of the campaigns fire on the cart: half session discounts, half per-item discounts
SIZES = (10, 100, 1000)
RATIO_TARGET = 0.70
STEADY_RATE = 100.0
STEADY_P99_MS = 25.0
PER_CAMPAIGN_US = 10.0
BUDGET = 200
BUDGET_CLIENTS = 50
BUDGET_SESSIONS_EACH = 10
PROFILED_REQUESTS = 300

SLUGS = {"campaigns": "engine-bench", "empty": "engine-bench-empty", "budget": "engine-bench-budget"}
PREFIX = {"campaigns": "e", "empty": "z", "budget": "b"}
SESSION_PATH = "/v2/customer_sessions/eng-{session}"

ITEMS = [".", "Session", "CartItems"]
TOTAL = [".", "Session", "Total"]
WEEKDAY = [".", "Application", "Weekday"]
TIER = [".", "Profile", "Attributes", "tier"]
CATEGORY = [".", "Item", "Category"]
# The benchmark's cart: two coffee lines (what the per-item campaigns discount), 81.83 when {n} is 0.
CART: list[dict[str, Any]] = [
    {"name": "Espresso beans 1kg", "sku": "COF-001", "quantity": 2, "price": "@N@.99", "category": "coffee"},
    {"name": "Ceramic mug", "sku": "MUG-010", "quantity": 1, "price": 9.5, "category": "kitchen"},
    {"name": "Milk frother", "sku": "FRO-200", "quantity": 1, "price": 39.0, "category": "appliances"},
    {"name": "Paper filters x100", "sku": "FIL-100", "quantity": 3, "price": 4.2, "category": "coffee"},
    {"name": "Travel tumbler", "sku": "TUM-330", "quantity": 1, "price": 18.75, "category": "kitchen"},
]
COFFEE_LINES = sum(1 for item in CART if item["category"] == "coffee")
PROFILE_ATTRIBUTES = {"tier": "silver", "visits": 3}


# --- the campaigns ----------------------------------------------------------------------------------


def condition(kind: str, n: int, *, passes: bool) -> list[Any]:
    """One condition of a kind the engine evaluates differently; ``n`` varies its constant."""
    if kind == "total":
        return [">", TOTAL, 10 + n % 7] if passes else [">", TOTAL, 100_000 + n]
    if kind == "item":
        wanted = "coffee" if passes else f"garden-{n % 3}"
        return ["exists", ITEMS, ["Item"], ["=", CATEGORY, wanted]]
    if kind == "profile":
        return ["=", TIER, "silver" if passes else f"platinum-{n % 3}"]
    return [">=", WEEKDAY, 1] if passes else [">", WEEKDAY, 7 + n % 3]


KINDS = ("total", "item", "profile", "weekday")


def campaign_rules(number: int, total: int) -> list[dict[str, Any]]:
    """The rules of campaign ``number`` of ``total``: the first 80% fail on the benchmark's cart at depth 1
    to 5 (the last ``and``-ed condition fails), then session discounts, then per-item discounts."""
    failing = round(total * (1 - FIRING_SHARE))
    if number < failing:
        depth = 1 + number % 5
        parts = [condition(KINDS[(number + k) % 4], number, passes=k < depth - 1) for k in range(depth)]
        return [
            {
                "title": f"Fails at {depth}",
                "condition": ["and", *parts],
                "effects": [["setDiscount", "Never", 5]],
            }
        ]
    if (number - failing) % 2 == 0:
        return [
            {
                "title": "Session discount",
                "condition": [
                    "and",
                    condition("total", number, passes=True),
                    condition("weekday", number, passes=True),
                ],
                "effects": [["setDiscount", f"Session {number}", 0.5]],
            }
        ]
    coffee = ["filter", ITEMS, ["Item"], ["=", CATEGORY, "coffee"]]
    return [
        {
            "title": "Coffee discount",
            "condition": ["and", condition("item", number, passes=True)],
            "effects": [["setDiscountPerItem", f"Coffee {number}", coffee, ["Item"], 0.05]],
        }
    ]


def body_template(attributes: str, *, state: str = "") -> str:
    cart = json.dumps(CART).replace('"@N@.99"', "{n}.99")
    closing = f', "state": "{state}"' if state else ""
    return (
        '{"customerSession": {"profileId": "eng-c-{session}", '
        f'"cartItems": {cart}, "attributes": {attributes}{closing}}}}}'
    )


PUT_BODY = body_template('{"channel": "bench", "seq": {n}}')
CLOSE_BODY = '{"customerSession": {"state": "closed"}}'


# --- steps run in a product process (Django set up): ``engine.py --step NAME`` -----------------------


def step_setup(_: list[str]) -> dict[str, Any]:
    """Three applications of the live environment (they share its customers), their keys and campaigns."""
    from patronage.campaigns.services import CampaignInput, campaign_create, ruleset_create
    from patronage.workspace.services import api_key_create, application_create

    keys, ids = {}, {}
    for role, slug in SLUGS.items():
        app = application_create(name=f"Engine bench ({role})", slug=slug, environment="live", currency="EUR")
        keys[role] = api_key_create(application=app, name="bench")[1]
        if role == "campaigns":
            for number in range(CAMPAIGNS):
                campaign = campaign_create(
                    application=app, data=CampaignInput(name=f"Campaign {number:03d}", state="enabled")
                )
                ruleset_create(campaign=campaign, rules=campaign_rules(number, CAMPAIGNS), activate=True)
        elif role == "budget":
            campaign = campaign_create(
                application=app,
                data=CampaignInput(
                    name="Two hundred discounts",
                    state="enabled",
                    limits=[{"action": "setDiscountEffect", "limit": BUDGET, "entities": []}],
                ),
            )
            rules = [
                {"title": "Five off", "condition": ["and", True], "effects": [["setDiscount", "Five off", 5]]}
            ]
            ruleset_create(campaign=campaign, rules=rules, activate=True)
            ids["budget"] = campaign.pk
    return {"keys": keys, "ids": ids}


def step_state(args: list[str]) -> dict[str, Any]:
    """Enable or disable every campaign of the 100-campaign application, through the service."""
    from patronage.campaigns.models import Campaign
    from patronage.campaigns.services import CampaignInput, campaign_update

    (state,) = args
    changed = 0
    for campaign in Campaign.objects.filter(application__slug=SLUGS["campaigns"]).order_by("pk"):
        campaign_update(campaign=campaign, data=CampaignInput(state=state))
        changed += 1
    return {"changed": changed}


def step_budget(args: list[str]) -> dict[str, Any]:
    """What the ledger and the counter hold for the budget campaign."""
    from patronage.campaigns.models import BudgetCounter, EffectRecord
    from patronage.customer_sessions.models import CustomerSession

    campaign_id = int(args[0])
    counters = list(BudgetCounter.objects.filter(campaign_id=campaign_id).values_list("action", "counter"))
    return {
        "records": EffectRecord.objects.filter(campaign_id=campaign_id).count(),
        "counters": {action: str(value) for action, value in counters},
        "closed_sessions": CustomerSession.objects.filter(
            application__slug=SLUGS["budget"], state="closed"
        ).count(),
    }


def _facts() -> Any:
    """The benchmark's cart, customer and application as the engine sees them (what ``facts_for`` makes)."""
    import datetime as dt
    from decimal import Decimal

    from patronage.campaigns.facts import AppFacts, Facts, ItemFacts, ProfileFacts, SessionFacts

    now = dt.datetime(2026, 12, 8, 12, tzinfo=dt.UTC)
    items = tuple(
        ItemFacts(
            position,
            item["sku"],
            item["name"],
            item["category"],
            Decimal("12.99") if item["price"] == "@N@.99" else Decimal(str(item["price"])),
            item["quantity"],
            {},
        )
        for position, item in enumerate(CART)
    )
    total = sum((i.total for i in items), Decimal(0))
    session = SessionFacts(
        integration_id="eng-e0",
        state="open",
        store="",
        first_session=False,
        total=total,
        cart_item_total=total,
        additional_cost_total=Decimal(0),
        additional_costs={},
        items=items,
        attributes={"channel": "bench", "seq": 7},
    )
    profile = ProfileFacts(
        pk=1,
        integration_id="eng-c-e0",
        name="",
        email="",
        group="",
        group_id=None,
        orders=0,
        total_sales=Decimal(0),
        birth_date=None,
        created=now,
        attributes=dict(PROFILE_ATTRIBUTES),
    )
    app = AppFacts(id=1, name="Engine bench", currency="EUR", time_zone="Europe/Berlin")
    return Facts(app=app, now=now, local_now=now.astimezone(app.tz), session=session, profile=profile)


def _plan(numbers: list[int], total: int) -> Any:
    from patronage.campaigns.evaluation import PlanCampaign, PlanGroup
    from patronage.campaigns.talang import compile_ruleset

    root = PlanGroup(1, "Base group", "stackable")
    for number in numbers:
        rules = compile_ruleset(campaign_rules(number, total), [])
        root.children.append(
            PlanCampaign(number + 1, f"Campaign {number}", number + 1, rules, [], 1, "stackable")
        )
    return root


def _time_per_call(call: Any, budget_s: float = 1.0, rounds: int = 7) -> float:
    """Seconds per call: the best of ``rounds`` rounds of about ``budget_s / rounds`` each (the least
    disturbed by anything else on a shared machine)."""
    call()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < 0.05:
        call()
        calls += 1
    per_round = max(1, int(calls * budget_s / rounds / 0.05))
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            call()
        best = min(best, (time.perf_counter() - start) / per_round)
    return best


def step_evaluate(_: list[str]) -> dict[str, Any]:
    """``evaluate`` over compiled plans of each size: every campaign, the failing ones, the firing ones."""
    from patronage.campaigns.evaluation import evaluate

    facts = _facts()
    sizes = []
    for size in SIZES:
        failing = round(size * (1 - FIRING_SHARE))
        plans = {
            "all": _plan(list(range(size)), size),
            "failing": _plan(list(range(failing)), size),
            "firing": _plan(list(range(failing, size)), size),
        }
        outcome, _env = evaluate(plans["all"], facts)
        fired = {e.campaign.id for e in outcome.effects}
        seconds = {name: _time_per_call(lambda p=plan: evaluate(p, facts)) for name, plan in plans.items()}
        nothing = _plan([], size)
        empty = _time_per_call(lambda p=nothing: evaluate(p, facts))  # what every evaluation costs: its Env
        sizes.append(
            {
                "campaigns": size,
                "failing": failing,
                "fired": len(fired),
                "effects": len(outcome.effects),
                "us_per_evaluation": round(seconds["all"] * 1e6, 1),
                "us_per_campaign": round(seconds["all"] * 1e6 / size, 2),
                "us_failing_only": round(seconds["failing"] * 1e6, 1),
                "us_per_failing_campaign": round((seconds["failing"] - empty) * 1e6 / failing, 2),
                "us_per_firing_campaign": round((seconds["firing"] - empty) * 1e6 / (size - failing), 2),
                "us_empty_tree": round(empty * 1e6, 2),
            }
        )
    return {"sizes": sizes}


def step_profile(args: list[str]) -> dict[str, Any]:
    """In process, through Django's test client on the benchmark's database: SQL statements per PUT for
    each application, and a cProfile of ``PROFILED_REQUESTS`` PUTs with the 100 campaigns enabled."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    keys = json.loads(args[0])
    client = Client()

    def put(role: str, i: int, n: int) -> Any:
        session = f"{PREFIX[role]}{i}"
        body = PUT_BODY.replace("{session}", session).replace("{n}", str(n))
        return client.put(
            SESSION_PATH.replace("{session}", session),
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"ApiKey-v1 {keys[role]}",
        )

    statements: dict[str, Any] = {}
    for role in ("campaigns", "empty"):
        put(role, 0, 1)  # the plan compiled, the connection open
        with CaptureQueriesContext(connection) as queries:
            response = put(role, 0, 2)
        assert response.status_code == 200, response.content[:300]
        statements[role] = {
            "count": len(queries.captured_queries),
            "sql": [q["sql"][:160] for q in queries.captured_queries],
        }
    # The same PUTs one after another, no profiler: wall time and this process's CPU time (Django and the
    # engine, not PostgreSQL) per PUT, with the campaigns enabled, disabled and with none.
    timed: dict[str, Any] = {}
    for label, role, state in (
        ("enabled", "campaigns", "enabled"),
        ("disabled", "campaigns", "disabled"),
        ("none", "empty", ""),
        ("enabled again", "campaigns", "enabled"),
    ):
        if state:
            step_state([state])
        for n in range(20):
            put(role, n % 50, n + 3)
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(PROFILED_REQUESTS):
            put(role, n % 50, n + 3)
        timed[label] = {
            "wall_ms": round((time.perf_counter() - wall) * 1000 / PROFILED_REQUESTS, 3),
            "cpu_ms": round((time.process_time() - cpu) * 1000 / PROFILED_REQUESTS, 3),
        }
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for n in range(PROFILED_REQUESTS):
        put("campaigns", n % 50, n + 3)
    profiler.disable()
    wall = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    top: dict[str, list[dict[str, Any]]] = {}
    for order in ("tottime", "cumulative"):
        stats.sort_stats(order)
        rows = []
        for func in stats.fcn_list[:25]:  # type: ignore[attr-defined]
            _cc, calls, tottime, cumtime, _ = stats.stats[func]  # type: ignore[attr-defined]
            rows.append(
                {
                    "function": f"{_short(func[0])}:{func[1]}({func[2]})",
                    "calls_per_request": round(calls / PROFILED_REQUESTS, 1),
                    "tottime_ms_per_request": round(tottime * 1000 / PROFILED_REQUESTS, 3),
                    "cumtime_ms_per_request": round(cumtime * 1000 / PROFILED_REQUESTS, 3),
                }
            )
        top[order] = rows
    # Where the engine's share of a request goes (cumulative, per request, under the profiler).
    parts = {}
    for wanted, label in ENGINE_PARTS.items():
        for (path, _line, name), (_cc, _calls, _tt, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            if path.endswith(wanted[0]) and name == wanted[1]:
                parts[label] = round(cumtime * 1000 / PROFILED_REQUESTS, 3)
    per_request = round(wall * 1000 / PROFILED_REQUESTS, 2)
    return {
        "requests": PROFILED_REQUESTS,
        "ms_per_request_profiled": per_request,
        "statements": statements,
        "engine_parts": parts,
        "timed": timed,
        "top": top,
    }


ENGINE_PARTS = {
    ("customer_sessions/services.py", "session_update"): "session_update (the whole service)",
    ("customer_sessions/engine.py", "run_evaluate"): "  engines' evaluate step",
    ("campaigns/plan.py", "plan_for"): "    plan_for (version query, cached plan)",
    ("campaigns/lifecycle.py", "facts_for"): "    facts_for (facts of the request)",
    ("campaigns/lifecycle.py", "load_for"): "    load_for (loaders, budget counters)",
    ("campaigns/evaluation.py", "evaluate"): "    evaluation.evaluate (the pure engine)",
    ("campaigns/lifecycle.py", "answer"): "    answer (effect envelopes)",
    ("customer_sessions/engine.py", "run_persist"): "  engines' persist step",
    ("integration/presenters.py", "integration_state"): "integration_state (response body)",
    ("integration/presenters.py", "json_response"): "json_response (encoding)",
}


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


STEPS = {
    "setup": step_setup,
    "state": step_state,
    "budget": step_budget,
    "evaluate": step_evaluate,
    "profile": step_profile,
}


def run_step(database_url: str, name: str, *args: str) -> dict[str, Any]:
    return steps.run_step(__file__, database_url, name, *args)


# --- HTTP phases -------------------------------------------------------------------------------------


def put(base: str, key: str, role: str, i: int, n: int) -> tuple[int, Any]:
    session = f"{PREFIX[role]}{i}"
    body = PUT_BODY.replace("{session}", session).replace("{n}", str(n)).encode()
    return su.http(f"{base}{SESSION_PATH.replace('{session}', session)}", key=key, method="PUT", body=body)


def prime(base: str, keys: dict[str, str], sessions: int, clients: int) -> None:
    """Every customer with the profile attributes the rules read, and every session opened, so that the
    measured phases update existing sessions of known customers."""

    def one(job: tuple[str, int]) -> None:
        role, i = job
        profile = json.dumps({"attributes": PROFILE_ATTRIBUTES}).encode()
        status, answer = su.http(
            f"{base}/v2/customer_profiles/eng-c-{PREFIX[role]}{i}", key=keys[role], method="PUT", body=profile
        )
        if status != 200:
            raise RuntimeError(f"profile {role} {i}: {status} {str(answer)[:300]}")
        status, answer = put(base, keys[role], role, i, 0)
        if status != 200:
            raise RuntimeError(f"session {role} {i}: {status} {str(answer)[:300]}")

    jobs = [(role, i) for role in ("campaigns", "empty") for i in range(sessions)]
    jobs += [("budget", i) for i in range(BUDGET_CLIENTS * BUDGET_SESSIONS_EACH)]
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, jobs))


def sanity(base: str, keys: dict[str, str], *, enabled: bool) -> dict[str, Any]:
    """One PUT's effects: with the campaigns enabled, exactly the 20 firing campaigns' groups."""
    status, answer = put(base, keys["campaigns"], "campaigns", 0, 1)
    if status != 200:
        raise RuntimeError(f"sanity PUT: {status} {str(answer)[:300]}")
    effects = answer["effects"]
    found = {
        "effects": len(effects),
        "campaigns": len({e["campaignId"] for e in effects}),
        "types": dict(Counter(e["effectType"] for e in effects)),
    }
    firing = round(CAMPAIGNS * FIRING_SHARE)
    wanted = (
        {"effects": firing // 2 * (1 + COFFEE_LINES), "campaigns": firing,
         "types": {"setDiscount": firing // 2, "setDiscountPerItem": firing // 2 * COFFEE_LINES}}
        if enabled
        else {"effects": 0, "campaigns": 0, "types": {}}
    )  # fmt: skip
    if found != wanted:
        raise RuntimeError(f"the PUT answered {found}, not {wanted}")
    return found


def close_race(base: str, key: str) -> dict[str, Any]:
    """``BUDGET_CLIENTS`` threads, each closing its ``BUDGET_SESSIONS_EACH`` sessions one after another,
    released together."""
    barrier = threading.Barrier(BUDGET_CLIENTS)
    latencies: list[float] = []
    granted: list[int] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(c: int) -> None:
        barrier.wait(timeout=60)
        for k in range(BUDGET_SESSIONS_EACH):
            session = f"{PREFIX['budget']}{c * BUDGET_SESSIONS_EACH + k}"
            start = time.perf_counter()
            status, answer = su.http(
                f"{base}{SESSION_PATH.replace('{session}', session)}",
                key=key,
                method="PUT",
                body=CLOSE_BODY.encode(),
                timeout=60,
            )
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                statuses[status] += 1
                if status == 200:
                    granted.extend(1 for e in answer["effects"] if e["effectType"] == "setDiscount")

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(BUDGET_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "granted_in_responses": len(granted),
        "latency_ms": percentiles(latencies),
    }


def run_http(settings: su.Settings, keys: dict[str, str], sessions: int) -> dict[str, Any]:
    url = settings.database_url
    log = settings.output.with_suffix(".server.log")
    raw: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        su.running_server(settings, log, port=settings.port) as (base, pgid),
    ):
        body = Path(tmp) / "put.json"
        body.write_text(PUT_BODY)
        closing = BUDGET_CLIENTS * BUDGET_SESSIONS_EACH
        print(f"[http 1/7] customers and sessions: {sessions} per application, {closing} to close")
        prime(base, keys, sessions, settings.connections)
        raw["sanity_enabled"] = sanity(base, keys, enabled=True)
        print(f"           sanity, campaigns enabled: {raw['sanity_enabled']}")

        def closed(role: str) -> dict[str, Any]:
            return su.measured(
                settings, pgid, base, settings.duration, mode="closed", connections=settings.connections,
                warmup=settings.warmup, sessions=sessions, session_prefix=PREFIX[role],
                **su.put_options(keys[role], body) | {"path": SESSION_PATH},
            )  # fmt: skip

        # Enabled, disabled, disabled, enabled: the machine's drift during the run weighs on both alike.
        print(f"[http 2/7] closed loop, {settings.connections} clients, {settings.duration:.0f}s: enabled")
        raw["enabled_1"] = closed("campaigns")
        run_step(url, "state", "disabled")
        raw["sanity_disabled"] = sanity(base, keys, enabled=False)
        print("[http 3/7] the same, campaigns disabled (twice)")
        raw["disabled_1"] = closed("campaigns")
        raw["disabled_2"] = closed("campaigns")
        run_step(url, "state", "enabled")
        sanity(base, keys, enabled=True)
        print("[http 4/7] the same, campaigns enabled again")
        raw["enabled_2"] = closed("campaigns")
        print("[http 5/7] floor: an application with no campaigns at all")
        raw["empty"] = closed("empty")
        print(f"[http 6/7] open loop, {STEADY_RATE:.0f} req/s, {settings.steady_duration:.0f}s: enabled")
        raw["steady"] = su.measured(
            settings, pgid, base, settings.steady_duration, mode="rate", rate=STEADY_RATE, connections=32,
            warmup=settings.warmup, sessions=sessions, session_prefix=PREFIX["campaigns"],
            **su.put_options(keys["campaigns"], body) | {"path": SESSION_PATH},
        )  # fmt: skip
        print(
            f"[http 7/7] {BUDGET_CLIENTS} clients close {BUDGET_SESSIONS_EACH} sessions each, budget {BUDGET}"
        )
        su.vacuum(url)
        su.wait_idle(settings.idle_wait)
        before = su.cpu_snapshot(pgid)
        raw["budget"] = close_race(base, keys["budget"])
        raw["budget"]["cpu"] = su.cpu_split(before, su.cpu_snapshot(pgid), raw["budget"]["rps"])
    return raw


# --- report ------------------------------------------------------------------------------------------


def verdicts(raw: dict[str, Any]) -> list[dict[str, Any]]:
    enabled = (raw["enabled_1"]["rps"] + raw["enabled_2"]["rps"]) / 2
    disabled = (raw["disabled_1"]["rps"] + raw["disabled_2"]["rps"]) / 2
    empty, steady, budget = raw["empty"], raw["steady"], raw["budget"]
    ratio = enabled / disabled if disabled else 0.0
    errors = sum(raw[p]["errors"] for p in ("enabled_1", "enabled_2", "disabled_1", "disabled_2", "empty"))
    s99 = steady["latency_ms"]["p99"]
    mid = next(s for s in raw["evaluation"]["sizes"] if s["campaigns"] == CAMPAIGNS)
    worst = max(s["us_per_failing_campaign"] for s in raw["evaluation"]["sizes"])
    counted = raw["budget_stored"]
    cost = {
        p: raw[p]["cpu"]["server_ms_per_request"] + raw[p]["cpu"]["postgres_ms_per_request"] for p in PHASES
    }
    cost_enabled = (cost["enabled_1"] + cost["enabled_2"]) / 2
    cost_disabled = (cost["disabled_1"] + cost["disabled_2"]) / 2
    held = counted["counters"].get("setDiscountEffect", "?")
    return [
        {
            "target": f"PUT, {CAMPAIGNS} campaigns enabled / disabled >= {RATIO_TARGET:.0%}",
            "ours": f"{enabled:.1f} req/s",
            "reference": f"{disabled:.1f} req/s disabled",
            "figure": f"ratio {ratio:.1%}",
            "pass": ratio >= RATIO_TARGET and errors == 0,
        },
        {
            "target": f"p99 < {STEADY_P99_MS:.0f} ms at {STEADY_RATE:.0f} req/s, campaigns enabled",
            "ours": f"p99 {s99} ms",
            "reference": f"p50 {steady['latency_ms']['p50']} ms, {steady['rps']} req/s",
            "figure": f"errors {steady['errors']}",
            "pass": s99 is not None and s99 < STEADY_P99_MS and steady["errors"] == 0,
        },
        {
            "target": f"evaluate: < {PER_CAMPAIGN_US:.0f} µs per non-firing campaign",
            "ours": f"{mid['us_per_failing_campaign']} µs ({CAMPAIGNS} campaigns)",
            "reference": f"{mid['us_per_evaluation']} µs per evaluation",
            "figure": f"worst size {worst} µs",
            "pass": worst < PER_CAMPAIGN_US,
        },
        {
            "target": f"{BUDGET_CLIENTS} clients closing: exactly {BUDGET} granted",
            "ours": f"{budget['granted_in_responses']} in responses",
            "reference": f"{counted['records']} ledger rows, counter {held}",
            "figure": f"{budget['rps']} req/s, p99 {budget['latency_ms']['p99']} ms, {budget['status']}",
            "pass": budget["granted_in_responses"] == counted["records"] == BUDGET
            and float(held) == BUDGET
            and budget["status"] == {"200": BUDGET_CLIENTS * BUDGET_SESSIONS_EACH},
        },
        {
            "target": "floor: PUT with no campaigns at all (context)",
            "ours": f"{empty['rps']:.1f} req/s",
            "reference": f"{enabled:.1f} req/s enabled",
            "figure": f"enabled / floor {enabled / empty['rps']:.1%}" if empty["rps"] else "no answer",
            "pass": None,
        },
        # What a quiet machine would give: CPU per request moves far less with neighbours than req/s does.
        {
            "target": "CPU per PUT, server + PostgreSQL (context)",
            "ours": f"{cost_enabled:.2f} ms enabled",
            "reference": f"{cost_disabled:.2f} ms disabled, {cost['empty']:.2f} ms none",
            "figure": f"disabled / enabled {cost_disabled / cost_enabled:.1%}" if cost_enabled else "-",
            "pass": None,
        },
    ]


def print_evaluation(evaluation: dict[str, Any]) -> None:
    print(
        f"{'campaigns':>9}{'fired':>7}{'effects':>9}{'µs/eval':>10}{'µs/campaign':>13}"
        f"{'µs/failing':>12}{'µs/firing':>11}{'empty tree µs':>15}"
    )
    for s in evaluation["sizes"]:
        print(
            f"{s['campaigns']:>9}{s['fired']:>7}{s['effects']:>9}{s['us_per_evaluation']:>10}"
            f"{s['us_per_campaign']:>13}{s['us_per_failing_campaign']:>12}{s['us_per_firing_campaign']:>11}"
            f"{s['us_empty_tree']:>15}"
        )


PHASES = ("enabled_1", "disabled_1", "disabled_2", "enabled_2", "empty", "steady", "budget")


def print_cpu(raw: dict[str, Any]) -> None:
    phases = PHASES
    print(
        f"{'phase':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'server ms/req':>15}{'pg ms/req':>11}"
        f"{'other':>7}"
    )
    for phase in phases:
        r, c = raw[phase], raw[phase]["cpu"]
        print(
            f"{phase:<12}{r['rps']:>9}{r['latency_ms']['p50']:>9}{r['latency_ms']['p99']:>9}"
            f"{c['server_ms_per_request']:>15}{c['postgres_ms_per_request']:>11}{c['other_cores']:>7}"
        )
    warn_if_disturbed(raw, phases)


def print_profile(profile: dict[str, Any]) -> None:
    statements = profile["statements"]
    print(
        f"SQL statements per PUT: {statements['campaigns']['count']} with {CAMPAIGNS} campaigns, "
        f"{statements['empty']['count']} with none"
    )
    print(
        f"cProfile, {profile['requests']} PUTs in process with {CAMPAIGNS} campaigns enabled "
        f"({profile['ms_per_request_profiled']} ms each under the profiler)"
    )
    print(f"in process, {profile['requests']} PUTs one after another, no profiler, per PUT:")
    for label, t in profile["timed"].items():
        print(f"  {label:<14} wall {t['wall_ms']:>7.3f} ms, CPU of the process {t['cpu_ms']:>7.3f} ms")
    print("under cProfile, cumulative per PUT:")
    for label, ms in profile["engine_parts"].items():
        print(f"  {ms:>7.3f} ms cum  {label}")
    print("top by own time, per request:")
    for row in profile["top"]["tottime"][:12]:
        print(
            f"  {row['tottime_ms_per_request']:>7.3f} ms own {row['cumtime_ms_per_request']:>7.3f} ms cum "
            f"{row['calls_per_request']:>8} calls  {row['function']}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url",
        default=env("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"PostgreSQL server to use, also from BENCH_DATABASE_URL; the benchmark recreates {DATABASE} "
        "there (default: %(default)s)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(env("BENCH_PORT", "8775")),
        help="loopback port (default: %(default)s)",
    )
    p.add_argument(
        "--workers", type=int, default=int(env("BENCH_WORKERS", "0")),
        help="gunicorn workers (default: %(default)s = as `patronage serve`)",
    )  # fmt: skip
    p.add_argument("--connections", type=int, default=8, help="closed-loop clients (default: %(default)s)")
    p.add_argument(
        "--duration", type=float, default=15, help="seconds per closed-loop phase (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=float, default=3, help="unmeasured seconds before each phase (default: %(default)s)"
    )
    p.add_argument(
        "--steady-duration", type=float, default=20, help="seconds at 100 req/s (default: %(default)s)"
    )
    p.add_argument(
        "--idle-wait", type=float, default=float(env("BENCH_IDLE_WAIT", "60")),
        help="max seconds to wait for a quiet machine before each phase (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--sessions", type=int, default=500, help="sessions per application (default: %(default)s)"
    )
    p.add_argument(
        "--output", type=Path, default=ROOT / "var" / "bench" / "engine.json",
        help="where the figures go as JSON (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    p.add_argument("step_args", nargs="*", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
        django.setup()
        print(json.dumps(STEPS[args.step](args.step_args)))
        return 0
    host = su.machine()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = args.database_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    settings = su.Settings(
        database_url=url,
        port=args.port,
        workers=args.workers,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        steady_duration=args.steady_duration,
        idle_wait=args.idle_wait,
        customers=0,
        output=args.output,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        pg_version = ensure_database(url, fresh=True)
        su.patronage(settings, "migrate", "--no-input", "-v", "0")
        su.patronage(settings, "createcachetable")
        made = run_step(url, "setup")
        print(f"[1/4] in-process evaluation of {', '.join(map(str, SIZES))} campaigns (no HTTP, no database)")
        su.wait_idle(args.idle_wait)
        evaluation = run_step(url, "evaluate")
        print_evaluation(evaluation)
        print("[2/4] HTTP, `patronage serve` on PostgreSQL")
        raw = run_http(settings, made["keys"], args.sessions)
        raw["evaluation"] = evaluation
        print("[3/4] the budget as stored")
        raw["budget_stored"] = run_step(url, "budget", str(made["ids"]["budget"]))
        print(f"      {raw['budget_stored']}")
        print(f"[4/4] profile: {PROFILED_REQUESTS} PUTs in process")
        raw["profile"] = run_step(url, "profile", json.dumps(made["keys"]))
    except (RuntimeError, OSError, psycopg.Error, subprocess.SubprocessError, KeyError, ValueError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        print(f"benchmark could not run: {exc}\n{detail}", file=sys.stderr)
        return 2
    rows = verdicts(raw)
    print()
    su.print_table(rows)
    print()
    print_cpu(raw)
    print()
    print_profile(raw["profile"])
    report = {
        "started": started,
        "machine": {**host, "postgresql": pg_version},
        "settings": {
            k: str(v) for k, v in vars(args).items() if k not in ("database_url", "step", "step_args")
        },
        "workers": su.served_workers(settings.output.with_suffix(".server.log")),
        "targets": rows,
        "raw": raw,
    }
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nfigures written to {args.output}")
    return 0 if all(r["pass"] for r in rows if r["pass"] is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
