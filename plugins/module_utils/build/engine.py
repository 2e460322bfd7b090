# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container engine under the kind testbed, and what it changes on the machine.

:func:`ensure` returns an :class:`Engine`:

- the user's Docker when one answers (``docker info`` with the caller's
  environment, so ``DOCKER_HOST`` is honoured); the project then owns only
  its network and its clusters;
- otherwise, as root, a daemon of the project's own: Debian's ``docker.io``
  (installed when ``dockerd`` is missing, with services kept from starting),
  run with a configuration file of its own (the machine's
  ``/etc/docker/daemon.json`` is not read), its data root in the cache (so
  built images survive a teardown), its socket, pid file and exec root under
  ``/run/fedbench/docker``, no default bridge, address pools of its own, and
  containers' DNS pointed at 127.0.0.1 (a lookup the embedded resolver cannot
  answer goes nowhere). Where this machine's capability bounding set lacks
  capabilities that Docker asks for on ``--privileged`` (here
  CAP_SYS_RESOURCE), its default runtime is a small wrapper around runc that
  drops them from the container's and each exec's specification first.

Everything the engine or the kind nodes change on the machine is recorded
before the first change (:func:`record_host`: the sysctls that kubelets and
dockerd write, the iptables chains and policies dockerd creates) and put
back by :func:`release` once nothing of the project runs in the engine.

Not root and no Docker answering: :class:`EngineError` naming both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common import procfs, syspkgs

RUN_DIR = Path("/run/fedbench/docker")
HOST_RECORD = Path("/run/fedbench/host-before.json")

# What kind nodes' kubelets write into the machine's (shared) kernel, what
# dockerd writes, and the inotify limits several nodes need (kind's known issues).
SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "fs.inotify.max_user_instances",
    "fs.inotify.max_user_watches",
    "net.ipv4.ip_forward",
)
# Raised (never lowered) before kind nodes start: three clusters' kubelets,
# containerds and systemds exhaust the default 128 inotify instances.
INOTIFY_FLOOR = {"fs.inotify.max_user_instances": 512, "fs.inotify.max_user_watches": 524288}

DOCKER_CHAINS = {"filter": ("DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2"), "nat": ("DOCKER",)}

# Linux capability names by bit number (capability.h), to read CapBnd.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)

Reporter = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class EngineError(Exception):
    """No container engine can be had; the message says what is missing."""


@dataclass(frozen=True)
class Engine:
    host: str  # DOCKER_HOST for every docker and kind command ("" = the CLI's default)
    owned: bool  # the project started this daemon (and stops it)
    version: str  # the daemon's version
    runtime: str = "runc"  # its default OCI runtime

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        if self.host:
            env["DOCKER_HOST"] = self.host
        return env

    def facts(self) -> dict[str, object]:
        return {"host": self.host, "owned": self.owned, "version": self.version, "runtime": self.runtime}


# --------------------------------------------------------------------------
# Pure pieces (unit-tested).
# --------------------------------------------------------------------------


def bounding_set(status_text: str) -> set[str]:
    """Capability names (CAP_...) of a CapBnd line in /proc/<pid>/status."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {"CAP_" + name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1}
    raise EngineError("no CapBnd line in /proc/self/status")


def missing_capabilities(status_text: str) -> list[str]:
    """Known capabilities outside the bounding set (Docker asks for all of them on --privileged)."""
    have = bounding_set(status_text)
    return sorted("CAP_" + n for n in CAPABILITIES if "CAP_" + n not in have)


def strip_capabilities(process: dict, allowed: set[str]) -> dict:
    """An OCI process specification without capabilities outside ``allowed``."""
    caps = process.get("capabilities") or {}
    for kind, names in list(caps.items()):
        if isinstance(names, list):
            caps[kind] = [c for c in names if c in allowed]
    return process


def daemon_config(*, data_root: Path, run_dir: Path, wrapper: Path | None, pools: list[dict]) -> dict:
    """dockerd's configuration file (it reads no other)."""
    config: dict[str, object] = {
        "data-root": str(data_root),
        "exec-root": str(run_dir / "exec"),
        "pidfile": str(run_dir / "dockerd.pid"),
        "hosts": [f"unix://{run_dir / 'docker.sock'}"],
        "bridge": "none",  # no docker0 left on the machine
        "dns": ["127.0.0.1"],  # the embedded resolver forwards nothing off the machine
        "iptables": True,  # published ports (kind's API servers on 127.0.0.1) need it
        "ip-masq": False,
        "default-address-pools": pools,
        "storage-driver": "overlay2",
        "log-level": "warn",
        "features": {"buildkit": False},
    }
    if wrapper:
        config["runtimes"] = {"fedbench-runc": {"path": str(wrapper)}}
        config["default-runtime"] = "fedbench-runc"
    return config


