# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The timed deployment lifecycle: create → ready → delete → gone.

:func:`run_sample` owns the clock. A framework plugs in through an
:class:`Adapter`: which clusters and namespaces to watch, how to create and
delete the workload. The clock, the watches and the phase derivation never
change when a framework is added (``ADAPTERS`` maps names to classes).

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

import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import phases as phase_lib
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import KINDS, Mark, Recorder, State, Target, WatchFailed

LAYOUTS = ("replicas", "deployments")
SAMPLE_LABEL = "fedbench.io/sample"
EXPERIMENT_LABEL = "fedbench.io/experiment"


class LifecycleError(Exception):
    """The sample failed; ``partial`` holds what was measured before it did."""

    def __init__(self, message: str, partial: dict[str, Any] | None = None):
        super().__init__(message)
        self.partial = partial or {}


class ParameterError(ValueError):
    """A parameter is out of range; the message names it."""


@dataclass(frozen=True)
class Workload:
    replicas: int
    layout: str = "replicas"
    image: str = "busybox:1.36"
    command: tuple[str, ...] = ("sleep", "3600")
    namespace: str = "fedbench-lifecycle"
    node_selector: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 300.0
    delete_timeout: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 1:
            raise ParameterError(f"replicas must be a whole number of at least 1, got {self.replicas!r}")
        if self.layout not in LAYOUTS:
            raise ParameterError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", self.namespace or "") or len(self.namespace) > 63:
            raise ParameterError(f"namespace must be a DNS label, got {self.namespace!r}")
        for name in ("ready_timeout", "delete_timeout"):
            if getattr(self, name) <= 0:
                raise ParameterError(f"{name} must be positive, got {getattr(self, name)!r}")

    @property
    def deployments(self) -> int:
        return self.replicas if self.layout == "deployments" else 1

    @property
    def replicas_each(self) -> int:
        return 1 if self.layout == "deployments" else self.replicas

    def deployment_names(self, sample: str) -> list[str]:
        if self.layout == "deployments":
            return [f"lc-{sample}-{i}" for i in range(self.replicas)]
        return [f"lc-{sample}"]

    def manifest(self, name: str, sample: str) -> dict[str, Any]:
        labels = {"app": name, SAMPLE_LABEL: sample, EXPERIMENT_LABEL: "lifecycle"}
        pod_spec: dict[str, Any] = {
            "containers": [
                {"name": "main", "image": self.image, "imagePullPolicy": "IfNotPresent", "command": list(self.command)}
            ],
            "terminationGracePeriodSeconds": 0,
        }
        if self.node_selector:
            pod_spec["nodeSelector"] = dict(self.node_selector)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {
                "replicas": self.replicas_each,
                "selector": {"matchLabels": {"app": name, SAMPLE_LABEL: sample}},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        }


@dataclass
class Cluster:
    """A cluster as the testbed's facts describe it."""

    name: str
    kubeconfig: str
    context: str
    role: str = "member"
    api_client: Any = None

    def client(self) -> Any:
        if self.api_client is None:
            from kubernetes import config

            self.api_client = config.new_client_from_config(config_file=self.kubeconfig, context=self.context)
            # Many watch threads and request threads share one client.
            self.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
        return self.api_client


# --------------------------------------------------------------------------
# Framework adapters.
# --------------------------------------------------------------------------


class Adapter:
    """How one framework places, and removes, the workload."""

    name = "abstract"

    def __init__(self, clusters: list[Cluster]):
        self.clusters = clusters

    def watch_targets(self, workload: Workload, sample: str) -> list[Target]:
        raise NotImplementedError

    def prepare(self, workload: Workload) -> None:
        raise NotImplementedError

    def create(self, workload: Workload, sample: str) -> None:
        raise NotImplementedError

    def delete(self, workload: Workload, sample: str) -> None:
        raise NotImplementedError

    def cleanup(self, workload: Workload, timeout: float = 120) -> None:
        raise NotImplementedError

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int]:
        """Replicas each cluster that runs pods should end up with."""
        raise NotImplementedError

    def warm(self, workload: Workload) -> None:
        """Read the collection the create goes to, so that the timed request
        reuses a pooled connection instead of paying for a TLS handshake."""
        cluster, path = self.create_target(workload)
        kube.request(cluster.client(), "GET", path, query=[("limit", "1")])

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        raise NotImplementedError


