# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ConfigMap churn drivers: an open loop (Poisson arrivals, fixed lifetime) and a closed loop.

**Open loop.** Arrival times are drawn up front from an exponential
inter-arrival distribution of rate λ (a Poisson process; the seed is kept in
the results, so a run can be replayed). At each arrival a ConfigMap is
created, whatever is still in flight: the driver does not slow down when the
server does. Each object lives ``lifetime`` seconds after its create
returned, then is deleted. Every operation records when it was *scheduled*
and when it was *sent*: ``lag`` (sent - scheduled) shows when the driver
itself fell behind, and ``latency`` is the request's time on the wire.

**Closed loop.** N workers each repeat create -> update -> delete on their
own object; optionally paced so that all workers together start at most
``rate`` cycles per second.

Every create and update carries its wall-clock send time in the annotation
``fedbench.io/sent-at`` (for the informer's notification latency). Every
object carries the label ``fedbench.io/churn=<token>``. At the end a
sentinel ConfigMap (``fedbench-churn-done-<token>``) tells an informer that
the run is over; then a sweep lists the label, deletes whatever is left
(counted as ``swept``) and checks that nothing remains.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import apimetrics, stats

LABEL = "fedbench.io/churn"
SENT_AT = "fedbench.io/sent-at"
SENTINEL_PREFIX = "fedbench-churn-done-"
VERBS = ("create", "update", "delete")
ERROR_CLASSES = ("ok", "throttled", "conflict", "not_found", "server_error", "client_error", "timeout", "connect_error")
OPS_COLUMNS = ("verb", "scheduled", "sent", "latency", "status", "error")


class ChurnError(ValueError):
    """A bad parameter; the message names it."""


@dataclass
class ChurnSpec:
    mode: str
    duration: float
    rate: float = 0.0
    lifetime: float = 0.0
    workers: int = 0
    payload_bytes: int = 128
    namespaces: tuple[str, ...] = ("fedbench-churn",)
    connections: int = 32
    timeout: float = 10.0
    seed: int | None = None
    token: str = "churn"

    def __post_init__(self) -> None:
        if self.mode not in ("open", "closed"):
            raise ChurnError(f"mode must be open or closed, not {self.mode!r}")
        if not self.duration or self.duration <= 0:
            raise ChurnError(f"duration must be > 0 seconds (got {self.duration})")
        if self.mode == "open":
            if self.rate is None or self.rate <= 0:
                raise ChurnError(f"rate must be > 0 objects per second for the open loop (got {self.rate})")
            if self.lifetime is None or self.lifetime < 0:
                raise ChurnError(f"lifetime must be >= 0 seconds (got {self.lifetime})")
        else:
            if self.workers is None or self.workers < 1:
                raise ChurnError(f"workers must be >= 1 for the closed loop (got {self.workers})")
            if self.rate is None or self.rate < 0:
                raise ChurnError(f"rate must be >= 0 cycles per second for the closed loop, 0 for unpaced (got {self.rate})")
        if self.payload_bytes < 0 or self.payload_bytes > 900_000:
            raise ChurnError(f"payload_bytes must be between 0 and 900000 (got {self.payload_bytes})")
        if not self.namespaces:
            raise ChurnError("namespaces must name at least one namespace")
        if self.connections < 1:
            raise ChurnError(f"connections must be >= 1 (got {self.connections})")
        if self.timeout <= 0:
            raise ChurnError(f"timeout must be > 0 seconds (got {self.timeout})")
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)


def point_name(mode: str, rate: float | None = None, lifetime: float | None = None, workers: int | None = None) -> str:
    """The name of a churn point (its samples' file names; the informer beside it takes the same).

    Omitted values are the module's defaults (lifetime 1 s, rate 0, workers 0).
    """
    if mode == "open":
        return f"open-rate{float(rate or 0):g}-life{float(1.0 if lifetime is None else lifetime):g}"
    return f"closed-workers{int(workers or 0)}-rate{float(rate or 0):g}"


def arrivals(rate: float, duration: float, seed: int) -> list[float]:
    """Poisson arrival times in [0, duration)."""
    rng = random.Random(seed)
    out, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= duration:
            return out
        out.append(t)


def classify(status: int | None, exc: BaseException | None = None) -> str:
    if exc is not None:
        return "timeout" if isinstance(exc, asyncio.TimeoutError) else "connect_error"
    if status is not None and 200 <= status <= 299:
        return "ok"
    return {429: "throttled", 409: "conflict", 404: "not_found"}.get(status or 0, "server_error" if (status or 0) >= 500 else "client_error")


