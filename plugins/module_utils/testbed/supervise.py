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
A restart counts only when every component it started runs and answers on its
port (the testbed's configuration of the cluster names them) within
``ANSWER_TIMEOUT``; kwokctl itself then goes on waiting up to two minutes for
the cluster to be "served" and exits 0 even when it is not, so it is not
waited for: it is stopped once the components answer, or when the time is up
(a failed attempt). Attempts back off (1, 2, 4, ... up to 30 s) while a
cluster stays broken. Every attempt is appended to
``<work dir>/supervisor/restarts.jsonl``: when, which cluster and component,
the old and new pid, whether it answers again and after how long, and the
component's log; the results and the report carry them, so a run that lived
through a restart says so.

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
import socket
import subprocess
import sys
import time
from pathlib import Path

try:
    from ansible_collections.fedbench.testbed.plugins.module_utils.common.procfs import alive, cmdline, names_path
except ImportError:  # run as a standalone script, procfs.py beside it
    from procfs import alive, cmdline, names_path  # type: ignore[no-redef]

MAX_BACKOFF = 30.0
# Seconds a restarted component has to run and answer on its port.
ANSWER_TIMEOUT = 45.0
# Each component's port in the testbed's kwokctl configuration (<work dir>/configs/<cluster>.yaml, JSON).
PORT_OPTIONS = {"etcd": "etcdPort", "kube-apiserver": "kubeApiserverPort", "kube-controller-manager": "kubeControllerManagerPort",
                "kube-scheduler": "kubeSchedulerPort", "kwok-controller": "kwokControllerPort"}

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


def component_ports(config: Path) -> dict[str, int]:
    """Component -> its port on 127.0.0.1, from the cluster's configuration (none if unreadable)."""
    try:
        options = json.loads(config.read_text()).get("options", {})
    except (OSError, ValueError):
        return {}
    return {c: int(options[o]) for c, o in PORT_OPTIONS.items() if isinstance(options.get(o), int)}


def answers(port: int | None) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (no port known: nothing to ask)."""
    if not port:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def clear_stale_pids(cluster_dir: Path) -> list[str]:
    """Remove the pid files of components that do not run. kwokctl takes a component whose pid
    file names a process that answers signal 0 for running, and a killed one does until its
    parent reaps it (here pid 1 may take its time): it would not start it again, and still
    exit 0. Returns the components whose files were removed."""
    stale = [c for c, st in component_states(cluster_dir).items() if not st["running"]]
    for component in stale:
        (cluster_dir / "pids" / f"{component}.pid").unlink(missing_ok=True)
    return stale


def restart(cluster_dir: Path, name: str, down: list[str], kwokctl: str, env: dict[str, str], ports: dict[str, int],
            timeout: float = ANSWER_TIMEOUT) -> tuple[dict[str, dict], float | None, str | None]:
    """Run ``kwokctl start cluster`` and wait until every component in ``down``, and every other
    one of the cluster (kwokctl starts each that is not running, also one that exited since,
    and is stopped here only once it has), runs and answers. Returns (states after, seconds
    until they answered or None, why not)."""
    start = time.monotonic()
    clear_stale_pids(cluster_dir)
    proc = subprocess.Popen([kwokctl, "start", "cluster", "--name", name], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, umask=0o077)
    _CHILD[:] = [proc]
    took, error = None, None
    try:
        while True:
            states = component_states(cluster_dir)
            if all(states.get(c, {}).get("running") and answers(ports.get(c)) for c in {*down, *states}):
                took = time.monotonic() - start
                break
            if proc.poll() is not None and proc.returncode != 0:
                error = f"kwokctl start exited {proc.returncode}: {(proc.stdout.read() if proc.stdout else '').strip()[-500:]}"
                break
            if time.monotonic() - start >= timeout:
                waiting = sorted(c for c in {*down, *states} if not (states.get(c, {}).get("running") and answers(ports.get(c))))
                error = f"{', '.join(waiting)} did not run and answer within {timeout:.0f}s"
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:  # only waiting for the cluster to be "served": not needed
            proc.kill()
        proc.wait()
        _CHILD.clear()
    return component_states(cluster_dir), took, error


def postmaster_pid(spec: dict) -> int | None:
    """The pid a cluster's PostgreSQL's postmaster.pid names, if any."""
    try:
        return int((Path(spec["data"]) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def postgres_down(spec: dict) -> int | None:
    """The old pid when a cluster's PostgreSQL (datastore kine-postgres) is not running, else None;
    0 when there was no pid. Its postmaster.pid names the postmaster, whose command line names its data."""
    pid = postmaster_pid(spec)
    if pid is None:
        return 0
    return None if alive(pid) and spec["data"] in cmdline(pid) else pid


def restart_postgres(spec: dict, timeout: float = ANSWER_TIMEOUT) -> tuple[float | None, str | None]:
    """Start a cluster's PostgreSQL again as the testbed started it (pg_ctl, as its user), after
    whatever is left of the old one (backends exit once their postmaster is gone; any that
    linger hold its shared memory) is gone. Returns (seconds until it answered, why not)."""
    start = time.monotonic()
    marker = f"{spec['name']}:"  # its processes' titles: "postgres: <name>: checkpointer"
    left = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and int(e.name) != os.getpid() and marker in cmdline(int(e.name))]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    while any(alive(pid) for pid in left) and time.monotonic() - start < 10:
        time.sleep(0.1)
    # The old postmaster is dead (postgres_down), but until its parent reaps it PostgreSQL
    # takes its zombie for a live postmaster ("lock file postmaster.pid already exists").
    (Path(spec["data"]) / "postmaster.pid").unlink(missing_ok=True)
    extra = {"user": spec["uid"], "group": spec["gid"], "extra_groups": []} if spec.get("uid") is not None else {}
    try:
        proc = subprocess.run(spec["argv"], capture_output=True, text=True, timeout=timeout, cwd="/", stdin=subprocess.DEVNULL, **extra)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pg_ctl start: {type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        return None, f"pg_ctl start exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-400:]}"
    while time.monotonic() - start < timeout:
        if postgres_down(spec) is None and answers(int(spec["port"])):
            return time.monotonic() - start, None
        time.sleep(0.2)
    return None, f"did not answer on port {spec['port']} within {timeout:.0f}s"


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
            try:  # a kine-postgres cluster's PostgreSQL, which the testbed starts beside kwokctl's components
                pg = json.loads((work_dir / "datastores" / name / "supervise.json").read_text())
            except (OSError, ValueError):
                pg = None
            old = postgres_down(pg) if pg else None
            if old is not None:
                down["postgresql"] = {"pid": old or None, "running": False, "log": pg["log"]}
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
            ports = component_ports(work_dir / "configs" / f"{name}.yaml")
            took, error = 0.0, None
            if "postgresql" in down:  # first the datastore, then what needs it
                took, error = restart_postgres(pg)
            kwok_down = sorted(c for c in down if c != "postgresql")
            after = component_states(cluster_dir)
            if kwok_down and took is not None:
                pg_took = took
                try:
                    after, took, error = restart(cluster_dir, name, kwok_down, kwokctl, env, ports)
                except OSError as exc:
                    after, took, error = component_states(cluster_dir), None, f"{type(exc).__name__}: {exc}"
                took = None if took is None else took + pg_took
            if pg:
                after["postgresql"] = {"pid": postmaster_pid(pg)}
            # kwokctl starts every component that is not running, also one that exited
            # after this round looked: a new pid is a restart too, and goes on the record.
            for component, state in after.items():
                if component not in down and component in states and state.get("pid") != states[component]["pid"]:
                    down[component] = states[component]
            record.parent.mkdir(parents=True, exist_ok=True)
            with open(record, "a") as out:
                for component, state in sorted(down.items()):
                    now_state = after.get(component, {})
                    out.write(json.dumps({
                        "time": _iso(wall), "epoch": round(wall, 3), "cluster": name, "component": component,
                        "old_pid": state["pid"], "new_pid": now_state.get("pid"), "running": took is not None,
                        "seconds": round(took, 3) if took is not None else None,
                        "attempt": attempt, "log": state["log"], "error": error,
                    }) + "\n")
            if took is not None:
                print(f"{_iso(wall)} {name}: restarted {', '.join(sorted(down))}: answering again after {took:.1f}s (attempt {attempt})", flush=True)
            else:
                print(f"{_iso(wall)} {name}: {', '.join(sorted(down))} not back (attempt {attempt}): {error}; next try in {backoff(attempt):.0f}s",
                      flush=True)
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