def wrapper_script(python: str, runc: str) -> str:
    """The OCI runtime wrapper: drops capabilities outside the bounding set, then runs runc."""
    return f'''#!{python}
# fedbench: Docker asks for every capability it knows on --privileged, and
# runc fails ("unable to apply caps") for those outside this machine's
# bounding set. Drop them from the bundle's config.json (create, run) and an
# exec's process.json, then hand over to runc unchanged.
import json, os, sys
NAMES = {list(CAPABILITIES)!r}
def allowed():
    for line in open("/proc/self/status"):
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {{"CAP_" + n for i, n in enumerate(NAMES) if mask >> i & 1}}
    return set()
def fix(path, whole):
    with open(path) as f:
        spec = json.load(f)
    process = spec.get("process", {{}}) if whole else spec
    keep = allowed()
    for kind, names in list((process.get("capabilities") or {{}}).items()):
        if isinstance(names, list):
            process["capabilities"][kind] = [c for c in names if c in keep]
    with open(path + ".fedbench", "w") as f:
        json.dump(spec, f)
    os.replace(path + ".fedbench", path)
args = sys.argv[1:]
try:
    if "create" in args or "run" in args:
        bundle = args[args.index("--bundle") + 1] if "--bundle" in args else (args[args.index("-b") + 1] if "-b" in args else ".")
        fix(os.path.join(bundle, "config.json"), True)
    if "exec" in args and "--process" in args:
        fix(args[args.index("--process") + 1], False)
except (OSError, ValueError, IndexError) as exc:
    sys.stderr.write("fedbench-runc: %s\\n" % exc)
os.execv({runc!r}, ["runc"] + args)
'''


def parse_iptables(text: str) -> tuple[dict[str, str], set[str], list[str]]:
    """From ``iptables -t T -S``: policies of the built-in chains, user chains, rules."""
    policies, chains, rules = {}, set(), []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "-P":
            policies[parts[1]] = parts[2]
        elif len(parts) >= 2 and parts[0] == "-N":
            chains.add(parts[1])
        elif parts and parts[0] == "-A":
            rules.append(line)
    return policies, chains, rules


def iptables_undo(before: str, after: str, table: str) -> list[list[str]]:
    """iptables argument lists that take ``table`` from ``after`` back to
    ``before`` as far as Docker's chains go: the jumps into chains that were
    not there, those chains (flushed, deleted), and changed policies."""
    policies0, chains0, _ = parse_iptables(before)
    policies1, chains1, rules1 = parse_iptables(after)
    new = [c for c in DOCKER_CHAINS.get(table, ()) if c in chains1 and c not in chains0]
    commands: list[list[str]] = []
    for rule in rules1:
        parts = rule.split()
        chain = parts[1]
        target = parts[parts.index("-j") + 1] if "-j" in parts else ""
        if chain not in new and target in new:
            commands.append(["-t", table, "-D", *parts[1:]])
    for chain in new:
        commands.append(["-t", table, "-F", chain])
    for chain in new:
        commands.append(["-t", table, "-X", chain])
    for chain, policy in policies0.items():
        if policies1.get(chain) not in (None, policy):
            commands.append(["-t", table, "-P", chain, policy])
    return commands


# --------------------------------------------------------------------------
# The machine: what it has, what is changed, putting it back.
# --------------------------------------------------------------------------


