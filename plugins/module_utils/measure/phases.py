# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phases of the deployment lifecycle, derived from recorded events (pure).

Nothing here touches a cluster or a clock: every function takes the events a
:class:`watch.Recorder` kept (as dicts) and the client's marks, so the whole
derivation is unit-tested on hand-written timelines. docs/phases.md defines
each phase in words.

Times are seconds on the monotonic clock, relative to ``create_sent`` for the
create side and to ``delete_sent`` for the delete side, rounded to the
millisecond. A phase that never happened (a timeout) is ``None``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

# Phase names, in the order they are reported.
CREATE_PHASES = (
    "create_acked",
    "deployment_observed",
    "pod_created_first",
    "pod_created_last",
    "pod_scheduled_first",
    "pod_scheduled_last",
    "pod_running_first",
    "pod_running_last",
    "pod_ready_first",
    "pod_ready_last",
    "ready",
)
DELETE_PHASES = ("delete_acked", "pods_gone", "deployment_gone", "gone")
PHASES = CREATE_PHASES + DELETE_PHASES
HEADLINE = {"create_to_ready": "ready", "delete_to_gone": "gone"}

# Per-pod predicates: the first event where each holds marks the pod's step.
POD_STEPS = {
    "created": lambda f: True,
    "scheduled": lambda f: bool(f.get("scheduled")),
    "running": lambda f: f.get("phase") == "Running",
    "ready": lambda f: bool(f.get("ready")),
}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _sorted(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: e["mono"])


