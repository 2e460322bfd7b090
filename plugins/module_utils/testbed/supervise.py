# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeps the embedded testbed's components running, and says when it had to act.

On a real node the kubelet restarts a control-plane component that exits (as
kube-controller-manager and kube-scheduler do by design when they lose their
leader lease, e.g. after an etcd stall); here this supervisor does. Every
second it reads each cluster's pid files (kwokctl's ``pids/<component>.pid``)
and, when a component is gone, runs ``kwokctl start cluster``, which starts
only the components that are not running, with kwokctl's own command lines.
Attempts back off (1, 2, 4, ... up to 30 s) while a cluster stays broken.
Every restart is appended to ``<work dir>/supervisor/restarts.jsonl``: when,
which cluster and component, the old and new pid, whether it runs again, and
the component's log; the results and the report carry them, so a run that
lived through a restart says so.

This file and ``common/procfs.py`` need the standard library only: the testbed
copies both into its work dir and runs this one from there, detached, so it
outlives the play.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

try:
    from ansible_collections.fedbench.testbed.plugins.module_utils.common.procfs import alive, cmdline, names_path
except ImportError:  # run as a standalone script, procfs.py beside it
    from procfs import alive, cmdline, names_path  # type: ignore[no-redef]

MAX_BACKOFF = 30.0

# The kwokctl it is running, if any: stopping the supervisor stops that too, so
# nothing starts a component after teardown.
_CHILD: list[subprocess.Popen] = []


def owned(cluster_dir: Path, command: str) -> bool:
    """Whether a command line is one of the cluster's components: it names the
    cluster's folder (kwokctl's flags do), or its launchers' links (kine's,
    on a kine datastore: <work dir>/launchers/<cluster>/bin/)."""
    launchers = Path(cluster_dir).parents[2] / "launchers" / Path(cluster_dir).name / "bin"
    return names_path(command, cluster_dir) or str(launchers) + "/" in command


def component_states(cluster_dir: Path) -> dict[str, dict]:
    """Per component of one cluster: its pid, whether it runs (a live process from
    the cluster's own folder: a recycled pid does not count), and its log."""
    out = {}
    for pid_file in sorted((cluster_dir / "pids").glob("*.pid")):
        try:
            pid: int | None = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = None
        running = pid is not None and alive(pid) and owned(cluster_dir, cmdline(pid))
        out[pid_file.stem] = {"pid": pid, "running": running, "log": str(cluster_dir / "logs" / f"{pid_file.stem}.log")}
    return out


def read_restarts(path: Path) -> list[dict]:
    """Every restart recorded (a torn last line is skipped)."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def backoff(attempt: int, cap: float = MAX_BACKOFF) -> float:
    """Seconds before the next attempt after ``attempt`` consecutive ones (1, 2, 4, ... cap)."""
    return min(cap, 2.0 ** max(0, attempt - 1))


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def run(work_dir: Path, kwokctl: str, interval: float = 1.0, settle: float = 60.0) -> None:
    root = work_dir / "kwok"
    record = work_dir / "supervisor" / "restarts.jsonl"
    env = dict(os.environ, KWOK_WORKDIR=str(root), KUBECONFIG=str(root / "kubeconfig"), KUBECACHEDIR=str(root / "kubectl-cache"))
    attempts: dict[str, int] = {}
    next_try: dict[str, float] = {}
    healthy_since: dict[str, float] = {}
    while True:
        for cluster_dir in sorted((root / "clusters").glob("*")):
            name = cluster_dir.name
            if not (cluster_dir / "kwok.yaml").exists():
                continue
            states = component_states(cluster_dir)
            down = {c: s for c, s in states.items() if not s["running"]}
            now = time.monotonic()
            if not down:
                # Healthy for a while: the next fault starts the backoff afresh.
                if now - healthy_since.setdefault(name, now) >= settle:
                    attempts.pop(name, None)
                continue
            healthy_since.pop(name, None)
            if now < next_try.get(name, 0.0):
                continue
            attempt = attempts[name] = attempts.get(name, 0) + 1
            wall = time.time()
            try:
                proc = subprocess.Popen([kwokctl, "start", "cluster", "--name", name], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, umask=0o077)
                _CHILD[:] = [proc]
                try:
                    output, _ = proc.communicate(timeout=180)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    output, _ = proc.communicate()
                finally:
                    _CHILD.clear()
                rc, error = proc.returncode, (output or "").strip()[-500:] if proc.returncode else None
            except OSError as exc:
                rc, error = None, f"{type(exc).__name__}: {exc}"
            after = component_states(cluster_dir)
            record.parent.mkdir(parents=True, exist_ok=True)
            with open(record, "a") as out:
                for component, state in sorted(down.items()):
                    now_state = after.get(component, {})
                    out.write(json.dumps({
                        "time": _iso(wall), "epoch": round(wall, 3), "cluster": name, "component": component,
                        "old_pid": state["pid"], "new_pid": now_state.get("pid"), "running": bool(now_state.get("running")),
                        "attempt": attempt, "log": state["log"], "kwokctl_exit": rc, "error": error,
                    }) + "\n")
            print(f"{_iso(wall)} {name}: restarted {', '.join(sorted(down))} (attempt {attempt}, kwokctl exit {rc})", flush=True)
            next_try[name] = time.monotonic() + backoff(attempt)
        time.sleep(interval)


def _stop(*_: object) -> None:
    for child in list(_CHILD):
        try:
            child.kill()
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
    sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--kwokctl", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    os.umask(0o077)
    run(args.work_dir.resolve(), args.kwokctl, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
