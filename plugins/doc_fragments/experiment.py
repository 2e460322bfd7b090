# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The options the API-machinery experiment modules share
    # (common.runner.EXPERIMENT_ARG_SPEC).
    DOCUMENTATION = r"""
options:
  cluster: {type: str, description: "Which of O(clusters) to use (by name); the first when omitted."}
  framework: {type: str, default: native, description: "What is measured (for the results)."}
  repetition: {type: int, default: 1, description: "Which repetition."}
  record: {type: bool, default: true, description: "Write the sample to O(results_dir)."}
  testbed: {type: list, elements: dict, default: [], description: "The testbed's facts, recorded in the result."}
"""
