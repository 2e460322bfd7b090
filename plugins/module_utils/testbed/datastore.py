# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datastore behind an embedded cluster's API server.

Per cluster, the inventory chooses one (``datastore``, default ``etcd``)::

    - {name: host, role: host, nodes: 4, apiserver_port: 31443, datastore: kine-sqlite}
    - {name: m1, role: member, nodes: 4, apiserver_port: 31444, datastore: kine-postgres, datastore_port: 25432}

- ``etcd``: kwokctl's etcd, the reference.
- ``kine-sqlite``: kine (github.com/k3s-io/kine, built from the Go module
  proxy with cgo, so SQLite is the C library k3s ships) over a SQLite file
  in ``<work dir>/datastores/<cluster>/state.db``.
- ``kine-postgres``: kine over a PostgreSQL server of this machine's own
  (Debian's ``postgresql`` package) that the testbed initialises, starts on
  127.0.0.1 (``datastore_port``, else a free port) and stops with the
  cluster. PostgreSQL refuses to run as root, so under root it runs as the
  ``postgres`` user, its data in ``/tmp/fedbench-pg-<work dir key>-<cluster>``
  (a folder that user can reach; the work dir may sit under a private home).
  Its superuser ``kine`` has a random password, kept only in a 0600 passfile
  that kine reads (``passfile=`` in its DSN, never on a command line).

kine serves etcd's API where kwokctl put etcd: the cluster's ``etcd``
component is a launcher that becomes kine, listening on the port kwokctl
gave etcd, so kube-apiserver, kwokctl and the supervisor see the same
component. kine's metrics endpoint (``:8080`` on every address by default)
is off.

Standard library only.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ansible_collections.fedbench.testbed.plugins.module_utils.common import procfs, syspkgs
from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import LOOPBACK, kill_all, port_in_use, processes_matching

KINDS = ("etcd", "kine-sqlite", "kine-postgres")
# What kine-postgres runs: Debian's PostgreSQL server (initdb, pg_ctl, postgres).
PG_PACKAGES = ("postgresql",)
PG_ROOT = Path("/tmp")
PG_USER = "kine"
PG_DATABASE = "kubernetes"
# kine's own SQLite DSN parameters (its default endpoint's), for a file of ours.
SQLITE_PARAMS = "_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=20&cache=shared"


class DatastoreError(Exception):
    """A datastore that is wrong or cannot run here; the message names which."""


@dataclass(frozen=True)
class Datastore:
    kind: str = "etcd"
    # PostgreSQL's port (kine-postgres only); None: a free one, chosen at create.
    port: int | None = None

    @property
    def kine(self) -> bool:
        return self.kind.startswith("kine-")

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "port": self.port}


def parse(kind: Any, port: Any, cluster: str) -> Datastore:
    if kind is None:
        kind = "etcd"
    if kind not in KINDS:
        raise DatastoreError(f"cluster {cluster!r}: datastore must be one of {', '.join(KINDS)}, got {kind!r}")
    if port is not None:
        if kind != "kine-postgres":
            raise DatastoreError(f"cluster {cluster!r}: datastore_port is PostgreSQL's, for datastore kine-postgres only (datastore is {kind})")
        if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
            raise DatastoreError(f"cluster {cluster!r}: datastore_port must be a whole number from 1024 to 65535, got {port!r}")
    return Datastore(kind, port)


# --------------------------------------------------------------------------
# Where things are.
# --------------------------------------------------------------------------


def folder(work_dir: Path, cluster: str) -> Path:
    """The cluster's datastore folder in the work dir: the SQLite file, the
    PostgreSQL passfile, and what was chosen (datastore.json)."""
    return Path(work_dir) / "datastores" / cluster


def pg_name(key: str, cluster: str = "") -> str:
    """Names the cluster's PostgreSQL: its folder, and (cluster_name) every one of its
    processes' titles, so teardown finds all of them."""
    return f"fedbench-pg-{key}-{cluster}"


def pg_home(key: str, cluster: str) -> Path:
    return PG_ROOT / pg_name(key, cluster)


