#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: embedded_cluster
short_description: Real Kubernetes control planes as local processes (kwokctl binary runtime)
description:
  - With O(state=present), creates every cluster in O(clusters) through
    kwokctl's binary runtime (etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler and KWOK's controller, all bound to 127.0.0.1), in parallel,
    then waits until each API server answers C(/readyz) and every simulated
    node is Ready. Kubeconfigs are written mode 0600 under O(work_dir).
  - A cluster that already serves on its port is left as it is, so a second
    run reports no change.
  - With O(state=absent), deletes the named clusters, or every cluster under
    O(work_dir) when O(clusters) is empty, and then kills any process still
    naming O(work_dir) (what an interrupted run leaves behind).
  - With O(state=leftovers), changes nothing and reports the clusters,
    processes and listening ports of the testbed that are still there.
  - With O(state=healthy), changes nothing and fails unless every component
    of every cluster under O(work_dir) runs and each API server answers
    C(/readyz), naming the cluster, the component and its log (what the
    experiments check before they start). Provisioning (O(state=present))
    checks the same, starts what is missing, and runs the supervisor that
    restarts a component that exits (see docs/testbed.md).
options:
  state:
    description: "C(present) creates or confirms the clusters; C(absent) deletes them and whatever of the testbed is left; C(leftovers) only reports the processes and ports left; C(healthy) only checks every component."
    type: str
    choices: [present, absent, leftovers, healthy]
    default: present
  clusters:
    description:
      - Each a mapping with C(name) (a DNS label), C(role) (C(host) or C(member)),
        C(nodes) (simulated nodes, default 4, may be 0), C(apiserver_port) and
        optionally C(simulator) (false starts no KWOK controller - a bare control
        plane for a node simulator elsewhere - and nodes must then be 0) and
        C(control_plane), CPU and memory limits per component (C(etcd),
        C(kube-apiserver), C(kube-controller-manager), C(kube-scheduler)), each
        a mapping of C(cpus) (cores, 0.5 or 500m), C(memory) (bytes or 512Mi)
        and C(cpuset) (CPUs, "0" or "0-1"), set through cgroup v1 once the
        cluster is up and read back into the facts (see docs/testbed.md), and
        C(datastore), what the API server stores into - C(etcd) (default),
        C(kine-sqlite) or C(kine-postgres) (kine over a PostgreSQL server the
        testbed starts on 127.0.0.1, at C(datastore_port) or a free port);
        C(scheduler) (false starts no kube-scheduler; nodes must then be 0) and
        C(controllers) (kube-controller-manager's C(--controllers), a list;
        empty keeps its defaults), for a framework's own control plane where
        workloads stay templates (Karmada's API server).
      - For O(state=absent), only C(name) is read; empty means every cluster.
    type: list
    elements: dict
    default: []
  work_dir:
    description: Where the testbed keeps its state (kwokctl work dir, kubeconfigs).
    type: path
    required: true
  binaries:
    description: Paths of kwokctl, kwok, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl, and kine for a kine datastore (the toolchain role's output).
    type: dict
    default: {}
  kubernetes_version:
    description: The version the binaries were built at, passed to kwokctl.
    type: str
    default: v1.36.1
  start_timeout:
    description: Seconds one cluster may take to answer C(/readyz).
    type: int
    default: 180
  nodes_timeout:
    description: Seconds the simulated nodes may take to be Ready.
    type: int
    default: 120
  disable_qps_limits:
    description:
      - Lift the client rate limits of kube-controller-manager, kube-scheduler
        and KWOK (kwokctl's C(disableQPSLimits)). The default keeps stock
        Kubernetes behaviour, where the controller manager creates at most 20
        pods a second. Applies when a cluster is created.
    type: bool
    default: false
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Three clusters
  fedbench.testbed.embedded_cluster:
    work_dir: "{{ fedbench_work_dir }}"
    binaries: "{{ toolchain_binaries }}"
    clusters:
      - {name: host, role: host, nodes: 4, apiserver_port: 16443}
      - {name: member1, role: member, nodes: 4, apiserver_port: 16444}
  register: testbed

- name: Tear everything down, including what an interrupted run left
  fedbench.testbed.embedded_cluster:
    state: absent
    work_dir: "{{ fedbench_work_dir }}"
    binaries: "{{ toolchain_binaries }}"
"""

RETURN = r"""
clusters:
  description: One record per cluster, the facts contract every testbed shares.
  returned: state=present
  type: list
  elements: dict
  sample:
    - {name: host, role: host, kubeconfig: /repo/.work/kubeconfigs/host, context: kwok-host,
       server: "https://127.0.0.1:16443", kubernetes_version: v1.36.1, nodes: 4, testbed: embedded,
       capabilities: {simulated_nodes: true, node_simulator: true, local_dir: ".work/kwok/clusters/host", image_loader: none, owned: true, peer_server: null},
       control_plane: {kube-apiserver: {cpus: 0.5, memory_bytes: 1073741824, cpuset: null}}}
deleted:
  description: Clusters deleted.
  returned: state=absent
  type: list
leftovers:
  description: Clusters, processes (pid to command line), listening ports and cgroups still there.
  returned: state in (absent, leftovers)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["present", "absent", "leftovers", "healthy"], default="present"),
    clusters=dict(type="list", elements="dict", default=[]),
    work_dir=dict(type="path", required=True),
    binaries=dict(type="dict", default={}),
    kubernetes_version=dict(type="str", default="v1.36.1"),
    start_timeout=dict(type="int", default=180),
    nodes_timeout=dict(type="int", default=120),
    disable_qps_limits=dict(type="bool", default=False),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    progress: list[str] = []
    try:
        if p["state"] == "present":
            specs = embedded.parse_specs(p["clusters"])
        binaries = embedded.Binaries.from_mapping(p["binaries"]) if p["state"] == "present" or p["binaries"] else None
        bed = embedded.EmbeddedTestbed(
            work_dir=p["work_dir"],
            binaries=binaries,
            kube_version=p["kubernetes_version"],
            report=progress.append,
            start_timeout=p["start_timeout"],
            nodes_timeout=p["nodes_timeout"],
            disable_qps_limits=p["disable_qps_limits"],
        )
        if p["state"] == "healthy":
            problems = bed.unhealthy()
            if problems:
                module.fail_json(msg="the testbed is not healthy: " + "; ".join(problems), problems=problems,
                                 restarts=bed.restarts())
            module.exit_json(changed=False, clusters=[], restarts=bed.restarts())
        if p["state"] == "leftovers" or module.check_mode:
            if p["state"] == "present":
                bed.check_ports(specs)
            module.exit_json(changed=False, leftovers=bed.leftovers(), clusters=[])
        if p["state"] == "present":
            facts, changed = bed.up(specs)
            module.exit_json(changed=changed, clusters=[f.as_dict() for f in facts], progress=progress)
        names = [c["name"] for c in p["clusters"] if "name" in c] or None
        result = bed.down(names)
        left = bed.leftovers()
        if names is None and left["processes"]:
            module.fail_json(msg=f"teardown left processes running: {left['processes']}", leftovers=left, progress=progress)
        if names is None and left["cgroups"]:
            module.fail_json(msg=f"teardown left cgroups (control-plane limits) it could not remove: {left['cgroups']}", leftovers=left, progress=progress)
        if names is None and left["postgresql"]:
            module.fail_json(msg=f"teardown left PostgreSQL data it could not remove: {left['postgresql']}", leftovers=left, progress=progress)
        module.exit_json(changed=bool(result["deleted"] or result["killed_stray"]), leftovers=left, progress=progress, **result)
    except embedded.TestbedError as exc:
        module.fail_json(msg=str(exc), progress=progress)


if __name__ == "__main__":
    main()
