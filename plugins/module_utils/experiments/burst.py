# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP burst client: parallel requests in time slots, asyncio + aiohttp.

A *schedule* is a slot length and, per slot, how many requests start at
once at the slot's beginning. Every request records its monotonic start,
latency, status, the cluster and instance that answered (from the echo
server's JSON body) and an error class. Each slot is summarized: requests,
successes, latency percentiles and the share served by each cluster.

The study this comes from sent 1 request per slot, then 3 in parallel, then
a spike in slots 5 to 15: :func:`default_schedule`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats

ERROR_CLASSES = (
    "ok",
    "backend_busy",  # 503 from an echo server (JSON): it refused, no failover took it
    "no_healthy_upstream",  # the gateway had no endpoint left
    "overflow",  # the gateway's circuit breaker refused it
    "gateway_error",  # any other non-JSON answer from the gateway
    "http_error",  # any other status
    "timeout",
    "connect_error",
    "tls_error",
    "client_error",
)


class BurstError(ValueError):
    """A bad parameter; the message names it."""


def check_targets(targets: list[str], allowed: Iterable[str] = ()) -> list[str]:
    """Each target must be a well-formed http(s) URL with a host and a numeric port (or
    none), on an address the testbed owns: 127.0.0.0/8, or one of ``allowed`` (the
    addresses the testbed's facts name). Raises :class:`BurstError` naming the first
    that is not; nothing is sent before every target passed."""
    import ipaddress
    from urllib.parse import urlsplit

    if not targets:
        raise BurstError("targets is empty: give at least one gateway URL")
    allowed = set(allowed)
    for url in targets:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BurstError(f"target {url!r} is not an http(s) URL with a host")
        try:
            parts.port
        except ValueError:
            raise BurstError(f"target {url!r} has a port that is not a number from 0 to 65535") from None
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback and host not in allowed:
            raise BurstError(
                f"target {url!r} is not an address of this testbed: the burst sends only to 127.0.0.0/8 and to "
                f"the addresses the testbed's facts name ({', '.join(sorted(allowed)) or 'none'})"
            )
    return list(targets)


def default_schedule(slots: int = 20, spike: int = 20) -> list[int]:
    """1 request per slot, 3 in parallel in slots 2-4, ``spike`` in slots 5-15, then 1."""
    out = []
    for slot in range(slots):
        if slot < 2:
            out.append(1)
        elif slot < 5:
            out.append(3)
        elif slot <= 15:
            out.append(spike)
        else:
            out.append(1)
    return out


@dataclass(frozen=True)
class Schedule:
    slot_seconds: float
    requests: tuple[int, ...]
    timeout: float = 5.0
    duration: float | None = None  # stop starting slots after this many seconds

    def __post_init__(self) -> None:
        if not self.slot_seconds or self.slot_seconds <= 0:
            raise BurstError(f"slot_seconds must be positive, got {self.slot_seconds!r}")
        if not self.requests:
            raise BurstError("the schedule has no slots")
        bad = [n for n in self.requests if isinstance(n, bool) or not isinstance(n, int) or n < 0]
        if bad:
            raise BurstError(f"requests per slot must be whole numbers >= 0, got {bad[0]!r}")
        if self.timeout <= 0:
            raise BurstError(f"timeout must be positive, got {self.timeout!r}")
        if self.duration is not None and self.duration <= 0:
            raise BurstError(f"duration must be positive, got {self.duration!r}")


@dataclass
class Request:
    slot: int
    target: str
    start: float  # monotonic, seconds since the run started
    latency: float | None
    status: int | None
    cluster: str | None
    instance: str | None
    error: str
    server_ms: float | None = None


def classify(status: int | None, body: bytes) -> tuple[str, dict[str, Any]]:
    """Error class and parsed JSON body of one answer (pure)."""
    try:
        data = json.loads(body) if body else {}
        if not isinstance(data, dict):
            data = {}
        parsed = True
    except (ValueError, UnicodeDecodeError):
        data, parsed = {}, False
    if status == 200 and parsed and data.get("cluster"):
        return "ok", data
    if status == 503 and parsed and data.get("cluster"):
        return "backend_busy", data
    text = body.decode(errors="replace").lower() if body else ""
    if status == 503 and "no healthy upstream" in text:
        return "no_healthy_upstream", data
    if status == 503 and "overflow" in text:
        return "overflow", data
    if status is not None and not parsed:
        return "gateway_error", data
    return "http_error", data


def _error_class(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return "tls_error"
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionError, OSError)):
        return "connect_error"
    return "client_error"


