# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KubeFed: a FederatedDeployment on the host cluster, placed on the members."""

from __future__ import annotations

from typing import Any

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.base import (
    SAMPLE_LABEL,
    Adapter,
    Cluster,
    ParameterError,
    Workload,
    delete_namespace,
    ensure_namespace,
    host_and_members,
    wait_namespace,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import KINDS, Target

NAME = "kubefed"
KIND = "placement"

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

    def placed_on(self) -> list[str]:
        return [self.host.name] + [m.name for m in self.members]

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
        ensure_namespace(self.host, workload.namespace)
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
            wait_namespace(member, workload.namespace, timeout=120)

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
            delete_namespace(member, workload.namespace, timeout)
        delete_namespace(self.host, workload.namespace, timeout)


ADAPTER = KubeFedAdapter


def check(clusters: list[dict]) -> str | None:
    """Why this inventory's clusters cannot run KubeFed, if they cannot (checked before anything starts)."""
    return host_and_members("kubefed", clusters)
