"""Minimal HTTP/1.1 load generator for the benchmark scripts (standard library only).

It runs in its own process and keeps the per-request work tiny (asyncio streams, pre-built request
bytes, no third-party client) so that the server under test, not the client, is what gets measured.
Two modes: ``closed`` (N keep-alive connections, back-to-back requests) and ``rate`` (open-loop
constant arrival rate; latency is taken from the *scheduled* send time, avoiding coordinated omission).
Only loopback targets are accepted. Prints one JSON object with throughput, status and latency figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import math
import socket
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass
class Config:
    url: str = "http://127.0.0.1:8000"
    mode: str = "closed"  # "closed" | "rate"
    connections: int = 1
    duration: float = 10.0
    rate: float = 0.0  # requests/s, rate mode only
    warmup: float = 0.0
    method: str = "GET"
    path: str = "/"
    sessions: int = 1
    session_prefix: str = ""
    headers: list[str] = field(default_factory=list)
    body_file: str | None = None
    timeout: float = 30.0  # per request, seconds


class ProtocolError(ValueError):
    pass


class StaleConnection(ConnectionError):
    """Peer closed an idle keep-alive connection before sending any response byte."""


async def read_response(reader: asyncio.StreamReader, method: str) -> tuple[int, bool]:
    """Read one full response; return (status, must_close)."""
    while True:
        line = await reader.readline()
        if not line:
            raise StaleConnection("connection closed before status line")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line: {line[:80]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        while (h := await reader.readline()) not in (b"\r\n", b"\n"):
            if not h:
                raise asyncio.IncompleteReadError(b"", None)
            key, _, value = h.partition(b":")
            headers[key.strip().lower()] = value.strip().lower()
        if 100 <= status < 200:  # interim response (e.g. 100 Continue): the real one follows
            continue
        conn_hdr = headers.get(b"connection", b"")
        close = b"close" in conn_hdr or (parts[0] == b"HTTP/1.0" and b"keep-alive" not in conn_hdr)
        if method == "HEAD" or status in (204, 304):
            pass
        elif b"chunked" in headers.get(b"transfer-encoding", b""):
            while True:
                size = int(((await reader.readline()).split(b";")[0].strip() or b"x"), 16)
                if size == 0:
                    while await reader.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                await reader.readexactly(size + 2)
        elif b"content-length" in headers:
            await reader.readexactly(int(headers[b"content-length"]))
        else:  # body delimited by connection close
            await reader.read()
            close = True
        return status, close


class Conn:
    """One lazily (re)opened keep-alive connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes, method: str) -> int:
        for attempt in (0, 1):
            fresh = self.writer is None
            if fresh:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
                self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(raw)
                await self.writer.drain()
                status, close = await read_response(self.reader, method)
            except (StaleConnection, ConnectionResetError, BrokenPipeError):
                self.close()
                if fresh or attempt:
                    raise
                continue  # idle keep-alive connection was closed by the server: retry once on a new one
            except BaseException:
                self.close()
                raise
            if close:
                self.close()
            return status
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    """Exact nearest-rank percentiles (ms) from the sorted sample."""
    if not latencies:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    s = sorted(latencies)

    def rank(p: float) -> float:
        return round(s[max(0, math.ceil(p / 100 * len(s)) - 1)] * 1000, 3)

    ms = {"p50": rank(50), "p90": rank(90), "p99": rank(99)}
    return {**ms, "max": round(s[-1] * 1000, 3), "mean": round(sum(s) / len(s) * 1000, 3)}


def _target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise SystemExit(f"only http:// URLs are supported, got {url!r}")
    host: str = "127.0.0.1" if parts.hostname in (None, "localhost") else str(parts.hostname)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing non-loopback target {host!r}")
    return host, parts.port or 80, parts.netloc


