# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded testbed: real control planes as local processes via kwokctl.

Each cluster is etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and KWOK's controller, started by ``kwokctl`` with its ``binary`` runtime and
bound to 127.0.0.1. Nodes are KWOK's simulated ("hollow") nodes.

Everything a cluster owns lives under ``<work_dir>/kwok`` (``KWOK_WORKDIR``):
configuration, PKI, etcd data, logs and the pid files of its processes. That
is what lets :func:`teardown` find a cluster an interrupted run left behind.
Kubeconfigs are copied, mode 0600, to ``<work_dir>/kubeconfigs/<name>``.

No Ansible imports here; ``embedded_cluster`` and the tests call it directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import cgroups, datastore, supervise
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.ports import COMPONENT_BAND, allocate_ports, free_ports  # noqa: F401 - re-exported
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.specs import ROLES, NAME_RE, ClusterFacts, ClusterSpec, TestbedError, parse_common  # noqa: F401 - re-exported
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.kwok import (  # noqa: F401 - re-exported
    COMPONENT_PORTS, Binaries, Kwokctl, _pids_from_files, _write_private, kwokctl_config, private,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.health import (  # noqa: F401 - re-exported
    api_get, healthy, node_ready, ready_nodes, server_version, wait_for,
)
from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import (
    LOOPBACK,
    kill_all,
    listeners_of,
    port_in_use,
    processes_under,
)

CONTEXT_PREFIX = "kwok-"  # kwokctl names contexts kwok-<cluster>

Reporter = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def capabilities(cluster_dir: Path, simulator: bool) -> dict[str, Any]:
    """An embedded cluster's capabilities (the facts contract, docs/testbed.md)."""
    return {
        # Nodes and pods are simulated: no container ever runs, so a framework
        # whose controllers are pods runs them here as local processes instead.
        "simulated_nodes": True,
        # The testbed runs KWOK's controller for this cluster (hollow nodes go to it).
        "node_simulator": simulator,
        # The cluster's own files on this machine: pid files, logs, PKI.
        "local_dir": str(cluster_dir),
        # How an image reaches the nodes: simulated nodes need none.
        "image_loader": "none",
        # The project created the cluster and may change it (label its nodes, ...).
        "owned": True,
        # The API server as other clusters' components reach it.
        "peer_server": None,
    }


# --------------------------------------------------------------------------
# Validation: every message names the input at fault.
# --------------------------------------------------------------------------


# A kube-controller-manager --controllers entry: a name, -name (off), or *.
CONTROLLER_RE = re.compile(r"^(\*|-?[a-z][a-z-]*[a-z])$")


def parse_specs(raw: Any, *, default_nodes: int = 4) -> list[ClusterSpec]:
    """Validate the inventory's list of clusters: the common fields (specs.py), then the
    embedded testbed's own (simulator, control-plane limits and topology, datastore)."""
    parsed: list[ClusterSpec] = []
    items = list(parse_common(raw, default_nodes=default_nodes, max_nodes=5000))
    seen_ports = {common.apiserver_port: common.name for common, _ in items}
    for common, item in items:
        name, nodes = common.name, common.nodes
        simulator = item.get("simulator", True)
        if not isinstance(simulator, bool):
            raise TestbedError(f"cluster {name!r}: simulator must be true or false, got {simulator!r}")
        if not simulator and nodes:
            raise TestbedError(f"cluster {name!r}: nodes must be 0 with simulator: false (nothing would make them Ready), got {nodes}")
        try:
            limits = cgroups.with_topology(cgroups.parse(item.get("control_plane"), name), item.get("topology"), name)
        except cgroups.CgroupError as exc:
            raise TestbedError(str(exc)) from exc
        try:
            store = datastore.parse(item.get("datastore"), item.get("datastore_port"), name)
        except datastore.DatastoreError as exc:
            raise TestbedError(str(exc)) from exc
        if store.port is not None:
            if store.port in seen_ports:
                raise TestbedError(f"cluster {name!r}: datastore_port {store.port} is also the port of cluster {seen_ports[store.port]!r}")
            seen_ports[store.port] = name
        scheduler = item.get("scheduler", True)
        if not isinstance(scheduler, bool):
            raise TestbedError(f"cluster {name!r}: scheduler must be true or false, got {scheduler!r}")
        if not scheduler and nodes:
            raise TestbedError(f"cluster {name!r}: nodes must be 0 with scheduler: false (no pod would ever be placed), got {nodes}")
        controllers = item.get("controllers") or []
        if not isinstance(controllers, list) or not all(isinstance(c, str) and CONTROLLER_RE.match(c) for c in controllers):
            raise TestbedError(f"cluster {name!r}: controllers must be a list of kube-controller-manager controller names "
                               f"(like namespace, garbagecollector, -ttl, *), got {controllers!r}")
        parsed.append(ClusterSpec(name=name, role=common.role, nodes=nodes, apiserver_port=common.apiserver_port, simulator=simulator,
                                  control_plane=limits, datastore=store, scheduler=scheduler, controllers=tuple(controllers)))
    return parsed


# --------------------------------------------------------------------------
# The testbed.
# --------------------------------------------------------------------------


class EmbeddedTestbed:
    def __init__(
        self,
        *,
        work_dir: str | Path,
        binaries: Binaries | None,
        kube_version: str = "",
        report: Reporter = _quiet,
        start_timeout: float = 180,
        nodes_timeout: float = 120,
        disable_qps_limits: bool = False,
    ):
        self.work_dir = Path(work_dir).resolve()
        # Teardown works without binaries: pid files and /proc find the processes.
        self.kwokctl = Kwokctl(binaries.kwokctl if binaries else "", self.work_dir / "kwok")
        self.binaries = binaries
        self.kube_version = kube_version
        self.report = report
        self.start_timeout = start_timeout
        self.nodes_timeout = nodes_timeout
        self.disable_qps_limits = disable_qps_limits

    # -- paths ----------------------------------------------------------
    def kubeconfig_path(self, name: str) -> Path:
        return self.work_dir / "kubeconfigs" / name

    def config_path(self, name: str) -> Path:
        return self.work_dir / "configs" / f"{name}.yaml"

    @property
    def supervisor_dir(self) -> Path:
        return self.work_dir / "supervisor"

    # -- supervision ------------------------------------------------------
    def supervisor_pid(self) -> int | None:
        try:
            pid = int((self.supervisor_dir / "supervisor.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        script = str(self.supervisor_dir / "supervise.py")
        return pid if supervise.alive(pid) and script in supervise.cmdline(pid) else None

    def start_supervisor(self) -> bool:
        """Run the supervisor (detached, from a copy in the work dir) unless it runs."""
        if self.supervisor_pid() is not None:
            return False
        if self.binaries is None:
            raise TestbedError("supervising clusters needs the toolchain's kwokctl")
        self.supervisor_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.supervisor_dir, 0o700)  # its log names the clusters' files; nobody else's to read
        import pkgutil

        import inspect

        from ansible_collections.fedbench.testbed.plugins.module_utils.common import procfs

        for module in (supervise, procfs):  # the script and the one file it imports
            package, name = module.__name__.rsplit(".", 1)
            try:
                source = pkgutil.get_data(package, f"{name}.py")
            except OSError:
                source = None
            _write_private(self.supervisor_dir / f"{name}.py", source or inspect.getsource(module).encode())
        script = self.supervisor_dir / "supervise.py"
        with os.fdopen(os.open(self.supervisor_dir / "supervisor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, str(script), "--work-dir", str(self.work_dir), "--kwokctl", self.binaries.kwokctl],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            )
        _write_private(self.supervisor_dir / "supervisor.pid", f"{proc.pid}\n".encode())
        return True

    def stop_supervisor(self) -> bool:
        pid = self.supervisor_pid()
        (self.supervisor_dir / "supervisor.pid").unlink(missing_ok=True)
        if pid is None:
            return False
        kill_all([pid])
        return True

    def restarts(self) -> list[dict[str, Any]]:
        """Every restart the supervisor recorded in this work dir."""
        return supervise.read_restarts(self.supervisor_dir / "restarts.jsonl")

    def unhealthy(self, names: Iterable[str] | None = None) -> list[str]:
        """Why a cluster is not healthy: every component must run (and its API server
        answer /readyz). One line per problem, naming cluster, component and log."""
        problems = []
        for name in (names if names is not None else self.kwokctl.clusters()):
            cdir = self.kwokctl.cluster_dir(name)
            states = supervise.component_states(cdir)
            if not states:
                problems.append(f"cluster {name!r}: no components recorded under {cdir / 'pids'}")
            restarts = [r for r in self.restarts() if r.get("cluster") == name]
            for component, state in sorted(states.items()):
                if not state["running"]:
                    tried = [r for r in restarts if r.get("component") == component]
                    problems.append(
                        f"cluster {name!r}: {component} is not running"
                        + (f" (the supervisor restarted it {len(tried)} time(s), last at {tried[-1]['time']})" if tried else "")
                        + f"; log: {state['log']}"
                    )
            store = datastore.recorded(self.work_dir, name)
            if store is not None and store.kind == "kine-postgres" and self.postgres(name, store.port or 0).postmaster() is None:
                problems.append(f"cluster {name!r}: its PostgreSQL (datastore kine-postgres, port {store.port}) is not running; "
                                f"log: {datastore.pg_home(self.cgroup_key, name) / 'postgres.log'}")
            port = self.recorded_port(name)
            if states and all(s["running"] for s in states.values()) and (port is None or not healthy(cdir, port)):
                problems.append(f"cluster {name!r}: its API server does not answer /readyz on {LOOPBACK}:{port}; log: {cdir / 'logs' / 'kube-apiserver.log'}")
        return problems

    # -- state ----------------------------------------------------------
    def exists(self, name: str) -> bool:
        return (self.kwokctl.cluster_dir(name) / "kwok.yaml").exists()

    def recorded_port(self, name: str) -> int | None:
        """The apiserver port a cluster was created with (from its kwok.yaml)."""
        path = self.kwokctl.cluster_dir(name) / "kwok.yaml"
        try:
            match = re.search(r"kubeApiserverPort:\s*(\d+)", path.read_text())
        except OSError:
            return None
        return int(match.group(1)) if match else None

    def running(self, name: str) -> bool:
        port = self.recorded_port(name)
        return port is not None and healthy(self.kwokctl.cluster_dir(name), port)

    # -- up -------------------------------------------------------------
    def check_ports(self, specs: list[ClusterSpec]) -> None:
        for spec in specs:
            if self.exists(spec.name) and self.recorded_port(spec.name) == spec.apiserver_port and (
                    self.running(spec.name) or spec.apiserver_port in listeners_of(processes_under(self.kwokctl.cluster_dir(spec.name)))):
                continue  # ours: serving there, or held by its own API server while something it needs (its PostgreSQL) is down
            if port_in_use(spec.apiserver_port):
                raise TestbedError(
                    f"cluster {spec.name!r}: apiserver_port {spec.apiserver_port} is already in use on {LOOPBACK}; "
                    "choose another port in the inventory or stop what holds it"
                )
        for spec in specs:
            port = spec.datastore.port
            if port is None or self.postgres(spec.name, port).postmaster() is not None:
                continue  # a free one is chosen, or ours already serves there
            if port_in_use(port):
                raise TestbedError(
                    f"cluster {spec.name!r}: datastore_port {port} (its PostgreSQL) is already in use on {LOOPBACK}; "
                    "choose another port in the inventory, or leave datastore_port out for a free one"
                )

    def _check_datastores(self, specs: list[ClusterSpec]) -> list[ClusterSpec]:
        """Refuse what a datastore needs and this machine lacks, before anything starts;
        the specs with PostgreSQL's port of a cluster that exists filled in."""
        assert self.binaries is not None
        out = []
        for spec in specs:
            store = spec.datastore
            if store.kine and not self.binaries.kine:
                raise TestbedError(f"cluster {spec.name!r}: datastore {store.kind} needs the kine binary, and the toolchain gave none "
                                   "(toolchain component kine)")
            if store.kind == "kine-postgres":
                try:
                    datastore.pg_programs(spec.name)
                    datastore.pg_account(spec.name)
                except datastore.DatastoreError as exc:
                    raise TestbedError(str(exc)) from exc
                was = datastore.recorded(self.work_dir, spec.name) if self.exists(spec.name) else None
                if store.port is None and was is not None and was.kind == store.kind:
                    spec = replace(spec, datastore=was)
            out.append(spec)
        return out

    def up(self, specs: list[ClusterSpec]) -> tuple[list[ClusterFacts], bool]:
        """Create (or confirm) every cluster, in parallel. Returns (facts, changed)."""
        if self.binaries is None:
            raise TestbedError("creating clusters needs the toolchain's binaries")
        specs = self._check_datastores(specs)
        self.check_ports(specs)
        for spec in specs:
            if spec.control_plane:
                needed = {c for limits in spec.control_plane.values() for c in limits.controllers()}
                try:
                    cgroups.check_rights(needed, f"cluster {spec.name!r}: control_plane")
                except cgroups.CgroupError as exc:
                    raise TestbedError(str(exc)) from exc
        for sub in ("kwok", "kubeconfigs", "configs"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.work_dir / "kubeconfigs", 0o700)
        new = [s for s in specs if not self.exists(s.name)]
        # A new cluster's PostgreSQL with no port of its own gets one from the same pool.
        unported = [s.name for s in new if s.datastore.kind == "kine-postgres" and s.datastore.port is None]
        pool_ports = allocate_ports(len(COMPONENT_PORTS) * len(new) + len(unported),
                                    avoid=[s.apiserver_port for s in specs] + [s.datastore.port for s in specs if s.datastore.port])
        pg_ports = dict(zip(unported, pool_ports[len(COMPONENT_PORTS) * len(new):]))
        specs = [replace(s, datastore=replace(s.datastore, port=pg_ports[s.name])) if s.name in pg_ports else s for s in specs]
        new = [s for s in specs if not self.exists(s.name)]
        ports = {
            spec.name: dict(zip(COMPONENT_PORTS, pool_ports[i * len(COMPONENT_PORTS):(i + 1) * len(COMPONENT_PORTS)]))
            for i, spec in enumerate(new)
        }
        # kwokctl starts components here; the supervisor must not start them too.
        self.stop_supervisor()
        limited = []
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
                results = list(pool.map(lambda s: self._up_one(s, ports.get(s.name)), specs))
            problems = self._repair([s.name for s in specs])
            if problems:
                raise TestbedError("; ".join(problems))
            for spec, (facts, _) in zip(specs, results):
                facts.control_plane, moved = self.apply_limits(spec)
                limited.append(moved)
        except TestbedError:
            # Limits a cluster cannot hold (memory below what a component needs):
            # the limited clusters this call created go again, nothing runs half-sized.
            for spec in new:
                if not spec.control_plane:
                    continue
                if self.exists(spec.name):
                    self.down([spec.name], restart_supervisor=False)
                else:  # kwokctl failed before it recorded the cluster
                    kill_all(processes_under(self.kwokctl.cluster_dir(spec.name)))
                    cgroups.remove(self.cgroup_key, spec.name)
                    shutil.rmtree(self.launcher_dir(spec.name), ignore_errors=True)
            raise
        self.start_supervisor()
        return [facts for facts, _ in results], any(changed for _, changed in results) or any(limited)

    @property
    def cgroup_key(self) -> str:
        return cgroups.work_key(self.work_dir)

    def launcher_dir(self, name: str) -> Path:
        return self.work_dir / "launchers" / name

    def _launched_binaries(self, spec: ClusterSpec, ports: Mapping[str, int]) -> Binaries:
        """The binaries as kwokctl runs them: each control-plane component through
        its launcher, which joins the component's cgroups (if any) first. On a
        kine datastore, etcd's launcher becomes kine, on etcd's port."""
        assert self.binaries is not None
        folder = self.launcher_dir(spec.name)
        scripts = {
            field_name: str(cgroups.write_launcher(folder, spec.name, component, getattr(self.binaries, field_name)))
            for component, field_name in (("etcd", "etcd"), ("kube-apiserver", "kube_apiserver"),
                                          ("kube-controller-manager", "kube_controller_manager"), ("kube-scheduler", "kube_scheduler"))
        }
        if spec.datastore.kine:
            backend = "SQLite" if spec.datastore.kind == "kine-sqlite" else f"PostgreSQL on {LOOPBACK}:{spec.datastore.port}"
            scripts["etcd"] = str(datastore.write_kine_launcher(
                folder, spec.name, self.binaries.kine, f"{LOOPBACK}:{ports['etcdPort']}",
                datastore.endpoint(self.work_dir, spec.name, spec.datastore), backend))
        return replace(self.binaries, **scripts)

    def postgres(self, name: str, port: int) -> datastore.Postgres:
        return datastore.Postgres(self.work_dir, self.cgroup_key, name, port, self.report)

    def _start_datastore(self, spec: ClusterSpec) -> bool:
        """The cluster's PostgreSQL (kine-postgres), started unless it runs; True if it was started."""
        if spec.datastore.kind != "kine-postgres":
            return False
        assert spec.datastore.port is not None
        try:
            return self.postgres(spec.name, spec.datastore.port).start()
        except datastore.DatastoreError as exc:
            raise TestbedError(str(exc)) from exc

    def datastore_facts(self, spec: ClusterSpec) -> dict[str, Any]:
        """What the results say of the cluster's datastore: kind, versions, port."""
        assert self.binaries is not None
        from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain

        if not spec.datastore.kine:
            return {"kind": "etcd", "etcd_version": toolchain.binary_version(self.binaries.etcd, toolchain.COMPONENTS["etcd"]) or ""}
        out: dict[str, Any] = {"kind": spec.datastore.kind,
                               "kine_version": toolchain.binary_version(self.binaries.kine, toolchain.COMPONENTS["kine"]) or ""}
        if spec.datastore.kind == "kine-postgres":
            out.update(postgresql_version=self.postgres(spec.name, spec.datastore.port or 0).version(), port=spec.datastore.port)
        else:
            out["file"] = str(datastore.folder(self.work_dir, spec.name) / "state.db")
        return out

    def _prepare_limits(self, spec: ClusterSpec) -> dict[str, list[str]]:
        """Make (or update in place) the cluster's groups and tell the launchers."""
        try:
            joined = cgroups.prepare(self.cgroup_key, spec.name, spec.control_plane)
        except cgroups.CgroupError as exc:
            raise TestbedError(str(exc)) from exc
        except OSError as exc:
            raise TestbedError(f"cluster {spec.name!r}: control_plane: cannot set its cgroups ({exc.strerror})") from exc
        cgroups.write_groups(self.launcher_dir(spec.name), joined)
        return joined

    def memory_shortfall(self, spec: ClusterSpec) -> str | None:
        """A limited component the kernel killed for memory: the message, with the figures."""
        for component, limits in spec.control_plane.items():
            if limits.memory_bytes is None:
                continue
            folder = cgroups.group("memory", self.cgroup_key, spec.name, component)
            kills = cgroups.oom_kills(folder)
            if kills:
                peak = cgroups.peak_bytes(folder) or 0
                return (f"cluster {spec.name!r}: control_plane.{component}.memory {limits.memory_bytes / 2**20:.0f} MiB is below what "
                        f"{component} needs: the kernel killed it for memory {kills} time(s) (it reached {peak / 2**20:.0f} MiB)")
        return None

    def apply_limits(self, spec: ClusterSpec) -> tuple[dict[str, Any], bool]:
        """Give each limited component of one cluster its cgroups and read the limits
        back; (what is in force per component, whether anything changed).

        kwokctl starts every component through its launcher, which joins the
        component's groups first. A running component with a new memory limit
        is stopped and started again inside, so all its memory counts there; one
        with only new CPU limits is moved in as it runs.
        """
        cdir = self.kwokctl.cluster_dir(spec.name)
        key = self.cgroup_key
        if not spec.control_plane and not cgroups.has_groups(key, spec.name):
            cgroups.write_groups(self.launcher_dir(spec.name), {})
            return {}, False
        before = {c: cgroups.read_back(key, spec.name, c) for c in cgroups.COMPONENTS}
        joined = self._prepare_limits(spec)
        restarted = False
        for component, folders in joined.items():
            pid = supervise.component_states(cdir).get(component, {}).get("pid")
            outside = [f for f in folders if pid is None or pid not in cgroups.members(f)]
            if not outside:
                continue
            if pid is not None and not any("/memory/" in f for f in outside):
                # CPU time and CPUs carry no history: the running process moves in.
                try:
                    cgroups.join(pid, outside)
                except OSError as exc:
                    raise TestbedError(f"cluster {spec.name!r}: control_plane.{component}: cannot move it into its cgroups ({exc.strerror})") from exc
            else:
                # The memory it holds would stay charged outside: it starts again inside.
                self._start_inside(spec, component, folders, pid)
            restarted = True
        after = {c: cgroups.read_back(key, spec.name, c) for c in cgroups.COMPONENTS}
        states = supervise.component_states(cdir)
        in_force = {}
        for component, wanted in spec.control_plane.items():
            got = after[component]
            for field_name, value in wanted.as_dict().items():
                if value is not None and got[field_name] != value:
                    raise TestbedError(f"cluster {spec.name!r}: control_plane.{component}.{field_name}: set {value!r}, but the cgroup reads {got[field_name]!r}")
            pid = states.get(component, {}).get("pid")
            if pid not in got["pids"]:
                raise TestbedError(f"cluster {spec.name!r}: control_plane.{component}: its process {pid} is not in its cgroups")
            in_force[component] = {k: got[k] for k in ("cpus", "memory_bytes", "cpuset")}
        if spec.control_plane:
            self.report(f"{spec.name}: control-plane limits in force (read back): " + "; ".join(
                f"{c} " + ", ".join(f"{k} {v}" for k, v in limits.items() if v is not None) for c, limits in in_force.items()))
        return in_force, restarted or before != after

    def _start_inside(self, spec: ClusterSpec, component: str, folders: list[str], pid: int | None) -> None:
        """Stop one component and let kwokctl start it again, through its launcher."""
        cdir = self.kwokctl.cluster_dir(spec.name)
        self.report(f"{spec.name}: starting {component} again inside its cgroups, so its limits hold from its start")
        if pid is not None:
            kill_all([pid], grace=30)
        supervise.clear_stale_pids(self.kwokctl.cluster_dir(spec.name))  # else kwokctl may take a dead one's zombie for running
        self.kwokctl.run("start", "cluster", "--name", spec.name, timeout=self.start_timeout + 30, check=False)

        def inside() -> bool:
            shortfall = self.memory_shortfall(spec)
            if shortfall:
                raise TestbedError(shortfall)
            state = supervise.component_states(cdir).get(component, {})
            return bool(state.get("running")) and state.get("pid") in cgroups.members(folders[0])

        try:
            wait_for(inside, timeout=30, what=f"cluster {spec.name!r}: {component} running inside its cgroups")
            wait_for(lambda: healthy(cdir, spec.apiserver_port), timeout=self.start_timeout, what=f"cluster {spec.name!r} API server /readyz")
        except TestbedError as exc:
            raise TestbedError(self.memory_shortfall(spec) or f"{exc}; log: {cdir / 'logs' / (component + '.log')}") from exc

    def _up_one(self, spec: ClusterSpec, ports: Mapping[str, int] | None) -> tuple[ClusterFacts, bool]:
        changed = False
        start = time.monotonic()
        cdir = self.kwokctl.cluster_dir(spec.name)
        was = (datastore.recorded(self.work_dir, spec.name) or datastore.Datastore()) if self.exists(spec.name) else None
        if was is not None and (self.recorded_port(spec.name) != spec.apiserver_port or was != spec.datastore):
            what = "another apiserver port" if self.recorded_port(spec.name) != spec.apiserver_port else f"another datastore ({was.kind}, port {was.port})"
            self.report(f"{spec.name}: exists with {what}; recreating")
            self.down([spec.name])
            fresh = allocate_ports(len(COMPONENT_PORTS) + 1, avoid=[spec.apiserver_port] + ([spec.datastore.port] if spec.datastore.port else []))
            ports = dict(zip(COMPONENT_PORTS, fresh))
            if spec.datastore.kind == "kine-postgres" and spec.datastore.port is None:
                spec = replace(spec, datastore=replace(spec.datastore, port=fresh[-1]))
        if self.exists(spec.name) and self._start_datastore(spec):
            self.report(f"{spec.name}: its PostgreSQL was not running; started it again")
            changed = True
        stopped = [c for c, st in supervise.component_states(cdir).items() if not st["running"]] if self.exists(spec.name) else []
        if self.exists(spec.name) and (not self.running(spec.name) or stopped):
            self.report(f"{spec.name}: exists but {', '.join(stopped) or 'its API server'} is not running; starting it")
            supervise.clear_stale_pids(self.kwokctl.cluster_dir(spec.name))  # else kwokctl may take a dead one's zombie for running
            self.kwokctl.run("start", "cluster", "--name", spec.name, "--wait", f"{self.start_timeout:.0f}s", timeout=self.start_timeout + 30)
            changed = True
        if not self.exists(spec.name):
            config = self.config_path(spec.name)
            if ports is None:
                ports = dict(zip(COMPONENT_PORTS, allocate_ports(len(COMPONENT_PORTS), avoid=[spec.apiserver_port])))
            if spec.control_plane:
                self._prepare_limits(spec)  # so every component starts inside its groups
            datastore.record(self.work_dir, spec.name, spec.datastore)
            self._start_datastore(spec)
            config.write_text(kwokctl_config(spec, self._launched_binaries(spec, ports), self.kube_version, ports, self.disable_qps_limits))
            self.report(f"{spec.name}: starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok on {LOOPBACK}:{spec.apiserver_port}")
            try:
                self.kwokctl.run(
                    "create", "cluster", "--name", spec.name, "--config", str(config),
                    "--wait", f"{self.start_timeout:.0f}s", timeout=self.start_timeout + 30,
                )
            except TestbedError as exc:
                raise TestbedError(self.memory_shortfall(spec) or f"cluster {spec.name!r}: {exc}") from exc
            changed = True
        try:
            wait_for(lambda: healthy(cdir, spec.apiserver_port), timeout=self.start_timeout, what=f"cluster {spec.name!r} API server /readyz")
            changed |= self._scale_nodes(spec)
            wait_for(
                lambda: ready_nodes(cdir, spec.apiserver_port) == (spec.nodes, spec.nodes),
                timeout=self.nodes_timeout,
                what=f"cluster {spec.name!r}: {spec.nodes} Ready nodes",
            )
            version = server_version(cdir, spec.apiserver_port)
        except TestbedError as exc:
            raise TestbedError(self.memory_shortfall(spec) or f"{exc} (logs: {cdir / 'logs'})") from exc
        private(cdir, self.kwokctl.kubeconfig)
        kubeconfig = self.kubeconfig_path(spec.name)
        changed |= self._write_kubeconfig(cdir / "kubeconfig.yaml", kubeconfig)
        self.report(f"{spec.name}: ready with {spec.nodes} nodes in {time.monotonic() - start:.1f}s")
        facts = ClusterFacts(
            name=spec.name,
            role=spec.role,
            kubeconfig=str(kubeconfig),
            context=CONTEXT_PREFIX + spec.name,
            server=f"https://{LOOPBACK}:{spec.apiserver_port}",
            kubernetes_version=version,
            nodes=spec.nodes,
            capabilities=capabilities(cdir, spec.simulator),
            datastore=self.datastore_facts(spec),
        )
        return facts, changed

    def _repair(self, names: list[str], attempts: int = 3) -> list[str]:
        """Start what is not running (a component can exit while its cluster starts, as
        kube-scheduler does when it loses an early leader election); the problems left."""
        for attempt in range(attempts):
            down = {n: [c for c, st in supervise.component_states(self.kwokctl.cluster_dir(n)).items() if not st["running"]] for n in names}
            down = {n: cs for n, cs in down.items() if cs}
            if not down:
                break
            for name, components in down.items():
                self.report(f"{name}: {', '.join(components)} not running after the start; starting again (attempt {attempt + 1})")
                supervise.clear_stale_pids(self.kwokctl.cluster_dir(name))  # else kwokctl may take a dead one's zombie for running
                self.kwokctl.run("start", "cluster", "--name", name, timeout=self.start_timeout + 30, check=False)
            time.sleep(1)
        return self.unhealthy(names)

    def _scale_nodes(self, spec: ClusterSpec) -> bool:
        cdir = self.kwokctl.cluster_dir(spec.name)
        _, total = ready_nodes(cdir, spec.apiserver_port)
        if total == spec.nodes:
            return False
        self.report(f"{spec.name}: scaling simulated nodes {total} -> {spec.nodes}")
        self.kwokctl.run("scale", "node", "--name", spec.name, "--replicas", str(spec.nodes), timeout=self.nodes_timeout)
        return True

    @staticmethod
    def _write_kubeconfig(source: Path, dest: Path) -> bool:
        text = source.read_text()
        if dest.exists() and dest.read_text() == text and (dest.stat().st_mode & 0o777) == 0o600:
            return False
        _write_private(dest, text.encode())
        return True

    # -- drivers: what creates clusters of its own here ---------------------
    @contextlib.contextmanager
    def driver(self, name: str):
        """Record this process as one that creates clusters in the work dir (the
        sizing sweep does, one per variant), so that teardown stops it first:
        run in the background, it outlives an interrupted play, and would
        otherwise start its next cluster after the teardown."""
        folder = self.work_dir / "drivers"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.pid"
        path.write_text(f"{os.getpid()}\n")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    def stop_drivers(self) -> list[int]:
        stopped = []
        for path in sorted((self.work_dir / "drivers").glob("*.pid")):
            try:
                pid = int(path.read_text().strip())
            except (OSError, ValueError):
                pid = None
            if pid and pid != os.getpid() and supervise.alive(pid):
                self.report(f"stopping {path.stem} (pid {pid}), which creates clusters here, before the teardown")
                stopped += kill_all([pid], grace=10)
            path.unlink(missing_ok=True)
        return stopped

    # -- down -----------------------------------------------------------
    def down(self, names: Iterable[str] | None = None, restart_supervisor: bool = True) -> dict[str, Any]:
        """Delete the named clusters, or every cluster under the work dir.

        Then kill any process still naming the work dir (what an interrupted
        ``kwokctl create`` can leave without a complete pid file).
        """
        all_clusters = names is None
        # First what would create clusters again, then the supervisor, or it
        # would start again what is being stopped.
        if all_clusters:
            self.stop_drivers()
        self.stop_supervisor()
        targets = self.kwokctl.clusters() if all_clusters else [n for n in names if self.kwokctl.cluster_dir(n).exists()]
        deleted = []
        for name in targets:
            cdir = self.kwokctl.cluster_dir(name)
            self.report(f"{name}: stopping and deleting")
            pids = _pids_from_files(cdir)
            if self.kwokctl.binary:
                try:
                    self.kwokctl.run("delete", "cluster", "--name", name, timeout=120, check=False)
                except TestbedError as exc:
                    self.report(f"{name}: kwokctl delete failed ({exc}); stopping its processes directly")
            kill_all(pids)
            kill_all(processes_under(cdir))
            # kine's command line names its launcher's link, not the cluster's folder.
            kill_all(processes_under(self.launcher_dir(name)))
            self._stop_datastore(name)
            cgroups.remove(self.cgroup_key, name)
            shutil.rmtree(cdir, ignore_errors=True)
            shutil.rmtree(self.launcher_dir(name), ignore_errors=True)
            for path in (self.kubeconfig_path(name), self.config_path(name)):
                path.unlink(missing_ok=True)
            deleted.append(name)
        # Everything else the testbed started (framework controllers, gateways)
        # names the work dir in its command line too.
        stray = processes_under(self.work_dir) if all_clusters else {}
        killed = kill_all(stray)
        if all_clusters:
            # The supervisor's records (restarts, log) belong to the clusters just
            # deleted: the next run of this work dir starts without them.
            shutil.rmtree(self.supervisor_dir, ignore_errors=True)
            # A PostgreSQL whose cluster folder an interrupted run never made.
            for home in datastore.PG_ROOT.glob(datastore.pg_name(self.cgroup_key) + "*"):
                self._stop_datastore(home.name[len(datastore.pg_name(self.cgroup_key)):])
            shutil.rmtree(self.work_dir / "datastores", ignore_errors=True)
            cgroups.remove(self.cgroup_key)
        if restart_supervisor and not all_clusters and self.kwokctl.clusters() and self.binaries is not None:
            self.start_supervisor()  # the clusters left keep their supervisor
        return {"deleted": deleted, "killed_stray": killed}

    def _stop_datastore(self, name: str) -> None:
        """The cluster's PostgreSQL, if it has one, stopped and its data removed; then its datastore folder."""
        self.postgres(name, 0).stop()
        shutil.rmtree(datastore.folder(self.work_dir, name), ignore_errors=True)

    def leftovers(self) -> dict[str, Any]:
        """What of the testbed is still on this machine: processes (its PostgreSQL
        servers' among them) and their ports, clusters, cgroups, PostgreSQL data."""
        servers = datastore.leftovers(self.cgroup_key)
        procs = {**processes_under(self.work_dir), **servers["processes"]}
        return {"processes": procs, "ports": listeners_of(procs), "clusters": self.kwokctl.clusters(),
                "cgroups": cgroups.leftovers(self.cgroup_key), "postgresql": servers["folders"]}
