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
# Under a comparison of the embedded and the kind testbed: how the two paths differ.
TESTBEDS_NOTE = (
    "istio on the embedded testbed is the emulation (framework istio-emulated): one stock Envoy per cluster as the "
    "gateway, echo servers as local processes, each local echo instance an endpoint of the gateway with the study's "
    "outlier detection, the peer gateway over mTLS from the shared root as the failover. On kind it is Istio 1.29.1 "
    "(stock Envoy in its proxies): the client enters at the ingress gateway on the node's address, the echo pods have "
    "sidecars, and the peer cluster's pods are one endpoint per network (the peer's east-west gateway, mTLS "
    "passthrough), so one 503 from any peer pod ejects the whole peer; Istio's own request metrics are off."
)


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
