# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every placement framework shares: the workload it places, the
clusters it is given, the :class:`Adapter` interface, namespace helpers.

A placement framework is measured by the deployment lifecycle
(:mod:`experiments.lifecycle`), which owns the clock and the watches; an
adapter only says where the workload goes and how it is created and deleted.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import Target  # noqa: F401 - adapters return Targets

LAYOUTS = ("replicas", "deployments")
SAMPLE_LABEL = "fedbench.io/sample"
EXPERIMENT_LABEL = "fedbench.io/experiment"


class FrameworkError(Exception):
    """A framework could not do what the sample needs (a namespace never appeared, ...)."""


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


class Adapter:
    """How one framework places, and removes, the workload."""

    name = "abstract"

    def __init__(self, clusters: list[Cluster]):
        """``clusters`` are all the testbed's clusters; the adapter picks the ones it uses."""
        self.clusters = clusters

    def placed_on(self) -> list[str]:
        """The clusters this framework uses, by name (recorded in every sample's parameters)."""
        raise NotImplementedError

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

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int | None]:
        """Replicas each cluster that runs pods should end up with (None: the
        framework decides while the sample runs; the sample records what it did)."""
        raise NotImplementedError

    def placement(self, pods: list[Mapping[str, Any]]) -> dict[str, Any] | None:
        """Where the framework put the sample's pods, for frameworks that choose
        (recorded in the sample as ``placement``); None: nothing to say."""
        return None

    def phase_clusters(self) -> list[str] | None:
        """The clusters whose watched objects make the sample's own phases and
        pods (None: all of them). A framework whose host cluster holds a stand-in
        for every pod it places elsewhere (Liqo) names the host, so that a pod is
        not counted twice; the other clusters' phases are in ``per_cluster``."""
        return None

    def warm(self, workload: Workload) -> None:
        """Read the collection the create goes to, so that the timed request
        reuses a pooled connection instead of paying for a TLS handshake."""
        cluster, path = self.create_target(workload)
        kube.request(cluster.client(), "GET", path, query=[("limit", "1")])

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        raise NotImplementedError


def ensure_namespace(cluster: Cluster, namespace: str) -> None:
    api = cluster.client()
    try:
        kube.request(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": namespace, "labels": {EXPERIMENT_LABEL: "lifecycle"}}})
    except kube.KubeError as exc:
        if exc.status != 409:
            raise
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 60
    while True:
        try:
            kube.request(api, "GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
            return
        except kube.KubeError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def delete_namespace(cluster: Cluster, namespace: str, timeout: float) -> None:
    api = cluster.client()
    try:
        kube.request(api, "DELETE", f"/api/v1/namespaces/{namespace}", query=[("propagationPolicy", "Background")])
    except kube.KubeError as exc:
        if exc.status == 404:
            return
        raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kube.request(api, "GET", f"/api/v1/namespaces/{namespace}")
        except kube.KubeError as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.2)
    raise FrameworkError(f"cluster {cluster.name}: namespace {namespace} still there after {timeout:.0f}s")


def wait_namespace(cluster: Cluster, namespace: str, timeout: float) -> None:
    """Until the namespace and its default ServiceAccount exist (pods need both)."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    while True:
        try:
            kube.request(cluster.client(), "GET", path)
            return
        except kube.KubeError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise FrameworkError(f"cluster {cluster.name}: namespace {namespace} did not appear within {timeout:.0f}s ({exc})") from exc
        time.sleep(0.2)


def host_and_members(name: str, clusters: list[dict], host: str = "role host", member: str = "role member") -> str | None:
    """Why these clusters cannot run a framework of one host and its members, or None."""
    hosts = [c for c in clusters if c.get("role") == "host"]
    members = [c for c in clusters if c.get("role", "member") == "member"]
    if len(hosts) != 1 or not members:
        return f"{name} needs one cluster with {host} and at least one with {member}; the inventory has {len(hosts)} host(s) and {len(members)} member(s)"
    return None
