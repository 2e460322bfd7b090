# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP burst client: requests in time slots, on schedule, that never measures itself.

A *schedule* is a slot length and, per slot, how many requests start at the
slot's beginning. Every request records when it was due (``scheduled``), when
the client really sent it (``start``; ``lag`` is the difference), its latency
measured from the real send, status, the cluster and instance that answered
(from the echo server's JSON body) and an error class. An answer later than
the timeout is a ``timeout``, whatever came: no latency above the timeout is
ever kept as ok.

The client cannot fall behind silently:

- at most ``max_inflight`` requests are in flight; one due while that many are
  is recorded as ``client_overload`` and never sent (rather than left to time
  out in the client's own queue);
- each slot says its lag (p50, p99, max) and is ``client_saturated`` when the
  lag p99 passes ``lag_limit`` or a request was not sent; the run says which
  slots were, and its own CPU per request.

The client is lean: one keep-alive HTTP/1.1 connection per request in flight
on asyncio protocols (no per-request client objects), and ``processes`` > 1
splits every slot's requests over that many processes on one shared clock
(their requests merged by slot). ``benchmarks/burst_client`` measures how
many requests a second it sends on schedule.

The study this comes from sent 1 request per slot, then 3 in parallel, then
a spike in slots 5 to 15: :func:`default_schedule`.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import math
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.common import clock
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import Outcome
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
    "client_overload",  # never sent: the client already had max_inflight requests in flight
)

# A slot whose send lag p99 passes this is client_saturated (the client, not
# the system under test, set the pace).
LAG_LIMIT = 0.010
MAX_INFLIGHT = 4096


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
    max_inflight: int = MAX_INFLIGHT
    lag_limit: float = LAG_LIMIT
    processes: int = 1

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
        if isinstance(self.max_inflight, bool) or not isinstance(self.max_inflight, int) or self.max_inflight < 1:
            raise BurstError(f"max_inflight must be a whole number >= 1, got {self.max_inflight!r}")
        if self.lag_limit <= 0:
            raise BurstError(f"lag_limit must be positive, got {self.lag_limit!r}")
        if isinstance(self.processes, bool) or not isinstance(self.processes, int) or not 1 <= self.processes <= 64:
            raise BurstError(f"processes must be a whole number from 1 to 64, got {self.processes!r}")

    def slots(self) -> int:
        """How many slots start (``duration`` may cut the schedule short)."""
        if self.duration is None:
            return len(self.requests)
        return min(len(self.requests), max(1, math.ceil(self.duration / self.slot_seconds - 1e-9)))


@dataclass
class Request:
    slot: int
    target: str
    start: float  # when it was sent, seconds since the run started (when it was due, if never sent)
    latency: float | None  # from the real send to the whole answer
    status: int | None
    cluster: str | None
    instance: str | None
    error: str
    server_ms: float | None = None
    scheduled: float | None = None  # when it was due, seconds since the run started
    lag: float | None = None  # start - scheduled; None if never sent
    worker: int = 0


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
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, (ConnectionError, OSError)):
        return "connect_error"
    return "client_error"


# --------------------------------------------------------------------------
# A lean HTTP/1.1 client: asyncio protocols, keep-alive, one request at a time
# per connection.
# --------------------------------------------------------------------------


class HttpError(ValueError):
    """An answer that is not HTTP/1.x."""


