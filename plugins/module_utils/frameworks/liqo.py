# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Liqo: a Deployment in an offloaded namespace of the host, its pods on the
virtual nodes that stand for the members, run for real in the members.

The host (consumer) is peered with every member (provider) by the role
(roles/frameworks/liqo); each member is a virtual node of the host. The
adapter offloads the experiment's namespace with a NamespaceOffloading
(pods only remote, on the virtual nodes), which makes the namespace
``<namespace>-<host cluster id>`` in every member. A pod scheduled on a
virtual node becomes a ShadowPod in that member, which makes a real pod of
the same name and labels there; its status comes back to the host's pod.

- Ready: the host's Deployment reports the requested ready replicas (the
  user's view, as with native Kubernetes).
- Gone: the host's Deployment and pods, and every member's pods, are gone.
- The sample's own phases and pods are the host's (whose pods stand for the
  members' real ones); each member's (its real pods created, running,
  ready, gone, as its own watch sees them) are in ``per_cluster``, and the
  placement (which member got how many) is what Liqo's scheduler decided.
"""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.base import (
    SAMPLE_LABEL,
    Adapter,
    Cluster,
    FrameworkError,
    ParameterError,
    Workload,
    delete_namespace,
    ensure_namespace,
    host_and_members,
    wait_namespace,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import KINDS, Target

NAME = "liqo"
KIND = "placement"

OFFLOADING = "/apis/offloading.liqo.io/v1beta1/namespaces/{namespace}/namespaceoffloadings"
OFFLOADING_NAME = "offloading"  # the name Liqo looks for (pkg/consts/namespace_mapping.go)
VIRTUAL_NODE = {"key": "liqo.io/type", "operator": "In", "values": ["virtual-node"]}


def remote_namespace(namespace: str, host_cluster_id: str) -> str:
    """The members' namespace under Liqo's DefaultName mapping."""
    return f"{namespace}-{host_cluster_id}"


def offloading(namespace: str, members: list[str]) -> dict[str, Any]:
    """The NamespaceOffloading of the experiment's namespace: pods only on the members' virtual nodes."""
    return {
        "apiVersion": "offloading.liqo.io/v1beta1",
        "kind": "NamespaceOffloading",
        "metadata": {"name": OFFLOADING_NAME, "namespace": namespace},
        "spec": {
            "namespaceMappingStrategy": "DefaultName",
            "podOffloadingStrategy": "Remote",
            "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [
                VIRTUAL_NODE, {"key": "liqo.io/remote-cluster-id", "operator": "In", "values": sorted(members)}]}]},
        },
    }


def offloaded(status: dict[str, Any], members: list[str]) -> tuple[bool, str]:
    """Whether a NamespaceOffloading's status says every member has the namespace, and what it says."""
    phase = status.get("offloadingPhase") or "(no phase yet)"
    conditions = status.get("remoteNamespacesConditions") or {}
    ready = [m for m in members if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions.get(m, []))]
    return phase == "Ready" and len(ready) == len(members), f"phase {phase}, remote namespaces ready in {sorted(ready) or 'none'}"


class LiqoAdapter(Adapter):
    name = "liqo"

    def __init__(self, clusters: list[Cluster]):
        hosts = [c for c in clusters if c.role == "host"]
        members = [c for c in clusters if c.role != "host"]
        if len(hosts) != 1 or not members:
            raise ParameterError(
                f"the liqo framework needs one host and at least one member cluster, got {len(hosts)} host(s) and {len(members)} member(s)"
            )
        super().__init__(clusters)
        self.host, self.members = hosts[0], members
        self.offload_timeout = 180.0

    def placed_on(self) -> list[str]:
        return [self.host.name] + [m.name for m in self.members]

    def phase_clusters(self) -> list[str]:
        return [self.host.name]

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int | None]:
        # Liqo's scheduler places the pods on the virtual nodes while the sample runs.
        return {m.name: None for m in self.members}

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        return self.host, kube.deployments_path(workload.namespace)

    def placement(self, pods: list[dict[str, Any]]) -> dict[str, Any]:
        """Pods per member: the virtual node each of the host's pods was scheduled on is named after its member."""
        per_member: dict[str, int] = {}
        for pod in pods:
            if pod.get("node"):
                per_member[pod["node"]] = per_member.get(pod["node"], 0) + 1
        return {"pods_per_cluster": per_member}

    def _remote(self, workload: Workload) -> str:
        # The host's cluster id is its name: the role installs Liqo with --cluster-id <name>.
        return remote_namespace(workload.namespace, self.host.name)

    def watch_targets(self, workload: Workload, sample: str) -> list[Target]:
        selector = f"{SAMPLE_LABEL}={sample}"
        targets = [Target(self.host.name, self.host.client(), workload.namespace, kind, selector) for kind in KINDS]
        targets += [Target(m.name, m.client(), self._remote(workload), "Pod", selector) for m in self.members]
        return targets

    def prepare(self, workload: Workload) -> None:
        ensure_namespace(self.host, workload.namespace)
        path = OFFLOADING.format(namespace=workload.namespace)
        try:
            kube.request(self.host.client(), "POST", path, body=offloading(workload.namespace, [m.name for m in self.members]))
        except kube.KubeError as exc:
            if exc.status != 409:
                raise
        deadline = time.monotonic() + self.offload_timeout
        said = ""
        while True:
            status = kube.request(self.host.client(), "GET", f"{path}/{OFFLOADING_NAME}").get("status") or {}
            done, said = offloaded(status, [m.name for m in self.members])
            if done:
                break
            if time.monotonic() > deadline:
                raise FrameworkError(f"cluster {self.host.name}: namespace {workload.namespace} was not offloaded to "
                                     f"{', '.join(m.name for m in self.members)} within {self.offload_timeout:.0f}s ({said})")
            time.sleep(0.5)
        for member in self.members:
            wait_namespace(member, self._remote(workload), timeout=60)

    def create(self, workload: Workload, sample: str) -> None:
        api = self.host.client()
        for name in workload.deployment_names(sample):
            kube.request(api, "POST", kube.deployments_path(workload.namespace), body=workload.manifest(name, sample))

    def delete(self, workload: Workload, sample: str) -> None:
        api = self.host.client()
        for name in workload.deployment_names(sample):
            kube.request(api, "DELETE", kube.deployments_path(workload.namespace, name), body={"propagationPolicy": "Background"})

    def cleanup(self, workload: Workload, timeout: float = 120) -> None:
        path = OFFLOADING.format(namespace=workload.namespace)
        try:
            kube.request(self.host.client(), "DELETE", f"{path}/{OFFLOADING_NAME}")
        except kube.KubeError as exc:
            if exc.status != 404:
                raise
        # Unoffloading removes the members' namespaces; the host's goes last.
        deadline = time.monotonic() + timeout
        for member in self.members:
            while time.monotonic() < deadline:
                try:
                    kube.request(member.client(), "GET", f"/api/v1/namespaces/{self._remote(workload)}")
                except kube.KubeError as exc:
                    if exc.status == 404:
                        break
                    raise
                time.sleep(0.5)
            else:
                raise FrameworkError(f"cluster {member.name}: namespace {self._remote(workload)} still there after {timeout:.0f}s")
        delete_namespace(self.host, workload.namespace, timeout)


ADAPTER = LiqoAdapter


def check(clusters: list[dict]) -> str | None:
    """Why this inventory's clusters cannot run Liqo (checked before anything starts)."""
    return host_and_members("liqo", clusters, "role host (the consumer)", "role member (a provider)")
