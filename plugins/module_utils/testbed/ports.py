# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ports for what runs beside the clusters (framework controllers, gateways,
echo servers, a local KWOK controller), claimed per work dir.

A port left at 0 in the inventory is claimed here: a block of free ports on
127.0.0.1, the same for the work dir on every later run (``<work dir>/ports.json``),
and marked taken machine-wide (one file per port under ``CLAIMS``, naming the
work dir) so that a second checkout never picks it, even before the first one's
process binds it. A port the inventory gives is checked instead: free, or held
by this work dir's own processes. Teardown releases the work dir's claims.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import socket
from pathlib import Path
from typing import Iterable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import LOOPBACK, listeners_of, processes_under
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.specs import TestbedError

def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


# The testbed's own components (etcd, controllers, KWOK, every port kwokctl
# needs besides the API server's) take their ports from this band; everything
# an inventory names (API servers, gateways, echo servers, framework
# controllers) should sit outside it, so that a cluster created later can
# never take a port a service was given (free_ports picks from the rest).
COMPONENT_BAND = (10000, 16000)


def allocate_ports(count: int, avoid: Iterable[int] = (), band: tuple[int, int] | None = None) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1, from ``band`` (the component band by
    default), always below the ephemeral range.

    kwokctl picks its own "unused" ports when none are given, but two kwokctl
    processes started at once pick the same ones: every API server then talks
    to the one etcd that won the race. So all ports are chosen here, holding
    every socket open until the whole set is known, and written into each
    cluster's configuration. They come from below the kernel's ephemeral
    range, so no client connection can take one before its server binds it.
    """
    low, _ = _ephemeral_range()
    bottom, top = band or COMPONENT_BAND
    top = min(top, low) if low > bottom + count else top
    candidates = list(range(bottom, top))
    random.shuffle(candidates)
    held: list[socket.socket] = []
    ports: list[int] = []
    avoid = set(avoid)
    try:
        for port in candidates:
            if len(ports) == count:
                break
            if port in avoid:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                sock.close()
                continue
            held.append(sock)
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    if len(ports) < count:
        raise TestbedError(f"found only {len(ports)} free ports on {LOOPBACK}, needed {count}")
    return ports


def free_ports(count: int, avoid: Iterable[int] = ()) -> list[int]:
    """Free ports for what is not a cluster component (an API server, a service, a test's
    server): above the component band, below the ephemeral range."""
    low, _ = _ephemeral_range()
    return allocate_ports(count, avoid, band=(COMPONENT_BAND[1], low if low > COMPONENT_BAND[1] + 1000 else 32768))


CLAIMS = Path(os.environ.get("FEDBENCH_PORT_CLAIMS", "/tmp/fedbench-ports"))


class PortError(Exception):
    """A port that cannot be had; the message names the setting."""


def _band() -> tuple[int, int]:
    low, _ = _ephemeral_range()
    return COMPONENT_BAND[1], (low if low > COMPONENT_BAND[1] + 1000 else 32768)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _record(work_dir: Path) -> dict[str, dict[str, int]]:
    try:
        return json.loads((work_dir / "ports.json").read_text())
    except (OSError, ValueError):
        return {}


def _taken_by_others(work_dir: Path) -> set[int]:
    """Ports another work dir claimed and still records (a claim whose work dir is gone is stale)."""
    taken = set()
    for claim in CLAIMS.glob("[0-9]*"):
        try:
            owner = Path(claim.read_text().strip())
        except OSError:
            continue
        if owner == work_dir:
            continue
        port = int(claim.name)
        if any(b["port"] <= port < b["port"] + b["count"] for b in _record(owner).values()):
            taken.add(port)
        else:
            claim.unlink(missing_ok=True)
    return taken


def claim(work_dir: Path, wants: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """``wants``: setting name -> {count, given}. Returns setting name -> first port of its block."""
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    CLAIMS.mkdir(parents=True, exist_ok=True)
    os.chmod(CLAIMS, 0o1777)
    bottom, top = _band()
    out: dict[str, int] = {}
    with open(CLAIMS / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = _record(work_dir)
        others = _taken_by_others(work_dir)
        held = set(listeners_of(processes_under(work_dir)))  # this work dir's own servers, read once
        for name, want in wants.items():
            count, given = int(want.get("count", 1)), int(want.get("given") or 0)
            if given:
                block = range(given, given + count)
                busy = [p for p in block if p in others or not (_bindable(p) or p in held)]
                if busy:
                    why = "is claimed by another fedbench work dir" if busy[0] in others else "is already in use"
                    raise PortError(f"{name}: port {busy[0]} on {LOOPBACK} {why}; choose another, or set {name} to 0 for a free one")
                out[name] = given
                continue
            mine = record.get(name)
            if mine and mine.get("count") == count and all(
                    p not in others and (_bindable(p) or p in held) for p in range(mine["port"], mine["port"] + count)):
                out[name] = mine["port"]
                continue
            bases = list(range(bottom, top - count))
            random.shuffle(bases)
            mine_now = {p for n, b in record.items() if n != name for p in range(b["port"], b["port"] + b["count"])}
            base = next((b for b in bases if all(p not in others and p not in mine_now and _bindable(p) for p in range(b, b + count))), None)
            if base is None:
                raise PortError(f"{name}: no {count} free consecutive ports on {LOOPBACK} between {bottom} and {top}")
            record[name] = {"port": base, "count": count}
            out[name] = base
        for name, block in record.items():
            for port in range(block["port"], block["port"] + block["count"]):
                (CLAIMS / str(port)).write_text(f"{work_dir}\n")
        (work_dir / "ports.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return out


def release(work_dir: Path) -> list[int]:
    """Drop every claim of this work dir; returns the ports released."""
    work_dir = Path(work_dir).resolve()
    released = []
    if CLAIMS.is_dir():
        with open(CLAIMS / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for claim in CLAIMS.glob("[0-9]*"):
                try:
                    if Path(claim.read_text().strip()) == work_dir:
                        claim.unlink(missing_ok=True)
                        released.append(int(claim.name))
                except OSError:
                    continue
    (work_dir / "ports.json").unlink(missing_ok=True)
    return sorted(released)
