# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP burst in results and the report: summaries, the per-slot table, plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats
from ansible_collections.fedbench.testbed.plugins.module_utils.report.plots import pyplot, save
from ansible_collections.fedbench.testbed.plugins.module_utils.report.spec import HIGHER, LOWER, Experiment, Point, ok_samples


def point(parameters: Mapping[str, Any]) -> str:
    """The profile of requests per slot (``default``: the study's)."""
    return str(parameters.get("point") or parameters.get("profile"))


def burst_summaries(samples: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    ok = ok_samples(samples)
    out: dict[str, dict[str, Any]] = {
        "latency": stats.summarize(r.get("latency") for s in ok for r in s.get("requests", []) if r.get("error") == "ok"),
        "local_share": stats.summarize(s.get("totals", {}).get("local_share") for s in ok),
        "success_ratio": stats.summarize(
            (s["totals"]["successes"] / s["totals"]["requests"]) if s.get("totals", {}).get("requests") else None for s in ok
        ),
    }
    return out


def markdown(points: list[Point]) -> list[str]:
    lines: list[str] = []
    for point in points:
        lines += [
            "",
            f"## HTTP burst, {point['framework']} (client at {point['parameters'].get('local_cluster')}'s gateway)",
            "",
            *([f"**{point['samples'][0]['status'].upper()}**: {point['samples'][0].get('error')}", ""]
              if point["samples"][0].get("status") != "ok" else []),
            *client_lines(point),
            "",
            "| slot | requests | ok | served by | latency p50 / p99 / max (s) | send lag p99 (ms) | errors |",
            "| ---: | ---: | ---: | --- | --- | ---: | --- |",
        ]
        for slot in point["samples"][0].get("slots", []):
            lat = slot["latency"]
            served = ", ".join(f"{c} {n}" for c, n in sorted(slot["served_by"].items())) or "–"
            errors = ", ".join(f"{c} {n}" for c, n in sorted(slot["errors"].items())) or "–"
            latency = f"{lat['p50']:.3f} / {lat['p99']:.3f} / {lat['max']:.3f}" if lat.get("count") else "–"
            lag = slot.get("lag") or {}
            lag_text = f"{lag['p99'] * 1000:.2f}" if lag.get("count") else "–"
            if slot.get("client_saturated"):
                lag_text += " **client saturated**"
            lines.append(f"| {slot['slot']} | {slot['requests']} | {slot['successes']} | {served} | {latency} | {lag_text} | {errors} |")
    return lines


def client_lines(point: Point) -> list[str]:
    """Per repetition: did the client keep its schedule, and what did it cost."""
    params = point["parameters"]
    slot_seconds = params.get("slot_seconds") or 1
    peak = max(params.get("requests") or [0]) / slot_seconds
    lines = []
    for sample in point["samples"]:
        client = sample.get("client")
        rep = f"repetition {sample.get('repetition', 1)}"
        if not client:
            lines.append(f"- Client, {rep}: not recorded (a sample from before the client measured itself).")
            continue
        lag = client.get("lag") or {}
        cost = (f"{client['cpu_ms_per_request']:.3f} ms of client CPU per request, " if client.get("cpu_ms_per_request") is not None else "")
        cost += f"peak {client.get('peak_inflight', 0)} in flight of {client.get('max_inflight')}, {client.get('processes', 1)} process(es)"
        if client.get("saturated"):
            lines.append(f"- Client, {rep}: **SATURATED**: {client.get('verdict')} ({cost}).")
        else:
            lag_text = (f"send lag p50 / p99 {lag['p50'] * 1000:.2f} / {lag['p99'] * 1000:.2f} ms" if lag.get("count") else "nothing sent")
            lines.append(f"- Client, {rep}: on schedule in every slot ({lag_text}, limit {client.get('lag_limit', 0) * 1000:.0f} ms; "
                         f"peak offered {peak:g} requests/s; {cost}).")
    return lines


def plot_burst(points: list[Mapping[str, Any]], out: Path) -> list[dict[str, str]]:
    plt = pyplot()
    images = []
    for i, p in enumerate(points):
        sample = p["samples"][0]
        slots = sample.get("slots", [])
        if not slots:
            continue
        xs = [s["slot"] for s in slots]
        clusters = sorted({c for s in slots for c in s["served_by"]})
        fig, ax = plt.subplots(figsize=(7, 4.2))
        bottom = [0] * len(slots)
        for c in clusters:
            ys = [s["served_by"].get(c, 0) for s in slots]
            ax.bar(xs, ys, bottom=bottom, label=f"served by {c}")
            bottom = [b + y for b, y in zip(bottom, ys)]
        errors = [s["requests"] - s["successes"] for s in slots]
        ax.bar(xs, errors, bottom=bottom, label="errors", color="lightgrey", hatch="//")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("slot")
        ax.set_ylabel("requests")
        ax.set_title(f"Burst ({p['framework']}): who served each slot; local is {p['parameters'].get('local_cluster')}")
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, f"burst-share-{i}.png", f"Burst, {p['framework']}: requests per slot by the cluster that served them"))

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for q in ("p50", "p90", "p99", "max"):
            ax.plot(xs, [(s["latency"].get(q) if s["latency"].get("count") else math.nan) for s in slots], marker=".", label=q)
        ax.set_xlabel("slot")
        ax.set_ylabel("latency, seconds (successful requests)")
        ax.set_title(f"Burst ({p['framework']}): latency percentiles per slot")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        images.append(save(plt, fig, out, f"burst-latency-{i}.png", f"Burst, {p['framework']}: latency percentiles per slot"))
    return images


