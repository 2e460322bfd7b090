# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""EdgeNet: a SelectiveDeployment that asks for the workload on nodes chosen by location.

EdgeNet's SelectiveDeployment (the legacy v1.0.0-alpha.5 the Go module proxy
serves; see roles/frameworks/edgenet) places Deployments, DaemonSets,
StatefulSets, Jobs and CronJobs on the nodes whose location labels
(``edge-net.io/city``, ``state-iso``, ``country-iso``, ``continent``, or a
polygon over ``lat``/``lon``) match its selector, up to a quantity of nodes:
its controller lists those nodes and makes the Deployment with a required
node affinity on their hostnames, owned by the SelectiveDeployment.

The adapter creates one SelectiveDeployment per sample on the host cluster,
holding the lifecycle's Deployment(s). The selector comes from the sample's
node selector when that names a location label (``edge-net.io/city: Paris``
becomes ``City In [Paris]``), else it is the host site's country. Ready: the
Deployments EdgeNet made report the requested ready replicas. Delete: the
SelectiveDeployment; Kubernetes' garbage collector removes the rest. Every
sample records where its pods went (``placement``) and whether each node
matches the selector.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.base import (
    EXPERIMENT_LABEL,
    SAMPLE_LABEL,
    Adapter,
    Cluster,
    ParameterError,
    Workload,
    delete_namespace,
    ensure_namespace,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.kube.watch import KINDS, Target

NAME = "edgenet"
KIND = "placement"

GROUP = "apps.edgenet.io/v1alpha1"
SELECTIVE = "/apis/apps.edgenet.io/v1alpha1/namespaces/{namespace}/selectivedeployments"
# Selector names and the node labels EdgeNet's controller compares them with.
LABELS = {
    "City": "edge-net.io/city",
    "State": "edge-net.io/state-iso",
    "Country": "edge-net.io/country-iso",
    "Continent": "edge-net.io/continent",
}
BY_LABEL = {label: name for name, label in LABELS.items()}


# --------------------------------------------------------------------------
# Pure pieces (unit-tested; the role's filters call the first two).
# --------------------------------------------------------------------------


def fixed_crd(manifests: str) -> dict[str, Any]:
    """The SelectiveDeployment CRD from EdgeNet's manifests, with its status
    ``message`` a string (upstream declares an array, while the controller
    sends a string: every status update would be refused) and without the
    ``minimum`` upstream puts on the selector array (a bound for numbers)."""
    import yaml

    docs = [d for d in yaml.safe_load_all(manifests) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition" and d["metadata"]["name"] == "selectivedeployments.apps.edgenet.io"]
    if not crds:
        raise ValueError("EdgeNet's manifests hold no CustomResourceDefinition selectivedeployments.apps.edgenet.io")
    crd = copy.deepcopy(crds[0])
    for version in crd["spec"]["versions"]:
        props = version["schema"]["openAPIV3Schema"]["properties"]
        props["status"]["properties"]["message"] = {"type": "string"}
        props["spec"]["properties"]["selector"].pop("minimum", None)
    crd["metadata"] = {"name": crd["metadata"]["name"], "labels": {"app.kubernetes.io/part-of": "edgenet", "fedbench.io/framework": "edgenet"}}
    return crd


def site_labels(node: str, sites: list[Mapping[str, Any]], cluster_index: int, nodes: list[str]) -> dict[str, str]:
    """The location labels of one node: cluster i is site i (round robin),
    its nodes (in name order) spread over the site's cities in turn."""
    if not sites:
        raise ValueError("edgenet_sites is empty: every cluster needs a site")
    site = sites[cluster_index % len(sites)]
    cities = site.get("cities") or []
    if not cities:
        raise ValueError(f"edgenet site {site.get('country')!r} has no cities")
    city = cities[sorted(nodes).index(node) % len(cities)]
    return {
        "kubernetes.io/hostname": node,
        LABELS["Continent"]: str(site["continent"]),
        LABELS["Country"]: str(site["country"]),
        LABELS["State"]: str(city["state"]),
        LABELS["City"]: str(city["city"]),
        "edge-net.io/lat": str(city["lat"]),
        "edge-net.io/lon": str(city["lon"]),
    }


def selector_for(node_selector: Mapping[str, str], default_country: str | None, quantity: int | None = None) -> list[dict[str, Any]]:
    """EdgeNet's selector from a sample's node selector (location labels only), else the host's country."""
    out = []
    for label, value in sorted(node_selector.items()):
        if label not in BY_LABEL:
            raise ParameterError(f"the edgenet framework selects nodes by {', '.join(sorted(BY_LABEL))}; the node selector names {label}")
        out.append({"name": BY_LABEL[label], "value": [str(value)], "operator": "In"})
    if not out:
        if not default_country:
            raise ParameterError("the edgenet framework needs nodes with a location: the host's nodes have no edge-net.io/country-iso label")
        out.append({"name": "Country", "value": [default_country], "operator": "In"})
    if quantity:
        for entry in out:
            entry["quantity"] = int(quantity)
    return out


def selective_deployment(workload: Workload, sample: str, selector: list[dict[str, Any]]) -> dict[str, Any]:
    """One SelectiveDeployment holding the sample's Deployment(s), without EdgeNet's node selector in their pods."""
    deployments = []
    for name in workload.deployment_names(sample):
        manifest = workload.manifest(name, sample)
        manifest["spec"]["template"]["spec"].pop("nodeSelector", None)  # the location is EdgeNet's to choose
        deployments.append(manifest)
    return {
        "apiVersion": GROUP,
        "kind": "SelectiveDeployment",
        "metadata": {"name": f"sd-{sample}", "namespace": workload.namespace,
                     "labels": {SAMPLE_LABEL: sample, EXPERIMENT_LABEL: "lifecycle"}},
        "spec": {"workloads": {"deployment": deployments}, "selector": selector, "recovery": False},
    }


def matches(labels: Mapping[str, str], selector: list[Mapping[str, Any]]) -> bool:
    """Whether a node's labels satisfy any selector entry (EdgeNet ORs them)."""
    for entry in selector:
        label = LABELS.get(entry["name"])
        if label and (labels.get(label) in entry["value"]) == (entry.get("operator", "In") == "In"):
            return True
    return False


def placement(pods: list[Mapping[str, Any]], node_labels: Mapping[str, Mapping[str, str]], selector: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Where the pods ran: pods per city and per node, and the nodes that do not
    match the selector. Every pod the sample saw counts: EdgeNet
    v1.0.0-alpha.5 rebuilds its node list in its lister's (unordered) order and
    updates the Deployment when the list's order differs, which rolls the pods,
    so a sample may see more pods than replicas (``pods_seen``)."""
    per_city: dict[str, int] = {}
    per_node: dict[str, int] = {}
    outside = set()
    for pod in pods:
        node = pod.get("node")
        if not node:
            continue
        labels = node_labels.get(node, {})
        per_node[node] = per_node.get(node, 0) + 1
        city = labels.get(LABELS["City"], "?")
        per_city[city] = per_city.get(city, 0) + 1
        if not matches(labels, selector):
            outside.add(node)
    return {"selector": selector, "pods_per_city": per_city, "pods_per_node": per_node, "outside_selector": sorted(outside),
            "all_match": not outside, "pods_seen": sum(per_node.values())}


# --------------------------------------------------------------------------
# The adapter.
# --------------------------------------------------------------------------


class EdgeNetAdapter(Adapter):
    name = "edgenet"

    def __init__(self, clusters: list[Cluster]):
        if not clusters:
            raise ParameterError("the edgenet framework needs a cluster, got none")
        super().__init__(clusters)
        self.cluster = next((c for c in clusters if c.role == "host"), clusters[0])
        self.node_labels: dict[str, dict[str, str]] = {}
        self.selector: list[dict[str, Any]] = []

    def placed_on(self) -> list[str]:
        return [self.cluster.name]

    def watch_targets(self, workload: Workload, sample: str) -> list[Target]:
        return [Target(self.cluster.name, self.cluster.client(), workload.namespace, kind, f"{SAMPLE_LABEL}={sample}") for kind in KINDS]

    def prepare(self, workload: Workload) -> None:
        ensure_namespace(self.cluster, workload.namespace)
        nodes = kube.request(self.cluster.client(), "GET", "/api/v1/nodes")["items"]
        self.node_labels = {n["metadata"]["name"]: dict(n["metadata"].get("labels") or {}) for n in nodes}
        countries = sorted({labels.get(LABELS["Country"]) for labels in self.node_labels.values() if labels.get(LABELS["Country"])})
        self.selector = selector_for(workload.node_selector, countries[0] if countries else None)

    def create(self, workload: Workload, sample: str) -> None:
        kube.request(self.cluster.client(), "POST", SELECTIVE.format(namespace=workload.namespace),
                     body=selective_deployment(workload, sample, self.selector))

    def delete(self, workload: Workload, sample: str) -> None:
        kube.request(self.cluster.client(), "DELETE", SELECTIVE.format(namespace=workload.namespace) + f"/sd-{sample}",
                     body={"propagationPolicy": "Background"})

    def cleanup(self, workload: Workload, timeout: float = 120) -> None:
        delete_namespace(self.cluster, workload.namespace, timeout)

    def member_totals(self, workload: Workload, sample: str) -> dict[str, int | None]:
        return {self.cluster.name: workload.replicas}

    def create_target(self, workload: Workload) -> tuple[Cluster, str]:
        return self.cluster, SELECTIVE.format(namespace=workload.namespace)

    def placement(self, pods: list[Mapping[str, Any]]) -> dict[str, Any] | None:
        return placement(pods, self.node_labels, self.selector)


ADAPTER = EdgeNetAdapter


def check(clusters: list[dict]) -> str | None:
    return None if clusters else "edgenet needs a cluster; the inventory has none"
