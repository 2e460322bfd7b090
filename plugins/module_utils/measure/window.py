# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measurements that start and stop around any experiment's sample.

Each one has the same interface (kube-burner's measurements: start, stop,
collect) and knows nothing of the experiment it wraps; a :class:`Window`
starts them in order before the sample and stops them in reverse after it.
Execution (create, delete, wait) never mixes with measuring.

- :class:`ApiSlo`: the API server's request-latency histograms scraped before
  and after, judged against Kubernetes' API call SLOs (:mod:`apimetrics`);
- :class:`Processes`: CPU and memory of a cluster's control-plane processes
  (:mod:`procstat`), where the testbed says where they live;
- :class:`Instrument`: the measuring process's own CPU over the sample, so a
  reader can see what the instrument cost.

A measurement that fails records ``{"error": ...}`` instead of failing the
sample: the sample's own figures stand without it.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

from ansible_collections.fedbench.testbed.plugins.module_utils.measure import apimetrics, procstat


class Measurement:
    """start() before the sample, stop() after it, collect() what it measured."""

    name = "abstract"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def collect(self) -> dict[str, Any]:
        raise NotImplementedError


class ApiSlo(Measurement):
    """The API server's view: its request histograms before and after (``fetch`` returns /metrics as text)."""

    name = "apiserver"

    def __init__(self, fetch: Callable[[], str]):
        self.fetch = fetch
        self.before = self.after = None

    def start(self) -> None:
        self.before = self.fetch()

    def stop(self) -> None:
        self.after = self.fetch()

    def collect(self) -> dict[str, Any]:
        return apimetrics.report(self.before, self.after)


class Processes(Measurement):
    """CPU and peak memory of the control-plane processes under ``cluster_dir`` over the sample."""

    name = "processes"

    def __init__(self, cluster_dir: str, interval: float = 1.0):
        self.sampler = procstat.Sampler(cluster_dir, interval)

    def start(self) -> None:
        self.sampler.__enter__()

    def stop(self) -> None:
        self.sampler.__exit__(None, None, None)

    def collect(self) -> dict[str, Any]:
        return self.sampler.result()


class Instrument(Measurement):
    """The measuring process's own CPU (user + system, every thread) over the sample."""

    name = "instrument"

    def start(self) -> None:
        self.t0, self.cpu0 = time.monotonic(), _cpu()

    def stop(self) -> None:
        self.t1, self.cpu1 = time.monotonic(), _cpu()

    def collect(self) -> dict[str, Any]:
        wall = self.t1 - self.t0
        cpu = self.cpu1 - self.cpu0
        return {"cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3), "cpu_cores": round(cpu / wall, 3) if wall > 0 else None}


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


class Window:
    """Starts measurements before a sample and stops them after it, whatever happens in between."""

    def __init__(self, measurements: Iterable[Measurement]):
        self.measurements = list(measurements)
        self.started: list[Measurement] = []
        self.errors: dict[str, str] = {}

    def __enter__(self) -> "Window":
        for m in self.measurements:
            try:
                m.start()
                self.started.append(m)
            except Exception as exc:  # noqa: BLE001 - a measurement that cannot start is recorded, not fatal
                self.errors[m.name] = f"could not start: {type(exc).__name__}: {exc}"
        return self

    def __exit__(self, *exc: Any) -> None:
        for m in reversed(self.started):
            try:
                m.stop()
            except Exception as err:  # noqa: BLE001
                self.errors[m.name] = f"could not stop: {type(err).__name__}: {err}"

    def collect(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in self.measurements:
            if m.name in self.errors:
                out[m.name] = {"error": self.errors[m.name]}
                continue
            try:
                out[m.name] = m.collect()
            except Exception as exc:  # noqa: BLE001
                out[m.name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out