def note(points: list[Point]) -> str:
    if any(p["framework"].endswith("-emulated") for p in points):
        return ("On simulated nodes the mesh is stock Envoy emulating Istio's east-west data path "
                "(docs/mesh.md): a framework named ...-emulated is an emulation, not the framework itself.")
    return ""


# A data plane on simulated nodes is an emulation, named <name>-emulated in the
# results (the burst role's experiment_burst_framework); a comparison of the
# two testbeds sets it beside the real one under one name.
EMULATED = "-emulated"
SAME_PATH = {name + EMULATED: name for name in frameworks.names("dataplane")}


def compare_sections(points: list[Point], label: str) -> list[dict[str, Any]]:
    """Each burst point of a run, slot by slot (served by, latency, errors), for a comparison page."""
    out = []
    for p in points:
        if not p.get("samples"):
            continue
        rows = []
        for slot in p["samples"][0].get("slots", []):
            lat = slot.get("latency") or {}
            rows.append({
                "slot": slot["slot"], "requests": slot["requests"], "ok": slot["successes"],
                "served_by": ", ".join(f"{c} {n}" for c, n in sorted(slot["served_by"].items())) or "–",
                "latency": f"{lat['p50']:.3f} / {lat['p99']:.3f}" if lat.get("count") else "–",
                "errors": ", ".join(f"{c} {n}" for c, n in sorted(slot["errors"].items())) or "–",
            })
        out.append({"title": f"{label}: burst, {p['framework']}, client at {p['parameters'].get('local_cluster')}'s gateway",
                    "status": p["samples"][0].get("status"), "rows": rows})
    return out


def testbeds_note(rows: list[Mapping[str, Any]]) -> str:
    """How each data plane in the rows differs between its emulation and itself (its module's TESTBEDS_NOTE)."""
    planes = sorted({SAME_PATH.get(r["framework"], r["framework"]) for r in rows} & set(frameworks.names("dataplane")))
    return " ".join(getattr(frameworks.FRAMEWORKS[name], "TESTBEDS_NOTE", "") for name in planes).strip()


EXPERIMENTS = [
    Experiment(
        name="burst",
        section="HTTP burst",
        point=point,
        order=lambda parameters: (point(parameters),),
        summarize=burst_summaries,
        headline={"latency": LOWER, "local_share": HIGHER, "success_ratio": HIGHER},
        markdown=markdown,
        plots=lambda points, everything, out: plot_burst(points, out),
        note=note,
        same_path=SAME_PATH,
        compare_sections=compare_sections,
        testbeds_note=testbeds_note,
    )
]
