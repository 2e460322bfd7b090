# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  clusters:
    description:
      - The clusters the experiment runs on, as the testbed's facts describe
        them (C(testbed_clusters)); each needs C(name), C(kubeconfig) and C(context).
      - Give this, or O(kubeconfig) and O(context) for a single cluster.
    type: list
    elements: dict
  kubeconfig:
    description: A kubeconfig, for a single cluster named by O(context).
    type: path
  context:
    description: The context in O(kubeconfig).
    type: str
  run_id:
    description: The run this result belongs to.
    type: str
    required: true
  results_dir:
    description:
      - The run's results folder. Each finished sample is written there at
        once, atomically (a temporary file renamed into place), as
        C(samples/<experiment>-<framework>-<layout>-<replicas>-r<repetition>.json),
        so a crash keeps every sample finished before it.
    type: path
    required: true
"""
