# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every experiment module shares: its options (documented in doc_fragments/),
the clusters they name, the outcome a run returns, and an async module's main()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class Outcome:
    """What a run returns to its module: failed or not, a message naming the input at
    fault, and the result (with the partial sample when a sample was under way)."""

    failed: bool
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)


CLUSTER_ARG_SPEC: dict[str, dict[str, Any]] = dict(
    clusters=dict(type="list", elements="dict"),
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    run_id=dict(type="str", required=True),
    results_dir=dict(type="path", required=True),
)
CLUSTER_MUTUALLY_EXCLUSIVE = [("clusters", "kubeconfig")]


def clusters_from(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The clusters named by the module's parameters, each with name, kubeconfig, context."""
    if params.get("clusters"):
        out = []
        for index, c in enumerate(params["clusters"]):
            missing = [k for k in ("name", "kubeconfig", "context") if not c.get(k)]
            if missing:
                raise ValueError(f"clusters[{index}] lacks {', '.join(missing)}")
            out.append(dict(c))
        return out
    if params.get("kubeconfig") and params.get("context"):
        return [{"name": params["context"], "kubeconfig": params["kubeconfig"], "context": params["context"], "role": "member"}]
    raise ValueError("give clusters (the testbed's facts), or kubeconfig and context")


# Options of the API-machinery experiment modules beside the cluster ones
# (documented in each module).
EXPERIMENT_ARG_SPEC: dict[str, dict[str, Any]] = dict(
    cluster=dict(type="str"),
    framework=dict(type="str", default="native"),
    repetition=dict(type="int", default=1),
    record=dict(type="bool", default=True),
    testbed=dict(type="list", elements="dict", default=[]),
)


# A module that reports progress as it goes also takes a file to append it to,
# so that a play running it in the background (async) can show how far it is
# (the role background_job follows such a file).
PROGRESS_ARG_SPEC: dict[str, dict[str, Any]] = dict(progress_file=dict(type="path"))


def progress_reporter(lines: list[str], progress_file: str | None = None):
    """Keep each progress line, and append it to ``progress_file`` at once if there is one."""
    if not progress_file:
        return lines.append

    def report(line: str) -> None:
        lines.append(line)
        with open(progress_file, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    return report


def run_async_module(argument_spec: dict[str, Any], run: Any, *, with_progress: bool = False, changed: Any = None) -> None:
    """The ``main()`` of an experiment module: parameters → ``run`` → its Outcome.

    ``run(params, check_mode=..., [report=...])`` returns an Outcome; its
    result becomes the module's return values (a ``warning`` in it becomes
    a warning). ``changed(result, check_mode)`` decides ``changed`` (default:
    anything but check mode). The experiments drive their clients with
    asyncio and aiohttp, which the module needs.
    """
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib

    try:
        import aiohttp  # noqa: F401

        has_aiohttp = True
    except ImportError:
        has_aiohttp = False
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=CLUSTER_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    if not has_aiohttp:
        module.fail_json(msg=missing_required_lib("aiohttp"))
    progress: list[str] = []
    kwargs = {"report": progress_reporter(progress, module.params.get("progress_file"))} if with_progress else {}
    outcome = run(module.params, check_mode=module.check_mode, **kwargs)
    extra = {"progress": progress} if with_progress else {}
    if outcome.failed:
        module.fail_json(msg=outcome.message, **extra, **outcome.result)
    result = dict(outcome.result)
    if result.get("warning"):
        module.warn(result.pop("warning"))
    is_changed = changed(result, module.check_mode) if changed else not module.check_mode
    module.exit_json(changed=is_changed, **extra, **result)
