# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every testbed reads of an inventory's cluster: name, role, nodes and
the API server's port, validated once for the embedded and the kind testbed
and for the inventory check (every message names the input at fault); the
embedded testbed's whole spec; and the facts every testbed reports per cluster."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import cgroups, datastore

ROLES = ("host", "member")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


class TestbedError(Exception):
    """Bad input or a cluster that could not be made; the message names which."""


def whole(value: Any, what: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"\d+", value.strip()))):
        raise TestbedError(f"{what} must be a whole number, got {value!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise TestbedError(f"{what} must be {bounds}, got {number}")
    return number


@dataclass(frozen=True)
class Common:
    """The fields every testbed's cluster has."""

    index: int
    name: str
    role: str
    nodes: int
    apiserver_port: int


def parse_common(raw: Any, *, default_nodes: int, max_nodes: int, nodes_what: str = "nodes",
                 port_why: str = "") -> Iterator[tuple[Common, Mapping[str, Any]]]:
    """Each cluster of the inventory's list with its common fields checked (a list of
    mappings, names that are DNS labels and unique, a role, whole numbers in range, one
    API server port each, at most one host), beside its mapping for the testbed's own fields."""
    if not isinstance(raw, list):
        raise TestbedError(f"the list of clusters must be a list, got {type(raw).__name__}")
    if not raw:
        raise TestbedError("the list of clusters is empty: the testbed needs at least one cluster")
    out: list[tuple[Common, Mapping[str, Any]]] = []
    names: set[str] = set()
    ports: dict[int, str] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise TestbedError(f"cluster #{index + 1} must be a mapping with name, role, nodes, apiserver_port; got {item!r}")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise TestbedError(f"cluster #{index + 1}: name must be a lowercase DNS label of at most 32 characters, got {name!r}")
        if name in names:
            raise TestbedError(f"cluster name {name!r} appears twice in the list of clusters")
        names.add(name)
        role = item.get("role", "member")
        if role not in ROLES:
            raise TestbedError(f"cluster {name!r}: role must be one of {', '.join(ROLES)}, got {role!r}")
        nodes = whole(item.get("nodes", default_nodes), f"cluster {name!r}: {nodes_what}", 0, max_nodes)
        if "apiserver_port" not in item:
            raise TestbedError(f"cluster {name!r}: apiserver_port is required{port_why}")
        port = whole(item["apiserver_port"], f"cluster {name!r}: apiserver_port", 1024, 65535)
        if port in ports:
            raise TestbedError(f"clusters {ports[port]!r} and {name!r} both ask for apiserver_port {port}")
        ports[port] = name
        out.append((Common(index, name, role, nodes, port), item))
    hosts = [c.name for c, _ in out if c.role == "host"]
    if len(hosts) > 1:
        raise TestbedError(f"only one cluster may have role 'host', got {', '.join(hosts)}")
    return iter(out)


def field_problems(cluster: Mapping[str, Any], label: str) -> list[str]:
    """For any testbed's inventory check: the common fields a cluster gives that are not whole numbers."""
    problems = []
    for key in ("nodes", "apiserver_port"):
        if cluster.get(key) is not None:
            try:
                whole(cluster[key], f"{label}: {key}", 0)
            except TestbedError as exc:
                problems.append(str(exc))
    return problems


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    role: str
    nodes: int
    apiserver_port: int
    # false: no KWOK controller - a bare control plane, the "cluster under
    # test" that a node simulator elsewhere presents nodes to (TurboKube).
    simulator: bool = True
    # CPU and memory limits per control-plane component (cgroups.py).
    control_plane: Mapping[str, cgroups.Limits] = field(default_factory=dict)
    # What the API server stores into: etcd, or kine over SQLite or PostgreSQL (datastore.py).
    datastore: datastore.Datastore = field(default_factory=datastore.Datastore)
    # false: no kube-scheduler (a framework's own control plane, where pods are
    # templates and nothing is scheduled: Karmada's API server).
    scheduler: bool = True
    # kube-controller-manager's --controllers; empty: its defaults.
    controllers: tuple[str, ...] = ()


@dataclass
class ClusterFacts:
    """What every testbed (embedded, kind, existing) reports per cluster."""

    name: str
    role: str
    kubeconfig: str
    context: str
    server: str
    kubernetes_version: str
    nodes: int
    testbed: str = "embedded"
    # What the testbed can do for this cluster; framework and experiment roles
    # test these, never the testbed's name (docs/testbed.md lists them).
    capabilities: dict[str, Any] = field(default_factory=dict)
    # The limits in force per control-plane component, read back from the
    # cgroup files (embedded clusters with control_plane set; else empty).
    control_plane: dict[str, Any] = field(default_factory=dict)
    # The datastore behind the API server: kind, versions, PostgreSQL's port
    # (embedded clusters; else empty).
    datastore: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
