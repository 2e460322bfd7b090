# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory check.

``names | fedbench.testbed.inventory_problems(frameworks, dataplanes, example, clusters, testbed, switches)``:
what is wrong with the inventory's ``fedbench_*`` settings, one message each,
naming the setting (an unknown key with the closest known one, a framework
that is not registered with the ones that are, an experiment switch that is
not a bool, a cluster's field of the wrong type, what a listed framework needs
of the clusters).
"""

from __future__ import annotations

import difflib

from ansible_collections.fedbench.testbed.plugins.module_utils import frameworks
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import registry as experiments
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded, specs

# Every fedbench_* variable the project reads (the inventory's, the plays' paths,
# the run id) - anything else that starts with fedbench_ is a misspelling.
KNOWN = (
    "fedbench_testbed",
    "fedbench_clusters",
    "fedbench_frameworks",
    "fedbench_dataplanes",
    # The experiments' switches (fedbench_apimachinery, ...), from their registry.
    *experiments.settings(),
    "fedbench_example",
    "fedbench_root",
    "fedbench_work_dir",
    "fedbench_results_root",
    "fedbench_results_dir",
    "fedbench_run_id",
    "fedbench_run_frameworks",
    "fedbench_run_dataplanes",
    "fedbench_skipped",
    "fedbench_tool_env",
    # The framework or data plane one experiment include measures (playbooks/experiments.yml).
    "fedbench_experiment_subject",
)


def _listed(value, setting):
    if value is None:
        return [], []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        return [], [f"{setting} must be a list of names, got {value!r}"]
    return list(value), []


def inventory_problems(names, listed_frameworks=None, listed_dataplanes=None, example=False, clusters=None, testbed=None, switches=None):
    problems = []
    if example:
        problems.append("this inventory is an example (fedbench_example: true): name your own clusters' kubeconfig and context, then remove fedbench_example")
    for name in sorted(set(names) - set(KNOWN)):
        close = difflib.get_close_matches(name, KNOWN, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"unknown setting {name}{hint}; fedbench reads {', '.join(KNOWN[:6])}")
    for setting, value in sorted((switches or {}).items()):
        if setting in experiments.settings() and experiments.as_bool(value) is None:
            problems.append(f"{setting} must be true or false, got {value!r}")
    placement, dataplanes = frameworks.names("placement"), frameworks.names("dataplane")
    for setting, value, valid, other, other_setting in (
        ("fedbench_frameworks", listed_frameworks, placement, dataplanes, "fedbench_dataplanes"),
        ("fedbench_dataplanes", listed_dataplanes, dataplanes, placement, "fedbench_frameworks"),
    ):
        items, bad = _listed(value, setting)
        problems += bad
        for item in items:
            if item in valid:
                continue
            if item in other:
                problems.append(f"{setting} lists {item!r}, which is a {'data plane' if item in dataplanes else 'placement framework'}: list it in {other_setting}")
                continue
            close = difflib.get_close_matches(str(item), valid, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{setting} lists {item!r}, which is not registered{hint}; registered: {', '.join(valid) or 'none'}")
    for index, cluster in enumerate(clusters if isinstance(clusters, list) else []):
        if not isinstance(cluster, dict):
            continue
        label = f"cluster {cluster.get('name')!r}" if cluster.get("name") else f"fedbench_clusters[{index}]"
        problems += specs.field_problems(cluster, label)
        for key in ("control_plane", "topology"):
            if cluster.get(key) and testbed not in (None, "embedded"):
                problems.append(f"{label}: {key} limits the embedded testbed's processes only; fedbench_testbed is {testbed!r}")
        for key in ("datastore", "datastore_port"):
            if cluster.get(key) not in (None, "etcd") and testbed not in (None, "embedded"):
                problems.append(f"{label}: {key} chooses the embedded testbed's datastore only; fedbench_testbed is {testbed!r}")
    if testbed == "embedded" and isinstance(clusters, list) and clusters and not problems:
        # The embedded testbed's own reading of the clusters (ports that collide,
        # datastores, control-plane limits), here before anything is built.
        try:
            embedded.parse_specs(clusters)
        except embedded.TestbedError as exc:
            problems.append(str(exc))
    if isinstance(clusters, list) and clusters:
        # What each framework this run installs needs of the clusters (the defaults when the inventory lists none).
        wanted = (listed_frameworks if isinstance(listed_frameworks, list) else frameworks.defaults("placement")) + (
            listed_dataplanes if isinstance(listed_dataplanes, list) else frameworks.defaults("dataplane"))
        problems += frameworks.problems(wanted, [c for c in clusters if isinstance(c, dict)])
    return problems


class FilterModule:
    def filters(self):
        return {"inventory_problems": inventory_problems}
