"""Coupons at checkout: a session PUT carrying one valid coupon beside the same PUT without one, and 50
clients racing to close sessions that all carry one coupon of usage limit 10.

Run from ``bench/coupons.py`` (its checkout part) or alone: ``python bench/_coupon_checkout.py``. On a
fresh PostgreSQL database of its own (``patronage_bench_checkout`` next to BENCH_DATABASE_URL's):

1. One application with a campaign "10% with a coupon" (``["and", ["couponValid"]]`` -> ``setDiscount``)
   holding 100,000 coupons, and a second campaign without codes that fires on every cart (so both PUTs do the
   same engine work besides the coupon). Closed-loop PUTs of open sessions (5-item cart) that carry one valid
   coupon, then the same PUTs of sessions without a code, alternated with-without-without-with against the
   machine's drift: with / without >= 85%.
2. A coupon of usage limit 10; 50 sessions of 50 customers carry it; 50 clients close them at the same
   instant: exactly 10 acceptances in the responses, 10 redemptions stored, usage counter 10. Throughput and
   p99.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _common as steps
import session_update as su
from _common import DEFAULT_DATABASE_URL, ROOT, ensure_database
from loadgen import percentiles

DATABASE = "patronage_bench_checkout"
SLUG = "checkout-bench"
COUPONS = 100_000
RATIO_TARGET = 0.85
RACE_CLIENTS = 50
RACE_LIMIT = 10
SESSION_PATH = "/v2/customer_sessions/chk-{session}"
CART = [
    {"name": "Espresso beans 1kg", "sku": "COF-001", "quantity": 2, "price": 21.99, "category": "coffee"},
    {"name": "Ceramic mug", "sku": "MUG-010", "quantity": 1, "price": 9.5, "category": "kitchen"},
    {"name": "Milk frother", "sku": "FRO-200", "quantity": 1, "price": 39.0, "category": "appliances"},
    {"name": "Paper filters x100", "sku": "FIL-100", "quantity": 3, "price": 4.2, "category": "coffee"},
    {"name": "Travel tumbler", "sku": "TUM-330", "quantity": 1, "price": 18.75, "category": "kitchen"},
]
SHARED = "BENCH-SHARED-10"  # valid for every session: usage limit 0, never redeemed by open sessions
RACE_CODE = "RACE-TEN-0001"


def body(*, coupon: str | None, state: str = "") -> str:
    codes = f', "couponCodes": ["{coupon}"]' if coupon else ""
    closing = f', "state": "{state}"' if state else ""
    return (
        '{"customerSession": {"profileId": "chk-c-{session}", '
        f'"cartItems": {json.dumps(CART)}, "attributes": {{"seq": {{n}}}}{codes}{closing}}}}}'
    )


# --- steps run in a product process (Django set up) -----------------------------------------------------


def step_setup(_: list[str]) -> dict[str, Any]:
    from django.db import connection

    from patronage.campaigns.services import CampaignInput, campaign_create, ruleset_create
    from patronage.coupons.models import Coupon
    from patronage.workspace.services import api_key_create, application_create

    app = application_create(name="Checkout bench", slug=SLUG, environment="live", currency="EUR")
    key = api_key_create(application=app, name="bench")[1]
    coupons = campaign_create(
        application=app, data=CampaignInput(name="10% with a coupon", state="enabled", features=["coupons"])
    )
    ruleset_create(
        campaign=coupons,
        rules=[
            {
                "title": "10% off with a coupon",
                "condition": ["and", ["couponValid"]],
                "effects": [["setDiscount", "Coupon 10%", ["*", [".", "Session", "Total"], 0.1]]],
            }
        ],
        activate=True,
    )
    always = campaign_create(application=app, data=CampaignInput(name="Free shipping look", state="enabled"))
    ruleset_create(
        campaign=always,
        rules=[{"title": "Two off", "condition": ["and", True], "effects": [["setDiscount", "Two off", 2]]}],
        activate=True,
    )
    with connection.cursor() as cursor:  # the campaign's pool: a table of realistic size to look codes up in
        cursor.execute(
            f"""INSERT INTO {Coupon._meta.db_table} (application_id, campaign_id, value, usage_limit,
                usage_counter, discount_counter, reservation_counter, recipient_integration_id, attributes,
                limits, batch_id, reservation, is_reservation_mandatory, implicitly_reserved, created)
            SELECT %s, %s, 'POOL-' || lpad(g::text, 8, '0'), 1, 0, 0, 0, '', '{{}}', '[]', 'pool', true,
                false, false, now() FROM generate_series(1, %s) g""",
            [app.pk, coupons.pk, COUPONS],
        )
    Coupon.objects.create(application=app, campaign=coupons, value=SHARED, usage_limit=0)
    Coupon.objects.create(application=app, campaign=coupons, value=RACE_CODE, usage_limit=RACE_LIMIT)
    return {"key": key}


def step_race(_: list[str]) -> dict[str, Any]:
    from patronage.coupons.models import Coupon, Redemption

    coupon = Coupon.objects.get(value=RACE_CODE)
    return {
        "usage_counter": coupon.usage_counter,
        "redemptions": Redemption.objects.filter(coupon=coupon, rolled_back_at=None).count(),
    }


STEPS = {"setup": step_setup, "race": step_race}


def run_step(database_url: str, name: str, *args: str) -> dict[str, Any]:
    return steps.run_step(__file__, database_url, name, *args)


# --- HTTP -------------------------------------------------------------------------------------------------


def put(base: str, key: str, session: str, text: str, n: int = 0) -> tuple[int, Any]:
    payload = text.replace("{session}", session).replace("{n}", str(n)).encode()
    return su.http(f"{base}{SESSION_PATH.replace('{session}', session)}", key=key, method="PUT", body=payload)


def prime(base: str, key: str, sessions: int, clients: int) -> None:
    jobs = [(f"w{i}", body(coupon=SHARED)) for i in range(sessions)]
    jobs += [(f"n{i}", body(coupon=None)) for i in range(sessions)]
    jobs += [(f"r{i}", body(coupon=RACE_CODE)) for i in range(RACE_CLIENTS)]

    def one(job: tuple[str, str]) -> None:
        status, answer = put(base, key, *job)
        if status != 200:
            raise RuntimeError(f"session {job[0]}: {status} {str(answer)[:300]}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, jobs))


def sanity(base: str, key: str) -> dict[str, Any]:
    """With the coupon: accepted and discounted; without: only the codeless campaign's discount."""
    _, with_code = put(base, key, "w0", body(coupon=SHARED), 1)
    _, without = put(base, key, "n0", body(coupon=None), 1)
    found = {
        "with": sorted(e["effectType"] for e in with_code["effects"]),
        "without": sorted(e["effectType"] for e in without["effects"]),
    }
    wanted = {"with": ["acceptCoupon", "setDiscount", "setDiscount"], "without": ["setDiscount"]}
    if found != wanted:
        raise RuntimeError(f"the PUTs answered {found}, not {wanted}")
    return found


