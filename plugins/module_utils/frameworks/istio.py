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
