#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: kind_testbed
short_description: kind clusters from images built on this machine (no pull, no download)
description:
  - With O(state=present), provides a container engine (the user's Docker
    when one answers; otherwise, as root, Debian's docker.io run as a daemon
    of the project's own), builds what is missing of the kind node image and
    the images its control plane runs (cached under O(cache_dir)), creates
    every cluster in O(clusters) that does not exist or is not whole, waits
    until every node is Ready, gives CoreDNS a configuration without an
    upstream, and loads the lifecycle's busybox into every node.
  - Kubeconfigs are written by kind into O(work_dir)/kubeconfigs, mode 0600;
    C(~/.kube/config) is never read or written.
  - A second run with the clusters whole changes nothing.
  - With O(state=absent), deletes every cluster this work dir created (and
    any an interrupted run left), the project's Docker network, the
    project's daemon when nothing else runs in it, and puts back the
    machine settings recorded before the first cluster started.
  - With O(state=healthy), changes nothing and fails naming the cluster and
    what is wrong unless every node container runs and every API server
    answers C(/readyz).
options:
  state:
    description: What to do.
    type: str
    choices: [present, absent, healthy]
    default: present
  clusters:
    description:
      - Each a mapping with C(name), C(role) (C(host) or C(member)), C(nodes)
        (workers beside the control-plane node, default 0), C(apiserver_port)
        (published on 127.0.0.1), and optionally C(pod_subnet) and
        C(service_subnet) (default 10.(100+i).0.0/16 and 10.96.(16i).0/20).
    type: list
    elements: dict
    default: []
  work_dir:
    description: Where the testbed keeps its state (kind configurations, kubeconfigs, the record of what it created).
    type: path
    required: true
  cache_dir:
    description: The cache root (images, the project daemon's data). Defaults to C($FEDBENCH_CACHE), else C(~/.cache/fedbench).
    type: path
  binaries:
    description: The toolchain's paths (kind, kubectl, kubelet, kubeadm, kube-proxy, the control plane's, etcd, coredns, containerd, runc, crictl, CNI plugins).
    type: dict
    default: {}
  node_files:
    description: kind's node files (images/base/files of its module), from the toolchain's assets.
    type: path
  versions:
    description: Versions of kubernetes, etcd and coredns the images are named by.
    type: dict
    default: {}
  timeout:
    description: Seconds a cluster's nodes may take to be Ready after it is created.
    type: int
    default: 600
  progress_file:
    description: A file each progress line is appended to as it happens (for a play that runs this module in the background).
    type: path
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Three kind clusters
  fedbench.testbed.kind_testbed:
    work_dir: "{{ fedbench_work_dir }}"
    binaries: "{{ toolchain_binaries }}"
    node_files: "{{ toolchain_assets.kind_node_files }}"
    clusters:
      - {name: fedbench-host, role: host, nodes: 0, apiserver_port: 31643}
      - {name: fedbench-member1, role: member, nodes: 0, apiserver_port: 31644}
"""

RETURN = r"""
clusters:
  description: One record per cluster, the facts contract every testbed shares (plus node_containers, pod_subnet, service_subnet).
  returned: state=present
  type: list
  elements: dict
engine:
  description: The container engine (host, owned, version, runtime).
  returned: state=present
  type: dict
node_image:
  description: The node image the clusters run.
  returned: state=present
  type: str
images:
  description: Workload images loaded into every node (busybox).
  returned: state=present
  type: dict
timings:
  description: Seconds spent on the engine, the images and the clusters.
  returned: state=present
  type: dict
deleted:
  description: Clusters deleted.
  returned: state=absent
  type: list
released:
  description: What was put back on the machine (sysctls, firewall rules), and whether the project's daemon stopped.
  returned: state=absent
  type: dict
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import PROGRESS_ARG_SPEC, progress_reporter
from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine, images, toolchain
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import kind
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.embedded import TestbedError

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["present", "absent", "healthy"], default="present"),
    clusters=dict(type="list", elements="dict", default=[]),
    work_dir=dict(type="path", required=True),
    cache_dir=dict(type="path"),
    binaries=dict(type="dict", default={}),
    node_files=dict(type="path"),
    versions=dict(type="dict", default={}),
    timeout=dict(type="int", default=600),
    **PROGRESS_ARG_SPEC,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    progress: list[str] = []
    report = progress_reporter(progress, p.get("progress_file"))
    work_dir = Path(p["work_dir"])
    cache = Path(p["cache_dir"]) if p.get("cache_dir") else toolchain.cache_root()
    try:
        if p["state"] == "present":
            kind.parse_specs(p["clusters"])
            if module.check_mode:
                module.exit_json(changed=False, clusters=[])
            if not p.get("node_files"):
                raise TestbedError("node_files (kind's node files from the toolchain's assets) is required with state=present")
            versions = kind.Versions(**{k: v for k, v in p["versions"].items() if k in kind.Versions.__dataclass_fields__})
            result = kind.provision(p["clusters"], binaries=p["binaries"], node_files=p["node_files"], cache=cache, work_dir=work_dir,
                                    versions=versions, timeout=p["timeout"], report=report)
            module.exit_json(changed=bool(result["created"]), progress=progress, **result)
        if p["state"] == "healthy":
            specs = kind.parse_specs(p["clusters"])
            tools = kind.Tools.from_mapping(p["binaries"])
            eng = engine.running_project_engine() or engine.user_engine()[0]
            if eng is None:
                module.fail_json(msg="the kind testbed is not healthy: no Docker engine answers")
            problems = [f"cluster {s.name}: {why}" for s in specs if (why := kind.healthy(s, tools=tools, engine=eng, work_dir=work_dir))]
            if problems:
                module.fail_json(msg="the testbed is not healthy: " + "; ".join(problems), problems=problems)
            module.exit_json(changed=False)
        if module.check_mode:
            module.exit_json(changed=False)
        names = [c["name"] for c in p["clusters"] if isinstance(c, dict) and c.get("name")]
        result = kind.down(work_dir=work_dir, names=names, cache=cache, report=report)
        module.exit_json(changed=bool(result["deleted"] or result["network_removed"]), progress=progress, **result)
    except (TestbedError, engine.EngineError, images.BuildError) as exc:
        module.fail_json(msg=str(exc), progress=progress)


if __name__ == "__main__":
    main()
