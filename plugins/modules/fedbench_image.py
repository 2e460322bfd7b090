#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fedbench_image
short_description: Build container images on this machine and load them into kind nodes (nothing is pulled)
description:
  - Builds each image of O(images) from files on this machine (binaries from
    the toolchain's cache, text, folders) over an empty base or a Debian root
    file system made by mmdebstrap from Debian's packages, as an archive
    cached under O(cache_dir) by everything that went into it; a second
    build of the same inputs is a lookup.
  - Loads each image into every node of every cluster in O(clusters) whose
    C(capabilities.image_loader) is C(kind-load), unless the node's
    containerd has it already. Other clusters are left alone (simulated
    nodes need no image; existing clusters pull from a registry of theirs).
options:
  images:
    description:
      - "Each a mapping: C(ref) (the name pods use), C(base) (C(scratch) or
        C(debian)), C(packages) (Debian packages, with base debian), C(files)
        (path in the image to a mapping with C(src) a path, or C(text) and
        C(mode), or C(dir) a mode, or C(symlink) a target), C(entrypoint),
        C(cmd), C(env), C(workdir), C(user)."
    type: list
    elements: dict
    required: true
  clusters:
    description: The testbed's cluster facts (C(testbed_clusters)).
    type: list
    elements: dict
    default: []
  cache_dir:
    description: The cache root. Defaults to C($FEDBENCH_CACHE), else C(~/.cache/fedbench).
    type: path
author: fedbench contributors
"""

EXAMPLES = r"""
- name: KubeFed's image, into every kind node
  fedbench.testbed.fedbench_image:
    images:
      - ref: fedbench.local/kubefed:v0.10.0
        files:
          /hyperfed/hyperfed: {src: "{{ toolchain_binaries.hyperfed }}"}
        user: "1001"
    clusters: "{{ testbed_clusters }}"
"""

RETURN = r"""
images:
  description: Per image, its name and archive.
  returned: always
  type: list
  elements: dict
loaded:
  description: "node: image pairs imported now (nodes that had the image are not listed)."
  returned: always
  type: list
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.build import engine, images, toolchain
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import kind

ARGUMENT_SPEC = dict(
    images=dict(type="list", elements="dict", required=True),
    clusters=dict(type="list", elements="dict", default=[]),
    cache_dir=dict(type="path"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    cache = Path(p["cache_dir"]) if p.get("cache_dir") else toolchain.cache_root()
    progress: list[str] = []
    try:
        specs = [images.ImageSpec.from_dict(spec) for spec in p["images"]]
        if module.check_mode:
            module.exit_json(changed=False, images=[{"ref": s.ref} for s in specs], loaded=[])
        built = [(spec, images.build(spec, cache, progress.append)) for spec in specs]
        targets = [c for c in p["clusters"] if (c.get("capabilities") or {}).get("image_loader") == "kind-load"]
        loaded = []
        if targets:
            eng = engine.running_project_engine() or engine.user_engine()[0]
            if eng is None:
                module.fail_json(msg="images go into kind nodes, but no Docker engine answers")
            for cluster in targets:
                for node in kind.node_containers(eng, cluster["name"], running_only=True):
                    for spec, archive in built:
                        if images.load_into_node(eng, node, archive, progress.append):
                            loaded.append(f"{node}: {spec.ref}")
        module.exit_json(changed=bool(loaded), images=[{"ref": s.ref, "archive": str(a)} for s, a in built], loaded=loaded, progress=progress)
    except (images.BuildError, engine.EngineError, kind.TestbedError) as exc:
        module.fail_json(msg=str(exc), progress=progress)


if __name__ == "__main__":
    main()
