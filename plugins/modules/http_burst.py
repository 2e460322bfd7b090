#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: http_burst
short_description: Bursts of parallel HTTP requests in time slots, sent on schedule (asyncio)
description:
  - At the start of each time slot, sends that slot's number of requests at
    once to the targets (round robin), and records for every request when it
    was due, when it was really sent (its lag), its latency from the real
    send, status, the cluster and instance that answered and an error class
    (see RV(totals)); an unreachable target is an error class
    (C(connect_error)), never a crash; an answer later than O(timeout) is a
    C(timeout).
  - The client never measures itself silently - at most O(max_inflight)
    requests are in flight (one more is C(client_overload), never sent); a
    slot whose send lag p99 passes O(lag_limit), or with a request not sent,
    is C(client_saturated); RV(client) says which slots were, and the
    client's own CPU per request. A run with a saturated slot is kept as
    C(degraded), never C(ok).
  - Summarizes each slot - requests, successes, latency p50, p90, p99, max,
    send lag, and the share served by each cluster.
  - Writes the result at once to O(results_dir) as
    C(samples/burst-<framework>-<profile>-r<repetition>.json) (atomically).
  - A run in which no request succeeded is kept with status C(failed), and the
    task fails.
options:
  targets:
    description:
      - Gateway URLs, http or https. Each is checked before anything is sent - a
        well-formed URL with a host and a numeric port, on 127.0.0.0/8 or one of
        O(allowed_hosts) - and any other is refused with a message naming it.
    type: list
    elements: str
    required: true
  allowed_hosts:
    description: Addresses besides 127.0.0.0/8 that belong to the testbed (its facts name them) and may be sent to.
    type: list
    elements: str
    default: []
  slot_seconds: {type: float, default: 1.0, description: "Length of one slot."}
  requests:
    description: Requests per slot. Empty means the study's profile, M(default_schedule) - 1 per slot, 3 in slots 2-4, O(spike) in slots 5-15, 1 after, 20 slots.
    type: list
    elements: int
    default: []
  spike: {type: int, default: 6, description: "Parallel requests per slot in the default profile's spike."}
  timeout: {type: float, default: 5.0, description: "Per-request timeout, seconds."}
  duration: {type: float, description: "Start no slot after this many seconds."}
  max_inflight: {type: int, default: 4096, description: "At most this many requests in flight; one more is recorded as client_overload and not sent."}
  lag_limit: {type: float, default: 0.01, description: "A slot whose send lag p99 passes this many seconds is client_saturated."}
  processes: {type: int, default: 1, description: "Client processes sharing each slot's requests on one clock (1 to 64)."}
  ca_file: {type: path, description: "CA for https targets."}
  cert_file: {type: path, description: "Client certificate for https targets."}
  key_file: {type: path, description: "Client key for https targets."}
  verify: {type: bool, default: true, description: "Verify https targets."}
  framework: {type: str, default: istio-emulated, description: "What carried the traffic (for the results)."}
  profile: {type: str, default: default, description: "The schedule's name (for the results)."}
  local_cluster: {type: str, description: "The cluster whose gateway the client uses (for the local share)."}
  repetition: {type: int, default: 1, description: "Which repetition."}
  testbed: {type: list, elements: dict, default: [], description: "The testbed's facts, recorded in the result."}
  run_id: {type: str, required: true, description: "The run."}
  results_dir: {type: path, required: true, description: "The run's results folder."}
author: fedbench contributors
"""

EXAMPLES = r"""
- name: The study's profile against cluster 1's gateway
  fedbench.testbed.http_burst:
    targets: [http://127.0.0.1:18100/echo]
    local_cluster: host
    run_id: "{{ fedbench_run_id }}"
    results_dir: "{{ fedbench_results_dir }}"
"""

RETURN = r"""
slots:
  description: Per slot - requests, successes, latency percentiles, served_by, share, errors.
  returned: success
  type: list
totals:
  description: Requests, successes, served_by, errors by class, latency summary.
  returned: success
  type: dict
client:
  description: >-
    What the client itself did and cost - processes, max and peak in flight, send lag, the slots where
    it was saturated, a verdict, CPU seconds and CPU per request.
  returned: success
  type: dict
path:
  description: The sample file written.
  returned: success
  type: str
"""

from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import run_async_module
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import burst

ARGUMENT_SPEC = dict(
    targets=dict(type="list", elements="str", required=True),
    allowed_hosts=dict(type="list", elements="str", default=[]),
    slot_seconds=dict(type="float", default=1.0),
    requests=dict(type="list", elements="int", default=[]),
    spike=dict(type="int", default=6),
    timeout=dict(type="float", default=5.0),
    duration=dict(type="float"),
    max_inflight=dict(type="int", default=burst.MAX_INFLIGHT),
    lag_limit=dict(type="float", default=burst.LAG_LIMIT),
    processes=dict(type="int", default=1),
    ca_file=dict(type="path"),
    cert_file=dict(type="path"),
    key_file=dict(type="path", no_log=False),
    verify=dict(type="bool", default=True),
    framework=dict(type="str", default="istio-emulated"),
    profile=dict(type="str", default="default"),
    local_cluster=dict(type="str"),
    repetition=dict(type="int", default=1),
    testbed=dict(type="list", elements="dict", default=[]),
    run_id=dict(type="str", required=True),
    results_dir=dict(type="path", required=True),
)


def main() -> None:
    run_async_module(ARGUMENT_SPEC, burst.burst_from_params)


if __name__ == "__main__":
    main()
