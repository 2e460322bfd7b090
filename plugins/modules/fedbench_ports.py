# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fedbench_ports
short_description: Claim the ports of what runs beside the clusters, per work dir, or release them
description:
  - For each named setting, a setting left at 0 gets a block of free consecutive ports on 127.0.0.1,
    the same for the work dir on every later run, claimed machine-wide so that another checkout's run
    never picks it (files under C(/tmp/fedbench-ports), or C($FEDBENCH_PORT_CLAIMS)).
  - A setting given a port is checked instead, before anything starts on it - free, or held by this
    work dir's own processes; otherwise it fails naming the setting.
  - With O(state=absent), releases every claim of the work dir (teardown).
options:
  work_dir: {type: path, required: true, description: The work dir the ports belong to.}
  ports:
    type: dict
    default: {}
    description: Setting name -> C({count, given}); C(given) 0 (or absent) claims a free block of C(count) ports.
  state: {type: str, choices: [present, absent], default: present, description: Claim, or release every claim.}
author: fedbench contributors
"""

EXAMPLES = r"""
- fedbench.testbed.fedbench_ports:
    work_dir: "{{ fedbench_work_dir }}"
    ports:
      kubefed_healthz_port: {count: 1, given: "{{ kubefed_healthz_port }}"}
  register: kubefed_ports
"""

RETURN = r"""
ports: {description: "Setting name -> the first port of its block.", returned: state=present, type: dict}
released: {description: Ports released., returned: state=absent, type: list}
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import ports

ARGUMENT_SPEC = dict(
    work_dir=dict(type="path", required=True),
    ports=dict(type="dict", default={}),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    if module.check_mode:
        module.exit_json(changed=False, ports={n: int((w or {}).get("given") or 0) for n, w in p["ports"].items()}, released=[])
    try:
        if p["state"] == "absent":
            released = ports.release(Path(p["work_dir"]))
            module.exit_json(changed=bool(released), released=released)
        claimed = ports.claim(Path(p["work_dir"]), {n: dict(w or {}) for n, w in p["ports"].items()})
    except (ports.PortError, ValueError, TypeError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ports=claimed)


if __name__ == "__main__":
    main()
