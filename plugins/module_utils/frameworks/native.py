# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Native Kubernetes: the Deployment(s) go straight to the host cluster."""

from __future__ import annotations

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.base import (
    SAMPLE_LABEL,
    Adapter,
    Cluster,
    ParameterError,
    Workload,
    delete_namespace,
    ensure_namespace,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import KINDS, Target

NAME = "native"
KIND = "placement"


class NativeAdapter(Adapter):
    """Plain Kubernetes: the Deployment(s) go straight to one cluster."""

    name = "native"

    def __init__(self, clusters: list[Cluster]):
        if not clusters:
            raise ParameterError("the native framework needs a cluster, got none")
        super().__init__(clusters)
        # The host cluster; a testbed without one uses its first cluster.
        self.cluster = next((c for c in clusters if c.role == "host"), clusters[0])

    def placed_on(self) -> list[str]:
        return [self.cluster.name]

    def watch_targets(self, workload: Workload, sample: str) -> list[Target]:
        return [
            Target(self.cluster.name, self.cluster.client(), workload.namespace, kind, f"{SAMPLE_LABEL}={sample}")
            for kind in KINDS
        ]

    def prepare(self, workload: Workload) -> None:
        ensure_namespace(self.cluster, workload.namespace)

    def create(self, workload: Workload, sample: str) -> None:
        api = self.cluster.client()
        for name in workload.deployment_names(sample):
            kube.request(api, "POST", kube.deployments_path(workload.namespace), body=workload.manifest(name, sample))

    def delete(self, workload: Workload, sample: str) -> None:
        api = self.cluster.client()
        for name in workload.deployment_names(sample):
            kube.request(api, "DELETE", kube.deployments_path(workload.namespace, name), body={"propagationPolicy": "Background"})

    def cleanup(self, workload: Workload, timeout: float = 120) -> None:
        delete_namespace(self.cluster, workload.namespace, timeout)

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int]:
        return {self.cluster.name: workload.replicas}

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        return self.cluster, kube.deployments_path(workload.namespace)


ADAPTER = NativeAdapter


def check(clusters: list[dict]) -> str | None:
    return None if clusters else "native needs a cluster; the inventory has none"