async def run(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    cfg = config if isinstance(config, Config) else Config(**config)
    if cfg.mode not in ("closed", "rate") or cfg.connections < 1 or cfg.sessions < 1 or cfg.duration <= 0:
        raise ValueError("invalid mode/connections/sessions/duration")
    if cfg.mode == "rate" and cfg.rate <= 0:
        raise ValueError("rate mode needs --rate > 0")
    host, port, netloc = _target(cfg.url)
    method = cfg.method.upper()
    body_tpl = Path(cfg.body_file).read_text() if cfg.body_file else None
    fixed = f"Host: {netloc}\r\n" + "".join(f"{h.strip()}\r\n" for h in cfg.headers)
    latencies: list[float] = []
    status_count: Counter[int] = Counter()
    ok = [0] * cfg.sessions
    transport_errors = 0
    counter = itertools.count()
    t0 = time.perf_counter()
    measure_start = t0 + cfg.warmup
    end = measure_start + cfg.duration
    conns = [Conn(host, port) for _ in range(cfg.connections)]

    def build(n: int) -> tuple[int, bytes]:
        idx = n % cfg.sessions
        sess = f"{cfg.session_prefix}{idx}"
        head = f"{method} {cfg.path.replace('{session}', sess)} HTTP/1.1\r\n{fixed}"
        body = b""
        if body_tpl is not None:
            body = body_tpl.replace("{session}", sess).replace("{n}", str(n)).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        elif method in BODY_METHODS:
            head += "Content-Length: 0\r\n"
        return idx, (head + "\r\n").encode("latin-1") + body

    async def one(conn: Conn, n: int, t_sched: float) -> int | None:
        nonlocal transport_errors
        idx, raw = build(n)
        status: int | None
        try:
            status = await asyncio.wait_for(conn.request(raw, method), cfg.timeout)
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError):  # incl. TimeoutError
            status = None
        if t_sched >= measure_start:
            if status is None:
                transport_errors += 1
            else:
                latencies.append(time.perf_counter() - t_sched)
                status_count[status] += 1
                if 200 <= status < 300:
                    ok[idx] += 1
        return status

    async def closed_worker(conn: Conn) -> None:
        while (now := time.perf_counter()) < end:
            if await one(conn, next(counter), now) is None:
                await asyncio.sleep(0.01)  # back off instead of spinning on a dead server

    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    scheduled = measured_scheduled = 0

    async def scheduler() -> None:
        nonlocal scheduled, measured_scheduled
        while (t := t0 + scheduled / cfg.rate) < end:
            if (delay := t - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((next(counter), t))  # latency is measured from t, even if queued
            scheduled += 1
            measured_scheduled += t >= measure_start
        for _ in conns:
            queue.put_nowait(None)

    async def rate_worker(conn: Conn) -> None:
        while (item := await queue.get()) is not None:
            await one(conn, *item)

    if cfg.mode == "closed":
        tasks = [closed_worker(c) for c in conns]
    else:
        tasks = [scheduler(), *(rate_worker(c) for c in conns)]
    with contextlib.suppress(TimeoutError):  # hard bound: in-flight/queued work gets one timeout after end
        await asyncio.wait_for(asyncio.gather(*tasks), end - time.perf_counter() + cfg.timeout + 1)
    elapsed = max(time.perf_counter() - measure_start, 1e-9)
    for c in conns:
        c.close()
    requests = len(latencies) + transport_errors
    # rate mode: measured requests still queued/in flight at the hard deadline also count as errors
    unsent = measured_scheduled - requests if cfg.mode == "rate" else 0
    result: dict[str, Any] = {
        "mode": cfg.mode,
        "connections": cfg.connections,
        "duration_s": round(elapsed, 3),
        "requests": requests,
        "rps": round(requests / elapsed, 1),
        "ok": sum(ok),
        "errors": transport_errors + unsent + sum(v for k, v in status_count.items() if not 200 <= k < 300),
        "transport_errors": transport_errors,
        "status": {str(k): v for k, v in sorted(status_count.items())},
        "latency_ms": percentiles(latencies),
        "per_session_ok": {str(i): v for i, v in enumerate(ok)},
        "warmup_s": cfg.warmup,
    }
    if cfg.mode == "rate":
        result.update(target_rate=cfg.rate, scheduled=measured_scheduled, unsent=unsent)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server to load (default: %(default)s)")
    p.add_argument(
        "--mode",
        choices=("closed", "rate"),
        default="closed",
        help="closed: each connection sends its next request when the last is answered; rate: requests at "
        "--rate per second whatever the answers (default: %(default)s)",
    )
    p.add_argument("--connections", type=int, default=1, help="connections at once (default: %(default)s)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default: %(default)s)")
    p.add_argument("--rate", type=float, default=0.0, help="requests/s in rate mode (default: %(default)s)")
    p.add_argument(
        "--warmup", type=float, default=0.0, help="unmeasured seconds first (default: %(default)s)"
    )
    p.add_argument("--method", default="GET", help="HTTP method (default: %(default)s)")
    p.add_argument("--path", default="/", help="request path, may contain {session} (default: %(default)s)")
    p.add_argument(
        "--sessions",
        type=int,
        default=1,
        help="distinct {session} values, used in turn (default: %(default)s)",
    )
    p.add_argument("--session-prefix", default="", help="prefix of every {session} value (default: none)")
    p.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        help="'Name: value' sent with every request, repeatable (default: none)",
    )
    p.add_argument(
        "--body-file",
        default=None,
        help="JSON body template; {session} and {n} substituted (default: no body)",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="per-request timeout, seconds (default: %(default)s)"
    )
    args = p.parse_args(argv)
    print(json.dumps(asyncio.run(run(Config(**vars(args))))))


if __name__ == "__main__":
    main()
