#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fedbench_report
short_description: Render a run's report.html (plots beside it) from its results.json
description:
  - Validates C(results.json) of O(results_dir) against O(schema); a file
    that does not fit fails with its path and the reason, never a traceback.
  - Draws the plots (matplotlib, Agg) into C(report/) and writes
    C(report.html), which opens in a browser with no network.
options:
  results_dir: {type: path, required: true, description: "The run's results folder."}
  schema: {type: path, required: true, description: "docs/results.schema.json."}
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Report
  fedbench.testbed.fedbench_report:
    results_dir: "{{ fedbench_results_dir }}"
    schema: "{{ fedbench_root }}/docs/results.schema.json"
"""

RETURN = r"""
report: {description: Path of report.html., returned: success, type: str}
images: {description: "The images it references, relative to it.", returned: success, type: list, elements: str}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import matplotlib  # noqa: F401
    import jinja2  # noqa: F401

    HAS_LIBS = True
except ImportError:
    HAS_LIBS = False

from ansible_collections.fedbench.testbed.plugins.module_utils import report, results


def main() -> None:
    module = AnsibleModule(argument_spec=dict(results_dir=dict(type="path", required=True), schema=dict(type="path", required=True)))
    if not HAS_LIBS:
        module.fail_json(msg=missing_required_lib("matplotlib and jinja2"))
    try:
        out = report.render(module.params["results_dir"], module.params["schema"])
    except results.ResultsError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, **out)


if __name__ == "__main__":
    main()
