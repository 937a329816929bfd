"""Benchmark ``PUT /v2/customer_sessions/{id}`` (5-item cart) against ``patronage serve`` on PostgreSQL.

One run prepares the database, starts the production server (gunicorn, sync workers) on loopback, then
drives it from a separate ``bench/loadgen.py`` process through these phases:

1. ceiling: closed loop on ``GET /api/v1/health`` (ninja, no auth, no DB query);
2. session PUTs: the same closed loop over 1000 existing sessions, as a ratio of the ceiling (>= 35%);
3. floor: the same PUTs against a second server whose PUT is done by hand (``bench/floor_app.py``):
   what the stack allows at best, beside our figure;
4. open loop at 100 requests/s of session PUTs: p99 < 25 ms;
5. 50 clients on the same 10 sessions: no update lost, p99 < 100 ms;
6. the same against the floor.

Sessions of phases 2-3 are created beforehand so that they measure updates; the cost of a first write is
reported on its own. Each phase also records who used the CPU (server, PostgreSQL, loadgen, anything
else), because on a 2-core machine a busy neighbour changes the figures.

Prints a table, writes the figures to ``var/bench/session_update.json`` and exits 0 when every target is
met, 1 when one is missed, 2 when the benchmark itself could not run. The server is always stopped.
Configuration: flags, or BENCH_DATABASE_URL / BENCH_PORT / BENCH_WORKERS / BENCH_CONNECTIONS /
BENCH_DURATION / BENCH_WARMUP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from _common import DEFAULT_DATABASE_URL, ROOT, ensure_database, patronage_bin, warn_if_disturbed

LOADGEN = ROOT / "bench" / "loadgen.py"
FLOOR_APP = "floor_app:application"
HOST = "127.0.0.1"

RATIO_TARGET = 0.35
STEADY_RATE = 100.0
STEADY_P99_MS = 25.0
CONTENTION_CLIENTS = 50
CONTENTION_SESSIONS = 10
CONTENTION_P99_MS = 100.0
DISTINCT_SESSIONS = 1000
SESSION_PATH = "/v2/customer_sessions/bench-{session}"
HEALTH_PATH = "/api/v1/health"

# Five items shaped like the demo shop's catalogue. ``{n}`` (the loadgen's request number) lands in the
# first price and in an attribute so that every request really changes the stored session.
CART = [
    {"name": "Espresso beans 1kg", "sku": "COF-001", "quantity": 2, "price": "@N@.99", "category": "coffee"},
    {"name": "Ceramic mug", "sku": "MUG-010", "quantity": 1, "price": 9.5, "category": "kitchen"},
    {"name": "Milk frother", "sku": "FRO-200", "quantity": 1, "price": 39.0, "category": "appliances"},
    {"name": "Paper filters x100", "sku": "FIL-100", "quantity": 3, "price": 4.2, "category": "coffee"},
    {"name": "Travel tumbler", "sku": "TUM-330", "quantity": 1, "price": 18.75, "category": "kitchen"},
]
IDLE_CORES = 0.25  # machine-wide CPU use below which we call the machine quiet
LOST_KEY = re.compile(r"^r\d+$")


@dataclass(frozen=True)
class Settings:
    database_url: str
    port: int
    workers: int
    connections: int
    duration: float
    warmup: float
    steady_duration: float
    idle_wait: float
    customers: int
    output: Path


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ.get
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument(
        "--database-url",
        default=env("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="PostgreSQL database the servers use, also from BENCH_DATABASE_URL (default: %(default)s)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(env("BENCH_PORT", "8765")),
        help="loopback port of the product's server, also from BENCH_PORT (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=int(env("BENCH_WORKERS", "0")),
        help="gunicorn workers, also from BENCH_WORKERS (default: %(default)s = as `patronage serve`: "
        "WEB_CONCURRENCY, else 2 per core + 1)",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=int(env("BENCH_CONNECTIONS", "8")),
        help="closed-loop clients for the ceiling and the session PUT throughput phases, also from "
        "BENCH_CONNECTIONS (default: %(default)s)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=float(env("BENCH_DURATION", "15")),
        help="measured seconds of each closed-loop phase, also from BENCH_DURATION (default: %(default)s)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=float(env("BENCH_WARMUP", "3")),
        help="unmeasured seconds before each phase, also from BENCH_WARMUP (default: %(default)s)",
    )
    p.add_argument(
        "--steady-duration",
        type=float,
        default=20.0,
        help="measured seconds at 100 req/s (default: %(default)s)",
    )
    p.add_argument(
        "--idle-wait",
        type=float,
        default=float(env("BENCH_IDLE_WAIT", "60")),
        help="max seconds to wait for a quiet machine before each phase (0: do not wait), also from "
        "BENCH_IDLE_WAIT (default: %(default)s)",
    )
    p.add_argument(
        "--customers",
        type=int,
        default=500,
        help="demo customers, loaded only into a fresh DB (default: %(default)s)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=ROOT / "var" / "bench" / "session_update.json",
        help="where the figures are written as JSON (default: %(default)s)",
    )
    a = p.parse_args(argv)
    return Settings(**vars(a))


# --- database and product preparation -------------------------------------------------------------


def product_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": settings.database_url, "DEBUG": "0"}


def patronage(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [patronage_bin(), *args],
        env=product_env(settings),
        capture_output=True,
        text=True,
        check=check,
        timeout=600,
        cwd=ROOT,
    )


def prepare_product(settings: Settings) -> str:
    """Migrate, load demo data once (``demo`` appends on every call), and return a fresh API key."""
    patronage(settings, "migrate", "--no-input", "-v", "0")
    patronage(settings, "createcachetable")
    if patronage(settings, "apikey", "list", "--application", "demo-shop", check=False).returncode != 0:
        print(f"loading demo data ({settings.customers} customers)")
        patronage(settings, "demo", "--customers", str(settings.customers))
    created = patronage(settings, "apikey", "create", "--application", "demo-shop", "--name", "bench")
    if not created.stdout.strip():
        raise RuntimeError(f"apikey create printed no key: {created.stderr}")
    return created.stdout.strip().splitlines()[-1].strip()


# --- server lifecycle -----------------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def http(
    url: str, *, key: str | None = None, method: str = "GET", body: bytes | None = None, timeout: float = 10
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"ApiKey-v1 {key}"
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before becoming healthy")
        with contextlib.suppress(OSError):
            if http(base + HEALTH_PATH, timeout=2)[0] == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"server not healthy after {timeout:.0f}s")


def group_alive(pgid: int) -> bool:
    return any(stat[3] == str(pgid) for stat in proc_stats())


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn and its workers: the whole process group we created, politely and then not."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
            if not group_alive(proc.pid):
                return


def served_workers(log: Path) -> int | None:
    """The number of gunicorn workers, as ``patronage serve`` announced it in its log."""
    found = re.search(r"with (\d+) workers", log.read_text(errors="replace"))
    return int(found.group(1)) if found else None


@contextlib.contextmanager
def running_server(
    settings: Settings, log: Path, *, port: int, wsgi_app: str | None = None
) -> Iterator[tuple[str, int]]:
    """Yield the base URL and the process group id of a freshly started ``patronage serve`` (serving
    ``wsgi_app`` from bench/ instead of the product when given)."""
    if port_in_use(port):
        # Refuse rather than benchmark whatever else answers there.
        raise RuntimeError(f"something already listens on {HOST}:{port}; pick another --port")
    cmd = [patronage_bin(), "serve", "--no-migrate", "--bind", f"{HOST}:{port}"]
    if settings.workers:
        cmd += ["--workers", str(settings.workers)]
    env = product_env(settings)
    if wsgi_app:
        cmd += ["--wsgi-app", wsgi_app]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench"), env.get("PYTHONPATH")]))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    try:
        base = f"http://{HOST}:{port}"
        wait_healthy(base, proc)
        print(f"patronage serve{' ' + wsgi_app if wsgi_app else ''}: {served_workers(log)} sync workers")
        yield base, proc.pid
    finally:
        stop(proc)


# --- CPU accounting: who used the two cores during a phase ----------------------------------------


def proc_stats() -> Iterator[list[str]]:
    """``/proc/<pid>/stat`` fields after the command name: [state, ppid, pgrp, ...]."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                text = Path(entry.path, "stat").read_text()
                yield [text[text.index("(") + 1 : text.rindex(")")], *text[text.rindex(")") + 2 :].split()]