@dataclass
class Recorder:
    t0: float
    ops: list[tuple] = field(default_factory=list)

    async def op(self, kube: akube.AsyncKube, verb: str, scheduled: float, method: str, path: str, body: Any = None) -> tuple[int | None, Any]:
        loop = asyncio.get_running_loop()
        if body is not None and verb in ("create", "update"):
            body["metadata"].setdefault("annotations", {})[SENT_AT] = f"{time.time():.6f}"
        sent = loop.time()
        status, data, exc = None, None, None
        try:
            status, data = await kube.call(method, path, body)
        except Exception as err:  # a timeout, or aiohttp's and the OS's connection errors: classified below
            exc = err
        latency = loop.time() - sent
        self.ops.append((verb, round(scheduled, 6), round(sent - self.t0, 6), round(latency, 6), status or 0, classify(status, exc)))
        return status, data


def _configmap(namespace: str, name: str, token: str, payload: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: token}},
        "data": {"payload": payload},
    }


def _path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps" + (f"/{name}" if name else "")


async def _open_loop(kube: akube.AsyncKube, spec: ChurnSpec, rec: Recorder, payload: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    times = arrivals(spec.rate, spec.duration, spec.seed or 0)

    async def one(index: int, at: float) -> None:
        ns = spec.namespaces[index % len(spec.namespaces)]
        name = f"churn-{spec.token}-{index}"
        status, _ = await rec.op(kube, "create", at, "POST", _path(ns), _configmap(ns, name, spec.token, payload))
        if status is None or not 200 <= status <= 299:
            return
        await asyncio.sleep(spec.lifetime)
        await rec.op(kube, "delete", loop.time() - rec.t0, "DELETE", _path(ns, name))

    tasks = []
    for index, at in enumerate(times):
        delay = rec.t0 + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, at)))
    send_window = loop.time() - rec.t0
    await asyncio.gather(*tasks)
    return {"scheduled": len(times), "send_window": send_window}


