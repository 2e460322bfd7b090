#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_lifecycle
short_description: Time one busybox Deployment lifecycle, create → ready → delete → gone
description:
  - Starts watches (list, then watch from that resourceVersion) on the
    Deployments, ReplicaSets and Pods of the experiment's namespace, then
    creates the workload, waits until the ready replicas equal the requested
    replicas, deletes it and waits until it and its pods are gone.
  - Returns one sample with every phase (seconds, millisecond resolution,
    monotonic clock), per-pod startup latency, the apiserver's own
    timestamps with their skew, and every raw event.
  - Writes the sample to O(results_dir) at once (see there), then returns it.
  - A timeout or a lost API server fails the task with the partial sample in
    RV(sample), after writing it with status C(timeout) or C(error).
  - The namespace is created if needed and left in place for the next
    repetition; O(cleanup=true) removes it (the role does on its last sample and on failure).
extends_documentation_fragment:
  - fedbench.testbed.cluster
options:
  framework:
    description:
      - The placement framework whose adapter places the workload, one of the
        frameworks registered in C(plugins/module_utils/frameworks) (the
        module refuses any other and lists them). Each adapter picks its
        clusters from O(clusters). C(native) creates the Deployment in the
        host cluster (role C(host), else the first). C(kubefed) creates a
        FederatedDeployment on the host cluster placed on every member, with
        the replicas spread over them.
    type: str
    default: native
  state:
    description:
      - C(measured) runs one sample. C(absent) only removes the experiment's
        namespace (and, for kubefed, its FederatedNamespace and the members'
        namespaces), waiting until they are gone.
    type: str
    choices: [measured, absent]
    default: measured
  replicas:
    description: Replicas requested (for O(layout=deployments), the number of one-replica Deployments).
    type: int
    default: 1
  layout:
    description: C(replicas) is one Deployment of N replicas; C(deployments) is N Deployments of one replica.
    type: str
    choices: [replicas, deployments]
    default: replicas
  image:
    description: The container image; it runs O(command) with C(imagePullPolicy=IfNotPresent).
    type: str
    default: busybox:1.36
  command:
    description: "The container command (the default keeps it running: busybox sleeps an hour)."
    type: list
    elements: str
    default: [sleep, "3600"]
  namespace:
    description: "The experiment namespace, created if needed."
    type: str
    default: fedbench-lifecycle
  node_selector:
    description: A node selector for the pods (a selector no node matches makes a sample that can never be ready).
    type: dict
    default: {}
  ready_timeout:
    description: Seconds from the create request to all replicas ready.
    type: float
    default: 300
  delete_timeout:
    description: Seconds from the delete request to everything gone.
    type: float
    default: 300
  repetition:
    description: Which repetition of this point this sample is.
    type: int
    default: 1
  testbed:
    description: The testbed's facts (C(testbed_clusters)), recorded in the result.
    type: list
    elements: dict
    default: []
  cleanup:
    description: Delete the namespace after the sample (and after a failure).
    type: bool
    default: false
  measure:
    description:
      - Wrap the sample in measurement windows - the API server's SLO histograms
        scraped before and after, the control-plane processes' CPU, the
        measuring process's own CPU (C(apiserver), C(processes), C(instrument)
        in the sample). C(false) leaves them out.
    type: bool
    default: true
  cleanup_timeout:
    description: Seconds to wait until the experiment's namespace (and, for kubefed, the members') is gone when removing it.
    type: float
    default: 120
  repair_timeout:
    description:
      - Seconds to wait, before the sample (or the cleanup) starts, until every cluster's API server
        answers C(/readyz) - a component the embedded testbed's supervisor is repairing is waited for.
        Fails naming the cluster when it does not answer in time.
    type: float
    default: 120
  record:
    description: Write the sample to O(results_dir). C(false) is for a warm-up sample, measured and returned but kept only when it fails (marked C(warmup)), so a run whose pods can never be ready keeps a sample that says why.
    type: bool
    default: true
  return_events:
    description: Also return the raw events in RV(sample) (they are always in the file).
    type: bool
    default: false
author: fedbench contributors
"""

EXAMPLES = r"""
- name: One sample of 4 replicas on the host cluster
  fedbench.testbed.deployment_lifecycle:
    clusters: "{{ testbed_clusters | selectattr('role', 'equalto', 'host') }}"
    replicas: 4
    run_id: "{{ fedbench_run_id }}"
    results_dir: "{{ fedbench_results_dir }}"
  register: sample
"""

RETURN = r"""
sample:
  description: The sample (phases, headline, pods, marks, watch counters; events if asked).
  returned: always
  type: dict
headline:
  description: create_to_ready and delete_to_gone, seconds.
  returned: always
  type: dict
  sample: {create_to_ready: 0.146, delete_to_gone: 0.063}
path:
  description: The sample file written.
  returned: unless check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import kubernetes  # noqa: F401

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import lifecycle_params as experiment
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import (
    CLUSTER_ARG_SPEC,
    CLUSTER_MUTUALLY_EXCLUSIVE,
)

ARGUMENT_SPEC = dict(
    CLUSTER_ARG_SPEC,
    framework=dict(type="str", choices=sorted(frameworks.PLACEMENT), default="native"),
    state=dict(type="str", choices=["measured", "absent"], default="measured"),
    replicas=dict(type="int", default=1),
    layout=dict(type="str", choices=["replicas", "deployments"], default="replicas"),
    image=dict(type="str", default="busybox:1.36"),
    command=dict(type="list", elements="str", default=["sleep", "3600"]),
    namespace=dict(type="str", default="fedbench-lifecycle"),
    node_selector=dict(type="dict", default={}),
    ready_timeout=dict(type="float", default=300),
    delete_timeout=dict(type="float", default=300),
    repetition=dict(type="int", default=1),
    testbed=dict(type="list", elements="dict", default=[]),
    cleanup=dict(type="bool", default=False),
    cleanup_timeout=dict(type="float", default=120),
    measure=dict(type="bool", default=True),
    return_events=dict(type="bool", default=False),
    record=dict(type="bool", default=True),
    repair_timeout=dict(type="float", default=120),
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=CLUSTER_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    outcome = experiment.lifecycle_from_params(module.params, check_mode=module.check_mode)
    if outcome.failed:
        module.fail_json(msg=outcome.message, **outcome.result)
    module.exit_json(changed=not module.check_mode, **outcome.result)


if __name__ == "__main__":
    main()
