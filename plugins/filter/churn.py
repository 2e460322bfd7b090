# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The name of a churn point, as the configmap_churn module names it."""

from __future__ import annotations

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments.churn import point_name


def churn_point(point):
    """A point of experiment_apimachinery_churn (mode, rate, lifetime, workers) -> its name."""
    return point_name(point["mode"], point.get("rate"), point.get("lifetime"), point.get("workers"))


class FilterModule:
    def filters(self):
        return {"churn_point": churn_point}
