# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Istio, peer to peer: the data plane between clusters that share one root CA.

It places nothing (the lifecycle does not measure it); the HTTP burst test
measures it. On a testbed whose nodes are simulated, the gateways are stock
Envoy emulating Istio's east-west path (:mod:`frameworks.mesh`); on real nodes,
Istio itself. The role roles/frameworks/istio installs either.
"""

from __future__ import annotations

NAME = "istio"
KIND = "dataplane"


def check(clusters: list[dict]) -> str | None:
    """The mesh joins the first two clusters: fewer cannot make one (checked before anything starts)."""
    if len(clusters) < 2:
        return f"istio needs two clusters (the mesh joins the first two); the inventory has {len(clusters)}"
    return None


def endpoint_health(clusters_dump: str, service_cluster: str) -> dict[str, list[str]]:
    """Each endpoint of one Envoy cluster and its health flags, from the admin
    endpoint's ``/clusters`` text (``<cluster>::<address>::health_flags::<flags>``):
    ``healthy``, or the reasons it takes no traffic (``failed_outlier_check``:
    ejected by outlier detection). Istio names the echo service's cluster
    ``outbound|80||echo.<namespace>.svc.cluster.local``; its endpoints are the
    local pods and, for each peer network, that network's east-west gateway."""
    out: dict[str, list[str]] = {}
    for line in clusters_dump.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == service_cluster and parts[2] == "health_flags":
            out[parts[1]] = parts[3].strip("/").split("/")
    return out
