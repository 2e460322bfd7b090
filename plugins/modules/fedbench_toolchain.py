#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fedbench_toolchain
short_description: Provide pinned testbed binaries (cache, PATH, download or Go build)
description:
  - Resolves each named binary at its pinned version, in this order for
    O(source=auto) - the per-version cache, a binary on PATH that reports
    that version, the official release download verified by its SHA-256,
    and a build from source through the Go module proxy.
  - Results are cached per version under O(cache_dir), outside the checkout.
  - A build of Kubernetes takes tens of minutes on a small machine; run the
    C(bin/fedbench-toolchain) command first to watch it (C(make toolchain)
    does), or run this module with C(async) to see it poll.
options:
  names:
    description: The binaries to provide.
    type: list
    elements: str
    default: [kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, kwokctl]
  source:
    description: Where binaries may come from.
    type: str
    choices: [auto, path, download, build]
    default: auto
  versions:
    description: Pinned versions of the testbed's own groups (kubernetes, etcd, kwok, helm, kine), each like v1.2.3.
    type: dict
    default: {}
  recipes:
    description:
      - Frameworks' build recipes, as data (see C(toolchain.Recipe)) - name,
        version, Go module, binaries with how each reports its version,
        replaces, ldflags, official downloads, assets. O(names) may then name
        their binaries; their assets come back in RV(assets).
      - A framework role passes its own (e.g. C(kubefed_toolchain_recipe)).
    type: list
    elements: dict
    default: []
  cache_dir:
    description: The cache root. Defaults to C($FEDBENCH_CACHE), else C(~/.cache/fedbench).
    type: path
  local_only:
    description:
      - Only look at what is on this machine (the cache, PATH); download and
        build nothing, and list what is missing in RV(missing) instead of failing.
      - The toolchain role calls it so first, so a warm cache costs no polling.
    type: bool
    default: false
  assets:
    description:
      - Files shipped in a binary's Go module to copy into the cache and
        return in RV(assets). C(kwok_manifests) is KWOK's CRDs and its Helm
        charts (controller, fast stages), for KWOK inside a cluster.
      - A recipe's assets come whenever one of its binaries is named.
    type: list
    elements: str
    choices: [kwok_manifests]
    default: []
  progress_file:
    description:
      - Also append each progress line (which component, how long so far,
        packages compiled) to this file as it comes, so that a play that runs
        the module in the background can show how far the build is.
    type: path
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Provide the embedded testbed's binaries
  fedbench.testbed.fedbench_toolchain:
    source: build
    versions:
      kubernetes: v1.36.1
      etcd: v3.6.8
      kwok: v0.8.0
  register: toolchain
"""

RETURN = r"""
binaries:
  description: Path of each binary, by name.
  returned: always
  type: dict
  sample: {kube-apiserver: /root/.cache/fedbench/bin/kube-apiserver/v1.36.1/kube-apiserver}
missing:
  description: With O(local_only), the binaries that would have to be downloaded or built.
  returned: always
  type: list
  elements: str
assets:
  description: Files that come with a binary's module, by name (a recipe's assets, C(kwok_manifests)).
  returned: success
  type: dict
details:
  description: Per binary, its version, path and where it came from (cache, path, download, build).
  returned: always
  type: list
  elements: dict
"""

from dataclasses import asdict
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.common.runner import progress_reporter
from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain

ARGUMENT_SPEC = dict(
    names=dict(type="list", elements="str", default=list(toolchain.TESTBED_COMPONENTS)),
    source=dict(type="str", choices=list(toolchain.SOURCES), default="auto"),
    versions=dict(type="dict", default={}),
    recipes=dict(type="list", elements="dict", default=[]),
    cache_dir=dict(type="path"),
    local_only=dict(type="bool", default=False),
    assets=dict(type="list", elements="str", default=[], choices=["kwok_manifests"]),
    progress_file=dict(type="path"),
)



def _assets(names: list[str], versions: toolchain.Versions, cache: Path, wanted: list[str] = (),
            recipes: list[toolchain.Recipe] = ()) -> dict[str, str]:
    """Files that come with a binary's Go module (a recipe's assets, KWOK's manifests)."""
    assets: dict[str, str] = {}
    for recipe in recipes:
        if set(recipe.binaries) & set(names):
            assets.update(toolchain.recipe_assets(recipe, cache))
    if "kwok_manifests" in wanted:
        assets["kwok_manifests"] = str(toolchain.kwok_manifests(versions, cache))
    return assets


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    lines: list[str] = []
    try:
        unknown = sorted(set(p["versions"]) - set(toolchain.GROUPS))
        if unknown:
            raise toolchain.ToolchainError(
                f"versions has unknown group(s): {', '.join(unknown)} (the testbed's are {', '.join(toolchain.GROUPS)}; "
                "a framework pins its version in its own recipe)"
            )
        versions = toolchain.Versions(**p["versions"])
        recipes = [toolchain.Recipe.from_dict(r) for r in p["recipes"]]
        cache = Path(p["cache_dir"]) if p["cache_dir"] else toolchain.cache_root()
        if p["local_only"] or module.check_mode:
            # What is already here; fetch and build nothing.
            if p["source"] not in toolchain.SOURCES:
                raise toolchain.ToolchainError(f"unknown source {p['source']!r}")
            found, missing = toolchain.find_local(p["names"], versions=versions, source=p["source"], cache=cache, recipes=recipes)
            module.exit_json(
                changed=False,
                binaries={k: v.path for k, v in found.items()},
                details=[asdict(v) for v in found.values()],
                missing=[c.name for c in missing],
                assets=_assets(p["names"], versions, cache, p["assets"], recipes) if not missing and not module.check_mode else {},
            )
        resolved = toolchain.ensure(p["names"], versions=versions, source=p["source"], cache=cache,
                                    report=progress_reporter(lines, p["progress_file"]), recipes=recipes)
    except toolchain.ToolchainError as exc:
        module.fail_json(msg=str(exc), progress=lines)
    try:
        assets = _assets(p["names"], versions, cache, p["assets"], recipes)
    except toolchain.ToolchainError as exc:
        module.fail_json(msg=str(exc))
    changed = any(r.source in ("download", "build") for r in resolved.values())
    module.exit_json(
        changed=changed,
        binaries={k: v.path for k, v in resolved.items()},
        details=[asdict(v) for v in resolved.values()],
        missing=[],
        assets=assets,
        progress=lines,
    )


if __name__ == "__main__":
    main()