def parse_response(buf: bytes | bytearray, eof: bool = False) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes used, keep-alive) of the first whole answer in ``buf``,
    or None until it is whole (pure). Content-Length, chunked, or (at ``eof``) close-delimited."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if eof:
            raise HttpError("the connection closed before a whole answer")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close" and parts[0] != "HTTP/1.0"
    body_at = end + 4
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", body_at, keep
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(buf) - body_at < length:
            if eof:
                raise HttpError("the connection closed inside the body")
            return None
        return status, bytes(buf[body_at:body_at + length]), body_at + length, keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, pos = bytearray(), body_at
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(bytes(buf[pos:line_end]).split(b";")[0] or b"0", 16)
            if size == 0:  # then trailers, if any, and an empty line
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    break
                return status, bytes(body), trailer_end + 4, keep
            if len(buf) < line_end + 2 + size + 2:
                break
            body += buf[line_end + 2:line_end + 2 + size]
            pos = line_end + 2 + size + 2
        if eof:
            raise HttpError("the connection closed inside a chunked body")
        return None
    if eof:
        return status, bytes(buf[body_at:]), len(buf), False
    return None


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.keep = True

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._answer(False)

    def eof_received(self) -> bool:
        self._answer(True)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._answer(True, exc)

    def _answer(self, eof: bool, exc: Exception | None = None) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = parse_response(self.buf, eof)
        except (HttpError, ValueError) as err:
            waiter.set_exception(exc or ConnectionResetError(str(err)))
            return
        if parsed:
            status, body, used, self.keep = parsed
            del self.buf[:used]
            self.waiter = None
            waiter.set_result((status, body))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class _Target:
    url: str
    host: str
    port: int
    tls: bool
    request: bytes

    @classmethod
    def parse(cls, url: str) -> "_Target":
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{port}"
        request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: fedbench-burst\r\nAccept: */*\r\n\r\n".encode()
        return cls(url, parts.hostname or "", port, tls, request)


class _Client:
    """One process's share of the schedule: sends on time, bounds what is in flight."""

    def __init__(self, targets: list[str], schedule: Schedule, ssl_ctx: Any, worker: int, workers: int) -> None:
        self.targets = [_Target.parse(t) for t in targets]
        self.schedule, self.ssl_ctx, self.worker, self.workers = schedule, ssl_ctx, worker, workers
        self.idle: list[list[_Connection]] = [[] for _ in self.targets]
        # Each process may hold its share of the bound (at least one).
        self.bound = max(1, schedule.max_inflight // workers + (1 if worker < schedule.max_inflight % workers else 0))
        self.inflight = 0
        self.peak = 0
        self.results: list[Request] = []
        # The timeout is the same for every request, so deadlines come in send
        # order: one queue and one sweep, not a timer per request.
        self.deadlines: collections.deque = collections.deque()

    async def _connection(self, i: int, deadline: float) -> _Connection:
        idle = self.idle[i]
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        target = self.targets[i]
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(_Connection, target.host, target.port, ssl=self.ssl_ctx if target.tls else None,
                                   server_hostname=target.host if target.tls and self.ssl_ctx else None),
            max(0.0, deadline - loop.time()),
        )
        return conn

    async def _one(self, i: int, slot: int, due: float, t0: float) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        deadline = sent + self.schedule.timeout
        conn: _Connection | None = None
        status = cluster = instance = server_ms = None
        latency = None
        try:
            conn = await self._connection(i, deadline)
            waiter = loop.create_future()
            conn.waiter = waiter
            conn.transport.write(self.targets[i].request)
            self.deadlines.append((deadline, waiter))
            status, body = await waiter
            latency = loop.time() - sent
            error, data = classify(status, body)
            cluster, instance, server_ms = data.get("cluster"), data.get("instance"), data.get("server_ms")
            if latency > self.schedule.timeout:
                error = "timeout"  # it came, but later than the timeout: never an ok latency
            if conn.keep and not conn.closed:
                self.idle[i].append(conn)
                conn = None
        except Exception as exc:  # noqa: BLE001 - every failure is a recorded error class, never a crash
            error = _error_class(exc)
        finally:
            self.inflight -= 1
            if conn is not None:
                conn.close()
        self.results.append(Request(
            slot, self.targets[i].url, round(sent - t0, 6), round(latency, 6) if latency is not None else None, status,
            cluster, instance, error, server_ms, round(due - t0, 6), round(sent - due, 6), self.worker,
        ))

    async def _sweep(self) -> None:
        """Time out the requests past their deadline (every few milliseconds)."""
        loop = asyncio.get_running_loop()
        step = min(0.005, self.schedule.timeout / 10)
        while True:
            now = loop.time()
            while self.deadlines and (self.deadlines[0][0] <= now or self.deadlines[0][1].done()):
                _, waiter = self.deadlines.popleft()
                if not waiter.done():
                    waiter.set_exception(asyncio.TimeoutError())
            await asyncio.sleep(step)

    async def run(self, t0: float) -> list[Request]:
        loop = asyncio.get_running_loop()
        tasks = []
        n = len(self.targets)
        sweeper = loop.create_task(self._sweep())
        for slot in range(self.schedule.slots()):
            due = t0 + slot * self.schedule.slot_seconds
            # epoll sleeps in whole milliseconds, rounded up: sleep to just before
            # the slot, then yield until it is due, so a slot never starts late by
            # the sleep's rounding.
            delay = due - loop.time() - 0.002
            if delay > 0:
                await asyncio.sleep(delay)
            while loop.time() < due:
                await asyncio.sleep(0)
            # This process's share of the slot: every workers-th request.
            for k in range(self.worker, self.schedule.requests[slot], self.workers):
                i = (slot + k) % n
                if self.inflight >= self.bound:
                    self.results.append(Request(slot, self.targets[i].url, round(due - t0, 6), None, None, None, None,
                                                "client_overload", None, round(due - t0, 6), None, self.worker))
                    continue
                self.inflight += 1
                self.peak = max(self.peak, self.inflight)
                tasks.append(loop.create_task(self._one(i, slot, due, t0)))
        if tasks:
            await asyncio.gather(*tasks)
        sweeper.cancel()
        for idle in self.idle:
            for conn in idle:
                conn.close()
        await asyncio.sleep(0)  # let the transports close
        return self.results


def _ssl_context(targets: list[str], ca_file: str | None, cert_file: str | None, key_file: str | None, verify: bool) -> Any:
    if not any(t.startswith("https://") for t in targets):
        return None
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _work(targets: list[str], schedule: Schedule, tls: tuple, worker: int, t0: float) -> tuple[list[Request], float, int]:
    """One process's share: its requests, its CPU seconds, its peak in flight."""
    cpu0 = time.process_time()
    client = _Client(targets, schedule, _ssl_context(targets, *tls), worker, schedule.processes)

    async def main() -> list[Request]:
        return await client.run(t0)

    # The cyclic garbage collector would stop the loop for tens of milliseconds
    # once tens of thousands of records are alive: a send lag that is the
    # client's own. A run makes few cycles; collect once it is over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        requests = asyncio.run(main())
    finally:
        if collecting:
            gc.enable()
    return requests, time.process_time() - cpu0, client.peak


def _child(conn: Any, targets: list[str], schedule: Schedule, tls: tuple, worker: int, t0: float) -> None:
    try:
        requests, cpu, peak = _work(targets, schedule, tls, worker, t0)
        conn.send(([tuple(asdict(r).values()) for r in requests], cpu, peak, None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails naming it
        conn.send(([], 0.0, 0, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_clients(targets: list[str], schedule: Schedule, tls: tuple = (None, None, None, True)) -> tuple[list[Request], dict[str, Any]]:
    """Every request of the schedule, from ``schedule.processes`` processes on one clock;
    and what the client itself cost (CPU, peak in flight)."""
    if schedule.processes == 1:
        t0 = time.monotonic() + 0.05
        requests, cpu, peak = _work(targets, schedule, tls, 0, t0)
        return requests, {"cpu_seconds": cpu, "peak_inflight": peak}
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    # Every process starts the same slots at the same monotonic instants.
    t0 = time.monotonic() + 0.3 + 0.05 * schedule.processes
    pipes, procs = [], []
    try:
        for worker in range(schedule.processes):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(child, targets, schedule, tls, worker, t0), daemon=True)
            proc.start()
            child.close()
            pipes.append(parent)
            procs.append(proc)
        requests: list[Request] = []
        cpu, peak, failures = 0.0, 0, []
        for worker, pipe in enumerate(pipes):
            try:
                rows, c, p, failure = pipe.recv()
            except EOFError:
                rows, c, p, failure = [], 0.0, 0, "it ended without a result"
            if failure:
                failures.append(f"client process {worker}: {failure}")
            requests += [Request(*row) for row in rows]
            cpu += c
            peak += p
        if failures:
            raise BurstError("; ".join(failures))
    finally:
        for proc in procs:
            proc.join(timeout=schedule.timeout + 5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    requests.sort(key=lambda r: (r.slot, r.scheduled or 0.0, r.start, r.worker))
    return requests, {"cpu_seconds": cpu, "peak_inflight": peak}


def summarize_slots(requests: Iterable[Request], slots: int, slot_seconds: float, lag_limit: float = LAG_LIMIT) -> list[dict[str, Any]]:
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
        lat = stats.summarize((r.latency for r in ok), 6)
        lag = stats.summarize((r.lag for r in rs if r.lag is not None), 6)
        not_sent = errors.get("client_overload", 0)
        out.append({
            "slot": slot,
            "start": round(slot * slot_seconds, 3),
            "requests": len(rs),
            "successes": len(ok),
            "latency": {k: lat[k] for k in ("count", "p50", "p90", "p99", "max")},
            "lag": {k: lag[k] for k in ("count", "p50", "p99", "max")},
            "client_saturated": bool(not_sent or (lag["count"] and lag["p99"] > lag_limit)),
            "served_by": served,
            "share": {c: round(n / len(ok), 3) for c, n in served.items()} if ok else {},
            "errors": errors,
        })
    return out


def client_verdict(slots: list[dict[str, Any]], lag_limit: float) -> str | None:
    """Why the client, not the system under test, set the pace (None if it kept its schedule)."""
    saturated = [s for s in slots if s.get("client_saturated")]
    if not saturated:
        return None
    worst = max((s["lag"]["p99"] or 0.0) for s in saturated)
    not_sent = sum(s["errors"].get("client_overload", 0) for s in saturated)
    numbers = [s["slot"] for s in saturated]
    names = _ranges(numbers)
    if names.count(",") >= 8:
        names = f"{len(numbers)} of {len(slots)} slots, from {numbers[0]} to {numbers[-1]}"
    return (f"the client could not keep its schedule in slot(s) {names}: send lag p99 up to {worst * 1000:.1f} ms "
            f"(limit {lag_limit * 1000:.0f} ms), {not_sent} request(s) not sent (client_overload); "
            "these slots measure the client, not the data plane")


def _ranges(numbers: list[int]) -> str:
    out, start, prev = [], None, None
    for n in numbers + [None]:
        if start is None:
            start = prev = n
        elif n is not None and n == prev + 1:
            prev = n
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    return ", ".join(out)


def run(targets: list[str], schedule: Schedule, *, ca_file: str | None = None, cert_file: str | None = None,
        key_file: str | None = None, verify: bool = True, allowed: Iterable[str] = ()) -> dict[str, Any]:
    check_targets(targets, allowed)
    wall0 = time.time()
    requests, cost = run_clients(targets, schedule, (ca_file, cert_file, key_file, verify))
    slots = summarize_slots(requests, schedule.slots(), schedule.slot_seconds, schedule.lag_limit)
    ok = [r for r in requests if r.error == "ok"]
    served: dict[str, int] = {}
    for r in ok:
        served[r.cluster or "?"] = served.get(r.cluster or "?", 0) + 1
    sent = [r for r in requests if r.lag is not None]
    lag = stats.summarize((r.lag for r in sent), 6)
    return {
        "started_at_epoch": round(wall0, 3),
        "requests": [asdict(r) for r in requests],
        "slots": slots,
        "totals": {
            "requests": len(requests),
            "successes": len(ok),
            "served_by": served,
            "errors": {c: sum(1 for r in requests if r.error == c) for c in ERROR_CLASSES if c != "ok" and any(r.error == c for r in requests)},
            "latency": stats.summarize((r.latency for r in ok), 6),
        },
        "client": {
            "processes": schedule.processes,
            "max_inflight": schedule.max_inflight,
            "peak_inflight": cost["peak_inflight"],
            "lag_limit": schedule.lag_limit,
            "lag": {k: lag[k] for k in ("count", "p50", "p99", "max")},
            "saturated_slots": [s["slot"] for s in slots if s["client_saturated"]],
            "saturated": any(s["client_saturated"] for s in slots),
            "verdict": client_verdict(slots, schedule.lag_limit),
            "cpu_seconds": round(cost["cpu_seconds"], 4),
            "cpu_ms_per_request": round(1000 * cost["cpu_seconds"] / len(sent), 4) if sent else None,
        },
    }


def burst_from_params(params: dict[str, Any], check_mode: bool = False) -> Outcome:
    """The http_burst module's run: parameters, the bursts, the sample's status (failed when
    nothing succeeded, degraded when the client could not keep its schedule), kept."""
    p = params
    try:
        schedule = Schedule(p["slot_seconds"], tuple(p["requests"] or default_schedule(spike=p["spike"])), p["timeout"], p["duration"],
                            p["max_inflight"], p["lag_limit"], p["processes"])
        if check_mode:
            check_targets(p["targets"], p["allowed_hosts"])
            return Outcome(False, result={"slots": [], "totals": {}})
        started = clock.wall_now()
        out = run(p["targets"], schedule, ca_file=p["ca_file"], cert_file=p["cert_file"], key_file=p["key_file"],
                  verify=p["verify"], allowed=p["allowed_hosts"])
    except BurstError as exc:
        return Outcome(True, str(exc))
    totals, local = out["totals"], p["local_cluster"]
    totals["local_share"] = round(totals["served_by"].get(local, 0) / totals["successes"], 3) if local and totals["successes"] else None
    status, error = "ok", None
    if totals["requests"] and not totals["successes"]:
        status = "failed"
        error = f"none of {totals['requests']} requests succeeded (errors: {totals.get('errors')}); targets {', '.join(p['targets'])}"
    elif out["client"]["saturated"]:
        status, error = "degraded", out["client"]["verdict"]
    envelope = results.envelope(
        run_id=p["run_id"], experiment="burst", framework=p["framework"], testbed=p["testbed"] or [{"name": local or "unknown"}],
        point=p["profile"],
        parameters={
            "profile": p["profile"], "targets": p["targets"], "slot_seconds": schedule.slot_seconds,
            "requests": list(schedule.requests), "timeout": schedule.timeout, "local_cluster": local,
            "max_inflight": schedule.max_inflight, "lag_limit": schedule.lag_limit, "processes": schedule.processes,
        },
        sample={"repetition": p["repetition"], "status": status, "error": error, "started_at": started, **out},
    )
    try:
        path = results.keep(p["results_dir"], envelope)
    except results.ResultsError as exc:
        return Outcome(True, f"HTTP burst {status} but not kept: {exc}", {"totals": totals})
    result = {"status": status, "slots": out["slots"], "totals": totals, "client": out["client"], "path": path}
    if status == "failed":
        return Outcome(True, f"HTTP burst failed: {error}", result)
    if status == "degraded":
        result["warning"] = f"HTTP burst kept as degraded: {error}"
    return Outcome(False, result=result)