def _ensure_namespace(cluster: Cluster, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(cluster.client())
    try:
        core.create_namespace({"metadata": {"name": namespace, "labels": {EXPERIMENT_LABEL: "lifecycle"}}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 60
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _delete_namespace(cluster: Cluster, namespace: str, timeout: float) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(cluster.client())
    try:
        core.delete_namespace(namespace, propagation_policy="Background")
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.2)
    raise LifecycleError(f"cluster {cluster.name}: namespace {namespace} still there after {timeout:.0f}s")


class NativeAdapter(Adapter):
    """Plain Kubernetes: the Deployment(s) go straight to one cluster."""

    name = "native"

    def __init__(self, clusters: list[Cluster]):
        if len(clusters) != 1:
            raise ParameterError(f"the native framework runs on exactly one cluster, got {len(clusters)}")
        super().__init__(clusters)
        self.cluster = clusters[0]

    def watch_targets(self, workload: Workload, sample: str) -> list[Target]:
        return [
            Target(self.cluster.name, self.cluster.client(), workload.namespace, kind, f"{SAMPLE_LABEL}={sample}")
            for kind in KINDS
        ]

    def prepare(self, workload: Workload) -> None:
        _ensure_namespace(self.cluster, workload.namespace)

    def create(self, workload: Workload, sample: str) -> None:
        api = self.cluster.client()
        for name in workload.deployment_names(sample):
            kube.request(api, "POST", kube.deployments_path(workload.namespace), body=workload.manifest(name, sample))

    def delete(self, workload: Workload, sample: str) -> None:
        api = self.cluster.client()
        for name in workload.deployment_names(sample):
            kube.request(api, "DELETE", kube.deployments_path(workload.namespace, name), body={"propagationPolicy": "Background"})

    def cleanup(self, workload: Workload, timeout: float = 120) -> None:
        _delete_namespace(self.cluster, workload.namespace, timeout)

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int]:
        return {self.cluster.name: workload.replicas}

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        return self.cluster, kube.deployments_path(workload.namespace)


FEDERATED = "/apis/types.kubefed.io/v1beta1/namespaces/{namespace}/{plural}"


def spread(total: int, members: list[str]) -> dict[str, int]:
    """Replicas per member: as even as possible, the first members take the remainder."""
    base, extra = divmod(total, len(members))
    return {name: base + (1 if i < extra else 0) for i, name in enumerate(members)}


class KubeFedAdapter(Adapter):
    """KubeFed: a FederatedDeployment on the host, placed on the members.

    The requested replicas are spread over the members with per-cluster
    overrides of ``spec.replicas`` (one Deployment of N), or each one-replica
    Deployment goes to one member in turn (N Deployments). A FederatedNamespace
    places the experiment's namespace on every member. The watches follow
    every member; readiness and "gone" count across them.
    """

    name = "kubefed"

    def __init__(self, clusters: list[Cluster]):
        hosts = [c for c in clusters if c.role == "host"]
        members = [c for c in clusters if c.role != "host"]
        if len(hosts) != 1 or not members:
            raise ParameterError(
                f"the kubefed framework needs one host and at least one member cluster, got {len(hosts)} host(s) and {len(members)} member(s)"
            )
        super().__init__(clusters)
        self.host, self.members = hosts[0], members

    def shares(self, workload: Workload, sample: str) -> dict[str, dict[str, int]]:
        """Per Deployment name, replicas per member."""
        names = [m.name for m in self.members]
        if workload.layout == "deployments":
            return {d: {names[i % len(names)]: 1} for i, d in enumerate(workload.deployment_names(sample))}
        (only,) = workload.deployment_names(sample)
        return {only: {k: v for k, v in spread(workload.replicas, names).items() if v}}

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int]:
        totals = {m.name: 0 for m in self.members}
        for placement in self.shares(workload, sample).values():
            for member, count in placement.items():
                totals[member] += count
        return totals

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        return self.host, FEDERATED.format(namespace=workload.namespace, plural="federateddeployments")

    def watch_targets(self, workload: Workload, sample: str) -> list[Target]:
        return [
            Target(m.name, m.client(), workload.namespace, kind, f"{SAMPLE_LABEL}={sample}")
            for m in self.members
            for kind in KINDS
        ]

    def prepare(self, workload: Workload) -> None:
        _ensure_namespace(self.host, workload.namespace)
        path = FEDERATED.format(namespace=workload.namespace, plural="federatednamespaces")
        body = {
            "apiVersion": "types.kubefed.io/v1beta1",
            "kind": "FederatedNamespace",
            "metadata": {"name": workload.namespace, "namespace": workload.namespace},
            "spec": {"placement": {"clusters": [{"name": m.name} for m in self.members]}},
        }
        try:
            kube.request(self.host.client(), "POST", path, body=body)
        except kube.KubeError as exc:
            if exc.status != 409:
                raise
        for member in self.members:
            _wait_namespace(member, workload.namespace, timeout=120)

    def _federated(self, workload: Workload, name: str, sample: str, placement: dict[str, int]) -> dict[str, Any]:
        manifest = workload.manifest(name, sample)
        return {
            "apiVersion": "types.kubefed.io/v1beta1",
            "kind": "FederatedDeployment",
            "metadata": {"name": name, "namespace": workload.namespace, "labels": manifest["metadata"]["labels"]},
            "spec": {
                "template": {"metadata": {"labels": manifest["metadata"]["labels"]}, "spec": manifest["spec"]},
                "placement": {"clusters": [{"name": member} for member in placement]},
                "overrides": [
                    {"clusterName": member, "clusterOverrides": [{"path": "/spec/replicas", "value": count}]}
                    for member, count in placement.items()
                ],
            },
        }

    def create(self, workload: Workload, sample: str) -> None:
        api = self.host.client()
        path = FEDERATED.format(namespace=workload.namespace, plural="federateddeployments")
        for name, placement in self.shares(workload, sample).items():
            kube.request(api, "POST", path, body=self._federated(workload, name, sample, placement))

    def delete(self, workload: Workload, sample: str) -> None:
        api = self.host.client()
        path = FEDERATED.format(namespace=workload.namespace, plural="federateddeployments")
        for name in workload.deployment_names(sample):
            kube.request(api, "DELETE", f"{path}/{name}", body={"propagationPolicy": "Background"})

    def cleanup(self, workload: Workload, timeout: float = 120) -> None:
        path = FEDERATED.format(namespace=workload.namespace, plural="federatednamespaces")
        try:
            kube.request(self.host.client(), "DELETE", f"{path}/{workload.namespace}")
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
        for member in self.members:
            _delete_namespace(member, workload.namespace, timeout)
        _delete_namespace(self.host, workload.namespace, timeout)