def close_race(base: str, key: str) -> dict[str, Any]:
    barrier = threading.Barrier(RACE_CLIENTS)
    latencies: list[float] = []
    accepted: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(i: int) -> None:
        barrier.wait(timeout=60)
        start = time.perf_counter()
        status, answer = put(base, key, f"r{i}", '{"customerSession": {"state": "closed"}}')
        took = time.perf_counter() - start
        with lock:
            latencies.append(took)
            statuses[status] += 1
            if status == 200:
                for e in answer["effects"]:
                    if e["effectType"] in ("acceptCoupon", "rejectCoupon"):
                        accepted[e["effectType"] + ":" + e["props"].get("rejectionReason", "")] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(RACE_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "status": {str(k): v for k, v in sorted(statuses.items())},
        "answers": dict(accepted),
        "accepted_in_responses": accepted["acceptCoupon:"],
        "latency_ms": percentiles(latencies),
    }


def run(settings: su.Settings, sessions: int) -> dict[str, Any]:
    url = settings.database_url
    ensure_database(url, fresh=True)
    su.patronage(settings, "migrate", "--no-input", "-v", "0")
    su.patronage(settings, "createcachetable")
    key = run_step(url, "setup")["key"]
    raw: dict[str, Any] = {}
    log = settings.output.with_suffix(".server.log")
    with (
        tempfile.TemporaryDirectory() as tmp,
        su.running_server(settings, log, port=settings.port) as (base, pgid),
    ):
        files = {}
        for name, coupon in (("with", SHARED), ("without", None)):
            files[name] = Path(tmp) / f"{name}.json"
            files[name].write_text(body(coupon=coupon))
        print(f"[checkout 1/3] {sessions} sessions with a coupon, {sessions} without, {RACE_CLIENTS} to race")
        prime(base, key, sessions, settings.connections)
        raw["sanity"] = sanity(base, key)

        def closed(name: str) -> dict[str, Any]:
            return su.measured(
                settings, pgid, base, settings.duration, mode="closed", connections=settings.connections,
                warmup=settings.warmup, sessions=sessions, session_prefix=name[0],
                **su.put_options(key, files[name]) | {"path": SESSION_PATH},
            )  # fmt: skip

        print(f"[checkout 2/3] closed loop, {settings.connections} clients, {settings.duration:.0f}s each")
        raw["with_1"] = closed("with")
        raw["without_1"] = closed("without")
        raw["without_2"] = closed("without")
        raw["with_2"] = closed("with")
        print(
            f"[checkout 3/3] {RACE_CLIENTS} clients close sessions carrying one coupon of limit {RACE_LIMIT}"
        )
        su.vacuum(url)
        su.wait_idle(settings.idle_wait)
        raw["race"] = close_race(base, key)
    raw["race_stored"] = run_step(url, "race")
    return raw


