#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: managed_process
short_description: A local process with a pid file, a log and a health check
description:
  - With O(state=started), starts O(argv) detached (its own session, so it
    outlives the play), writes its pid to O(pid_file), appends its output to
    O(log_file) and waits until O(health_url) answers 2xx. A process already
    running from O(pid_file) and healthy is left alone.
  - With O(state=stopped), sends SIGTERM, then SIGKILL, to the pid in
    O(pid_file), but only if that process still runs O(argv[0]) (a recycled
    pid is never killed).
  - A port in O(ports) already taken on 127.0.0.1 fails before the start,
    naming the port.
options:
  name: {type: str, required: true, description: "What the process is, for messages."}
  argv: {type: list, elements: str, required: true, description: "The command line; the first element is an absolute path."}
  pid_file: {type: path, required: true, description: "Where its pid is kept."}
  log_file: {type: path, required: true, description: "Where its output goes."}
  health_url: {type: str, default: "", description: "An http URL on 127.0.0.1 that answers 2xx once it is up."}
  ready_pattern: {type: str, default: "", description: "For a program with no health endpoint - a regular expression its log shows once it is up (searched in what it writes after this start)."}
  ports: {type: list, elements: int, default: [], description: "Ports it will listen on."}
  env: {type: dict, default: {}, description: "Extra environment."}
  state: {type: str, choices: [started, stopped], default: started, description: "Started or stopped."}
  timeout: {type: int, default: 60, description: "Seconds to become healthy."}
  restart: {type: bool, default: false, description: "Stop a running process first (its configuration changed)."}
  detach: {type: bool, default: false, description: "Start it through C(setsid --fork), for programs that stop when their parent exits (Envoy)."}
author: fedbench contributors
"""

EXAMPLES = r"""
- name: KubeFed's controller-manager against the host cluster
  fedbench.testbed.managed_process:
    name: kubefed-controller-manager
    argv: [/path/kubefed-controller-manager, --kubeconfig=/path/host, --healthz-addr=127.0.0.1:32480]
    pid_file: /repo/.work/kubefed/controller-manager.pid
    log_file: /repo/.work/kubefed/controller-manager.log
    health_url: http://127.0.0.1:32480/healthz
"""

RETURN = r"""
pid:
  description: The process id (null once stopped).
  returned: always
  type: int
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import Managed, ProcessError

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    argv=dict(type="list", elements="str", required=True),
    pid_file=dict(type="path", required=True),
    log_file=dict(type="path", required=True),
    health_url=dict(type="str", default=""),
    ready_pattern=dict(type="str", default=""),
    ports=dict(type="list", elements="int", default=[]),
    env=dict(type="dict", default={}),
    state=dict(type="str", choices=["started", "stopped"], default="started"),
    timeout=dict(type="int", default=60),
    restart=dict(type="bool", default=False),
    detach=dict(type="bool", default=False),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    proc = Managed(p["name"], p["argv"], Path(p["pid_file"]), Path(p["log_file"]), p["health_url"], p["env"], p["ports"], p["detach"],
                   ready_pattern=p["ready_pattern"])
    if module.check_mode:
        running = proc.pid() is not None
        module.exit_json(changed=running != (p["state"] == "started"), pid=proc.pid())
    try:
        if p["state"] == "started" and p["restart"]:
            proc.stop()
        changed = proc.start(p["timeout"]) if p["state"] == "started" else proc.stop()
        changed = changed or (p["state"] == "started" and p["restart"])
    except ProcessError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, pid=proc.pid())


if __name__ == "__main__":
    main()
