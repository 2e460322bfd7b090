# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sizing calculator: cores and memory per control-plane component for a
target, fitted from the sizing sweep's measurements (experiment ``sizing``).

Two kinds of curve, each a least-squares line over measured steps of one
datastore, judged against the target's SLOs (a step counts only if it held
them):

- **CPU** per component against the churn rate it sustained: the cores the
  component used in every churn step that held the mutating-call SLO
  (``cores = a + b * rate``). The answer is the line at the target's rate.
  For kube-apiserver the capped variants add a second view: the lowest
  measured CPU limit whose capacity reached the target rate.
- **Memory** per component against what the cluster held: the peak resident
  memory in every density step that held the pod-startup and API SLOs
  (``MiB = a + b * pods + c * nodes``, or ``a + b * pods`` when the steps
  do not vary pods and nodes apart). The answer is the line at the target.

A target outside the measured range (a rate above the highest measured, more
pods or nodes than the largest step) is an *extrapolation*: the answer says
so, with the range. Nothing is invented: a component with fewer than two
usable points has no answer, and the answer says why. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "postgresql")


class FitError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    nodes: int
    pods: int
    churn_rate: float
    datastore: str = "etcd"
    mutating_p99: float = 1.0
    pod_startup_p99: float = 5.0

    def __post_init__(self) -> None:
        for name in ("nodes", "pods"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FitError(f"target {name} must be a whole number of 0 or more, got {value!r}")
        for name in ("churn_rate", "mutating_p99", "pod_startup_p99"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (name != "churn_rate" and value == 0):
                raise FitError(f"target {name} must be a number {'of 0 or more' if name == 'churn_rate' else 'above 0'}, got {value!r}")


def _solve(rows: list[list[float]], ys: list[float]) -> list[float] | None:
    """Least squares by the normal equations (Gauss-Jordan); None when singular."""
    k = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(k)] + [sum(r[i] * y for r, y in zip(rows, ys))] for i in range(k)]
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(a[r][col]))
        scale = max(abs(a[r][c]) for r in range(k) for c in range(k)) or 1.0
        if abs(a[pivot][col]) < 1e-9 * scale:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(k):
            if r != col:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
    return [a[i][k] / a[i][i] for i in range(k)]


def fit_line(xs: list[list[float]], ys: list[float]) -> dict[str, Any] | None:
    """y = c0 + c1*x1 + ...; with R² and the points; None if there are too few or they are degenerate."""
    rows = [[1.0, *x] for x in xs]
    # More points than coefficients: a line through exactly as many points says nothing of its fit.
    if not rows or len(rows) <= len(rows[0]):
        return None
    coef = _solve(rows, ys)
    if coef is None:
        return None
    pred = [sum(c * v for c, v in zip(coef, r)) for r in rows]
    mean = sum(ys) / len(ys)
    ss_tot = sum((y - mean) ** 2 for y in ys)
    ss_res = sum((y - p) ** 2 for y, p in zip(ys, pred))
    return {"coefficients": [round(c, 9) for c in coef], "r2": round(1 - ss_res / ss_tot, 4) if ss_tot > 0 else None, "points": len(ys)}