def cpu_snapshot(server_pgid: int) -> dict[str, float]:
    """Cumulative CPU seconds: machine-wide busy, our server's process group, PostgreSQL, reaped children."""
    hz = os.sysconf("SC_CLK_TCK")
    server = postgres = 0
    for comm, *fields in proc_stats():
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        if fields[2] == str(server_pgid):
            server += ticks
        elif comm == "postgres":
            postgres += ticks
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    # Reaped children: the loadgen runs are the only processes we start and wait for during a phase.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": time.monotonic(),
        "busy": (user + nice + system + irq + softirq + steal) / hz,
        "server": server / hz,
        "postgres": postgres / hz,
        "loadgen": children.ru_utime + children.ru_stime,
    }


def cpu_split(before: dict[str, float], after: dict[str, float], rps: float) -> dict[str, float]:
    """Cores used per role over the phase, and CPU milliseconds per request for server and database.

    ``other`` is everything else on the machine: when it is not near zero the figures are disturbed.
    """
    wall = after["wall"] - before["wall"]
    cores = {k: (after[k] - before[k]) / wall for k in ("server", "postgres", "loadgen")}
    busy = (after["busy"] - before["busy"]) / wall
    split = {f"{k}_cores": round(v, 2) for k, v in cores.items()}
    split["other_cores"] = round(max(0.0, busy - sum(cores.values())), 2)
    for k in ("server", "postgres", "loadgen"):
        split[f"{k}_ms_per_request"] = round(cores[k] / rps * 1000, 2) if rps else 0.0
    return split