def _wait_namespace(cluster: Cluster, namespace: str, timeout: float) -> None:
    """Until the namespace and its default ServiceAccount exist (pods need both)."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    while True:
        try:
            kube.request(cluster.client(), "GET", path)
            return
        except kube.KubeError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise LifecycleError(f"cluster {cluster.name}: namespace {namespace} did not appear within {timeout:.0f}s ({exc})") from exc
        time.sleep(0.2)


ADAPTERS: dict[str, type[Adapter]] = {"native": NativeAdapter, "kubefed": KubeFedAdapter}


def adapter_for(name: str, clusters: list[Cluster]) -> Adapter:
    if name not in ADAPTERS:
        raise ParameterError(f"framework must be one of {', '.join(sorted(ADAPTERS))}, got {name!r}")
    return ADAPTERS[name](clusters)


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
    return build_sample(events, marks, workload, sample, recorder, adapter.member_totals(workload, sample))


def build_sample(
    events: list[dict[str, Any]],
    marks: Mapping[str, Mark],
    workload: Workload,
    sample: str,
    recorder: Recorder | None = None,
    shares: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    mono = {k: m.mono for k, m in marks.items()}
    derived = phase_lib.derive(events, mono, replicas=workload.replicas, deployments=workload.deployments) if "create_sent" in mono else {}
    per_cluster = phase_lib.per_cluster(events, mono, shares) if shares and "create_sent" in mono else {}
    return {
        "per_cluster": per_cluster,
        "sample_id": sample,
        "marks": {k: asdict(m) for k, m in marks.items()},
        "phases": derived,
        "headline": {h: derived.get(p) for h, p in phase_lib.HEADLINE.items()},
        "pods": phase_lib.pod_startup(events),
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
