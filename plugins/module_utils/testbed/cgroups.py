# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CPU and memory limits for the embedded testbed's control-plane processes.

Per cluster, the inventory may size each component (``control_plane``)::

    control_plane:
      kube-apiserver: {cpus: 0.5, memory: 1Gi, cpuset: "1"}
      etcd: {cpuset: "0"}

``cpus`` is a CPU quota in cores (CFS quota over a 100 ms period), ``memory``
a hard limit (bytes or a Kubernetes quantity: 512Mi, 2Gi), ``cpuset`` the
CPUs the component may run on ("0", "0-1", "0,1"). Each limited component
gets a cgroup of its own under ``/sys/fs/cgroup/<controller>/fedbench/<work
dir key>/<cluster>/<component>`` (cgroup v1: cpu, memory, cpuset). kwokctl
starts each component through a launcher script (``write_launcher``) that
joins its groups and then becomes the binary, so every byte it allocates and
every cycle it runs count there, also when the supervisor starts it again;
every value is read back from the cgroup files, and what is read back is what
the facts and the results carry.

A memory limit below what the component needs shows as the kernel killing it
for memory while it starts (``memory.oom_control``), or, for one already
inside, as the kernel refusing the lower limit (EBUSY); either is reported
with the figure. Teardown removes every group once its processes are gone.

Standard library only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common.cgroupfs import remove_tree

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KEYS = ("cpus", "memory", "cpuset")
CONTROLLERS = ("cpu", "memory", "cpuset")
ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
# The smallest quota the kernel takes is 1 ms a period.
MIN_CPUS = 0.01
_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_CPUSET = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


class CgroupError(Exception):
    """Bad limits, or limits that cannot be set here; the message names which."""


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory_bytes: int | None = None
    cpuset: str | None = None

    def controllers(self) -> list[str]:
        return [c for c, v in (("cpu", self.cpus), ("memory", self.memory_bytes), ("cpuset", self.cpuset)) if v is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "memory_bytes": self.memory_bytes, "cpuset": self.cpuset}


# --------------------------------------------------------------------------
# Validation: every message names the variable.
# --------------------------------------------------------------------------