async def _closed_loop(kube: akube.AsyncKube, spec: ChurnSpec, rec: Recorder, payload: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = rec.t0 + spec.duration
    ticket = itertools.count()
    cycles = [0]

    async def worker(w: int) -> None:
        ns = spec.namespaces[w % len(spec.namespaces)]
        for i in itertools.count():
            if spec.rate > 0:
                start_at = rec.t0 + next(ticket) / spec.rate
                if start_at >= end:
                    return
                if start_at > loop.time():
                    await asyncio.sleep(start_at - loop.time())
            if loop.time() >= end:
                return
            scheduled = loop.time() - rec.t0
            name = f"churn-{spec.token}-w{w}-{i}"
            status, created = await rec.op(kube, "create", scheduled, "POST", _path(ns), _configmap(ns, name, spec.token, payload))
            if status is None or not 200 <= status <= 299:
                await asyncio.sleep(0.05)  # do not spin on a refusing server
                continue
            created["data"] = {"payload": payload[::-1] or "u"}
            await rec.op(kube, "update", loop.time() - rec.t0, "PUT", _path(ns, name), created)
            await rec.op(kube, "delete", loop.time() - rec.t0, "DELETE", _path(ns, name))
            cycles[0] += 1

    await asyncio.gather(*(worker(w) for w in range(spec.workers)))
    return {"cycles": cycles[0], "send_window": min(loop.time() - rec.t0, spec.duration)}


async def sweep(kube: akube.AsyncKube, spec: ChurnSpec) -> dict[str, int]:
    """Delete whatever carries this run's label; then count what remains."""
    swept = 0
    for ns in spec.namespaces:
        items, _ = await kube.list(_path(ns), {"labelSelector": f"{LABEL}={spec.token}"})
        for item in items:
            name = item["metadata"]["name"]
            status, _ = await kube.call("DELETE", _path(ns, name))
            if 200 <= status <= 299 and not name.startswith(SENTINEL_PREFIX):
                swept += 1
    left = 0
    for ns in spec.namespaces:
        items, _ = await kube.list(_path(ns), {"labelSelector": f"{LABEL}={spec.token}"})
        left += len(items)
    return {"swept": swept, "left": left}


def summarize(spec: ChurnSpec, ops: list[tuple], extra: dict[str, Any]) -> dict[str, Any]:
    by_verb: dict[str, dict[str, Any]] = {}
    errors: dict[str, int] = {}
    for verb in VERBS:
        mine = [o for o in ops if o[0] == verb]
        if not mine:
            continue
        ok = [o for o in mine if o[5] == "ok"]
        by_verb[verb] = {
            "requests": len(mine),
            "ok": len(ok),
            "latency": stats.summarize((o[3] for o in ok), 4),
            "lag": stats.summarize((max(0.0, o[2] - o[1]) for o in mine), 4),
        }
    for o in ops:
        if o[5] != "ok":
            errors[o[5]] = errors.get(o[5], 0) + 1
    creates_ok = by_verb.get("create", {}).get("ok", 0)
    deletes_ok = by_verb.get("delete", {}).get("ok", 0)
    total = len(ops)
    out: dict[str, Any] = {
        "operations": total,
        "errors": errors,
        "throttled": errors.get("throttled", 0),
        "error_ratio": round(sum(errors.values()) / total, 6) if total else 0.0,
        "verbs": by_verb,
        "created": creates_ok,
        "deleted": deletes_ok,
        "mutating_p99": max((v["latency"]["p99"] or 0.0) for v in by_verb.values()) if by_verb else None,
    }
    if spec.mode == "open":
        out["requested_rate"] = spec.rate
        out["scheduled_rate"] = round(extra["scheduled"] / spec.duration, 3)
        out["achieved_rate"] = round(creates_ok / spec.duration, 3)
        out["rate_accuracy"] = round(creates_ok / (spec.rate * spec.duration), 4)
        # A Poisson count over the window is itself noisy (relative standard
        # error 1/sqrt(rate * duration)); delivery compares with the draw.
        out["delivery"] = round(creates_ok / extra["scheduled"], 4) if extra["scheduled"] else None
        out["poisson_rel_se"] = round((spec.rate * spec.duration) ** -0.5, 4)
    else:
        out["requested_rate"] = spec.rate or None
        out["cycles"] = extra["cycles"]
        out["achieved_rate"] = round(extra["cycles"] / spec.duration, 3)
        out["operations_rate"] = round(total / spec.duration, 3)
        out["rate_accuracy"] = round(extra["cycles"] / (spec.rate * spec.duration), 4) if spec.rate else None
    return out


# Like kube-burner's thresholds: a sample whose operations failed beyond these
# error ratios is degraded, or failed; it is never stored or shown as ok, and
# its summaries are left out of the point's (they are over ok samples only).
DEGRADED_ERROR_RATIO = 0.01
FAILED_ERROR_RATIO = 0.10


def judge(summary: Mapping[str, Any], degraded: float = DEGRADED_ERROR_RATIO, failed: float = FAILED_ERROR_RATIO) -> tuple[str, str | None]:
    """The sample's status from its error ratio: (ok | degraded | failed, why)."""
    ratio = summary.get("error_ratio") or 0.0
    errors = ", ".join(f"{k} {n}" for k, n in sorted((summary.get("errors") or {}).items()))
    why = f"{ratio:.1%} of {summary.get('operations')} operations failed ({errors})"
    if ratio > failed:
        return "failed", f"{why}: above the failed threshold {failed:.0%}"
    if ratio > degraded:
        return "degraded", f"{why}: above the degraded threshold {degraded:.0%}"
    return "ok", None


def account(summary: dict[str, Any], cleanup: Mapping[str, int]) -> None:
    """Add up the objects: every object the server created was deleted by the run, swept
    afterwards, or is left; creates the client saw fail may still have been made."""
    made = summary["deleted"] + cleanup["swept"] + cleanup["left"]
    summary["objects"] = {
        "created_ok": summary["created"], "created_unconfirmed": max(0, made - summary["created"]),
        "deleted_ok": summary["deleted"], "swept": cleanup["swept"], "left": cleanup["left"],
    }


async def run(kube: akube.AsyncKube, spec: ChurnSpec, *, scrape: bool = True, sentinel: bool = True) -> dict[str, Any]:
    """Run one churn sample; returns its summary, the ops and the API server's view."""
    payload = "x" * spec.payload_bytes
    created_ns = [ns for ns in spec.namespaces if await akube.ensure_namespace(kube, ns, {"fedbench.io/experiment": "churn"})]
    before = await kube.request("GET", "/metrics") if scrape else None
    loop = asyncio.get_running_loop()
    rec = Recorder(t0=loop.time() + 0.05)
    started = time.time()
    error = None
    extra: dict[str, Any] = {"scheduled": 0, "cycles": 0}
    try:
        if spec.mode == "open":
            extra = await _open_loop(kube, spec, rec, payload)
        else:
            extra = await _closed_loop(kube, spec, rec, payload)
    except Exception as exc:  # keep what was measured; the sweep still runs
        error = f"{type(exc).__name__}: {exc}"
    elapsed = loop.time() - rec.t0
    after = await kube.request("GET", "/metrics") if scrape else None
    if sentinel:
        ns = spec.namespaces[0]
        await kube.call("POST", _path(ns), _configmap(ns, SENTINEL_PREFIX + spec.token, spec.token, ""))
    cleanup = await sweep(kube, spec)
    for ns in created_ns:
        if not await akube.delete_namespace(kube, ns):
            error = error or f"namespace {ns} still terminating after 120 s"
    summary = summarize(spec, rec.ops, extra)
    summary["elapsed"] = round(elapsed, 3)
    summary.update(cleanup)
    account(summary, cleanup)
    return {
        "started_unix": started,
        "summary": summary,
        "ops": rec.ops,
        "apiserver": apimetrics.report(before, after) if scrape else None,
        "error": error,
        "namespaces_created": created_ns,
    }

