# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: fedbench_hints
type: aggregate
short_description: Say what to do when a fedbench run stops before it finishes
description:
  - When a playbook of the project (anything but the teardown) fails or is
    interrupted (Ctrl-C), says that what the run started may still be
    running and how to tear it down, and where the samples that finished are
    and how to report them (marked partial).
  - Enabled in the project's ansible.cfg. Quiet under C(make bench), which
    reports what finished and tears the testbed down itself.
requirements:
  - enabled in callbacks_enabled
"""

import atexit
import os
import sys

from ansible import context
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fedbench.testbed.fedbench_hints"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._playbook = ""
        self._finished = False
        self._failed = False
        self._started_testbed = False
        self._run_id = os.environ.get("FEDBENCH_RUN_ID", "")
        atexit.register(self._at_exit)

    # What the run is and how far it got.
    def v2_playbook_on_start(self, playbook):
        # one ansible-playbook call may run several playbooks: each one starts unfinished
        self._playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")
        self._finished = False

    def v2_playbook_on_play_start(self, play):
        name = play.get_name() or ""
        if name.startswith(("Provision", "Create", "Frameworks", "Experiments")):
            self._started_testbed = True

    def v2_runner_on_ok(self, result):
        facts = (result._result or {}).get("ansible_facts") or {}
        if facts.get("fedbench_run_id"):
            self._run_id = str(facts["fedbench_run_id"])

    def v2_playbook_on_stats(self, stats):
        self._finished = True
        self._failed = any(stats.summarize(host).get("failures") or stats.summarize(host).get("unreachable") for host in stats.processed)
        if self._failed:
            self._hint("failed")

    def _at_exit(self):
        if not self._finished:
            self._hint("was interrupted")

    def _hint(self, how: str) -> None:
        # make bench reports what finished and tears down itself (and says so).
        if not self._started_testbed or self._playbook == "teardown.yml" or os.environ.get("FEDBENCH_UNDER_MAKE"):
            return
        inventory = " ".join(f"-i {i}" for i in (context.CLIARGS.get("inventory") or [])) or "-i <your inventory>"
        run = self._run_id or "<the run id: a folder under results/>"
        text = (
            f"\nfedbench: the run {how} before it finished. What it started may still be running; tear it down with\n"
            f"    ansible-playbook playbooks/teardown.yml {inventory}      (make clean does the same)\n"
            f"The samples that finished stay in the run's samples/ folder; report them, marked partial, with\n"
            f"    ansible-playbook playbooks/report.yml {inventory} -e fedbench_run_id={run} -e \"report_partial='the run {how}.'\"\n"
        )
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