def _memory(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise CgroupError(f"{what} must be bytes or a quantity like 512Mi, got {value!r}")
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(k|M|G|Ki|Mi|Gi|Ti)?\s*", str(value))
        if not match:
            raise CgroupError(f"{what} must be bytes or a quantity like 512Mi, got {value!r}")
        number = int(match.group(1)) * _UNITS[match.group(2) or ""]
    if number <= 0:
        raise CgroupError(f"{what} must be above 0, got {value!r}")
    return number


def _cpus(value: Any, what: str) -> float:
    if isinstance(value, str) and re.fullmatch(r"\s*\d+m\s*", value):
        number = int(value.strip()[:-1]) / 1000
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CgroupError(f"{what} must be a number of cores like 0.5 or 500m, got {value!r}") from None
    if not number > 0:
        raise CgroupError(f"{what} must be above 0 cores, got {value!r}")
    if number < MIN_CPUS:
        raise CgroupError(f"{what} must be at least {MIN_CPUS} cores (1 ms per 100 ms period), got {value!r}")
    return round(number, 3)


def online_cpus() -> set[int]:
    try:
        return _cpu_list(Path("/sys/devices/system/cpu/online").read_text().strip())
    except OSError:
        return set(range(os.cpu_count() or 1))


def _cpu_list(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def _cpuset(value: Any, what: str, cpus: set[int]) -> str:
    text = str(value).replace(" ", "") if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not _CPUSET.match(text):
        raise CgroupError(f"{what} must be a CPU list like \"0\", \"0-1\" or \"0,2\", got {value!r}")
    wanted = _cpu_list(text)
    outside = sorted(wanted - cpus)
    if outside:
        raise CgroupError(f"{what}: CPU {', '.join(map(str, outside))} is not online here (online: {format_cpus(cpus)})")
    return format_cpus(wanted)


def format_cpus(cpus: set[int]) -> str:
    """The kernel's own form: 0-1, 0,2."""
    parts, run = [], []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [cpu]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def parse(raw: Any, cluster: str, cpus: set[int] | None = None) -> dict[str, Limits]:
    """A cluster's ``control_plane`` mapping, checked; {} when it has none."""
    if raw is None or raw == {}:
        return {}
    where = f"cluster {cluster!r}: control_plane"
    if not isinstance(raw, Mapping):
        raise CgroupError(f"{where} must be a mapping of component to limits, got {raw!r}")
    cpus = online_cpus() if cpus is None else cpus
    out: dict[str, Limits] = {}
    for component, limits in raw.items():
        if component not in COMPONENTS:
            raise CgroupError(f"{where}: unknown component {component!r} (one of {', '.join(COMPONENTS)})")
        what = f"{where}.{component}"
        if not isinstance(limits, Mapping) or not limits:
            raise CgroupError(f"{what} must be a mapping with cpus, memory and/or cpuset, got {limits!r}")
        unknown = sorted(set(limits) - set(KEYS))
        if unknown:
            raise CgroupError(f"{what}: unknown key {', '.join(map(repr, unknown))} (cpus, memory, cpuset)")
        out[component] = Limits(
            cpus=_cpus(limits["cpus"], f"{what}.cpus") if limits.get("cpus") is not None else None,
            memory_bytes=_memory(limits["memory"], f"{what}.memory") if limits.get("memory") is not None else None,
            cpuset=_cpuset(limits["cpuset"], f"{what}.cpuset", cpus) if limits.get("cpuset") is not None else None,
        )
    return out


TOPOLOGIES = ("colocated", "dedicated-etcd", "offloaded-scheduler")


def with_topology(limits: Mapping[str, Limits], topology: Any, cluster: str, cpus: set[int] | None = None) -> dict[str, Limits]:
    """A cluster's ``topology`` as CPU sets on this machine's CPUs.

    colocated: every component shares every CPU (nothing pinned).
    dedicated-etcd: etcd alone on the first CPU, the other components on the rest.
    offloaded-scheduler: kube-scheduler alone on the first CPU, the others on the rest.
    KWOK's controller and everything else on the machine stay unpinned.
    """
    where = f"cluster {cluster!r}: topology"
    if topology is None or topology == "colocated":
        return dict(limits)
    if topology not in TOPOLOGIES:
        raise CgroupError(f"{where} must be one of {', '.join(TOPOLOGIES)}, got {topology!r}")
    cpus = online_cpus() if cpus is None else cpus
    if len(cpus) < 2:
        raise CgroupError(f"{where} {topology} needs 2 CPUs or more; this machine has {len(cpus)} online")
    alone = {"dedicated-etcd": "etcd", "offloaded-scheduler": "kube-scheduler"}[topology]
    first, rest = format_cpus({min(cpus)}), format_cpus(cpus - {min(cpus)})
    out = dict(limits)
    for component in COMPONENTS:
        current = out.get(component, Limits())
        if current.cpuset is not None:
            raise CgroupError(f"{where} {topology} sets the CPUs of every component; drop control_plane.{component}.cpuset")
        out[component] = Limits(cpus=current.cpus, memory_bytes=current.memory_bytes, cpuset=first if component == alone else rest)
    return out


# --------------------------------------------------------------------------
# The cgroup files.
# --------------------------------------------------------------------------


def work_key(work_dir: Path) -> str:
    """One folder per work dir, so two checkouts never share groups."""
    return hashlib.sha256(str(Path(work_dir).resolve()).encode()).hexdigest()[:12]


def group(controller: str, key: str, cluster: str, component: str, root: Path = ROOT) -> Path:
    return root / controller / "fedbench" / key / cluster / component


def check_rights(needed: set[str], what: str, root: Path = ROOT) -> None:
    """Fail before anything starts unless the groups can be made here."""
    if (root / "cgroup.controllers").exists():
        raise CgroupError(f"{what}: this machine runs cgroup v2 only; fedbench sets control-plane limits through cgroup v1 (cpu, memory, cpuset) so far")
    for controller in sorted(needed):
        base = root / controller
        if not (base / "cgroup.procs").exists():
            raise CgroupError(f"{what} needs the cgroup v1 {controller} controller, which is not mounted at {base}")
        if not os.access(base, os.W_OK):
            raise CgroupError(f"{what} needs to create cgroups under {base}, which this user may not write (run as root)")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _read(path: Path) -> str:
    return path.read_text().strip()


def _make(path: Path, controller: str) -> None:
    """Create a group and its parents; cpuset groups start empty, so each takes its parent's CPUs and memory nodes."""
    # <controller>/fedbench/<key>/<cluster>/<component>: the four levels below the controller
    for level in (path.parents[2], path.parents[1], path.parents[0], path):
        if level.exists():
            continue
        level.mkdir()
        if controller == "cpuset":
            for name in ("cpuset.cpus", "cpuset.mems"):
                _write(level / name, _read(level.parent / name))


def prepare(key: str, cluster: str, limits: Mapping[str, Limits], root: Path = ROOT) -> dict[str, list[str]]:
    """Create each limited component's groups and set its limits (in place, for
    groups that exist). Returns, per component, its group folders. The groups
    of a component no longer limited are emptied and removed."""
    joined: dict[str, list[str]] = {}
    for component in COMPONENTS:
        wanted = limits.get(component)
        for controller in CONTROLLERS:
            path = group(controller, key, cluster, component, root)
            if wanted is None or controller not in wanted.controllers():
                if path.exists():
                    _leave(path, root / controller)
                continue
            if not path.exists():
                _make(path, controller)
            _set(path, controller, wanted, component, cluster)
            joined.setdefault(component, []).append(str(path))
    return joined


def members(folder: str | Path) -> list[int]:
    """The processes in a group."""
    try:
        return [int(p) for p in _read(Path(folder) / "cgroup.procs").split()]
    except (OSError, ValueError):
        return []


def join(pid: int, folders: list[str]) -> None:
    """Move a running process (all its threads) into groups."""
    for folder in folders:
        _write(Path(folder) / "cgroup.procs", str(pid))


def oom_kills(folder: str | Path) -> int:
    """How many times the kernel killed a process of this memory group for memory."""
    try:
        for line in _read(Path(folder) / "memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def peak_bytes(folder: str | Path) -> int | None:
    try:
        return int(_read(Path(folder) / "memory.max_usage_in_bytes"))
    except (OSError, ValueError):
        return None


LAUNCHER = """#!/bin/sh
# fedbench: {component} of cluster {cluster}. kwokctl runs this instead of the
# binary; it joins the groups listed in {groups} (control-plane limits), if
# any, then becomes {binary}, so the limits hold from its first instruction.
if [ -f {groups_q} ]; then
  while read -r group; do
    [ -n "$group" ] || continue
    echo $$ > "$group/cgroup.procs" || {{ echo "fedbench: cannot join $group" >&2; exit 97; }}
  done < {groups_q}
fi
exec {binary_q} "$@"
"""


def write_launcher(folder: Path, cluster: str, component: str, binary: str) -> Path:
    """The script kwokctl starts for one component (``<folder>/<component>``); beside
    it, the groups it joins (``<component>.cgroups``; absent: none). Moving a
    running process in instead would leave the memory it holds charged outside
    (this kernel no longer moves charges: memory.move_charge_at_immigrate)."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    # It execs a link in the work dir, so the command line still reads
    # <work dir>/.../bin/<component> (what names the process as the testbed's).
    link = folder / "bin" / component
    if not link.is_symlink() or os.readlink(link) != binary:
        link.unlink(missing_ok=True)
        link.symlink_to(binary)
    groups = folder / f"{component}.cgroups"
    script = folder / component
    text = LAUNCHER.format(component=component, cluster=cluster, groups=groups, groups_q=shlex.quote(str(groups)),
                           binary=binary, binary_q=shlex.quote(str(link)))
    if not script.exists() or script.read_text() != text:
        script.write_text(text)
    script.chmod(0o755)
    return script


def write_groups(folder: Path, joined: Mapping[str, list[str]]) -> None:
    """Which groups each component's launcher joins."""
    folder.mkdir(parents=True, exist_ok=True)
    for component in COMPONENTS:
        path = folder / f"{component}.cgroups"
        if component in joined:
            path.write_text("".join(f"{g}\n" for g in joined[component]))
        else:
            path.unlink(missing_ok=True)


def _set(path: Path, controller: str, wanted: Limits, component: str, cluster: str) -> None:
    what = f"cluster {cluster!r}: control_plane.{component}"
    if controller == "cpu":
        _write(path / "cpu.cfs_period_us", str(PERIOD_US))
        _write(path / "cpu.cfs_quota_us", str(int(round(wanted.cpus * PERIOD_US))))
    elif controller == "cpuset":
        try:
            _write(path / "cpuset.cpus", wanted.cpuset)
        except OSError as exc:
            raise CgroupError(f"{what}.cpuset {wanted.cpuset!r}: the kernel refused it ({exc.strerror})") from exc
    elif controller == "memory":
        try:
            _write(path / "memory.limit_in_bytes", str(wanted.memory_bytes))
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            used = int(_read(path / "memory.usage_in_bytes"))
            raise CgroupError(
                f"{what}.memory {wanted.memory_bytes / 2**20:.0f} MiB is below what {component} needs: "
                f"it uses {used / 2**20:.0f} MiB, and the kernel cannot reclaim it below the limit"
            ) from exc


def _leave(path: Path, top: Path) -> None:
    """Move what is in a group to the top group, then remove it."""
    try:
        for pid in _read(path / "cgroup.procs").split():
            try:
                _write(top / "cgroup.procs", pid)
            except OSError:
                pass
        path.rmdir()
    except OSError:
        pass


def read_back(key: str, cluster: str, component: str, root: Path = ROOT) -> dict[str, Any]:
    """What the cgroup files say: the limits in force, and the processes in the groups."""
    out: dict[str, Any] = {"cpus": None, "memory_bytes": None, "cpuset": None, "pids": []}
    pids: set[int] = set()
    for controller in CONTROLLERS:
        path = group(controller, key, cluster, component, root)
        if not path.exists():
            continue
        if controller == "cpu":
            quota, period = int(_read(path / "cpu.cfs_quota_us")), int(_read(path / "cpu.cfs_period_us"))
            out["cpus"] = None if quota < 0 else round(quota / period, 3)
        elif controller == "memory":
            out["memory_bytes"] = int(_read(path / "memory.limit_in_bytes"))
        else:
            out["cpuset"] = _read(path / "cpuset.cpus")
        pids.update(members(path))
    out["pids"] = sorted(pids)
    return out


def remove(key: str, cluster: str | None = None, root: Path = ROOT) -> list[str]:
    """Remove the groups of one cluster (or of the whole work dir); the ones left (still holding a process)."""
    left = []
    for controller in CONTROLLERS:
        base = root / controller / "fedbench" / key
        top = base / cluster if cluster else base
        if not top.exists():
            continue
        left += remove_tree(top)
        for parent in (base, base.parent):
            try:
                parent.rmdir()  # only once empty: another work dir's groups stay
            except OSError:
                break
    return left


def has_groups(key: str, cluster: str, root: Path = ROOT) -> bool:
    return any((root / c / "fedbench" / key / cluster).exists() for c in CONTROLLERS)


def leftovers(key: str, root: Path = ROOT) -> list[str]:
    return sorted(str(root / c / "fedbench" / key) for c in CONTROLLERS if (root / c / "fedbench" / key).exists())