def machine_busy_cores(window: float = 1.0) -> float:
    before = cpu_snapshot(-1)
    time.sleep(window)
    after = cpu_snapshot(-1)
    return (after["busy"] - before["busy"]) / (after["wall"] - before["wall"])


def wait_idle(limit: float) -> float:
    """Wait (at most ``limit`` s) until other work on the machine pauses; return the seconds waited.

    The machine is shared (test suites, other servers): starting a phase in a quiet moment makes runs
    comparable. Whatever still runs during the phase is recorded as ``other_cores``.
    """
    start = time.monotonic()
    if limit > 0 and (busy := machine_busy_cores()) > IDLE_CORES:
        print(f"      machine busy ({busy:.2f} cores in use): waiting up to {limit:.0f}s for it to settle")
        while machine_busy_cores() > IDLE_CORES and time.monotonic() - start < limit:
            pass
    return round(time.monotonic() - start, 1)


VACUUMED = ("customers_customerprofile", "customer_sessions_customersession", "customer_sessions_cartitem")


def vacuum(database_url: str) -> None:
    """What autovacuum does between the phases of a real server. Without it (autovacuum may be off, as on
    our CI machine) every phase, and every later run on the same database, measures the dead rows the
    earlier ones left: PostgreSQL's CPU per PUT grew by a third over three runs."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(VACUUMED)}")


def measured(settings: Settings, server_pgid: int, base: str, duration: float, **opts: Any) -> dict[str, Any]:
    vacuum(settings.database_url)
    waited = wait_idle(settings.idle_wait)
    before = cpu_snapshot(server_pgid)
    result = loadgen(base, duration=duration, **opts)
    result["cpu"] = {
        **cpu_split(before, cpu_snapshot(server_pgid), result["rps"]),
        "waited_for_idle_s": waited,
    }
    return result


# --- load phases ----------------------------------------------------------------------------------


def loadgen(base: str, *, duration: float, **opts: Any) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process (so the client does not share our GIL) and parse its JSON."""
    cmd = [sys.executable, str(LOADGEN), "--url", base, "--duration", str(duration)]
    for name, value in opts.items():
        for item in value if isinstance(value, list) else [value]:
            cmd += [f"--{name.replace('_', '-')}", str(item)]
    budget = duration + float(opts.get("warmup", 0)) + float(opts.get("timeout", 30)) + 30
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def body_template(attributes: str) -> str:
    """A request body for loadgen: ``{session}``/``{n}`` placeholders inside otherwise plain JSON."""
    cart = json.dumps(CART).replace('"@N@.99"', "{n}.99")
    return (
        '{"customerSession": {"profileId": "bench-customer-{session}", '
        f'"cartItems": {cart}, "attributes": {attributes}}}}}'
    )


