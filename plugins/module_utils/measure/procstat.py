# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU time and memory of the embedded testbed's processes, from /proc.

An experiment samples the components of one embedded cluster (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok-controller) before and
after it runs, and every ``interval`` seconds in between for the peak
resident memory. The busiest process over the window is the first
suspect when the cluster stops keeping up: that is how the hollow-node
benchmark names its bottleneck.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def component_pids(cluster_dir: str | Path) -> dict[str, int]:
    """{component: pid} of one embedded cluster's processes: from kwokctl's pid files
    (so a kine datastore counts as the cluster's etcd), else by their binary's name."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise

    out: dict[str, int] = {name: st["pid"] for name, st in supervise.component_states(Path(cluster_dir)).items()
                           if st["running"] and name in COMPONENTS}
    if out:
        return out
    for pid, cmdline in process.processes_under(Path(cluster_dir)).items():
        binary = os.path.basename(cmdline.split(" ", 1)[0])
        if binary in COMPONENTS:
            out[binary] = pid
    return out


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return (total - idle) / TICKS, total / TICKS


def read(pid: int) -> tuple[float, int] | None:
    """(CPU seconds user+system, resident bytes) of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS, rss_pages * PAGE


class Sampler:
    """Samples one cluster's components in a thread: CPU over the window, peak RSS."""

    def __init__(self, cluster_dir: str | Path | None, interval: float = 1.0, groups: Mapping[str, str] | None = None):
        self.pids = component_pids(cluster_dir) if cluster_dir else {}
        # name -> a mark in the command lines (or titles) of a group of processes,
        # summed: a PostgreSQL server and its backends (those that exit take their
        # CPU time with them, so a group's figure is a lower bound).
        self.groups = dict(groups or {})
        self.interval = interval
        self.start: dict[str, tuple[float, int]] = {}
        self.peak: dict[str, int] = {}
        self.t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tick(self) -> dict[str, tuple[float, int]]:
        now = {}
        for name, pid in self.pids.items():
            value = read(pid)
            if value is not None:
                now[name] = value
                self.peak[name] = max(self.peak.get(name, 0), value[1])
        for name, mark in self.groups.items():
            values = [v for v in (read(pid) for pid in process.processes_matching(mark)) if v is not None]
            if values:
                now[name] = (sum(v[0] for v in values), sum(v[1] for v in values))
                self.peak[name] = max(self.peak.get(name, 0), now[name][1])
        return now

    def __enter__(self) -> "Sampler":
        self.t0 = time.monotonic()
        self.host0 = host_cpu()
        self.start = self._tick()
        if self.pids:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def result(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        end = self._tick()
        out: dict[str, Any] = {}
        for name, (cpu1, rss) in end.items():
            cpu0 = self.start.get(name, (cpu1, rss))[0]
            out[name] = {
                "cpu_seconds": round(cpu1 - cpu0, 2),
                "cpu_cores": round((cpu1 - cpu0) / wall, 3) if wall > 0 else None,
                "rss_mib": round(rss / 2**20, 1),
                "rss_peak_mib": round(self.peak.get(name, rss) / 2**20, 1),
            }
        busiest = max(out, key=lambda n: out[n]["cpu_seconds"]) if out else None
        busy1, total1 = host_cpu()
        host_busy = (busy1 - self.host0[0]) / (total1 - self.host0[1]) if total1 > self.host0[1] else None
        return {"window_seconds": round(wall, 2), "cores": os.cpu_count(), "components": out, "busiest": busiest,
                "host_busy": round(host_busy, 3) if host_busy is not None else None}
