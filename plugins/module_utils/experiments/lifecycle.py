# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The timed deployment lifecycle: create → ready → delete → gone.

:func:`run_sample` owns the clock. A framework plugs in through an
:class:`Adapter`: which clusters and namespaces to watch, how to create and
delete the workload. The clock, the watches and the phase derivation never
change when a framework is added: adapters live in :mod:`frameworks`, one
module each, and register there by name.

Sequence of one sample:

1. the adapter prepares (namespaces exist);
2. a :class:`watch.Recorder` lists then watches every target; the create
   request is sent only once every watch has its first list;
3. ``create_sent`` → adapter.create → ``create_acked``;
4. wait (on watch events, one deadline) until the ready replicas add up;
5. ``delete_sent`` → adapter.delete → ``delete_acked``;
6. wait (one deadline) until no Deployment and no pod of the sample is left;
7. the phases are derived from the events (:mod:`phases`).

A timeout or a lost API server raises :class:`LifecycleError` carrying the
partial sample (what was recorded up to then), never a success.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks
from ansible_collections.fedbench.testbed.plugins.module_utils.common.clock import Mark
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.base import (  # noqa: F401 - the workload's names, for callers
    SAMPLE_LABEL,
    Adapter,
    Cluster,
    FrameworkError,
    ParameterError,
    Workload,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import Recorder, State, WatchFailed
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import phases as phase_lib


class LifecycleError(Exception):
    """The sample failed; ``partial`` holds what was measured before it did."""

    def __init__(self, message: str, partial: dict[str, Any] | None = None):
        super().__init__(message)
        self.partial = partial or {}


def adapter_for(name: str, clusters: list[Cluster]) -> Adapter:
    """The registered placement framework ``name`` (see :mod:`frameworks`), given every cluster."""
    if name not in frameworks.PLACEMENT:
        raise ParameterError(f"framework must be one of {', '.join(sorted(frameworks.PLACEMENT))}, got {name!r}")
    return frameworks.PLACEMENT[name](clusters)


# --------------------------------------------------------------------------
# Predicates on the live state (pure, over watch.State).
# --------------------------------------------------------------------------


def all_ready(state: State, workload: Workload) -> bool:
    deployments = state.of("Deployment")
    return (
        len(deployments) >= workload.deployments
        and sum(int(d.fields.get("ready_replicas") or 0) for d in deployments) >= workload.replicas
    )


def all_gone(state: State, workload: Workload) -> bool:
    return not (state.count("Deployment") or state.count("Pod") or state.count("ReplicaSet"))


# --------------------------------------------------------------------------
# One sample.
# --------------------------------------------------------------------------


def _partial(adapter: Adapter, recorder: Recorder | None, marks: dict[str, Mark], workload: Workload, sample: str) -> dict[str, Any]:
    events = [e.as_dict() for e in recorder.events()] if recorder else []
    out = build_sample(events, marks, workload, sample, recorder, adapter.member_totals(workload, sample), adapter.phase_clusters())
    where = adapter.placement(out["pods"])
    if where is not None:
        out["placement"] = where
    return out


def build_sample(
    events: list[dict[str, Any]],
    marks: Mapping[str, Mark],
    workload: Workload,
    sample: str,
    recorder: Recorder | None = None,
    shares: Mapping[str, int | None] | None = None,
    phase_clusters: list[str] | None = None,
) -> dict[str, Any]:
    """The sample from its events. ``phase_clusters``: the clusters whose events
    make the sample's create-side phases and pods (the framework's view, e.g.
    Liqo's host, whose pods stand for the members' real ones); None: every
    cluster. The delete side is every cluster's (gone: nothing of the sample
    left anywhere); every cluster's events stay in ``events`` and feed
    ``per_cluster``."""
    mono = {k: m.mono for k, m in marks.items()}
    viewed = events if phase_clusters is None else [e for e in events if e["cluster"] in phase_clusters]
    derived = phase_lib.derive(viewed, mono, replicas=workload.replicas, deployments=workload.deployments) if "create_sent" in mono else {}
    if phase_clusters is not None and derived:
        # "gone" is every cluster's: nothing of the sample left anywhere.
        everywhere = phase_lib.derive(events, mono, replicas=workload.replicas, deployments=workload.deployments)
        derived.update({name: everywhere[name] for name in phase_lib.DELETE_PHASES})
    per_cluster = phase_lib.per_cluster(events, mono, shares) if shares and "create_sent" in mono else {}
    return {
        "per_cluster": per_cluster,
        "sample_id": sample,
        "marks": {k: asdict(m) for k, m in marks.items()},
        "phases": derived,
        "headline": {h: derived.get(p) for h, p in phase_lib.HEADLINE.items()},
        "pods": phase_lib.pod_startup(viewed),
        "order_violations": phase_lib.ordered(derived),
        "watch": {
            "events": len(events),
            "relists": recorder.relists if recorder else 0,
            "reconnects": recorder.reconnects if recorder else 0,
        },
        "events": events,
    }


def run_sample(adapter: Adapter, workload: Workload, *, watch_timeout: int = 60) -> dict[str, Any]:
    """Measure one lifecycle; returns the sample (see :func:`build_sample`)."""
    sample = uuid.uuid4().hex[:10]
    marks: dict[str, Mark] = {}
    recorder: Recorder | None = None
    try:
        adapter.prepare(workload)
        recorder = Recorder(adapter.watch_targets(workload, sample), watch_timeout=watch_timeout)
        recorder.start()
        adapter.warm(workload)
        steps = (
            ("create", adapter.create, all_ready, workload.ready_timeout,
             f"{workload.replicas} ready replicas ({workload.layout} layout)"),
            ("delete", adapter.delete, all_gone, workload.delete_timeout,
             "the Deployment and its pods to be gone"),
        )
        for verb, action, predicate, timeout, what in steps:
            marks[f"{verb}_sent"] = Mark.now()
            action(workload, sample)
            marks[f"{verb}_acked"] = Mark.now()
            deadline = marks[f"{verb}_sent"].mono + timeout
            if not recorder.wait_until(lambda state, p=predicate: p(state, workload), deadline):
                raise LifecycleError(
                    f"timed out after {timeout:.0f}s waiting for {what} in namespace {workload.namespace}",
                    _partial(adapter, recorder, marks, workload, sample),
                )
        recorder.stop()
        return _partial(adapter, recorder, marks, workload, sample)
    except LifecycleError:
        raise
    except FrameworkError as exc:
        raise LifecycleError(str(exc), _partial(adapter, recorder, marks, workload, sample)) from exc
    except WatchFailed as exc:
        raise LifecycleError(f"lost the watch: {exc}", _partial(adapter, recorder, marks, workload, sample)) from exc
    except Exception as exc:  # noqa: BLE001 - API errors, connection refused: fail with what we have
        raise LifecycleError(f"{type(exc).__name__}: {_short(exc)}", _partial(adapter, recorder, marks, workload, sample)) from exc
    finally:
        if recorder is not None:
            recorder.stop()


def _short(exc: BaseException) -> str:
    text = str(exc)
    reason = getattr(exc, "reason", None)
    if reason and len(text) > 300:
        return f"HTTP {getattr(exc, 'status', '?')}: {reason}"
    return text[:500]


def cleanup_safely(adapter: Adapter, workload: Workload, timeout: float = 120) -> str | None:
    """Remove the experiment's namespace(s); returns a message instead of raising."""
    try:
        adapter.cleanup(workload, timeout)
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real failure
        return f"cleanup of namespace {workload.namespace} failed: {_short(exc)}"
    return None