def write_bodies(folder: Path) -> dict[str, Path]:
    bodies = {
        "put": body_template('{"channel": "bench", "seq": {n}}'),
        # One new key per request: after the run, a session must hold one key per 2xx it answered.
        "contention": body_template('{"r{n}": 1}'),
    }
    paths = {}
    for name, text in bodies.items():
        json.loads(text.replace("{session}", "x").replace("{n}", "7"))  # fail here, not as 422s under load
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(text)
    return paths


def put_once(base: str, key: str, body: Path, session: str, n: int = 0) -> tuple[float, int, Any]:
    raw = body.read_text().replace("{session}", session).replace("{n}", str(n)).encode()
    start = time.perf_counter()
    status, payload = http(f"{base}/v2/customer_sessions/bench-{session}", key=key, method="PUT", body=raw)
    return (time.perf_counter() - start) * 1000, status, payload


def prime_sessions(base: str, key: str, body: Path, prefix: str, clients: int) -> dict[str, Any]:
    """Create the sessions up front, so the throughput phases measure updates and not first writes.

    A first write also creates the customer profile and the session (about twice the statements); its
    cost is reported separately from these calls.
    """
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        calls = list(pool.map(lambda i: put_once(base, key, body, f"{prefix}{i}"), range(DISTINCT_SESSIONS)))
    elapsed = time.perf_counter() - start
    failed = [(status, str(payload)[:300]) for _, status, payload in calls if status != 200]
    if failed:
        raise RuntimeError(f"{len(failed)} session creations failed, e.g. {failed[0]}")
    ms = sorted(t for t, _, _ in calls)
    return {
        "sessions": len(ms),
        "clients": clients,
        "rps": round(len(ms) / elapsed, 1),
        "p50_ms": round(ms[len(ms) // 2], 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
    }


def smoke_put(base: str, key: str, body: Path, session: str) -> None:
    _, status, payload = put_once(base, key, body, session, 1)
    if status != 200 or len(payload["customerSession"]["cartItems"]) != 5:
        raise RuntimeError(f"smoke PUT failed: {status} {str(payload)[:300]}")


def count_stored_keys(base: str, key: str, prefix: str) -> list[int]:
    counts = []
    for i in range(CONTENTION_SESSIONS):
        status, payload = http(f"{base}/v2/customer_sessions/bench-{prefix}{i}", key=key)
        if status != 200:
            raise RuntimeError(f"GET session {prefix}{i}: {status} {str(payload)[:300]}")
        counts.append(sum(1 for k in payload["customerSession"]["attributes"] if LOST_KEY.match(k)))
    return counts


def contention(
    settings: Settings,
    target: tuple[str, int],
    product: str,
    key: str,
    bodies: dict[str, Path],
    prefix: str,
    *,
    create_first: bool,
) -> tuple[dict[str, Any], list[int]]:
    """50 clients on 10 sessions of the ``target`` server: the measured phase and the number of writes
    each session kept, read back through the ``product``.

    The product gets new sessions, so the clients also race to create each of them; the floor only
    updates, so its sessions are created first (``create_first``) through the product.
    """
    base, pgid = target
    for i in range(CONTENTION_SESSIONS if create_first else 0):
        for session in (f"{prefix}w{i}", f"{prefix}{i}"):
            # Created with the plain body: its attributes are not the counted ``r<n>`` ones.
            if put_once(product, key, bodies["put"], session)[1] != 200:
                raise RuntimeError(f"could not create session {session}")
    opts = {**put_options(key, bodies["contention"]), "mode": "closed", "connections": CONTENTION_CLIENTS}
    opts["sessions"] = CONTENTION_SESSIONS
    # Loadgen does not count warm-up answers per session, yet they write: warm up on other sessions.
    loadgen(base, duration=settings.warmup or 1, **opts, session_prefix=f"{prefix}w")
    measured_phase = measured(settings, pgid, base, settings.duration, **opts, session_prefix=prefix)
    return measured_phase, count_stored_keys(product, key, prefix)


def put_options(key: str, body: Path) -> dict[str, Any]:
    return {
        "method": "PUT",
        "path": SESSION_PATH,
        "header": [f"Authorization: ApiKey-v1 {key}"],
        "body_file": body,
    }


def run_phases(
    settings: Settings,
    server: tuple[str, int],
    floor: tuple[str, int],
    key: str,
    bodies: dict[str, Path],
    run: str,
) -> dict[str, Any]:
    (base, pgid), (floor_base, floor_pgid) = server, floor
    put = put_options(key, bodies["put"])
    closed = {"mode": "closed", "connections": settings.connections, "warmup": settings.warmup}
    sessions = {"sessions": DISTINCT_SESSIONS, "session_prefix": f"{run}-t-"}
    smoke_put(base, key, bodies["put"], f"{run}-smoke")
    print(f"[0/6] creating {DISTINCT_SESSIONS} sessions with {settings.connections} clients")
    created = prime_sessions(base, key, bodies["put"], f"{run}-t-", settings.connections)
    print(f"[1/6] ceiling: GET {HEALTH_PATH}, {settings.connections} clients, {settings.duration:.0f}s")
    ceiling = measured(settings, pgid, base, settings.duration, path=HEALTH_PATH, **closed)
    print(f"[2/6] session PUT: {settings.connections} clients over {DISTINCT_SESSIONS} sessions")
    throughput = measured(settings, pgid, base, settings.duration, **closed, **put, **sessions)
    print("[3/6] floor: the same PUTs done by hand on the same stack (bench/floor_app.py)")
    floor_put = measured(settings, floor_pgid, floor_base, settings.duration, **closed, **put, **sessions)
    print(f"[4/6] session PUT open loop at {STEADY_RATE:.0f} req/s for {settings.steady_duration:.0f}s")
    # Enough connections that a slow answer never delays the next scheduled send (sync workers close
    # the connection after each response anyway).
    steady = measured(
        settings,
        pgid,
        base,
        settings.steady_duration,
        mode="rate",
        rate=STEADY_RATE,
        connections=32,
        warmup=settings.warmup,
        **put,
        **sessions,
    )
    print(f"[5/6] {CONTENTION_CLIENTS} clients on {CONTENTION_SESSIONS} sessions, {settings.duration:.0f}s")
    cont, stored = contention(settings, server, base, key, bodies, f"{run}-c-", create_first=False)
    print(f"[6/6] floor: {CONTENTION_CLIENTS} clients on {CONTENTION_SESSIONS} sessions")
    floor_cont, floor_stored = contention(settings, floor, base, key, bodies, f"{run}-fc-", create_first=True)
    return {
        "first_write": created,
        "ceiling": ceiling,
        "throughput": throughput,
        "floor_throughput": floor_put,
        "steady": steady,
        "contention": cont,
        "contention_stored": stored,
        "floor_contention": floor_cont,
        "floor_contention_stored": floor_stored,
    }


# --- verdicts and report --------------------------------------------------------------------------


def verdicts(raw: dict[str, Any]) -> list[dict[str, Any]]:
    ceiling, put, steady, cont = raw["ceiling"], raw["throughput"], raw["steady"], raw["contention"]
    floor, floor_cont = raw["floor_throughput"], raw["floor_contention"]
    ratio = put["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0
    floor_ratio = floor["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0
    lost, unreported = losses(cont, raw["contention_stored"])
    floor_lost, _ = losses(floor_cont, raw["floor_contention_stored"])
    s99, c99 = steady["latency_ms"]["p99"], cont["latency_ms"]["p99"]
    return [
        {
            "target": "session PUT throughput >= 35% of ceiling",
            "ours": f"{put['rps']:.1f} req/s",
            "reference": f"{ceiling['rps']:.1f} req/s (ceiling)",
            "figure": f"ratio {ratio:.1%}",
            "pass": ratio >= RATIO_TARGET and put["errors"] == 0 and ceiling["errors"] == 0,
            "ratio": ratio,
        },
        {
            "target": f"p99 < {STEADY_P99_MS:.0f} ms at {STEADY_RATE:.0f} req/s",
            "ours": f"p99 {s99} ms",
            "reference": f"p50 {steady['latency_ms']['p50']} ms, {steady['rps']} req/s",
            "figure": f"errors {steady['errors']}",
            "pass": s99 is not None and s99 < STEADY_P99_MS and steady["errors"] == 0,
        },
        {
            "target": f"{CONTENTION_CLIENTS} clients x {CONTENTION_SESSIONS} sessions: nothing lost",
            "ours": f"lost {lost}",
            "reference": f"{cont['ok']} ok, {cont['rps']} req/s",
            "figure": f"errors {cont['errors']}, unreported writes {unreported}",
            "pass": lost == 0 and cont["errors"] == 0,
            "lost": lost,
            "unreported": unreported,
        },
        {
            "target": f"{CONTENTION_CLIENTS} clients x {CONTENTION_SESSIONS} sessions: p99 < "
            f"{CONTENTION_P99_MS:.0f} ms",
            "ours": f"p99 {c99} ms",
            "reference": f"p50 {cont['latency_ms']['p50']} ms",
            "figure": f"max {cont['latency_ms']['max']} ms",
            "pass": c99 is not None and c99 < CONTENTION_P99_MS,
        },
        # What the stack itself allows: no target, the yardstick for the two figures above.
        {
            "target": "floor: the same PUTs by hand (context)",
            "ours": f"{floor['rps']:.1f} req/s",
            "reference": f"{ceiling['rps']:.1f} req/s (ceiling)",
            "figure": f"ratio {floor_ratio:.1%}, ours/floor {put['rps'] / floor['rps']:.0%}"
            if floor["rps"]
            else "no answer",
            "pass": None,
            "ratio": floor_ratio,
        },
        {
            "target": f"floor: {CONTENTION_CLIENTS} clients x {CONTENTION_SESSIONS} sessions (context)",
            "ours": f"p99 {floor_cont['latency_ms']['p99']} ms",
            "reference": f"p50 {floor_cont['latency_ms']['p50']} ms",
            "figure": f"{floor_cont['rps']} req/s, lost {floor_lost}",
            "pass": None,
        },
    ]


def losses(phase: dict[str, Any], stored: list[int]) -> tuple[int, int]:
    """(updates answered 2xx but missing from their session, updates stored but never answered 2xx)."""
    oks = [phase["per_session_ok"][str(i)] for i in range(CONTENTION_SESSIONS)]
    pairs = list(zip(oks, stored, strict=True))
    return sum(max(0, ok - got) for ok, got in pairs), sum(max(0, got - ok) for ok, got in pairs)


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ("target", "ours", "reference", "figure")
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(line.format("target", "ours", "ceiling / context", "detail", "result"))
    for r in rows:
        result = "-" if r["pass"] is None else "PASS" if r["pass"] else "FAIL"
        print(line.format(*(str(r[c]) for c in cols), result))


PHASES = ("ceiling", "throughput", "floor_throughput", "steady", "contention", "floor_contention")


def print_cpu(raw: dict[str, Any]) -> None:
    """Where the CPU went in each phase: the figures app engineers need to know what to optimize."""
    print(
        f"{'phase':<18}{'req/s':>9}{'server ms/req':>15}{'pg ms/req':>11}{'loadgen':>9}{'other':>7}  (cores)"
    )
    for phase in PHASES:
        r, c = raw[phase], raw[phase]["cpu"]
        print(
            f"{phase:<18}{r['rps']:>9}{c['server_ms_per_request']:>15}{c['postgres_ms_per_request']:>11}"
            f"{c['loadgen_cores']:>9}{c['other_cores']:>7}"
        )
    warn_if_disturbed(raw, PHASES)
    cost = {
        p: sum(raw[p]["cpu"][f"{k}_ms_per_request"] for k in ("server", "postgres", "loadgen"))
        for p in ("ceiling", "throughput", "floor_throughput")
    }
    if cost["throughput"] and cost["floor_throughput"]:
        print(
            f"CPU per request (server + PostgreSQL + loadgen): ceiling {cost['ceiling']:.2f} ms, session PUT "
            f"{cost['throughput']:.2f} ms, floor {cost['floor_throughput']:.2f} ms: on a quiet machine the "
            f"ratios tend to {cost['ceiling'] / cost['throughput']:.1%} and "
            f"{cost['ceiling'] / cost['floor_throughput']:.1%}"
        )
    first = raw["first_write"]
    print(
        f"first write of a session (creates session + profile): {first['rps']} req/s with {first['clients']} "
        f"clients, p50 {first['p50_ms']} ms, p99 {first['p99_ms']} ms"
    )


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        model = found.group(1).strip() if found else ""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    host = machine()  # before we load the machine: the load average tells whether it was idle
    # Turn SIGTERM into SystemExit so the ``finally`` that stops the server runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run = time.strftime("%Y%m%d%H%M%S")  # fresh session ids, so earlier runs never pollute this one
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pg_version = ensure_database(settings.database_url)
        key = prepare_product(settings)
        server_log = settings.output.with_suffix(".server.log")
        floor_log = settings.output.with_name(settings.output.stem + ".floor.log")
        with (
            tempfile.TemporaryDirectory() as tmp,
            running_server(settings, server_log, port=settings.port) as server,
            running_server(settings, floor_log, port=settings.port + 1, wsgi_app=FLOOR_APP) as floor,
        ):
            raw = run_phases(settings, server, floor, key, write_bodies(Path(tmp)), run)
    except (RuntimeError, OSError, psycopg.Error, subprocess.SubprocessError, KeyError, ValueError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        print(f"benchmark could not run: {exc}\n{detail}", file=sys.stderr)
        return 2
    rows = verdicts(raw)
    print()
    print_table(rows)
    print()
    print_cpu(raw)
    report = {
        "started": started,
        "machine": {**host, "postgresql": pg_version},
        "settings": {k: str(v) for k, v in vars(settings).items() if k != "database_url"},
        "workers": served_workers(settings.output.with_suffix(".server.log")),
        "targets": rows,
        "raw": raw,
    }
    settings.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {settings.output}")
    return 0 if all(r["pass"] for r in rows if r["pass"] is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
