#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: hollow_nodes
short_description: Grow or shrink a cluster to exactly N hollow (KWOK-simulated) nodes
description:
  - Creates or deletes Node objects named C(hollow-00000), C(hollow-00001), ...
    labelled C(fedbench.io/hollow=true), annotated C(kwok.x-k8s.io/node=fake)
    and tainted C(kwok.x-k8s.io/node=fake:NoSchedule), in parallel, until
    exactly O(count) exist, then waits until all of them are Ready.
  - KWOK's controller makes them Ready, renews their leases and runs the
    pods bound to them; on the embedded testbed it is the cluster's own, on
    kind and existing clusters the role M(fedbench.testbed.hollow_nodes)
    deploys one first.
  - Idempotent; the progress is in RV(progress).
extends_documentation_fragment:
  - fedbench.testbed.cluster
options:
  cluster: {type: str, description: "Which of O(clusters) to grow (by name); the first when omitted."}
  count: {type: int, required: true, description: "Hollow nodes wanted, 0 to 5000."}
  pods_per_node: {type: int, default: 110, description: "Each node's pod capacity."}
  parallel: {type: int, default: 32, description: "Requests in flight."}
  ready_timeout: {type: float, default: 600, description: "Seconds for all of them to be Ready."}
  run_id: {type: str, required: false, description: "Not used (nothing is recorded)."}
  results_dir: {type: path, required: false, description: "Not used (nothing is recorded)."}
  progress_file:
    description:
      - Also append each progress line to this file as it comes, so that a play
        running the module in the background (async) shows how far it is.
    type: path
author: fedbench contributors
"""

EXAMPLES = r"""
- name: 1000 hollow nodes on the first cluster
  fedbench.testbed.hollow_nodes:
    clusters: "{{ testbed_clusters }}"
    count: 1000
"""

RETURN = r"""
nodes: {description: Hollow nodes now Ready., returned: success, type: int}
created: {description: Nodes created., returned: success, type: int}
deleted: {description: Nodes deleted., returned: success, type: int}
seconds: {description: Seconds until all were Ready., returned: success, type: float}
progress: {description: Progress lines., returned: always, type: list}
"""

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import CLUSTER_ARG_SPEC, PROGRESS_ARG_SPEC, run_async_module

ARGUMENT_SPEC = dict(
    CLUSTER_ARG_SPEC,
    **PROGRESS_ARG_SPEC,
    cluster=dict(type="str"),
    run_id=dict(type="str"),  # nothing is recorded: the nodes are the testbed's
    results_dir=dict(type="path"),
    count=dict(type="int", required=True),
    pods_per_node=dict(type="int", default=110),
    parallel=dict(type="int", default=32),
    ready_timeout=dict(type="float", default=600.0),
)


def main() -> None:
    run_async_module(ARGUMENT_SPEC, apimachinery.hollow_from_params, with_progress=True,
                     changed=lambda result, check: bool(result.pop("changed", False)))


if __name__ == "__main__":
    main()
