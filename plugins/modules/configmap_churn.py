#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: configmap_churn
short_description: Load an API server with ConfigMap churn, open loop (Poisson) or closed loop
description:
  - C(open) - ConfigMaps are created at Poisson arrivals of O(rate) per second
    for O(duration) seconds (the arrivals are drawn up front from O(seed), kept
    in the results); each lives O(lifetime) seconds after its create returned,
    then is deleted. The driver never waits for the server before the next
    arrival; per operation it records the scheduled and the actual send time
    (C(lag)) and the latency.
  - C(closed) - O(workers) workers each repeat create, update, delete on their
    own ConfigMap for O(duration) seconds, paced to O(rate) cycles per second
    in all when O(rate) > 0.
  - Reports the achieved against the requested rate, latency percentiles per
    verb, errors by class (429 throttling apart as C(throttled)), and the API
    server's own request latencies from C(/metrics) before and after, judged
    against Kubernetes' API call latency SLOs.
  - Every create and update carries its send time in the annotation
    C(fedbench.io/sent-at) (for M(fedbench.testbed.informer_latency)); at the
    end a sentinel ConfigMap marks the end of the run, then everything
    labelled C(fedbench.io/churn=<token>) is deleted, and the namespaces the
    module created are removed. Anything left fails the task.
  - Writes the sample to O(results_dir) and every operation to a C(.ops.csv) beside it.
extends_documentation_fragment:
  - fedbench.testbed.cluster
  - fedbench.testbed.experiment
options:
  mode: {type: str, choices: [open, closed], default: open, description: "Open loop (Poisson arrivals) or closed loop (workers)."}
  rate: {type: float, description: "Open loop: arrivals per second, > 0 (required). Closed loop: cycles per second for all workers, 0 is unpaced."}
  lifetime: {type: float, default: 1.0, description: "Open loop: seconds each ConfigMap lives, >= 0."}
  workers: {type: int, default: 0, description: "Closed loop: workers, >= 1."}
  duration: {type: float, default: 10.0, description: "Seconds of arrivals (open) or of work (closed)."}
  payload_bytes: {type: int, default: 128, description: "Bytes of data in each ConfigMap."}
  namespaces: {type: list, elements: str, default: [fedbench-churn], description: "Namespaces used in turn; created if missing and then removed."}
  connections: {type: int, default: 32, description: "Client connections (HTTP/1.1 keep-alive pool)."}
  timeout: {type: float, default: 10.0, description: "Per-request timeout, seconds."}
  seed: {type: int, description: "Seed of the arrivals; random (and recorded) when omitted."}
  token: {type: str, default: churn, description: "Label value that marks this run's objects (share it with the informer)."}
  scrape_metrics: {type: bool, default: true, description: "Scrape the API server's /metrics before and after."}
  error_ratio_degraded:
    description: A sample whose failed operations exceed this share is kept as C(degraded), not C(ok), and left out of the summaries.
    type: float
    default: 0.01
  error_ratio_failed:
    description: A sample whose failed operations exceed this share is kept as C(failed) and fails the task (after it is written).
    type: float
    default: 0.1
author: fedbench contributors
"""

EXAMPLES = r"""
- name: 10 s of ConfigMaps at 50 per second, each living 2 s
  fedbench.testbed.configmap_churn:
    clusters: "{{ testbed_clusters }}"
    mode: open
    rate: 50
    lifetime: 2
    duration: 10
    run_id: "{{ fedbench_run_id }}"
    results_dir: "{{ fedbench_results_dir }}"
"""

RETURN = r"""
summary:
  description: Requested, scheduled and achieved rate, per-verb latency and lag, errors by class, created, deleted, swept, left.
  returned: success
  type: dict
apiserver:
  description: Per (verb, resource, scope) latency percentiles from /metrics deltas, and the SLO table with pass or fail.
  returned: success
  type: dict
path:
  description: The sample file written.
  returned: success
  type: str
"""

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import CLUSTER_ARG_SPEC, EXPERIMENT_ARG_SPEC, run_async_module

ARGUMENT_SPEC = dict(
    CLUSTER_ARG_SPEC,
    **EXPERIMENT_ARG_SPEC,
    mode=dict(type="str", choices=["open", "closed"], default="open"),
    rate=dict(type="float"),
    lifetime=dict(type="float", default=1.0),
    workers=dict(type="int", default=0),
    duration=dict(type="float", default=10.0),
    payload_bytes=dict(type="int", default=128),
    namespaces=dict(type="list", elements="str", default=["fedbench-churn"]),
    connections=dict(type="int", default=32),
    timeout=dict(type="float", default=10.0),
    seed=dict(type="int"),
    token=dict(type="str", default="churn", no_log=False),
    scrape_metrics=dict(type="bool", default=True),
    error_ratio_degraded=dict(type="float", default=0.01),
    error_ratio_failed=dict(type="float", default=0.1),
)


def main() -> None:
    run_async_module(ARGUMENT_SPEC, apimachinery.churn_from_params)


if __name__ == "__main__":
    main()
