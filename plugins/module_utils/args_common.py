# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every experiment module shares (documented in doc_fragments/cluster.py)."""

from __future__ import annotations

from typing import Any, Mapping

CLUSTER_ARG_SPEC: dict[str, dict[str, Any]] = dict(
    clusters=dict(type="list", elements="dict"),
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    run_id=dict(type="str", required=True),
    results_dir=dict(type="path", required=True),
)
CLUSTER_MUTUALLY_EXCLUSIVE = [("clusters", "kubeconfig")]


def clusters_from(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The clusters named by the module's parameters, each with name, kubeconfig, context."""
    if params.get("clusters"):
        out = []
        for index, c in enumerate(params["clusters"]):
            missing = [k for k in ("name", "kubeconfig", "context") if not c.get(k)]
            if missing:
                raise ValueError(f"clusters[{index}] lacks {', '.join(missing)}")
            out.append(dict(c))
        return out
    if params.get("kubeconfig") and params.get("context"):
        return [{"name": params["context"], "kubeconfig": params["kubeconfig"], "context": params["context"], "role": "member"}]
    raise ValueError("give clusters (the testbed's facts), or kubeconfig and context")