def _run(argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 120, check: bool = False,
         input: str | None = None, what: str = "") -> subprocess.CompletedProcess:
    """Run a command; with check, fail naming it (``what``, else its argv) and what it said."""
    what = what or " ".join(argv)
    try:
        proc = subprocess.run(argv, env=dict(env) if env is not None else None, capture_output=True, text=True, timeout=timeout,
                              input=input, check=False)
    except FileNotFoundError as exc:
        raise EngineError(f"{argv[0]} is not installed ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"`{what}` did not finish within {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        raise EngineError(f"`{what}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls(names=SYSCTLS) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = sysctl_path(name).read_text().strip()
        except OSError:
            continue
    return out


def write_sysctl(name: str, value: str) -> None:
    try:
        sysctl_path(name).write_text(str(value) + "\n")
    except OSError as exc:
        raise EngineError(f"cannot set {name} = {value}: {exc}") from exc


def _iptables_state() -> dict[str, str]:
    if not shutil.which("iptables"):
        return {}
    return {table: _run(["iptables", "-t", table, "-S"]).stdout for table in DOCKER_CHAINS}


def record_host(path: Path = HOST_RECORD) -> dict:
    """Record, once, what the project may change on this machine; the first record stands."""
    if path.is_file():
        return json.loads(path.read_text())
    record = {"time": time.time(), "sysctls": read_sysctls(), "iptables": _iptables_state() if os.geteuid() == 0 else {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return record


def raise_inotify_limits(report: Reporter = _quiet) -> dict[str, str]:
    """Raise the inotify limits kind nodes need (recorded first, put back by release)."""
    raised = {}
    for name, floor in INOTIFY_FLOOR.items():
        current = read_sysctls([name]).get(name)
        if current is not None and int(current) < floor:
            if os.geteuid() != 0:
                report(f"{name} is {current}, below the {floor} several kind nodes need (only root can raise it)")
                continue
            write_sysctl(name, str(floor))
            raised[name] = f"{current} -> {floor}"
    return raised


def restore_host(path: Path = HOST_RECORD, *, iptables: bool) -> dict[str, object]:
    """Put back what :func:`record_host` recorded; returns what was changed back."""
    if not path.is_file():
        return {}
    record = json.loads(path.read_text())
    restored: dict[str, object] = {}
    now = read_sysctls(record.get("sysctls", {}).keys())
    for name, value in record.get("sysctls", {}).items():
        if now.get(name) is not None and now[name] != value:
            try:
                write_sysctl(name, value)
                restored[name] = f"{now[name]} -> {value}"
            except EngineError as exc:
                restored[name] = f"not restored: {exc}"
    if iptables and record.get("iptables"):
        after = _iptables_state()
        for table, before in record["iptables"].items():
            for args in iptables_undo(before, after.get(table, ""), table):
                proc = _run(["iptables", *args])
                restored.setdefault("iptables", []).append(" ".join(args) + ("" if proc.returncode == 0 else f" (failed: {proc.stderr.strip()})"))
    path.unlink(missing_ok=True)
    return restored


# --------------------------------------------------------------------------
# Finding or starting an engine.
# --------------------------------------------------------------------------


def _docker() -> str:
    found = shutil.which("docker")
    if not found:
        raise EngineError("the kind testbed needs the docker command line: `docker` is not on PATH (Debian's docker.io provides it)")
    return found


def server_version(env: Mapping[str, str]) -> tuple[str | None, str]:
    """(version, None) when a daemon answers with this environment, else (None, why)."""
    proc = _run([_docker(), "version", "--format", "{{.Server.Version}}"], env=env, timeout=30)
    version = proc.stdout.strip()
    if proc.returncode == 0 and version:
        return version, ""
    return None, (proc.stderr or proc.stdout).strip().splitlines()[-1:][0] if (proc.stderr or proc.stdout).strip() else f"exit {proc.returncode}"


def project_host(run_dir: Path = RUN_DIR) -> str:
    return f"unix://{run_dir / 'docker.sock'}"


def project_pid(run_dir: Path = RUN_DIR) -> int | None:
    try:
        pid = int((run_dir / "dockerd.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if procfs.alive(pid) and "dockerd" in procfs.cmdline(pid) else None


def running_project_engine(run_dir: Path = RUN_DIR) -> Engine | None:
    if project_pid(run_dir) is None:
        return None
    env = dict(os.environ, DOCKER_HOST=project_host(run_dir))
    version, _ = server_version(env)
    if not version:
        return None
    runtime = "fedbench-runc" if (run_dir / "fedbench-runc").exists() else "runc"
    return Engine(project_host(run_dir), True, version, runtime)


def user_engine() -> tuple[Engine | None, str]:
    """The Docker the user runs, if one answers (DOCKER_HOST honoured)."""
    if os.environ.get("DOCKER_HOST") == project_host():
        return None, "DOCKER_HOST names the project's own daemon"
    version, why = server_version(dict(os.environ))
    if version:
        return Engine(os.environ.get("DOCKER_HOST", ""), False, version), ""
    return None, why


# The project's own Docker daemon, where no Docker answers: Debian's.
DOCKER_PACKAGES = ("docker.io",)


def install_docker(report: Reporter = _quiet) -> None:
    """Debian's docker.io, without letting the package start any service."""
    if shutil.which("dockerd"):
        return
    try:
        syspkgs.ensure(DOCKER_PACKAGES, why="the kind testbed's Docker daemon (dockerd, containerd, runc, iptables)", report=report)
    except syspkgs.SystemPackagesError as exc:
        raise EngineError(str(exc)) from None
    if not shutil.which("dockerd"):
        raise EngineError("docker.io was installed but dockerd is not on PATH")


def _free_pools() -> list[dict]:
    """Address pools of the project's own that no route of this machine overlaps."""
    import ipaddress

    routes = []
    proc = _run(["ip", "-4", "route", "show", "table", "all"]) if shutil.which("ip") else None
    for line in (proc.stdout.splitlines() if proc else []):
        first = line.split()[0] if line.split() else ""
        if first in ("default", "broadcast", "local"):
            first = line.split()[1] if first != "default" else ""
        try:
            routes.append(ipaddress.ip_network(first, strict=False))
        except ValueError:
            continue
    for base in ("172.28.0.0/16", "172.29.0.0/16", "10.201.0.0/16", "10.202.0.0/16"):
        net = ipaddress.ip_network(base)
        if not any(net.overlaps(r) for r in routes if r.prefixlen > 0):
            return [{"base": base, "size": 24}]
    raise EngineError("every address pool fedbench would give its Docker daemon (172.28/16, 172.29/16, 10.201/16, 10.202/16) overlaps a route of this machine")


def start_daemon(cache: Path, report: Reporter = _quiet, run_dir: Path = RUN_DIR, timeout: float = 60) -> Engine:
    """Start the project's dockerd (installing docker.io first if need be)."""
    install_docker(report)
    record_host()
    root = cache / "docker"
    root.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    status = Path("/proc/self/status").read_text()
    missing = missing_capabilities(status)
    wrapper = None
    if missing:
        runc = shutil.which("runc") or "/usr/sbin/runc"
        wrapper = run_dir / "fedbench-runc"
        wrapper.write_text(wrapper_script(os.path.realpath(sys.executable), runc))
        wrapper.chmod(0o755)
        report(f"this machine's capability bounding set lacks {', '.join(missing)}: containers run through {wrapper}, which drops them")
    config = root / "daemon.json"
    config.write_text(json.dumps(daemon_config(data_root=root / "data", run_dir=run_dir, wrapper=wrapper, pools=_free_pools()), indent=1))
    log = root / "dockerd.log"
    report(f"starting the project's Docker daemon (socket {run_dir / 'docker.sock'}, data {root / 'data'}, log {log})")
    with open(log, "ab") as out:
        subprocess.Popen(
            [shutil.which("dockerd") or "dockerd", "--config-file", str(config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True,
        )
    env = dict(os.environ, DOCKER_HOST=project_host(run_dir))
    deadline = time.monotonic() + timeout
    why = ""
    while time.monotonic() < deadline:
        version, why = server_version(env)
        if version:
            return Engine(project_host(run_dir), True, version, "fedbench-runc" if wrapper else "runc")
        time.sleep(0.5)
    tail = log.read_text(errors="replace").splitlines()[-15:]
    stop_daemon(run_dir)
    raise EngineError(f"the project's Docker daemon did not answer within {timeout:.0f}s ({why}); its log {log}:\n" + "\n".join(tail))


def stop_daemon(run_dir: Path = RUN_DIR, grace: float = 30) -> list[int]:
    """Stop the project's dockerd and anything left under its run folder; returns the pids stopped."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.common import process

    stopped = []
    pid = project_pid(run_dir)
    data_root = _data_root_of(pid) if pid else None
    if pid:
        stopped += process.kill_all([pid], grace=grace)
    # dockerd bind-mounts its data root onto itself (private propagation) and
    # leaves it mounted when it dies
    for mount in _mounts_under(data_root) if data_root else []:
        _run(["umount", "-l", mount])
    # containerd and shims it started name the exec root on their command lines
    leftovers = process.processes_under(run_dir) if run_dir.exists() else {}
    stopped += process.kill_all(leftovers, grace=5)
    if run_dir.exists():
        for mount in _mounts_under(run_dir):
            _run(["umount", "-l", mount])
        shutil.rmtree(run_dir, ignore_errors=True)
    if pid:
        remove_docker_cgroups()
    return stopped


CGROUP_ROOT = Path("/sys/fs/cgroup")


def remove_docker_cgroups(root: Path = CGROUP_ROOT) -> list[str]:
    """The parent cgroups (``docker``) the project's daemon made for its
    containers, once they are empty (rmdir refuses one that is not); the ones left."""
    from ansible_collections.fedbench.testbed.plugins.module_utils.common.cgroupfs import remove_tree

    parents = sorted(root.glob("*/docker")) + ([root / "docker"] if (root / "docker").is_dir() else [])
    return [left for parent in parents for left in remove_tree(parent)]


def _data_root_of(pid: int) -> Path | None:
    """The data root of the dockerd with this pid, from its --config-file."""
    try:
        argv = procfs.argv(pid)
        config = Path(argv[argv.index("--config-file") + 1])
        return Path(json.loads(config.read_text())["data-root"])
    except (OSError, ValueError, IndexError, KeyError):
        return None


def _mounts_under(path: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(path).rstrip("/")
    points = {line.split()[1] for line in lines if len(line.split()) > 1}
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True)


def left_by_dead_daemon(cache: Path, run_dir: Path = RUN_DIR) -> list[str]:
    """What the project's daemon left when it died without stopping (a machine
    or sandbox restart): containers in its data root, its run folder, mounts of
    either. Empty while it runs, or when it stopped cleanly."""
    if project_pid(run_dir) is not None:
        return []
    data = cache / "docker" / "data"
    left = []
    containers = data / "containers"
    if containers.is_dir() and any(containers.iterdir()):
        left.append(f"{sum(1 for _ in containers.iterdir())} container(s) in {data}")
    mounts = _mounts_under(data) + _mounts_under(run_dir)
    if mounts:
        left.append(f"{len(mounts)} mount(s) under {data} and {run_dir}")
    return left


def ensure(cache: Path, report: Reporter = _quiet) -> Engine:
    """The engine the kind testbed runs on (see the module's docstring)."""
    engine = running_project_engine()
    if engine:
        return engine
    engine, why = user_engine()
    if engine:
        report(f"using the Docker engine that answers here (server {engine.version}{', DOCKER_HOST=' + engine.host if engine.host else ''})")
        record_host()
        return engine
    if os.geteuid() != 0:
        raise EngineError(
            f"the kind testbed needs a Docker engine: none answers here (docker: {why}), and running one of the "
            f"project's own (Debian's docker.io) needs root; this is uid {os.geteuid()}. Start Docker, or run as root."
        )
    return start_daemon(cache, report)


def release(engine_host: str | None = None, report: Reporter = _quiet) -> dict[str, object]:
    """After teardown: stop the project's daemon if nothing of anyone's runs in
    it, then put back what was recorded. Returns what was done."""
    done: dict[str, object] = {}
    engine = running_project_engine()
    if engine:
        env = engine.env()
        left = _run([_docker(), "ps", "-aq"], env=env).stdout.split()
        if left:
            done["daemon"] = f"left running: {len(left)} container(s) are still in it"
            return done
        done["daemon_stopped"] = stop_daemon()
    elif RUN_DIR.exists() and project_pid() is None:
        stop_daemon()  # what a daemon that died left under the run folder
    kind_nodes = _any_kind_nodes()
    if kind_nodes:
        done["host_settings"] = f"kept: kind nodes still run ({', '.join(kind_nodes[:5])})"
        return done
    done["restored"] = restore_host(iptables=True)
    return done


def _any_kind_nodes() -> list[str]:
    """kind node containers in the user's engine (the project's own is stopped by now)."""
    engine, _ = user_engine()
    if not engine:
        return []
    proc = _run([_docker(), "ps", "-q", "--filter", "label=io.x-k8s.kind.cluster", "--format", "{{.Names}}"], env=engine.env())
    return proc.stdout.split()


def docker(engine: Engine, *args: str, timeout: float = 600, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """A docker command against this engine; fails naming the command and docker's words."""
    return _run([_docker(), *args], env=engine.env(), timeout=timeout, check=check, input=input, what="docker " + " ".join(args))
