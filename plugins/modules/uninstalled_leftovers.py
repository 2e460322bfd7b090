# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: uninstalled_leftovers
short_description: Wait until an uninstalled framework's CRDs and namespaces are gone; release what its removed controllers can no longer finish
description:
  - After a framework's own uninstall deleted its custom resource definitions and namespaces, waits up
    to O(wait) seconds for them to go.
  - What is still there after that, is held by finalizers that only the framework's controllers could
    remove, and those controllers are gone. The module clears the finalizers of those objects. It only
    touches objects that are being deleted and whose type is one of the framework's CRDs. Then it waits
    again.
  - Fails naming whatever still remains, and returns what it released.
options:
  kubeconfig: {type: path, required: true, description: The cluster's kubeconfig.}
  context: {type: str, description: Its context.}
  crd_suffix: {type: str, required: true, description: "The framework's API groups end with this, like C(.liqo.io)."}
  namespaces: {type: list, elements: str, default: [], description: "Namespace names, or prefixes ending in C(*), that must go."}
  wait: {type: float, default: 120, description: Seconds to wait before and after releasing.}
"""

EXAMPLES = r"""
- fedbench.testbed.uninstalled_leftovers:
    kubeconfig: "{{ work_dir }}/kubeconfigs/host"
    crd_suffix: .liqo.io
    namespaces: [liqo, liqo-tenant-*, liqo-storage]
"""

RETURN = r"""
released: {description: "Objects whose finalizers were cleared, as kind/namespace/name.", returned: always, type: list}
remaining: {description: CRDs and namespaces still there., returned: always, type: list}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils import kube


def wanted_namespace(name: str, patterns: list[str]) -> bool:
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


def held(items: list[dict]) -> list[dict]:
    """The objects being deleted that finalizers hold."""
    return [o for o in items if o.get("metadata", {}).get("deletionTimestamp") and o["metadata"].get("finalizers")]


def _left(api, suffix: str, patterns: list[str]) -> tuple[list[dict], list[str]]:
    crds = [c for c in kube.request(api, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
            if c["metadata"]["name"].endswith(suffix)]
    namespaces = [n["metadata"]["name"] for n in kube.request(api, "GET", "/api/v1/namespaces")["items"]
                  if wanted_namespace(n["metadata"]["name"], patterns)]
    return crds, namespaces


def _wait(api, suffix, patterns, seconds):
    deadline = time.monotonic() + seconds
    while True:
        crds, namespaces = _left(api, suffix, patterns)
        if not (crds or namespaces) or time.monotonic() > deadline:
            return crds, namespaces
        time.sleep(2)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(kubeconfig=dict(type="path", required=True), context=dict(type="str"),
                           crd_suffix=dict(type="str", required=True), namespaces=dict(type="list", elements="str", default=[]),
                           wait=dict(type="float", default=120)),
        supports_check_mode=True,
    )
    p = module.params
    from kubernetes import config

    try:
        api = config.new_client_from_config(config_file=p["kubeconfig"], context=p["context"])
        crds, namespaces = _wait(api, p["crd_suffix"], p["namespaces"], 0 if module.check_mode else p["wait"])
        released = []
        if (crds or namespaces) and not module.check_mode:
            for crd in crds:
                group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
                for version in (v["name"] for v in crd["spec"]["versions"] if v.get("served")):
                    path = f"/apis/{group}/{version}/{plural}"
                    try:
                        items = kube.request(api, "GET", path)["items"]
                    except kube.KubeError:
                        continue
                    for obj in held(items):
                        meta = obj["metadata"]
                        ns = meta.get("namespace")
                        one = (f"/apis/{group}/{version}/namespaces/{ns}/{plural}/{meta['name']}" if ns
                               else f"/apis/{group}/{version}/{plural}/{meta['name']}")
                        finalizers = ", ".join(meta["finalizers"])
                        meta["finalizers"] = []
                        try:
                            kube.request(api, "PUT", one, body=obj)
                            released.append(f"{crd['spec']['names']['kind']}/{ns or '-'}/{meta['name']} ({finalizers})")
                        except kube.KubeError as exc:
                            if exc.status != 404:
                                raise
                    break  # one served version lists every object
            crds, namespaces = _wait(api, p["crd_suffix"], p["namespaces"], p["wait"])
        remaining = [f"CRD {c['metadata']['name']}" for c in crds] + [f"namespace {n}" for n in namespaces]
        if remaining:
            module.fail_json(msg=f"still there {p['wait']:.0f}s after releasing what the uninstalled controllers held: {', '.join(remaining)}",
                             released=released, remaining=remaining)
        module.exit_json(changed=bool(released), released=released, remaining=[])
    except Exception as exc:  # an unreachable cluster, missing rights: named
        module.fail_json(msg=f"cluster {p['context'] or p['kubeconfig']}: {exc}", released=[], remaining=[])


if __name__ == "__main__":
    main()
