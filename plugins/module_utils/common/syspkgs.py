# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian packages the project needs, installed by the project.

Every build recipe and every testbed path names the Debian packages it needs
as data beside itself (a recipe's ``packages``, a module's constant) and calls
``ensure`` before it needs them. As root, ``ensure`` installs what is missing
and says which; otherwise it fails before anything is built or started,
naming the packages and the command that installs them.

``TOOLS`` maps every program the project runs and does not build itself to the
Debian package that provides it: a unit test reads every command the project
runs and fails on one that is not here, and ``bin/fedbench-doctor`` reads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterable

Reporter = Callable[[str], None]

# Program -> the Debian package that provides it.
TOOLS = {
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "dpkg-query": "dpkg",
    "bash": "bash",
    "make": "make",
    "ip": "iproute2",
    "ss": "iproute2",
    "setpriv": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "iptables": "iptables",
    "gcc": "gcc",
    "cc": "gcc",
    "pkg-config": "pkg-config",
    "dockerd": "docker.io",
    "docker": "docker.io",
    "mmdebstrap": "mmdebstrap",
    "runc": "runc",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "postgres": "postgresql",
}

# Building with cgo needs a C compiler and the C library's headers.
CGO = ("gcc", "libc6-dev")


class SystemPackagesError(Exception):
    """Packages that are missing and cannot be installed here; the message names them."""


def _status(package: str) -> str:
    try:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def missing(packages: Iterable[str]) -> list[str]:
    """The named packages that are not installed (all of them where dpkg is not there to ask)."""
    wanted = list(dict.fromkeys(packages))
    if not shutil.which("dpkg-query"):
        return wanted
    return [p for p in wanted if not _status(p).endswith(" installed")]


def install_command(packages: Iterable[str]) -> str:
    return "apt-get install -y --no-install-recommends " + " ".join(packages)


def _apt(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env, timeout=1800, check=False)


def ensure(packages: Iterable[str], *, why: str, report: Reporter = lambda _: None) -> list[str]:
    """Install the missing ones of ``packages`` (needed for ``why``); returns what was installed.

    No package's service is started by the install (policy-rc.d says no while it runs)."""
    absent = missing(packages)
    if not absent:
        return []
    if not shutil.which("apt-get") or not shutil.which("dpkg-query"):
        raise SystemPackagesError(f"{why} needs Debian's {', '.join(absent)}; this machine has no apt-get and dpkg to install them: "
                                  "install them with its own package manager")
    if os.geteuid() != 0:
        raise SystemPackagesError(f"{why} needs Debian's {', '.join(absent)}, which are not installed, and only root can install them "
                                  f"(uid {os.geteuid()}): run `sudo {install_command(absent)}` and try again")
    report(f"installing Debian's {', '.join(absent)} ({why})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:  # keep the packages' services (a docker daemon, a postgresql cluster) from starting
        policy.write_text("#!/bin/sh\n# fedbench: no service starts while packages install\nexit 101\n")
        policy.chmod(0o755)
    try:
        proc = _apt(["install", "-y", "--no-install-recommends", *absent], env)
        if proc.returncode != 0:
            report(f"apt-get install {' '.join(absent)} failed; updating the package lists once and trying again")
            _apt(["update"], env)
            proc = _apt(["install", "-y", "--no-install-recommends", *absent], env)
    except subprocess.TimeoutExpired as exc:
        raise SystemPackagesError(f"{why}: `{install_command(absent)}` did not finish in {exc.timeout:.0f}s") from None
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    still = missing(absent)
    if proc.returncode != 0 or still:
        raise SystemPackagesError(f"{why}: `{install_command(absent)}` failed (exit {proc.returncode}): "
                                  f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    return absent
