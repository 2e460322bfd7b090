#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: control_plane_sweep
short_description: The capacity of each control-plane variant (size, topology, datastore) on the embedded testbed
description:
  - For each of O(variants), one after the other, starts an embedded cluster
    of its own (C(sz-<name>)) in O(work_dir) with the variant's CPU and memory
    limits, topology and datastore, measures its capacities and deletes it.
  - "Churn: an open-loop ConfigMap churn ramp (x O(sweep).churn_factor per
    step) until failed operations pass O(sweep).error_ratio or a mutating
    call's p99 (client or the API server's SLI) passes O(sweep).mutating_p99;
    the capacity is the highest rate that passed (marked client_bound when the
    driver, not the server, fell behind)."
  - "Density: hollow nodes and pods in O(sweep).density_steps until the pod
    startup SLO (p99 5 s) or an API call SLO fails; the largest step that
    passed."
  - "Create->ready of a Deployment of O(sweep).lifecycle_replicas."
  - Each step records CPU and peak memory per component, the machine's busy
    share and the driver's own CPU. One sample per variant is kept as it
    finishes (experiment C(sizing)); a variant that cannot start or breaks is
    kept as failed and the sweep goes on; the module fails at the end naming it.
options:
  variants:
    description: "Each {name, control_plane, topology, datastore} (docs/testbed.md for the three)."
    type: list
    elements: dict
    required: true
  sweep:
    description: "The ramp: churn_start, churn_factor, churn_max_rate, churn_step_seconds, churn_lifetime, churn_connections,
      density_steps, density_rate, density_timeout, lifecycle_replicas, nodes, error_ratio, mutating_p99."
    type: dict
    default: {}
  work_dir: {type: path, required: true, description: "The embedded testbed's work dir."}
  binaries: {type: dict, required: true, description: "The toolchain's binaries (kine among them for a kine variant)."}
  kubernetes_version: {type: str, required: true, description: "The binaries' Kubernetes version."}
  run_id: {type: str, required: true, description: "The run the samples belong to."}
  results_dir: {type: path, required: true, description: "Where the samples go (samples/)."}
  progress_file: {type: path, description: "Each progress line is appended here as it comes (for a play running this async)."}
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Two variants, the API server capped and not
  fedbench.testbed.control_plane_sweep:
    variants:
      - {name: full}
      - {name: apiserver-half, control_plane: {kube-apiserver: {cpus: 0.5}}}
    work_dir: "{{ fedbench_work_dir }}"
    binaries: "{{ toolchain_binaries }}"
    kubernetes_version: "{{ toolchain_kubernetes_version }}"
    run_id: "{{ fedbench_run_id }}"
    results_dir: "{{ fedbench_results_dir }}"
"""

RETURN = r"""
variants: {description: "Per variant: status, churn capacity (/s), density capacity (pods, nodes), create->ready (s).", returned: always, type: list}
paths: {description: The sample files written., returned: always, type: list}
progress: {description: Progress lines., returned: always, type: list}
"""

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import sizing
from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import PROGRESS_ARG_SPEC, run_async_module

ARGUMENT_SPEC = dict(
    **PROGRESS_ARG_SPEC,
    variants=dict(type="list", elements="dict", required=True),
    sweep=dict(type="dict", default={}),
    work_dir=dict(type="path", required=True),
    binaries=dict(type="dict", required=True),
    kubernetes_version=dict(type="str", required=True),
    run_id=dict(type="str", required=True),
    results_dir=dict(type="path", required=True),
)


def main() -> None:
    run_async_module(ARGUMENT_SPEC, sizing.sweep_from_params, with_progress=True)


if __name__ == "__main__":
    main()