def verdicts(raw: dict[str, Any]) -> list[dict[str, Any]]:
    with_code = (raw["with_1"]["rps"] + raw["with_2"]["rps"]) / 2
    without = (raw["without_1"]["rps"] + raw["without_2"]["rps"]) / 2
    ratio = with_code / without if without else 0.0
    errors = sum(raw[p]["errors"] for p in ("with_1", "with_2", "without_1", "without_2"))
    race, stored = raw["race"], raw["race_stored"]
    exact = race["accepted_in_responses"] == stored["usage_counter"] == stored["redemptions"] == RACE_LIMIT
    return [
        {
            "target": f"PUT with one valid coupon / without >= {RATIO_TARGET:.0%}",
            "ours": f"{with_code:.1f} req/s with",
            "reference": f"{without:.1f} req/s without",
            "figure": f"ratio {ratio:.1%}",
            "pass": ratio >= RATIO_TARGET and errors == 0,
        },
        {
            "target": f"{RACE_CLIENTS} clients closing, coupon limit {RACE_LIMIT}: exactly {RACE_LIMIT}",
            "ours": f"{race['accepted_in_responses']} accepted in responses",
            "reference": f"stored: counter {stored['usage_counter']}, {stored['redemptions']} redemptions",
            "figure": f"{race['rps']} closes/s, p99 {race['latency_ms']['p99']} ms, status {race['status']}",
            "pass": exact,
        },
    ]


def settings_from(args: argparse.Namespace) -> su.Settings:
    url = args.database_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    return su.Settings(
        database_url=url,
        port=args.port,
        workers=args.workers,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        steady_duration=0,
        idle_wait=args.idle_wait,
        customers=0,
        output=args.output,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--port", type=int, default=int(env("BENCH_PORT", "8776")), help="loopback port")
    p.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "0")), help="gunicorn workers")
    p.add_argument("--connections", type=int, default=8, help="closed-loop clients (default: %(default)s)")
    p.add_argument("--duration", type=float, default=15, help="seconds per phase (default: %(default)s)")
    p.add_argument(
        "--warmup", type=float, default=3, help="unmeasured seconds per phase (default: %(default)s)"
    )
    p.add_argument(
        "--idle-wait", type=float, default=float(env("BENCH_IDLE_WAIT", "60")),
        help="max seconds to wait for a quiet machine before each phase (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--sessions", type=int, default=500, help="sessions per phase (default: %(default)s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help=f"PostgreSQL server; the benchmark recreates {DATABASE} there (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--output", type=Path, default=ROOT / "var" / "bench" / "coupon_checkout.json",
        help="where the figures go as JSON (default: %(default)s)",
    )  # fmt: skip
    add_arguments(p)
    p.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    p.add_argument("step_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.step:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")
        django.setup()
        print(json.dumps(STEPS[args.step](args.step_args)))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = settings_from(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    raw = run(settings, args.sessions)
    rows = verdicts(raw)
    for row in rows:
        mark = "PASS" if row["pass"] else "MISS"
        print(f"  {mark}  {row['target']}: {row['ours']} | {row['reference']} | {row['figure']}")
    args.output.write_text(json.dumps({"raw": raw, "verdicts": rows}, indent=2, default=str))
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
