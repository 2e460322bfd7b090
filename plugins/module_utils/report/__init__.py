# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's report (:mod:`report.page`) and the comparison of two runs
(:mod:`report.comparison`); both iterate the experiment registry
(:mod:`report.registry`) and name no experiment."""

from __future__ import annotations

from ansible_collections.fedbench.testbed.plugins.module_utils.report.comparison import (  # noqa: F401
    across_testbeds, compare, compare_html, compare_markdown, compare_sections, testbed_of,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.report.page import headline_rows, load, render  # noqa: F401