async def _one(session: Any, target: str, slot: int, t0: float, timeout: float, ssl_ctx: Any) -> Request:
    import aiohttp

    start = time.monotonic()
    try:
        async with session.get(target, timeout=aiohttp.ClientTimeout(total=timeout), ssl=ssl_ctx) as resp:
            body = await resp.read()
            latency = time.monotonic() - start
            error, data = classify(resp.status, body)
            return Request(slot, target, round(start - t0, 6), round(latency, 6), resp.status, data.get("cluster"), data.get("instance"), error, data.get("server_ms"))
    except Exception as exc:  # noqa: BLE001 - every failure is a recorded error class, never a crash
        return Request(slot, target, round(start - t0, 6), None, None, None, None, _error_class(exc))


async def run_async(targets: list[str], schedule: Schedule, ssl_ctx: Any = None, connections: int = 0) -> list[Request]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections or 0, force_close=False)
    results: list[Request] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.monotonic()
        tasks = []
        for slot, count in enumerate(schedule.requests):
            slot_start = t0 + slot * schedule.slot_seconds
            if schedule.duration is not None and slot_start - t0 >= schedule.duration:
                break
            delay = slot_start - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for i in range(count):
                target = targets[(slot + i) % len(targets)]
                tasks.append(asyncio.ensure_future(_one(session, target, slot, t0, schedule.timeout, ssl_ctx)))
        results = list(await asyncio.gather(*tasks))
    return results


def summarize_slots(requests: Iterable[Request], slots: int, slot_seconds: float) -> list[dict[str, Any]]:
    by_slot: dict[int, list[Request]] = {s: [] for s in range(slots)}
    for r in requests:
        by_slot.setdefault(r.slot, []).append(r)
    out = []
    for slot in sorted(by_slot):
        rs = by_slot[slot]
        ok = [r for r in rs if r.error == "ok"]
        served: dict[str, int] = {}
        for r in ok:
            served[r.cluster or "?"] = served.get(r.cluster or "?", 0) + 1
        errors: dict[str, int] = {}
        for r in rs:
            if r.error != "ok":
                errors[r.error] = errors.get(r.error, 0) + 1
        lat = stats.summarize(r.latency for r in ok)
        out.append({
            "slot": slot,
            "start": round(slot * slot_seconds, 3),
            "requests": len(rs),
            "successes": len(ok),
            "latency": {k: lat[k] for k in ("count", "p50", "p90", "p99", "max")},
            "served_by": served,
            "share": {c: round(n / len(ok), 3) for c, n in served.items()} if ok else {},
            "errors": errors,
        })
    return out


def run(targets: list[str], schedule: Schedule, *, ca_file: str | None = None, cert_file: str | None = None,
        key_file: str | None = None, verify: bool = True, connections: int = 0, allowed: Iterable[str] = ()) -> dict[str, Any]:
    check_targets(targets, allowed)
    ssl_ctx: Any = None
    if any(t.startswith("https://") for t in targets):
        ssl_ctx = ssl.create_default_context(cafile=ca_file) if verify else False
        if ssl_ctx and cert_file:
            ssl_ctx.load_cert_chain(cert_file, key_file)
    wall0 = time.time()
    requests = asyncio.run(run_async(targets, schedule, ssl_ctx, connections))
    slots = summarize_slots(requests, len(schedule.requests), schedule.slot_seconds)
    ok = [r for r in requests if r.error == "ok"]
    served: dict[str, int] = {}
    for r in ok:
        served[r.cluster or "?"] = served.get(r.cluster or "?", 0) + 1
    return {
        "started_at_epoch": round(wall0, 3),
        "requests": [asdict(r) for r in requests],
        "slots": slots,
        "totals": {
            "requests": len(requests),
            "successes": len(ok),
            "served_by": served,
            "errors": {c: sum(1 for r in requests if r.error == c) for c in ERROR_CLASSES if c != "ok" and any(r.error == c for r in requests)},
            "latency": stats.summarize(r.latency for r in ok),
        },
    }
