# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Results: one versioned envelope for every experiment (``fedbench.result/v1``).

An *envelope* is one experiment point: experiment, framework, testbed,
parameters (with the point's label), its samples (one per repetition) and,
once merged, their summaries. :func:`envelope` is the one way to build one.
Each finished repetition is written at once, atomically, as an envelope of
one sample under ``<results>/<run-id>/samples/`` (:func:`keep_sample`), so a
crash keeps everything finished before it. Merging the samples folder into
``results.json``, ``summary.csv`` and ``summary.md`` is a stage of the report
(:mod:`report.merge`). docs/results.md and docs/results.schema.json define it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping


SCHEMA = "fedbench.result/v1"


def host_info() -> dict[str, Any]:
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_bytes": memory, "platform": platform.platform(), "python": platform.python_version()}


def testbed_info(clusters: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    clusters = [dict(c) for c in clusters]
    kinds = sorted({c.get("testbed", "embedded") for c in clusters})
    versions = sorted({c.get("kubernetes_version", "") for c in clusters})
    return {
        "kind": kinds[0] if len(kinds) == 1 else ",".join(kinds),
        "kubernetes_version": versions[0] if len(versions) == 1 else ",".join(versions),
        "clusters": [
            {**{k: c.get(k) for k in ("name", "role", "server", "kubernetes_version", "nodes")},
             # the control-plane limits in force, as read back from the cgroups
             **({"control_plane": c["control_plane"]} if c.get("control_plane") else {}),
             # what the API server stores into (embedded clusters)
             **({"datastore": c["datastore"]} if c.get("datastore") else {})}
            for c in clusters
        ],
        "host": host_info(),
    }


def write_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write JSON so that readers see the old file or the new one, never half."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False) + "\n", mode)


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value))


def envelope(
    *, run_id: str, experiment: str, framework: str, testbed: Iterable[Mapping[str, Any]], point: str,
    parameters: Mapping[str, Any], sample: dict[str, Any],
) -> dict[str, Any]:
    """One sample of one experiment point, as it is kept: ``point`` is the
    point's label (``replicas=4``, ``open-rate20-life2``), stored with the
    parameters; ``testbed`` is the testbed's cluster facts. The sample is held,
    not copied: what the caller adds to it before keeping it is kept."""
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "experiment": experiment,
        "framework": framework,
        "testbed": testbed_info(testbed),
        "parameters": {"point": point, **parameters},
        "samples": [sample],
    }


def sample_path(results_dir: Path, envelope: Mapping[str, Any]) -> Path:
    p = envelope["parameters"]
    rep = envelope["samples"][0].get("repetition", 0)
    point = (p["point"],) if p.get("point") else (p.get("layout", ""), p.get("replicas", ""))
    name = "-".join(_slug(x) for x in (envelope["experiment"], envelope["framework"], *point, f"r{rep}"))
    return results_dir / "samples" / f"{name}.json"


def keep_sample(results_dir: str | Path, envelope: Mapping[str, Any]) -> Path:
    """Write one finished sample at once (atomically); a folder that cannot take it is named."""
    path = sample_path(Path(results_dir), envelope)
    try:
        write_atomic(path, envelope)
    except OSError as exc:
        raise ResultsError(f"cannot keep the sample in the results folder {Path(results_dir)}: {exc.strerror or exc}") from exc
    return path


def keep(results_dir: str | Path, envelope: Mapping[str, Any], *, record: bool = True, extra: Mapping[str, str] | None = None) -> str | None:
    """The one way an experiment keeps a sample: its envelope (:func:`envelope`), and any
    text files beside it (by suffix: ``.ops.csv``), unless it was told not to record
    (``record: false``, a warm-up). Returns the sample's path, or None when not recorded;
    raises ResultsError naming the results folder that cannot take it."""
    if not record:
        return None
    base = sample_path(Path(results_dir), envelope)
    try:
        for suffix, text in (extra or {}).items():
            write_text_atomic(base.with_suffix(suffix), text)
    except OSError as exc:
        raise ResultsError(f"cannot keep the sample in the results folder {results_dir}: {exc.strerror or exc}") from exc
    return str(keep_sample(results_dir, envelope))


def load_samples(results_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((results_dir / "samples").glob("*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    return out


class ResultsError(Exception):
    """A results file that cannot be read or does not fit the schema."""


def validate(document: Mapping[str, Any], schema_path: str | Path, definition: str | None = None) -> None:
    """Raise ResultsError with the first problem's path and message."""
    import jsonschema

    schema = json.loads(Path(schema_path).read_text())
    if definition:
        schema = {"$schema": schema.get("$schema"), "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise ResultsError(f"results do not fit {SCHEMA} at {where}: {first.message} ({len(errors)} problem(s) in all)")
