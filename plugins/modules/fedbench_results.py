#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fedbench_results
short_description: Merge a run's sample files into results.json, summary.csv and summary.md
description:
  - Reads every C(samples/*.json) of O(results_dir), validates each against
    O(schema), groups them by experiment point, computes the summaries
    (count, mean, stdev, min, p50, p90, p99, max) and writes C(results.json)
    (validated again), C(summary.csv) and C(summary.md) beside them.
  - A file that does not fit the schema fails with its path in the document
    and the reason, never a traceback.
options:
  results_dir:
    description: "The run results folder (with its samples/)."
    type: path
    required: true
  run_id:
    description: "The run."
    type: str
    required: true
  schema:
    description: The JSON Schema (docs/results.schema.json).
    type: path
    required: true
  restarts_file:
    description:
      - The embedded testbed supervisor's record of restarted components
        (C(<work dir>/supervisor/restarts.jsonl)); those from the run's first
        sample on go into results.json (C(restarts)), the summary and the
        report. Missing or empty - none.
    type: path
  partial:
    description:
      - Why the run did not finish, when it did not (C(make bench) passes it
        after a failed run). results.json, the summary and the report then
        say the run is partial, with this reason.
    type: str
    default: ""
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Aggregate the run
  fedbench.testbed.fedbench_results:
    results_dir: "{{ fedbench_results_dir }}"
    run_id: "{{ fedbench_run_id }}"
    schema: "{{ fedbench_root }}/docs/results.schema.json"
"""

RETURN = r"""
results_json:
  type: str
  returned: success
  description: Path of results.json.
summary_csv:
  type: str
  returned: success
  description: Path of summary.csv.
summary_md:
  type: str
  returned: success
  description: Path of summary.md.
markdown:
  type: str
  returned: success
  description: The headline table.
points:
  type: int
  returned: success
  description: Experiment points.
samples:
  type: int
  returned: success
  description: Samples in all.
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import jsonschema  # noqa: F401

    HAS_JSONSCHEMA = True
except ImportError:
    HAS_JSONSCHEMA = False

from pathlib import Path

from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise

ARGUMENT_SPEC = dict(
    results_dir=dict(type="path", required=True),
    run_id=dict(type="str", required=True),
    schema=dict(type="path", required=True),
    restarts_file=dict(type="path"),
    partial=dict(type="str", default=""),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    if not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib("jsonschema"))
    p = module.params
    try:
        restarts = supervise.read_restarts(Path(p["restarts_file"])) if p["restarts_file"] else []
        out = merge.aggregate(p["results_dir"], p["schema"], p["run_id"], restarts, partial=p["partial"])
    except (results.ResultsError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, **out)


if __name__ == "__main__":
    main()
