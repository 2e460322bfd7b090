# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local processes and ports: finding, killing, and managing them.

Managed local processes: started detached, with a pid file, a log and a
health check; stopped by pid file. Used for the framework controllers that
run beside the embedded testbed (KubeFed's controller-manager, gateways).

A process is "ours" only if the pid in its pid file is alive *and* its
command line still starts with the binary we started, so a recycled pid is
never killed.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ansible_collections.fedbench.testbed.plugins.module_utils.common import procfs

LOOPBACK = "127.0.0.1"


def port_in_use(port: int, address: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def listeners_of(pids: Iterable[int]) -> list[int]:
    """TCP ports that the given processes listen on (from /proc)."""
    return sorted({port for port, _ in listening_sockets_of(pids)})


def listening_sockets_of(pids: Iterable[int]) -> set[tuple[int, str]]:
    """(port, socket inode) of every listening TCP socket the given processes
    hold. The inode tells a socket apart from a later one on the same port."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return {(port, inode) for port, inode in listening_sockets() if inode in inodes}


def listening_sockets() -> set[tuple[int, str]]:
    """(port, socket inode) of every TCP socket in LISTEN state, from /proc/net."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A":  # LISTEN
                out.add((int(cols[1].rsplit(":", 1)[1], 16), cols[9]))
    return out


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this machine."""
    return {port for port, _ in listening_sockets()}


def processes_under(workdir: Path) -> dict[int, str]:
    """Every live process (but this one and its ancestors) whose command line names ``workdir`` or a
    path under it, as a path: another folder whose name starts the same
    (``/x/wd-b`` beside ``/x/wd``) is not under it."""
    path = str(workdir.resolve())
    return {pid: cmd for pid, cmd in processes_matching(path).items() if procfs.names_path(cmd, path)}


def processes_matching(marker: str) -> dict[int, str]:
    """Every live process whose command line, or title, holds ``marker``, but this
    one and those it descends from: the run that asks (``make bench``'s shell names
    the work dir it locks) is never its own stray."""
    found: dict[int, str] = {}
    mine = procfs.lineage(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        cmdline = procfs.cmdline(int(entry.name))
        if marker in cmdline:
            found[int(entry.name)] = cmdline.strip()
    return found


_alive = procfs.alive


def kill_all(pids: Iterable[int], grace: float = 5.0) -> list[int]:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the pids that were alive."""
    targets = [p for p in set(pids) if p != os.getpid() and _alive(p)]
    for pid in targets:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in targets):
        time.sleep(0.1)
    for pid in targets:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in targets):
        time.sleep(0.05)
    return targets


class ProcessError(Exception):
    """The process could not be started or did not become healthy."""


@dataclass
class Managed:
    name: str
    argv: Sequence[str]
    pid_file: Path
    log_file: Path
    health_url: str = ""
    env: Mapping[str, str] | None = None
    ports: Sequence[int] = ()
    # Some programs (Envoy) stop when the process that started them exits.
    # detach runs them through `setsid --fork`, so their parent is gone before
    # they start, and finds their pid by their exact command line.
    detach: bool = False
    # For a program with no health endpoint: a regex its log shows once it is
    # up (EdgeNet's controller: "Started workers", after its caches synced).
    ready_pattern: str = ""
    _log_start: int = 0

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        args = procfs.argv(pid)
        if not args or not procfs.alive(pid):
            return None
        running, wanted = args[0], str(self.argv[0])
        if running != wanted and not ("/" not in wanted and os.path.basename(running) == wanted):
            return None
        return pid

    def healthy(self) -> bool:
        if self.ready_pattern:
            return self.pid() is not None and self._log_says(self.ready_pattern)
        if not self.health_url:
            return self.pid() is not None
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as resp:  # noqa: S310 - loopback only
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self, timeout: float = 60) -> bool:
        """Start unless already running and healthy. Returns True if started."""
        if self.pid() is not None and self.healthy():
            return False
        stopped = self.stop()
        for port in self.ports:
            # A process just stopped can hold its ports a moment longer: its main
            # thread is reaped before the others have closed the sockets they share.
            deadline = time.monotonic() + (10 if stopped else 0)
            while port_in_use(port) and time.monotonic() < deadline:
                time.sleep(0.1)
            if port_in_use(port):
                raise ProcessError(f"{self.name}: port {port} is already in use on 127.0.0.1")
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0  # readiness is read from here on
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                (["setsid", "--fork"] if self.detach else []) + list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, **(self.env or {})),
                start_new_session=True,  # survives the module's own exit
                close_fds=True,
            )
        except OSError as exc:
            raise ProcessError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        if self.detach:
            proc.wait(timeout=10)  # setsid's own fork returns at once
            pid = self._find()
            while pid is None and time.monotonic() < deadline:
                time.sleep(0.05)
                pid = self._find()
            if pid is None:
                raise ProcessError(f"{self.name}: started but not found running; log {self.log_file}:\n{self.log_tail()}")
            exited = lambda: self.pid() is None  # noqa: E731
        else:
            pid = proc.pid
            exited = lambda: proc.poll() is not None  # noqa: E731
        self.pid_file.write_text(f"{pid}\n")
        while time.monotonic() < deadline:
            if exited():
                self.pid_file.unlink(missing_ok=True)
                code = "" if self.detach else f" with code {proc.returncode}"
                raise ProcessError(f"{self.name} exited{code}; log {self.log_file}:\n{self.log_tail()}")
            if self.healthy():
                return True
            time.sleep(0.2)
        self.stop()
        what = f"say {self.ready_pattern!r} in its log" if self.ready_pattern else f"become healthy at {self.health_url}"
        raise ProcessError(f"{self.name} did not {what} within {timeout:.0f}s; log {self.log_file}:\n{self.log_tail()}")

    def _log_says(self, pattern: str) -> bool:
        import re

        try:
            with open(self.log_file, "rb") as log:
                log.seek(self._log_start)
                return re.search(pattern, log.read().decode(errors="replace")) is not None
        except OSError:
            return False

    def _find(self) -> int | None:
        wanted = [str(a) for a in self.argv]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            if procfs.argv(int(entry.name)) == wanted:
                return int(entry.name)
        return None

    def stop(self) -> bool:
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        kill_all([pid])
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