def pod_timelines(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per pod (cluster, name): the first monotonic time of each step, and its
    last fields (which carry the apiserver's own timestamps)."""
    pods: dict[tuple[str, str], dict[str, Any]] = {}
    for event in _sorted(events):
        if event["kind"] != "Pod" or event["type"] == "DELETED":
            continue
        key = (event["cluster"], event["name"])
        pod = pods.setdefault(key, {"cluster": event["cluster"], "name": event["name"], "steps": {}, "walls": {}})
        for step, holds in POD_STEPS.items():
            if step not in pod["steps"] and holds(event["fields"]):
                pod["steps"][step] = event["mono"]
                pod["walls"][step] = event["wall"]
        pod["fields"] = event["fields"]
    return pods


def first_time_total(events: Iterable[Mapping[str, Any]], kind: str, value: str, target: int, after: float) -> float | None:
    """First monotonic time (≥ ``after``) at which the sum of ``fields[value]``
    over the live objects of ``kind``, across clusters, reaches ``target``."""
    live: dict[tuple[str, str], int] = {}
    for event in _sorted(events):
        if event["kind"] != kind:
            continue
        key = (event["cluster"], event["name"])
        if event["type"] == "DELETED":
            live.pop(key, None)
        else:
            live[key] = int(event["fields"].get(value) or 0)
        if event["mono"] >= after and sum(live.values()) >= target:
            return event["mono"]
    return None


def first_time_empty(events: Iterable[Mapping[str, Any]], kind: str, after: float) -> float | None:
    """First monotonic time (≥ ``after``) at which no object of ``kind`` is left."""
    live: set[tuple[str, str]] = set()
    seen_any = False
    result = None
    for event in _sorted(events):
        if event["kind"] != kind:
            continue
        seen_any = True
        key = (event["cluster"], event["name"])
        if event["type"] == "DELETED":
            live.discard(key)
        else:
            live.add(key)
        if event["mono"] >= after:
            result = event["mono"] if not live else None
    return result if seen_any else None


def _spread(times: list[float], base: float) -> tuple[float | None, float | None]:
    if not times:
        return None, None
    return _ms(min(times) - base), _ms(max(times) - base)


def derive(
    events: list[Mapping[str, Any]],
    marks: Mapping[str, float],
    *,
    replicas: int,
    deployments: int = 1,
) -> dict[str, float | None]:
    """Every phase of one sample. ``marks`` holds monotonic times of
    ``create_sent``, ``create_acked``, ``delete_sent``, ``delete_acked``
    (the last two may be missing after a timeout)."""
    t0 = marks["create_sent"]
    phases: dict[str, float | None] = {name: None for name in PHASES}
    if "create_acked" in marks:
        phases["create_acked"] = _ms(marks["create_acked"] - t0)

    deploy_first: dict[tuple[str, str], float] = {}
    for event in _sorted(events):
        if event["kind"] == "Deployment" and event["type"] != "DELETED":
            deploy_first.setdefault((event["cluster"], event["name"]), event["mono"])
    if len(deploy_first) >= deployments:
        phases["deployment_observed"] = _ms(sorted(deploy_first.values())[deployments - 1] - t0)

    pods = pod_timelines(events)
    for step in POD_STEPS:
        times = [p["steps"][step] for p in pods.values() if step in p["steps"]]
        first, last = _spread(times, t0)
        phases[f"pod_{step}_first"] = first
        # The last pod only counts once every requested pod got there.
        phases[f"pod_{step}_last"] = last if len(times) >= replicas else None

    ready_at = first_time_total(events, "Deployment", "ready_replicas", replicas, t0)
    phases["ready"] = _ms(ready_at - t0) if ready_at is not None else None

    if "delete_sent" in marks:
        d0 = marks["delete_sent"]
        if "delete_acked" in marks:
            phases["delete_acked"] = _ms(marks["delete_acked"] - d0)
        pods_gone = first_time_empty(events, "Pod", d0)
        deploy_gone = first_time_empty(events, "Deployment", d0)
        phases["pods_gone"] = _ms(pods_gone - d0) if pods_gone is not None else None
        phases["deployment_gone"] = _ms(deploy_gone - d0) if deploy_gone is not None else None
        if pods_gone is not None and deploy_gone is not None:
            phases["gone"] = _ms(max(pods_gone, deploy_gone) - d0)
    return phases


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pod_startup(events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per pod: observed startup latency (created → running, created → ready,
    in seconds) and the apiserver's own timestamps with the skew between each
    and the moment the watch observed the same step.

    Kubernetes' pod startup SLI counts from the pod's creation to it being
    observed running (image pulls excluded; the embedded testbed has none).
    The apiserver's timestamps have one-second resolution, so a skew of up
    to -1 s is truncation, not clock error.
    """
    out = []
    for pod in pod_timelines(events).values():
        steps, fields, walls = pod["steps"], pod.get("fields", {}), pod["walls"]
        created = steps.get("created")
        record: dict[str, Any] = {
            "cluster": pod["cluster"],
            "name": pod["name"],
            "node": fields.get("node"),
            "created_to_scheduled": _ms(steps["scheduled"] - created) if "scheduled" in steps else None,
            "created_to_running": _ms(steps["running"] - created) if "running" in steps else None,
            "created_to_ready": _ms(steps["ready"] - created) if "ready" in steps else None,
            "apiserver": {
                "created": fields.get("created_at"),
                "scheduled": fields.get("scheduled_at"),
                "started": fields.get("started_at"),
                "ready": fields.get("ready_at"),
            },
            "skew": {},
        }
        for step, api_field in (("created", "created_at"), ("scheduled", "scheduled_at"), ("running", "started_at"), ("ready", "ready_at")):
            api_ts, seen = _parse_time(fields.get(api_field)), _parse_time(walls.get(step))
            record["skew"][step] = _ms(seen - api_ts) if api_ts is not None and seen is not None else None
        out.append(record)
    return sorted(out, key=lambda r: (r["cluster"], r["name"]))


def ordered(phases: Mapping[str, float | None]) -> list[str]:
    """The orderings that must hold, as a list of violations (empty when sound)."""
    chains = [
        ("pod_created_first", "pod_scheduled_first", "pod_running_first", "pod_ready_first"),
        ("pod_created_last", "pod_scheduled_last", "pod_running_last", "pod_ready_last"),
        ("pod_created_first", "pod_created_last"),
        ("pod_ready_first", "pod_ready_last"),
        ("pods_gone", "gone"),
        ("deployment_gone", "gone"),
    ]
    bad = []
    for chain in chains:
        values = [(name, phases.get(name)) for name in chain if phases.get(name) is not None]
        for (a, va), (b, vb) in zip(values, values[1:]):
            if va > vb:
                bad.append(f"{a} ({va}) > {b} ({vb})")
    return bad


def per_cluster(events: list[Mapping[str, Any]], marks: Mapping[str, float], shares: Mapping[str, int | None]) -> dict[str, dict[str, float | None]]:
    """Per member cluster, for frameworks that place the workload on several:
    its Deployment observed and its share ready (after ``create_sent``), the
    first and last of its pods created, running and ready, its Deployments and
    pods gone (after ``delete_sent``). A share of ``None`` is one the framework
    decides while the sample runs (Liqo's scheduler): the cluster's share is
    then the pods it was seen to run, and it is ready when they all are."""
    t0, d0 = marks["create_sent"], marks.get("delete_sent")
    out: dict[str, dict[str, float | None]] = {}
    for cluster, share in shares.items():
        mine = [e for e in events if e["cluster"] == cluster]
        observed = [e["mono"] for e in _sorted(mine) if e["kind"] == "Deployment" and e["type"] != "DELETED"]
        pods = pod_timelines(mine)
        count = share if share is not None else len(pods)
        if share is None:
            ready_times = [p["steps"].get("ready") for p in pods.values()]
            ready = max(ready_times) if ready_times and None not in ready_times else None
        else:
            ready = first_time_total(mine, "Deployment", "ready_replicas", share, t0) if share else None
        entry: dict[str, float | None] = {
            "replicas": count,
            "deployment_observed": _ms(observed[0] - t0) if observed else None,
            "ready": _ms(ready - t0) if ready is not None else None,
            "deployment_gone": None,
            "pods_gone": None,
        }
        for step in ("created", "running", "ready"):
            times = [p["steps"][step] for p in pods.values() if step in p["steps"]]
            first, last = _spread(times, t0)
            entry[f"pod_{step}_first"] = first
            entry[f"pod_{step}_last"] = last if count and len(times) >= count else None
        if d0 is not None:
            gone_d = first_time_empty(mine, "Deployment", d0)
            gone_p = first_time_empty(mine, "Pod", d0)
            entry["deployment_gone"] = _ms(gone_d - d0) if gone_d is not None else None
            entry["pods_gone"] = _ms(gone_p - d0) if gone_p is not None else None
        out[cluster] = entry
    return out