def recorded(work_dir: Path, cluster: str) -> Datastore | None:
    """What a cluster was created with; None for one that has no record (etcd)."""
    try:
        data = json.loads((folder(work_dir, cluster) / "datastore.json").read_text())
        return Datastore(data["kind"], data.get("port"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record(work_dir: Path, cluster: str, store: Datastore) -> None:
    path = folder(work_dir, cluster)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    (path / "datastore.json").write_text(json.dumps(store.as_dict()) + "\n")


def endpoint(work_dir: Path, cluster: str, store: Datastore) -> str:
    """kine's --endpoint; it holds no secret (the password is in the passfile)."""
    base = folder(work_dir, cluster)
    if store.kind == "kine-sqlite":
        return f"sqlite://{base / 'state.db'}?{SQLITE_PARAMS}"
    if store.kind == "kine-postgres":
        return f"postgres://{PG_USER}@{LOOPBACK}:{store.port}/{PG_DATABASE}?sslmode=disable&passfile={base / 'pgpass'}"
    raise DatastoreError(f"cluster {cluster!r}: etcd has no kine endpoint")


KINE_LAUNCHER = """#!/bin/sh
# fedbench: the datastore of cluster {cluster}: kine over {backend}, serving
# etcd's API on {address}, where kwokctl put etcd. kwokctl runs this in
# place of etcd (and asks it --version); it joins the groups listed in
# {groups} (control-plane limits of etcd), if any, then becomes kine.
if [ "$1" = --version ]; then exec {link_q} --version; fi
if [ -f {groups_q} ]; then
  while read -r group; do
    [ -n "$group" ] || continue
    echo $$ > "$group/cgroup.procs" || {{ echo "fedbench: cannot join $group" >&2; exit 97; }}
  done < {groups_q}
fi
exec {link_q} --listen-address={address} --endpoint={endpoint_q} --metrics-bind-address=0
"""


def write_kine_launcher(launchers: Path, cluster: str, kine: str, address: str, kine_endpoint: str, backend: str) -> Path:
    """The script kwokctl starts as the cluster's etcd (``<launchers>/etcd``); it
    becomes ``<launchers>/bin/kine``, a link to the kine binary."""
    (launchers / "bin").mkdir(parents=True, exist_ok=True)
    link = launchers / "bin" / "kine"
    if not link.is_symlink() or os.readlink(link) != kine:
        link.unlink(missing_ok=True)
        link.symlink_to(kine)
    groups = launchers / "etcd.cgroups"
    script = launchers / "etcd"
    text = KINE_LAUNCHER.format(cluster=cluster, backend=backend, address=address, groups=groups, groups_q=shlex.quote(str(groups)),
                                link_q=shlex.quote(str(link)), endpoint_q=shlex.quote(kine_endpoint))
    if not script.exists() or script.read_text() != text:
        script.write_text(text)
    script.chmod(0o700)
    return script


# --------------------------------------------------------------------------
# PostgreSQL, the project's own server.
# --------------------------------------------------------------------------


def pg_programs(cluster: str) -> dict[str, str]:
    """initdb, pg_ctl and postgres: Debian keeps them in /usr/lib/postgresql/<major>/bin
    (its package ``postgresql`` is installed first where it is missing)."""
    try:
        syspkgs.ensure(PG_PACKAGES, why=f"cluster {cluster!r}: datastore kine-postgres")
    except syspkgs.SystemPackagesError as exc:
        raise DatastoreError(str(exc)) from None
    found = {}
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(re.sub(r"\D", "", Path(d).parent.name) or 0), reverse=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        for candidate in [*(str(Path(d) / name) for d in dirs), shutil.which(name)]:
            if candidate and os.access(candidate, os.X_OK):
                found[name] = os.path.realpath(candidate)
                break
    missing = [n for n in ("initdb", "pg_ctl", "postgres") if n not in found]
    if missing:
        raise DatastoreError(f"cluster {cluster!r}: datastore kine-postgres needs PostgreSQL's server programs; {', '.join(missing)} "
                             "not found in /usr/lib/postgresql/*/bin or on PATH (Debian: apt-get install postgresql)")
    return found


def pg_account(cluster: str) -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as: the postgres user under root (PostgreSQL
    refuses root); None to run as the caller."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise DatastoreError(f"cluster {cluster!r}: datastore kine-postgres: PostgreSQL refuses to run as root and this machine has no "
                             "postgres user to run it as (Debian's postgresql package makes one)") from None
    return entry.pw_uid, entry.pw_gid


def processes(name: str) -> dict[int, str]:
    """One server's processes: its name is their titles' cluster_name
    ("postgres: <name>: checkpointer") and its data folder's (/tmp/<name>/data),
    followed by ':' or '/', so cluster c1's never match c10's."""
    whole = re.compile(re.escape(name) + r"(?=[:/]|$)")
    return {pid: cmd for pid, cmd in processes_matching(name).items() if whole.search(cmd)}


class Postgres:
    """One cluster's PostgreSQL server: initialised, started and stopped here."""

    def __init__(self, work_dir: Path, key: str, cluster: str, port: int, report: Callable[[str], None] = lambda _: None):
        self.work_dir = Path(work_dir)
        self.cluster = cluster
        self.port = port
        self.name = pg_name(key, cluster)
        self.home = pg_home(key, cluster)
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.passfile = folder(work_dir, cluster) / "pgpass"
        self.report = report

    def _run(self, args: list[str], account: tuple[int, int] | None, timeout: float, what: str) -> str:
        extra = {"user": account[0], "group": account[1], "extra_groups": []} if account else {}
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd="/", stdin=subprocess.DEVNULL, **extra)
        except subprocess.TimeoutExpired as exc:
            raise DatastoreError(f"cluster {self.cluster!r}: PostgreSQL {what} did not finish within {timeout:.0f}s; log: {self.log}") from exc
        if proc.returncode != 0:
            raise DatastoreError(f"cluster {self.cluster!r}: PostgreSQL {what} failed (exit {proc.returncode}): "
                                 f"{(proc.stderr or proc.stdout).strip()[-1500:]}; log: {self.log}")
        return proc.stdout

    def postmaster(self) -> int | None:
        """The running server's pid (its postmaster.pid, checked against /proc)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if procfs.alive(pid) and str(self.data) in procfs.cmdline(pid) else None

    def version(self) -> str:
        try:
            out = subprocess.run([pg_programs(self.cluster)["postgres"], "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, DatastoreError):
            return ""
        match = re.search(r"\(PostgreSQL\) (\S+)", out)
        return match.group(1) if match else out.strip()

    def start(self) -> bool:
        """Initialise (first time) and start the server; True if it was not running."""
        if self.postmaster() is not None:
            return False
        programs = pg_programs(self.cluster)
        account = pg_account(self.cluster)
        if port_in_use(self.port):
            raise DatastoreError(f"cluster {self.cluster!r}: datastore_port {self.port} (its PostgreSQL) is already in use on {LOOPBACK}; "
                                 "choose another port in the inventory, or leave datastore_port out for a free one")
        fresh = not (self.data / "PG_VERSION").exists()
        if not fresh:
            # A postmaster that was killed leaves backends holding its shared memory
            # for a moment, and pg_ctl refuses to start beside them; and until its
            # parent reaps it, PostgreSQL takes its zombie for a live postmaster.
            kill_all(processes(self.name))
            (self.data / "postmaster.pid").unlink(missing_ok=True)
        if fresh:
            self.report(f"{self.cluster}: initialising its PostgreSQL in {self.data}")
            shutil.rmtree(self.home, ignore_errors=True)
            self.home.mkdir(mode=0o700)
            password = secrets.token_urlsafe(24)
            pwfile = self.home / "pwfile"
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            if account:
                for path in (self.home, pwfile):
                    os.chown(path, *account)
            try:
                self._run([programs["initdb"], "-D", str(self.data), "-U", PG_USER, f"--pwfile={pwfile}", "--auth-local=scram-sha-256",
                           "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"], account, 120, "initdb")
            finally:
                pwfile.unlink(missing_ok=True)
            self.passfile.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.passfile.parent, 0o700)
            fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{LOOPBACK}:{self.port}:*:{PG_USER}:{password}\n")
            os.chmod(self.passfile, 0o600)
        self.report(f"{self.cluster}: starting its PostgreSQL on {LOOPBACK}:{self.port}")
        options = f"-c listen_addresses={LOOPBACK} -p {self.port} -c unix_socket_directories='' -c cluster_name={self.name}"
        argv = [programs["pg_ctl"], "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"]
        try:
            self._run(argv, account, 90, f"start on {LOOPBACK}:{self.port}")
        except DatastoreError:
            if fresh:
                self.stop()  # nothing of it is worth keeping
            else:  # a restart: the cluster's data stays
                kill_all(processes(self.name))
            raise
        # How the testbed's supervisor restarts it, as it does the cluster's other components.
        supervised = self.passfile.parent / "supervise.json"
        supervised.write_text(json.dumps({
            "component": "postgresql", "name": self.name, "data": str(self.data), "port": self.port, "log": str(self.log),
            "argv": argv, "uid": account[0] if account else None, "gid": account[1] if account else None,
        }, indent=1) + "\n")
        os.chmod(supervised, 0o600)
        return True

    def stop(self) -> bool:
        """Stop the server, kill whatever of it is left and remove its data; True if anything was there."""
        there = self.home.exists() or bool(processes(self.name))
        pid = self.postmaster()
        if pid is not None:
            try:
                programs = pg_programs(self.cluster)
                self._run([programs["pg_ctl"], "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"], pg_account(self.cluster), 45, "stop")
            except DatastoreError as exc:
                self.report(f"{self.cluster}: {exc}; killing its processes")
        # Its backends exit once the postmaster is gone; anything left goes.
        kill_all(processes(self.name))
        deadline = time.monotonic() + 10
        while processes(self.name) and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.home, ignore_errors=True)
        return there


def leftovers(key: str) -> dict[str, Any]:
    """PostgreSQL servers (processes, data folders) of one work dir still on this machine."""
    marker = pg_name(key)
    return {"processes": processes_matching(marker), "folders": sorted(str(p) for p in PG_ROOT.glob(marker + "*"))}
