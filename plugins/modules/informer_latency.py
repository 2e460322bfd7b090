#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: informer_latency
short_description: An informer and work queue beside a churn, timing notifications and queue waits
description:
  - Lists the ConfigMaps labelled C(fedbench.io/churn=<token>) across the
    cluster, then watches them (a 410 relists, a dropped stream re-watches
    from the newest resourceVersion), feeding every event's key into a work
    queue that, like client-go's, holds a waiting key once.
  - Records per create and update event the notification latency (event read
    minus the driver's send time in the annotation C(fedbench.io/sent-at)),
    per key the queue wait, and counts every object and event, so that a
    test can check that it saw everything M(fedbench.testbed.configmap_churn) made.
  - Runs until it sees the churn's sentinel ConfigMap, or O(max_duration).
    Start it with C(async) and C(poll=0) before the churn, wait for
    O(ready_file), and collect it with C(async_status) after.
extends_documentation_fragment:
  - fedbench.testbed.cluster
  - fedbench.testbed.experiment
options:
  token: {type: str, required: true, description: "The churn's token (label value)."}
  point: {type: str, description: "The churn point this informer ran beside (for the results)."}
  max_duration: {type: float, default: 600, description: "Stop after this many seconds if no sentinel came."}
  work_seconds: {type: float, default: 0.0, description: "Time the worker spends on each key."}
  ready_file: {type: path, description: "Written once the watch is open."}
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Watch beside the churn
  fedbench.testbed.informer_latency:
    clusters: "{{ testbed_clusters }}"
    token: run1
    ready_file: /tmp/informer.ready
    run_id: "{{ fedbench_run_id }}"
    results_dir: "{{ fedbench_results_dir }}"
  async: 900
  poll: 0
"""

RETURN = r"""
summary:
  description: Objects and events seen, notification latency per event type, queue wait, coalesced keys, relists.
  returned: success
  type: dict
"""

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import CLUSTER_ARG_SPEC, EXPERIMENT_ARG_SPEC, run_async_module

ARGUMENT_SPEC = dict(
    CLUSTER_ARG_SPEC,
    **EXPERIMENT_ARG_SPEC,
    token=dict(type="str", required=True, no_log=False),
    point=dict(type="str"),
    max_duration=dict(type="float", default=600.0),
    work_seconds=dict(type="float", default=0.0),
    ready_file=dict(type="path"),
)


def main() -> None:
    run_async_module(ARGUMENT_SPEC, apimachinery.informer_from_params, changed=lambda result, check: False)


if __name__ == "__main__":
    main()
