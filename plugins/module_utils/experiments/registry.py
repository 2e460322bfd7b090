# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run side of the experiment registry: what runs, when, under which tags.

One :class:`Run` per experiment role (``roles/experiment_<name>``). It says
when the role runs: once per listed placement framework (``per="placement"``),
once per listed data plane (``per="dataplane"``), or once when an inventory
switch (``setting``, with its ``default``) is on; the capabilities every
cluster of the testbed must offer (``needs``: names of the facts contract's
``capabilities``, never a testbed's name); whether the testbed is checked whole
first; the role whose ``teardown`` entry point teardown runs; and the result
names (``produces``) the report registry (``report/registry.py``) shows.

``playbooks/experiments.yml`` runs :func:`plan`; ``playbooks/teardown.yml``,
the inventory check's known settings, the results schema's experiment names
and the tags in the README are read from here. Adding an experiment is one
entry below, its role and its report module (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

PER = ("placement", "dataplane", "switch")


@dataclass(frozen=True)
class Run:
    name: str  # its tag, and its role: roles/experiment_<name>
    per: str  # placement | dataplane | switch
    produces: tuple[str, ...]  # the experiment names of its results (report registry, results schema)
    setting: str | None = None  # per="switch": the inventory's fedbench_* switch
    default: bool = False  # the switch when the inventory does not set it
    tags: tuple[str, ...] = ()  # tags beside experiments, its name and its subject
    needs: tuple[str, ...] = ()  # capabilities every cluster must have (truthy)
    healthy: bool = True  # check that the testbed is whole first
    teardown: str | None = None  # a role whose tasks/teardown.yml teardown runs

    @property
    def role(self) -> str:
        return f"experiment_{self.name}"


RUNS: tuple[Run, ...] = (
    Run("lifecycle", per="placement", produces=("lifecycle",)),
    Run("burst", per="dataplane", produces=("burst",), healthy=False),
    Run("apimachinery", per="switch", setting="fedbench_apimachinery", default=True, tags=("scale",),
        produces=("churn", "informer", "density"), teardown="hollow_nodes"),
    # One cluster per variant, started as local processes: the testbed must run its control planes here.
    Run("sizing", per="switch", setting="fedbench_sizing", default=False, needs=("local_dir",), healthy=False,
        produces=("sizing",)),
)


def names() -> list[str]:
    return [run.name for run in RUNS]


def settings() -> list[str]:
    """The inventory switches the experiments read."""
    return [run.setting for run in RUNS if run.setting]


def produced() -> list[str]:
    """Every experiment name a result may carry."""
    return [name for run in RUNS for name in run.produces]


def teardowns() -> list[str]:
    return sorted({run.teardown for run in RUNS if run.teardown})


TRUE = ("1", "true", "yes", "on", "y", "t")
FALSE = ("0", "false", "no", "off", "n", "f")


def as_bool(value: Any) -> bool | None:
    """A switch's value as Ansible reads a bool (``-e x=false`` arrives as a string); None if it is none."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    return None


def switched_on(value: Any, default: bool) -> bool:
    """An inventory switch, its default when unset (a value that is no bool was refused by the inventory check)."""
    if value is None:
        return default
    return bool(as_bool(value))


def plan(frameworks: list[str], dataplanes: list[str], switches: Mapping[str, Any], clusters: list[Mapping[str, Any]],
         skipped: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The includes of a run, in registry order: role, subject (the framework or data plane it
    measures, or none), tags, whether to check the testbed first; and, for an experiment whose
    needs a cluster does not meet, why it does not run (``skip``)."""
    skipped = skipped or {}
    out = []
    for run in RUNS:
        if run.per == "placement":
            subjects: list[str | None] = [f for f in frameworks if f not in skipped]
        elif run.per == "dataplane":
            subjects = list(dataplanes)
        elif switched_on(switches.get(run.setting), run.default):
            subjects = [None]
        else:
            subjects = []
        lacking = [f"cluster {c.get('name')!r} lacks {need}" for c in clusters for need in run.needs
                   if not (c.get("capabilities") or {}).get(need)]
        for subject in subjects:
            out.append({
                "name": run.name, "role": run.role, "subject": subject, "healthy": run.healthy,
                "tags": ["experiments", run.name, *run.tags, *([subject] if subject else [])],
                "skip": f"experiment {run.name} needs {', '.join(run.needs)} of every cluster: {'; '.join(lacking)}" if lacking else "",
            })
    return out
