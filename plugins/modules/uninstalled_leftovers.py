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
    touches objects that are being deleted, and only those whose type is one of the framework's CRDs or
    that sit in one of the framework's namespaces (of any type) with finalizers all of the framework's
    own API domain. Then it waits again.
  - Fails naming whatever still remains, with what the API server says holds each namespace, and
    returns what it released.
options:
  kubeconfig: {type: path, required: true, description: The cluster's kubeconfig.}
  context: {type: str, description: Its context.}
  crd_suffix: {type: str, required: true, description: "The framework's API groups end with this, like C(.liqo.io)."}
  namespaces: {type: list, elements: str, default: [], description: "Namespace names, or prefixes ending in C(*), that must go."}
  wait: {type: float, default: 120, description: Seconds to wait after releasing (and before, unless O(grace) is set).}
  grace: {type: float, description: "Seconds to wait before releasing; when the framework's controllers are known to be gone, nothing else will clear their finalizers. Default: O(wait)."}
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


def owned(finalizer: str, suffix: str) -> bool:
    """Whether a finalizer is the framework's: its domain is the API domain
    C(suffix) names (``liqo.io`` for ``.liqo.io``) or a subdomain of it."""
    domain, base = finalizer.split("/", 1)[0], suffix.lstrip(".")
    return domain == base or domain.endswith("." + base)


def held(items: list[dict], suffix: str | None = None) -> list[dict]:
    """The objects being deleted that finalizers hold; with ``suffix``, only
    those whose every finalizer is the framework's."""
    return [o for o in items if o.get("metadata", {}).get("deletionTimestamp") and o["metadata"].get("finalizers")
            and (suffix is None or all(owned(f, suffix) for f in o["metadata"]["finalizers"]))]


def _left(api, suffix: str, patterns: list[str]) -> tuple[list[dict], list[str]]:
    crds = [c for c in kube.request(api, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
            if c["metadata"]["name"].endswith(suffix)]
    namespaces = [n["metadata"]["name"] for n in kube.request(api, "GET", "/api/v1/namespaces")["items"]
                  if wanted_namespace(n["metadata"]["name"], patterns)]
    return crds, namespaces


def _release(api, path: str, obj: dict, label: str, released: list[str]) -> None:
    meta = obj["metadata"]
    finalizers = ", ".join(meta["finalizers"])
    meta["finalizers"] = []
    try:
        kube.request(api, "PUT", f"{path}/{meta['name']}", body=obj)
        released.append(f"{label}/{meta.get('namespace') or '-'}/{meta['name']} ({finalizers})")
    except kube.KubeError as exc:
        if exc.status != 404:
            raise


def _namespaced_types(api) -> list[tuple[str, str, str]]:
    """(group-version path, plural, kind) of every namespaced type that can be
    listed and updated, from discovery."""
    versions = ["/api/v1"] + [f"/apis/{g['preferredVersion']['groupVersion']}" for g in kube.request(api, "GET", "/apis").get("groups", [])]
    out = []
    for gv in versions:
        try:
            resources = kube.request(api, "GET", gv).get("resources", [])
        except kube.KubeError:
            continue
        out += [(gv, r["name"], r["kind"]) for r in resources
                if r.get("namespaced") and "/" not in r["name"] and {"list", "update"} <= set(r.get("verbs", []))]
    return out


def _holding(api, namespaces: list[str]) -> list[str]:
    """What the API server says still holds each namespace (its conditions)."""
    out = []
    for name in namespaces:
        try:
            conditions = kube.request(api, "GET", f"/api/v1/namespaces/{name}").get("status", {}).get("conditions", [])
        except kube.KubeError:
            continue
        out += [f"{name}: {c.get('message', c.get('reason'))}" for c in conditions if c.get("status") == "True"]
    return out


def _wait(api, suffix, patterns, seconds):
    deadline = time.monotonic() + seconds
    while True:
        crds, namespaces = _left(api, suffix, patterns)
        if not (crds or namespaces) or time.monotonic() > deadline:
            return crds, namespaces
        time.sleep(2)


def settle(api, suffix: str, patterns: list[str], wait: float, check_mode: bool = False,
           grace: float | None = None) -> tuple[list[str], list[str], list[str]]:
    """Wait (``grace``, default ``wait``), release what the framework's
    removed controllers held, wait again (``wait``): (released, remaining,
    what holds each remaining namespace)."""
    crds, namespaces = _wait(api, suffix, patterns, 0 if check_mode else (wait if grace is None else grace))
    released: list[str] = []
    if (crds or namespaces) and not check_mode:
        for crd in crds:
            group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
            for version in (v["name"] for v in crd["spec"]["versions"] if v.get("served")):
                try:
                    items = kube.request(api, "GET", f"/apis/{group}/{version}/{plural}")["items"]
                except kube.KubeError:
                    continue
                for obj in held(items):
                    ns = obj["metadata"].get("namespace")
                    _release(api, f"/apis/{group}/{version}" + (f"/namespaces/{ns}" if ns else "") + f"/{plural}",
                             obj, crd["spec"]["names"]["kind"], released)
                break  # one served version lists every object
        if namespaces:  # objects of any type in them that only the framework's finalizers hold
            for gv, plural, kind in _namespaced_types(api):
                for ns in namespaces:
                    try:
                        items = kube.request(api, "GET", f"{gv}/namespaces/{ns}/{plural}")["items"]
                    except kube.KubeError:
                        continue
                    for obj in held(items, suffix):
                        _release(api, f"{gv}/namespaces/{ns}/{plural}", obj, kind, released)
        crds, namespaces = _wait(api, suffix, patterns, wait)
    remaining = [f"CRD {c['metadata']['name']}" for c in crds] + [f"namespace {n}" for n in namespaces]
    return released, remaining, _holding(api, namespaces) if namespaces else []


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(kubeconfig=dict(type="path", required=True), context=dict(type="str"),
                           crd_suffix=dict(type="str", required=True), namespaces=dict(type="list", elements="str", default=[]),
                           wait=dict(type="float", default=120), grace=dict(type="float")),
        supports_check_mode=True,
    )
    p = module.params
    from kubernetes import config

    try:
        api = config.new_client_from_config(config_file=p["kubeconfig"], context=p["context"])
        released, remaining, holding = settle(api, p["crd_suffix"], p["namespaces"], p["wait"], module.check_mode, p["grace"])
    except Exception as exc:  # an unreachable cluster, missing rights: named
        module.fail_json(msg=f"cluster {p['context'] or p['kubeconfig']}: {exc}", released=[], remaining=[])
    if remaining:
        module.fail_json(msg=f"still there {p['wait']:.0f}s after releasing what the uninstalled controllers held: {', '.join(remaining)}"
                         + (f" ({'; '.join(holding)})" if holding else ""), released=released, remaining=remaining)
    module.exit_json(changed=bool(released), released=released, remaining=[])


if __name__ == "__main__":
    main()
