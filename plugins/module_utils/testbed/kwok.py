# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kwokctl, as the embedded testbed runs it: the binaries it is given, each
cluster's KwokctlConfiguration, the runner (its work dir, never the user's
kubeconfig), and the private files of a cluster."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common.process import LOOPBACK
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed.specs import ClusterSpec, TestbedError


@dataclass(frozen=True)
class Binaries:
    kwokctl: str
    kwok: str
    etcd: str
    kube_apiserver: str
    kube_controller_manager: str
    kube_scheduler: str
    kubectl: str
    # Only clusters on a kine datastore need it.
    kine: str = ""

    @classmethod
    def from_mapping(cls, paths: Mapping[str, str]) -> "Binaries":
        missing = [n for n in ("kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl") if not paths.get(n)]
        if missing:
            raise TestbedError(f"missing binaries for the embedded testbed: {', '.join(missing)}")
        for name, path in paths.items():
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise TestbedError(f"binary for {name} is not an executable file: {path}")
        return cls(**{k.replace("-", "_"): v for k, v in paths.items() if k.replace("-", "_") in cls.__dataclass_fields__})


COMPONENT_PORTS = ("etcdPort", "etcdPeerPort", "kubeControllerManagerPort", "kubeSchedulerPort", "kwokControllerPort")


def kwokctl_config(spec: ClusterSpec, binaries: Binaries, kube_version: str, ports: Mapping[str, int], disable_qps_limits: bool = False) -> str:
    """The KwokctlConfiguration for one cluster (JSON is valid YAML)."""
    missing = [name for name in COMPONENT_PORTS if name not in ports]
    if missing:
        raise TestbedError(f"cluster {spec.name!r}: no port for {', '.join(missing)}")
    options = {
        **{name: ports[name] for name in COMPONENT_PORTS},
        "runtime": "binary",
        "bindAddress": LOOPBACK,
        "kubeApiserverPort": spec.apiserver_port,
        "kubeVersion": kube_version,
        "securePort": True,
        "quietPull": True,
        "kubeAuthorization": True,
        "kwokControllerBinary": binaries.kwok,
        "etcdBinary": binaries.etcd,
        "kubeApiserverBinary": binaries.kube_apiserver,
        "kubeControllerManagerBinary": binaries.kube_controller_manager,
        "kubeSchedulerBinary": binaries.kube_scheduler,
        "kubectlBinary": binaries.kubectl,
        # false keeps the components' stock client rate limits (the
        # controller manager's 20 requests/s): what a default cluster does.
        "disableQPSLimits": disable_qps_limits,
    }
    disabled = [name for name, on in (("kube-scheduler", spec.scheduler), ("kwok-controller", spec.simulator)) if not on]
    if disabled:
        options["disable"] = disabled
    doc: dict = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
    }
    if spec.controllers:
        doc["componentsPatches"] = [{"name": "kube-controller-manager",
                                     "extraArgs": [{"key": "controllers", "value": ",".join(spec.controllers), "override": True}]}]
    return json.dumps(doc, indent=2) + "\n"


def private(cluster_dir: Path, *more: Path) -> None:
    """Every key and kubeconfig of a cluster 0600, its PKI folder 0700 (kwokctl writes them 0644/0640)."""
    secrets = [*(cluster_dir / "pki").glob("*.key"), cluster_dir / "kubeconfig.yaml", cluster_dir / "kubeconfig", *more]
    if (cluster_dir / "pki").is_dir():
        os.chmod(cluster_dir / "pki", 0o700)
    for path in secrets:
        if path.is_file():
            os.chmod(path, 0o600)


def _write_private(dest: Path, data: bytes) -> None:
    """Write a file 0600 (whatever the umask), atomically."""
    tmp = dest.with_name(dest.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, dest)


class Kwokctl:
    """Runs kwokctl against one work directory."""

    def __init__(self, binary: str, workdir: str | Path):
        self.binary = binary
        self.workdir = Path(workdir)

    @property
    def kubeconfig(self) -> Path:
        """Where kwokctl adds (and removes) its clusters' contexts: in the work dir, never the
        user's ~/.kube/config (kwokctl's default, through $KUBECONFIG)."""
        return self.workdir / "kubeconfig"

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # kubectl, which kwokctl runs, caches under ~/.kube/cache unless told otherwise.
        env = dict(os.environ, KWOK_WORKDIR=str(self.workdir), KUBECONFIG=str(self.kubeconfig), KUBECACHEDIR=str(self.workdir / "kubectl-cache"))
        try:
            # umask 077: the keys, kubeconfigs and data kwokctl and the components write are
            # readable by their owner only (private() makes sure of the secrets afterwards).
            proc = subprocess.run([self.binary, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False, umask=0o077)
        except subprocess.TimeoutExpired as exc:
            raise TestbedError(f"`kwokctl {' '.join(args)}` did not finish within {timeout:.0f}s") from exc
        except OSError as exc:
            raise TestbedError(f"cannot run kwokctl at {self.binary}: {exc}") from exc
        if check and proc.returncode != 0:
            raise TestbedError(f"`kwokctl {' '.join(args)}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc

    def cluster_dir(self, name: str) -> Path:
        return self.workdir / "clusters" / name

    def clusters(self) -> list[str]:
        root = self.workdir / "clusters"
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir())


def _pids_from_files(cluster_dir: Path) -> list[int]:
    pids = []
    for pidfile in (cluster_dir / "pids").glob("*.pid"):
        try:
            pids.append(int(pidfile.read_text().strip()))
        except (OSError, ValueError):
            continue
    return pids
