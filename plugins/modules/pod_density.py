#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: pod_density
short_description: Pods at a given rate onto hollow nodes, pod startup latency and scheduling throughput
description:
  - Creates O(pods_per_node) x O(nodes) bare pods at O(rate) per second in
    O(namespace), placed on the hollow nodes (node selector and toleration),
    watching them from before the first create.
  - Measures pod startup latency (created, as the watch saw it, to Running,
    as the watch saw it) as p50, p90, p99 against Kubernetes' 5-second SLO,
    scheduling throughput (pods bound per second), pods per second to
    Running, and the API server's request latencies from C(/metrics) judged
    against the API call SLOs.
  - With O(cluster_dir) (an embedded cluster's kwokctl folder), also the CPU
    and peak memory of etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler and kwok-controller over the run, and which was busiest.
  - Removes the namespace at the end, waiting until it is gone.
extends_documentation_fragment:
  - fedbench.testbed.cluster
  - fedbench.testbed.experiment
options:
  nodes: {type: int, required: true, description: "Hollow nodes to fill (at least this many must be Ready)."}
  pods_per_node: {type: int, default: 30, description: "Pods per node, 1 to 110."}
  rate: {type: float, default: 20.0, description: "Pods created per second, > 0."}
  namespace: {type: str, default: fedbench-density, description: "Namespace of the pods."}
  connections: {type: int, default: 16, description: "Client connections."}
  timeout: {type: float, default: 300, description: "Seconds from the first create for every pod to be Running."}
  cluster_dir: {type: path, description: "The embedded cluster's folder, for per-process CPU and memory."}
  progress_file:
    description:
      - Also append each progress line to this file as it comes, so that a play
        running the module in the background (async) shows how far it is.
    type: path
author: fedbench contributors
"""

EXAMPLES = r"""
- name: 30 pods on each of 100 hollow nodes, 50 a second
  fedbench.testbed.pod_density:
    clusters: "{{ testbed_clusters }}"
    nodes: 100
    pods_per_node: 30
    rate: 50
    run_id: "{{ fedbench_run_id }}"
    results_dir: "{{ fedbench_results_dir }}"
"""

RETURN = r"""
summary: {description: "Pods created, scheduled, Running; pod startup percentiles and SLO pass; scheduling throughput.", returned: success, type: dict}
slo_pass: {description: Whether every API call latency SLO held., returned: success, type: bool}
processes: {description: CPU and memory per control-plane process (embedded clusters)., returned: success, type: dict}
path: {description: The sample file written., returned: success, type: str}
progress: {description: Progress lines., returned: always, type: list}
"""

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import CLUSTER_ARG_SPEC, EXPERIMENT_ARG_SPEC, PROGRESS_ARG_SPEC, run_async_module

ARGUMENT_SPEC = dict(
    CLUSTER_ARG_SPEC,
    **PROGRESS_ARG_SPEC,
    **EXPERIMENT_ARG_SPEC,
    nodes=dict(type="int", required=True),
    pods_per_node=dict(type="int", default=30),
    rate=dict(type="float", default=20.0),
    namespace=dict(type="str", default="fedbench-density"),
    connections=dict(type="int", default=16),
    timeout=dict(type="float", default=300.0),
    cluster_dir=dict(type="path"),
)


def main() -> None:
    run_async_module(ARGUMENT_SPEC, apimachinery.density_from_params, with_progress=True)


if __name__ == "__main__":
    main()