def sizing_samples(documents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every finished sizing sample of the given results documents, each with its run and variant."""
    out = []
    for doc in documents:
        for point in doc.get("results", []):
            if point.get("experiment") != "sizing":
                continue
            for sample in point.get("samples", []):
                if sample.get("status") == "ok":
                    out.append({**sample, "run_id": point.get("run_id") or doc.get("run_id"), "cores": (point.get("testbed") or {}).get("host", {}).get("cores")})
    return out


def _datastore(sample: Mapping[str, Any]) -> str:
    return (sample.get("variant") or {}).get("datastore") or "etcd"


def _apiserver_cores(sample: Mapping[str, Any]) -> float | None:
    """The CPU the variant gave kube-apiserver: its quota, else its CPU set's size, else the machine's cores."""
    limits = ((sample.get("variant") or {}).get("in_force") or {}).get("kube-apiserver") or {}
    if limits.get("cpus"):
        return float(limits["cpus"])
    if limits.get("cpuset"):
        return float(sum(int(b) - int(a) + 1 for a, _, b in (part.partition("-") if "-" in part else (part, "", part)
                                                             for part in limits["cpuset"].split(","))))
    return float(sample["cores"]) if sample.get("cores") else None


def _steps(samples: list[Mapping[str, Any]], target: Target, kind: str) -> Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(sample, step) of every churn or density step measured on the target's datastore."""
    for s in samples:
        if _datastore(s) == target.datastore:
            for step in (s.get(kind) or {}).get("steps", []):
                yield s, step


def _held(value: Any, limit: float) -> bool:
    return value is not None and value <= limit


def churn_points(samples: list[Mapping[str, Any]], target: Target) -> list[dict[str, Any]]:
    """Every churn step that held the target's mutating-call SLO (the server's SLI and, where
    measured, its request duration) with at most 1 % of operations failed."""
    return [{"run": s["run_id"], "variant": s["variant"]["name"], "rate": step["achieved_rate"], "components": step["components"]}
            for s, step in _steps(samples, target, "churn")
            if _held(step.get("server_p99"), target.mutating_p99) and step.get("error_ratio", 1) <= 0.01
            and (step.get("server_duration_p99") is None or step["server_duration_p99"] <= target.mutating_p99)]


def density_points(samples: list[Mapping[str, Any]], target: Target) -> list[dict[str, Any]]:
    """Every density step whose pods all ran, inside the target's pod-startup SLO and the API SLOs."""
    return [{"run": s["run_id"], "variant": s["variant"]["name"], "nodes": step["nodes"], "pods": step["pods"], "components": step["components"]}
            for s, step in _steps(samples, target, "density")
            if step.get("status") == "ok" and _held(step.get("pod_startup_p99"), target.pod_startup_p99) and step.get("api_slo_pass")]


def capacity_points(samples: list[Mapping[str, Any]], target: Target) -> list[dict[str, Any]]:
    """(kube-apiserver's CPU, the variant's churn capacity) per variant of the datastore."""
    pts = []
    for s in samples:
        churned = s.get("churn") or {}
        if _datastore(s) != target.datastore or churned.get("capacity") is None:
            continue
        pts.append({"run": s["run_id"], "variant": s["variant"]["name"], "apiserver_cores": _apiserver_cores(s),
                    "capacity": churned["capacity"], "client_bound": bool(churned.get("client_bound"))})
    return pts


def recommend(samples: list[Mapping[str, Any]], target: Target) -> dict[str, Any]:
    """Per component: cores and memory at the target, each with its fit, its points and whether it is an extrapolation."""
    churn = churn_points(samples, target)
    dense = density_points(samples, target)
    caps = capacity_points(samples, target)
    runs = sorted({p["run"] for p in churn + dense + caps})
    out: dict[str, Any] = {"target": target.__dict__, "runs": runs, "components": {}, "notes": []}
    if not samples:
        raise FitError("no finished sizing sample in the results given (run the sizing sweep: make bench, or --tags sizing)")
    if not churn and not dense:
        raise FitError(f"no sizing step on datastore {target.datastore} held the target's SLOs in the results given")
    rate_range = (min((p["rate"] for p in churn), default=None), max((p["rate"] for p in churn), default=None))
    pods_range = (min((p["pods"] for p in dense), default=None), max((p["pods"] for p in dense), default=None))
    nodes_range = (min((p["nodes"] for p in dense), default=None), max((p["nodes"] for p in dense), default=None))
    for comp in COMPONENTS:
        entry: dict[str, Any] = {}
        xs = [[p["rate"]] for p in churn if comp in p["components"] and p["components"][comp]["cpu_cores"] is not None]
        ys = [p["components"][comp]["cpu_cores"] for p in churn if comp in p["components"] and p["components"][comp]["cpu_cores"] is not None]
        fit = fit_line(xs, ys)
        if fit and fit["coefficients"][1] < 0:
            entry["cpu"] = {"cores": None, "why": f"its CPU did not grow with the churn rate over the measured steps (slope {fit['coefficients'][1]:.6f}, "
                                                  f"n={fit['points']}): measured at most {max(ys):.3f} cores"}
        elif fit:
            cores = fit["coefficients"][0] + fit["coefficients"][1] * target.churn_rate
            entry["cpu"] = {"cores": round(max(cores, 0.0), 3), "fit": fit, "model": "cores = a + b * churn rate",
                            "measured_rates": [min(x[0] for x in xs), max(x[0] for x in xs)],
                            "extrapolation": not (min(x[0] for x in xs) <= target.churn_rate <= max(x[0] for x in xs))}
        elif ys:
            entry["cpu"] = {"cores": None, "why": f"{len(ys)} usable churn step(s): too few to fit a line (3 or more)"}
        mem_pts = [p for p in dense if comp in p["components"] and p["components"][comp]["rss_peak_mib"] is not None]
        mys = [p["components"][comp]["rss_peak_mib"] for p in mem_pts]
        mfit = fit_line([[p["pods"], p["nodes"]] for p in mem_pts], mys)
        model = "MiB = a + b * pods + c * nodes"
        if mfit is None:
            mfit = fit_line([[p["pods"]] for p in mem_pts], mys)
            model = "MiB = a + b * pods (the steps do not vary pods and nodes apart)"
        if mfit and any(c < 0 for c in mfit["coefficients"][1:]):
            entry["memory"] = {"mib": None, "why": f"its memory did not grow with the load over the measured steps (a slope below 0, n={mfit['points']}): "
                                                   f"measured peak {max(mys):.0f} MiB at {max(p['pods'] for p in mem_pts)} pods; larger steps (profile full) are needed"}
        elif mfit:
            c = mfit["coefficients"]
            mib = c[0] + c[1] * target.pods + (c[2] * target.nodes if len(c) > 2 else 0.0)
            entry["memory"] = {"mib": round(max(mib, 0.0), 1), "fit": mfit, "model": model,
                               "measured_pods": [min(p["pods"] for p in mem_pts), max(p["pods"] for p in mem_pts)],
                               "measured_nodes": [min(p["nodes"] for p in mem_pts), max(p["nodes"] for p in mem_pts)],
                               "extrapolation": not (min(p["pods"] for p in mem_pts) <= target.pods <= max(p["pods"] for p in mem_pts)
                                                     and min(p["nodes"] for p in mem_pts) <= target.nodes <= max(p["nodes"] for p in mem_pts))}
        elif mys:
            entry["memory"] = {"mib": None, "why": f"{len(mys)} usable density step(s): too few to fit a line (3 or more)"}
        if entry:
            out["components"][comp] = entry
    reached = sorted((p for p in caps if p["capacity"] >= target.churn_rate and p["apiserver_cores"] is not None),
                     key=lambda p: p["apiserver_cores"])
    out["apiserver_capacity"] = {"points": caps, "lowest_measured_cores_reaching_target": reached[0] if reached else None}
    if caps and not reached:
        best = max(caps, key=lambda p: p["capacity"])
        out["notes"].append(f"no measured variant sustained {target.churn_rate:g} ConfigMaps/s (the highest: {best['capacity']:g}/s, variant "
                            f"{best['variant']}{', client-bound' if best['client_bound'] else ''}): the CPU figures at that rate are extrapolations")
    out["ranges"] = {"churn_rate": rate_range, "pods": pods_range, "nodes": nodes_range}
    if pods_range[1] and target.pods > pods_range[1]:
        out["notes"].append(f"the target's {target.pods} pods are {target.pods / pods_range[1]:.0f}x the largest measured density step "
                            f"({pods_range[1]} pods on {nodes_range[1]} nodes): the memory figures assume the measured lines hold that far")
    if rate_range[1] and target.churn_rate > rate_range[1]:
        out["notes"].append(f"the target's churn rate is above the highest measured step inside the SLOs ({rate_range[1]:g}/s)")
    out["notes"].append("CPU comes from churn steps only: the steady load of the target's nodes (leases, status updates) and "
                        "pods is not in these fits; postgresql's memory is the sum of its processes' resident memory, which "
                        "counts shared buffers once per process (an upper bound)")
    return out


def render(answer: Mapping[str, Any]) -> list[str]:
    """The answer as text: one line per component, then the data behind it."""
    t = answer["target"]
    lines = [f"target: {t['nodes']} nodes, {t['pods']} pods, churn {t['churn_rate']:g} ConfigMaps/s on {t['datastore']}; SLOs: mutating p99 "
             f"<= {t['mutating_p99']:g} s, pod startup p99 <= {t['pod_startup_p99']:g} s",
             f"from runs: {', '.join(answer['runs'])}", "",
             f"{'component':<24} {'cores':>8} {'memory MiB':>11}  basis"]
    for comp, entry in answer["components"].items():
        cpu, mem = entry.get("cpu") or {}, entry.get("memory") or {}
        cores = "–" if cpu.get("cores") is None else f"{cpu['cores']:.2f}" + ("*" if cpu.get("extrapolation") else "")
        mib = "–" if mem.get("mib") is None else f"{mem['mib']:.0f}" + ("*" if mem.get("extrapolation") else "")
        basis = []
        if cpu.get("fit"):
            a, b = cpu["fit"]["coefficients"]
            basis.append(f"cpu {a:.3f} + {b:.6f}*rate (n={cpu['fit']['points']}, R²={cpu['fit']['r2']}, rates {cpu['measured_rates'][0]:g}-{cpu['measured_rates'][1]:g}/s)")
        elif cpu.get("why"):
            basis.append(f"cpu: {cpu['why']}")
        if mem.get("fit"):
            c = mem["fit"]["coefficients"]
            terms = f"{c[0]:.1f} + {c[1]:.5f}*pods" + (f" + {c[2]:.4f}*nodes" if len(c) > 2 else "")
            basis.append(f"mem {terms} (n={mem['fit']['points']}, R²={mem['fit']['r2']}, pods {mem['measured_pods'][0]}-{mem['measured_pods'][1]}, "
                         f"nodes {mem['measured_nodes'][0]}-{mem['measured_nodes'][1]})")
        elif mem.get("why"):
            basis.append(f"memory: {mem['why']}")
        lines.append(f"{comp:<24} {cores:>8} {mib:>11}  {'; '.join(basis)}")
    lines.append("")
    lines.append("* extrapolation: the target lies outside the measured range of that fit.")
    cap = answer["apiserver_capacity"]
    if cap["points"]:
        lines.append("kube-apiserver CPU against churn capacity (measured): " + ", ".join(
            f"{p['apiserver_cores']:g} cores -> {p['capacity']:g}/s ({p['variant']}{', client-bound' if p['client_bound'] else ''})" for p in cap["points"]))
        low = cap["lowest_measured_cores_reaching_target"]
        if low:
            lines.append(f"lowest measured kube-apiserver CPU that sustained {t['churn_rate']:g}/s: {low['apiserver_cores']:g} cores (variant {low['variant']}, run {low['run']})")
    lines += answer["notes"]
    return lines
