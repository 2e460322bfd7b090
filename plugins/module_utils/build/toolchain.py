# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pinned binaries for the embedded testbed: find, download or build, cache.

Every binary is resolved in this order (``source=auto``):

1. the per-version cache (``$FEDBENCH_CACHE``, else ``$XDG_CACHE_HOME/fedbench``,
   else ``~/.cache/fedbench``): ``bin/<name>/<version>/<name>``;
2. a binary of that name on ``PATH`` that reports the pinned version;
3. the official release download, verified against its published SHA-256;
4. a build from source through the Go module proxy.

``source`` may force one of ``path``, ``download`` or ``build`` instead. The
cache is always consulted first for ``download`` and ``build`` (it holds only
what those two produced); ``path`` looks at ``PATH`` alone.

This file has no Ansible imports: the ``fedbench_toolchain`` module and the
``bin/fedbench-toolchain`` command line both call :func:`ensure`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from ansible_collections.fedbench.testbed.plugins.module_utils.common import syspkgs

SOURCES = ("auto", "path", "download", "build")


class ToolchainError(Exception):
    """A binary could not be provided; the message names the binary and why."""


# --------------------------------------------------------------------------
# What we pin, and how each binary reports its version.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    kubernetes: str = "v1.36.1"
    etcd: str = "v3.6.8"
    kwok: str = "v0.8.0"
    helm: str = "v3.22.0"
    # An alternate datastore (datastore.py): only clusters that choose it need it.
    kine: str = "v0.17.5"

    def __post_init__(self) -> None:
        for name in GROUPS:
            _check_version(f"toolchain version for {name}", getattr(self, name))


# The testbed's own version groups (a framework's binaries come with its recipe).
GROUPS = ("kubernetes", "etcd", "kwok", "helm", "kine")


def _check_version(what: str, value: object) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", value):
        raise ToolchainError(f"{what} must look like v1.2.3 (or v1.2.3-alpha.1), got {value!r}")


@dataclass(frozen=True)
class Component:
    name: str
    group: str  # the build recipe: one of GROUPS, or a framework recipe's name
    version_args: tuple[str, ...]
    version_pattern: str  # regex whose group 1 is the version, without the v
    recipe: "Recipe | None" = None  # a framework's binaries carry their recipe

    def version(self, versions: Versions) -> str:
        return self.recipe.version if self.recipe else getattr(versions, self.group)


@dataclass(frozen=True, eq=False)
class Recipe:
    """How a framework's binaries are built from one Go module, as data.

    A framework role declares it (``<name>_toolchain_recipe`` in its
    ``vars/main.yml``, its version pin in ``defaults/main.yml``) and hands it to
    the toolchain role; nothing here names a framework. Keys:

    - ``name``, ``version`` (v1.2.3), ``module`` (the Go module path);
    - ``binaries``: per binary, ``package`` (inside the module; empty for its
      root), ``version_args`` and ``version_pattern`` (a regex whose group 1
      is the version the binary reports, without the v);
    - ``replace``: module -> version, for dependencies the module pins too old,
      or module -> "other/module version", for a module's own replace
      directives (Go reads them only in the main module, the wrapper);
    - ``ldflags``: ``-X`` flags, ``{version}`` substituted;
    - ``download``: per binary, ``url``, ``sums`` and optionally ``member`` (the
      file inside a tarball), ``{version}``, ``{bare}`` (no v) and ``{arch}``
      substituted: the official release, checked against its SHA-256;
    - ``no_build``: why it cannot be built here (then download or PATH only);
    - ``assets``: name -> path inside the module, copied into the cache and
      returned by that name (CRDs, charts);
    - ``module_version``: the version the Go module proxy knows the module
      by, when it is not ``version`` (a pseudo-version for a project that
      tags its releases without a v);
    - ``cgo``: build with cgo (a C library, e.g. runc's libseccomp);
    - ``host_packages``: the Debian packages the build needs on this machine
      (a C library's headers, pkg-config), installed before it builds;
      required with ``cgo`` (which adds a C compiler and libc's headers itself);
    - ``tags``: Go build tags;
    - ``go_sum``: start the wrapper's go.sum from the module's own, for
      dependencies whose checksums the proxy's checksum database does not
      answer for (a fork pinned by a replace directive, say);
    - ``patches``: build a writable copy of the module instead of a wrapper,
      with these edits: a list of ``{file, replace: [[old, new], ...]}``
      (each ``old`` must be found, or the build fails saying the module is not
      the one the patch was written for);
    - ``stubs``: module path -> ``{require: {module: version}, files: {path:
      text}}``: small modules of the recipe's own that stand for dependencies
      the proxy refuses, replaced in (implies the writable copy).
    """

    name: str
    version: str
    module: str = ""
    binaries: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    replace: Mapping[str, str] = field(default_factory=dict)
    ldflags: tuple[str, ...] = ()
    download: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    no_build: str = ""
    assets: Mapping[str, str] = field(default_factory=dict)
    module_version: str = ""
    cgo: bool = False
    tags: tuple[str, ...] = ()
    go_sum: bool = False
    patches: tuple[Mapping[str, object], ...] = ()
    stubs: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    host_packages: tuple[str, ...] = ()

    KEYS = ("name", "version", "module", "binaries", "replace", "ldflags", "download", "no_build", "assets", "module_version", "cgo", "tags",
            "go_sum", "patches", "stubs", "host_packages")

    @property
    def copy(self) -> bool:
        """Built from a writable copy of the module (patched, or with stubs) rather than a wrapper."""
        return bool(self.patches or self.stubs)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "Recipe":
        if not isinstance(data, Mapping):
            raise ToolchainError(f"a toolchain recipe must be a mapping, got {data!r}")
        name = data.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", name):
            raise ToolchainError(f"a toolchain recipe needs a name of lowercase letters, digits and dashes, got {name!r}")
        what = f"toolchain recipe {name!r}"
        unknown = sorted(set(data) - set(cls.KEYS))
        if unknown:
            raise ToolchainError(f"{what}: unknown key(s) {', '.join(unknown)}; known: {', '.join(cls.KEYS)}")
        if name in GROUPS:
            raise ToolchainError(f"{what}: {name} is one of the testbed's own groups ({', '.join(GROUPS)})")
        _check_version(f"{what}: version", data.get("version"))
        binaries = data.get("binaries") or {}
        if not isinstance(binaries, Mapping) or not binaries:
            raise ToolchainError(f"{what}: binaries must name at least one binary")
        for binary, spec in binaries.items():
            if not isinstance(spec, Mapping) or not spec.get("version_pattern") or not isinstance(spec.get("version_args"), list):
                raise ToolchainError(f"{what}: binary {binary!r} needs version_args (a list) and version_pattern")
            if binary in COMPONENTS:
                raise ToolchainError(f"{what}: binary {binary!r} is one of the testbed's own")
        download = data.get("download") or {}
        for binary, spec in download.items():
            if binary not in binaries or not isinstance(spec, Mapping) or not spec.get("url") or not spec.get("sums"):
                raise ToolchainError(f"{what}: download.{binary} must be one of its binaries, with url and sums")
        no_build = data.get("no_build") or ""
        if not no_build and not data.get("module"):
            raise ToolchainError(f"{what}: a module to build from, or no_build saying why there is none")
        module_version = str(data.get("module_version") or "")
        if module_version and not re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", module_version):
            raise ToolchainError(f"{what}: module_version must be a Go module version (v1.2.3 or a pseudo-version), got {module_version!r}")
        tags = data.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and re.fullmatch(r"[\w.]+", t) for t in tags):
            raise ToolchainError(f"{what}: tags must be a list of Go build tags, got {tags!r}")
        if not isinstance(data.get("cgo", False), bool):
            raise ToolchainError(f"{what}: cgo must be true or false, got {data.get('cgo')!r}")
        host_packages = data.get("host_packages") or []
        if not isinstance(host_packages, list) or not all(isinstance(p, str) and re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", p) for p in host_packages):
            raise ToolchainError(f"{what}: host_packages must be a list of Debian package names, got {host_packages!r}")
        if data.get("cgo") and not host_packages:
            raise ToolchainError(f"{what}: cgo needs host_packages: the Debian packages of the C libraries it links (e.g. libseccomp-dev)")
        return cls(
            name=name,
            version=str(data["version"]),
            module=str(data.get("module") or ""),
            binaries=dict(binaries),
            replace=dict(data.get("replace") or {}),
            ldflags=tuple(data.get("ldflags") or ()),
            download=dict(download),
            no_build=str(no_build),
            assets=dict(data.get("assets") or {}),
            module_version=module_version,
            cgo=bool(data.get("cgo", False)),
            tags=tuple(tags),
            go_sum=bool(data.get("go_sum", False)),
            patches=tuple(_checked_patches(what, data.get("patches") or [])),
            stubs=dict(_checked_stubs(what, data.get("stubs") or {})),
            host_packages=tuple(host_packages),
        )

    def components(self) -> dict[str, Component]:
        return {
            binary: Component(binary, self.name, tuple(str(a) for a in spec["version_args"]), str(spec["version_pattern"]), self)
            for binary, spec in self.binaries.items()
        }

    def go_mod(self, go_version: str = "1.26.0") -> str:
        text = f"module fedbench.local/build/{self.name}\n\ngo {go_version}\n\nrequire {self.module} {self.module_version or self.version}\n"
        if self.replace:
            lines = "\n".join(f"\t{m} => {v if ' ' in v else m + ' ' + v}" for m, v in sorted(self.replace.items()))
            text += f"\nreplace (\n{lines}\n)\n"
        return text

    def fill(self, text: str, arch: str = "amd64") -> str:
        return text.replace("{version}", self.version).replace("{bare}", self.version.lstrip("v")).replace("{arch}", arch)


def _checked_patches(what: str, patches: object) -> list[Mapping[str, object]]:
    if not isinstance(patches, list):
        raise ToolchainError(f"{what}: patches must be a list of {{file, replace: [[old, new], ...]}}")
    for patch in patches:
        pairs = patch.get("replace") if isinstance(patch, Mapping) else None
        if not isinstance(patch, Mapping) or not isinstance(patch.get("file"), str) or not isinstance(pairs, list) or not pairs \
                or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) and p[0] for p in pairs):
            raise ToolchainError(f"{what}: a patch needs file (a path in the module) and replace, a list of [old, new] texts; got {patch!r}")
    return patches


def _checked_stubs(what: str, stubs: object) -> Mapping[str, Mapping[str, object]]:
    if not isinstance(stubs, Mapping):
        raise ToolchainError(f"{what}: stubs must map a module path to {{require, files}}")
    for module, spec in stubs.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("files"), Mapping) or not spec["files"]:
            raise ToolchainError(f"{what}: stub {module} needs files (path -> text)")
    return stubs


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        Component("kube-apiserver", "kubernetes", ("--version",), r"Kubernetes v(\S+)"),
        Component("kube-controller-manager", "kubernetes", ("--version",), r"Kubernetes v(\S+)"),
        Component("kube-scheduler", "kubernetes", ("--version",), r"Kubernetes v(\S+)"),
        Component("kubectl", "kubernetes", ("version", "--client"), r"Client Version: v(\S+)"),
        # A kind node's (kind testbed only).
        Component("kubelet", "kubernetes", ("--version",), r"Kubernetes v(\S+)"),
        Component("kubeadm", "kubernetes", ("version", "-o", "short"), r"v(\d+\.\d+\.\d+)"),
        Component("kube-proxy", "kubernetes", ("--version",), r"Kubernetes v(\S+)"),
        Component("etcd", "etcd", ("--version",), r"etcd Version: (\S+)"),
        Component("kwok", "kwok", ("--version",), r"version v?(\d+\.\d+\.\d+)"),
        Component("kwokctl", "kwok", ("--version",), r"version v?(\d+\.\d+\.\d+)"),
        Component("helm", "helm", ("version", "--short"), r"v(\d+\.\d+\.\d+)"),
        Component("kine", "kine", ("--version",), r"kine version v(\d+\.\d+\.\d+)"),
    )
}

# The binaries the embedded testbed needs; a framework's come with its recipe.
TESTBED_COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
)


def registry(recipes: Iterable[Recipe] = ()) -> dict[str, Component]:
    """The testbed's components and those of the recipes given."""
    known = dict(COMPONENTS)
    for recipe in recipes:
        for name, comp in recipe.components().items():
            if name in known and known[name].recipe is not recipe:
                raise ToolchainError(f"binary {name} comes from two recipes: {known[name].group} and {recipe.name}")
            known[name] = comp
    return known


def cache_root() -> Path:
    explicit = os.environ.get("FEDBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fedbench"


def cached_path(component: Component, versions: Versions, root: Path | None = None) -> Path:
    version = component.version(versions)
    return (root or cache_root()) / "bin" / component.name / version / component.name


def binary_version(path: str | Path, component: Component) -> str | None:
    """The version a binary reports, without the leading v; None if unreadable."""
    try:
        proc = subprocess.run(
            [str(path), *component.version_args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(component.version_pattern, proc.stdout + proc.stderr)
    return match.group(1).lstrip("v") if match else None


# --------------------------------------------------------------------------
# Progress: every long step says what it does and how long it has taken.
# --------------------------------------------------------------------------

Reporter = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class Resolved:
    name: str
    version: str
    path: str
    source: str  # cache, path, download, build
    seconds: float = 0.0


# --------------------------------------------------------------------------
# Download (official releases, checksum-verified).
# --------------------------------------------------------------------------


def _fetch(url: str, dest: Path, timeout: float = 60) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:  # noqa: S310 - https URLs we build
        shutil.copyfileobj(resp, out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_sum(sums_text: str, filename: str) -> str:
    for line in sums_text.splitlines():
        parts = line.split()
        if len(parts) == 1 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            return parts[0]
        if len(parts) >= 2 and parts[-1].lstrip("*").endswith(filename):
            return parts[0]
    raise ToolchainError(f"no checksum for {filename} in the published checksum file")


def download_urls(component: Component, versions: Versions, arch: str = "amd64") -> tuple[str, str, str | None]:
    """(artifact URL, checksum URL, member inside a tarball or None)."""
    v = component.version(versions)
    if component.recipe:
        spec = component.recipe.download.get(component.name)
        if not spec:
            raise ToolchainError(f"{component.name}: recipe {component.recipe.name} names no official download of it")
        fill = component.recipe.fill
        return fill(spec["url"], arch), fill(spec["sums"], arch), (fill(spec["member"], arch) if spec.get("member") else None)
    if component.group == "kubernetes":
        url = f"https://dl.k8s.io/release/{v}/bin/linux/{arch}/{component.name}"
        return url, url + ".sha256", None
    if component.group == "etcd":
        base = f"https://github.com/etcd-io/etcd/releases/download/{v}"
        tar = f"etcd-{v}-linux-{arch}.tar.gz"
        return f"{base}/{tar}", f"{base}/SHA256SUMS", f"etcd-{v}-linux-{arch}/etcd"
    if component.group == "kwok":
        base = f"https://github.com/kubernetes-sigs/kwok/releases/download/{v}"
        return f"{base}/{component.name}-linux-{arch}", f"{base}/checksums.txt", None
    raise ToolchainError(f"{component.name}: no official download is known")


def download(component: Component, versions: Versions, dest: Path, report: Reporter = _quiet) -> None:
    url, sums_url, member = download_urls(component, versions)
    report(f"{component.name}: downloading {url}")
    with tempfile.TemporaryDirectory(prefix="fedbench-dl-") as tmp:
        artifact = Path(tmp) / url.rsplit("/", 1)[-1]
        sums = Path(tmp) / "sums"
        try:
            _fetch(url, artifact)
            _fetch(sums_url, sums)
        except OSError as exc:
            raise ToolchainError(f"{component.name}: download of {url} failed: {exc}") from exc
        expected = _expected_sum(sums.read_text(), artifact.name)
        actual = _sha256(artifact)
        if actual != expected:
            raise ToolchainError(
                f"{component.name}: checksum mismatch for {url}: expected {expected}, got {actual}"
            )
        if member:
            with tarfile.open(artifact) as tar:
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise ToolchainError(f"{component.name}: {member} missing from {url}")
                binary = Path(tmp) / "binary"
                binary.write_bytes(extracted.read())
        else:
            binary = artifact
        _install(binary, dest)


def _install(binary: Path, dest: Path) -> None:
    """Move a finished binary into the cache atomically (never a half file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.copyfile(binary, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, dest)


# --------------------------------------------------------------------------
# Build from the Go module proxy.
# --------------------------------------------------------------------------


@dataclass
class BuildPlan:
    """One `go build` that produces one or more binaries of a group."""

    group: str
    module: str  # wrapper module's go.mod text, or "" for `go install`
    packages: dict[str, str]  # binary name -> Go package path (or pkg@version)
    ldflags: str = "-s -w"
    env: dict[str, str] = field(default_factory=dict)
    install: bool = False  # `go install pkg@version` instead of a wrapper
    tags: tuple[str, ...] = ()
    debs: tuple[str, ...] = ()  # Debian packages the build needs (cgo: a compiler, a C library's headers)


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not go:
        raise ToolchainError("building needs the Go toolchain: `go` is not on PATH")
    return go


def _run_go(args: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    proc = subprocess.run([_go(), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"{what}: `go {' '.join(args)}` failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The staging modules that k8s.io/kubernetes' go.mod replaces with local paths."""
    modules = []
    for line in kubernetes_go_mod.splitlines():
        match = re.match(r"\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", line)
        if match:
            modules.append(match.group(1))
    return modules


def kubernetes_wrapper(version: str, staging: Iterable[str], go_version: str = "1.26.0") -> str:
    minor = version.lstrip("v").split(".")[1]
    replaces = "\n".join(f"\t{m} => {m} v0.{minor}.{version.split('.')[2]}" for m in staging)
    return (
        "module fedbench.local/build/kubernetes\n\n"
        f"go {go_version}\n\n"
        f"require k8s.io/kubernetes {version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def kubernetes_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


KINE_CGO_CFLAGS = " ".join(f"-DSQLITE_{o}" for o in (
    "DEFAULT_MEMSTATUS=0", "DISABLE_INTRINSIC", "ENABLE_COLUMN_METADATA", "ENABLE_DBPAGE_VTAB", "ENABLE_DBSTAT_VTAB",
    "ENABLE_MATH_FUNCTIONS", "ENABLE_MEMORY_MANAGEMENT", "ENABLE_OFFSET_SQL_FUNC", "ENABLE_PREUPDATE_HOOK", "ENABLE_RBU",
    "ENABLE_RTREE", "ENABLE_SESSION", "ENABLE_SNAPSHOT", "ENABLE_STAT4", "ENABLE_UNLOCK_NOTIFY", "LIKE_DOESNT_MATCH_BLOBS",
    "THREADSAFE=1", "WITHOUT_ZONEMALLOC"))


def etcd_wrapper(version: str, go_version: str = "1.26.0") -> str:
    mods = ["go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/client/pkg/v3", "go.etcd.io/etcd/client/v3", "go.etcd.io/etcd/pkg/v3"]
    replaces = "\n".join(f"\t{m} => {m} {version}" for m in mods)
    return (
        "module fedbench.local/build/etcd\n\n"
        f"go {go_version}\n\n"
        f"require go.etcd.io/etcd/server/v3 {version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def build_plan(group: str, names: list[str], versions: Versions, work: Path, env: dict[str, str],
               recipe: Recipe | None = None) -> BuildPlan:
    if recipe:
        if recipe.no_build:
            raise ToolchainError(f"{', '.join(names)} {recipe.version} cannot be built here: {recipe.no_build}")
        ld = " ".join(["-s -w", *(recipe.fill(flag) for flag in recipe.ldflags)])
        cgo = {"CGO_ENABLED": "1"} if recipe.cgo else {}
        debs = (*(syspkgs.CGO if recipe.cgo else ()), *recipe.host_packages)
        if recipe.copy:
            packages = {n: "./" + str(recipe.binaries[n].get("package") or "") for n in names}
            return BuildPlan(group, "", packages, ldflags=ld, env=cgo, tags=recipe.tags, debs=debs)
        packages = {n: "/".join(p for p in (recipe.module, str(recipe.binaries[n].get("package") or "")) if p) for n in names}
        return BuildPlan(group, recipe.go_mod(_local_go_version(work, env)), packages, ldflags=ld, env=cgo, tags=recipe.tags, debs=debs)
    v = getattr(versions, group)
    if group == "kubernetes":
        _run_go(["mod", "download", f"k8s.io/kubernetes@{v}"], work, env, "kubernetes")
        gomodcache = _run_go(["env", "GOMODCACHE"], work, env, "kubernetes").strip()
        gomod = Path(gomodcache, f"k8s.io/kubernetes@{v}", "go.mod").read_text()
        return BuildPlan(
            group,
            kubernetes_wrapper(v, staging_modules(gomod)),
            {n: f"k8s.io/kubernetes/cmd/{n}" for n in names},
            ldflags=kubernetes_ldflags(v),
        )
    if group == "etcd":
        return BuildPlan(group, etcd_wrapper(v), {"etcd": "go.etcd.io/etcd/server/v3"})
    if group == "kwok":
        return BuildPlan(
            group,
            "",
            {n: f"sigs.k8s.io/kwok/cmd/{n}@{v}" for n in names},
            install=True,
        )
    if group == "helm":
        return BuildPlan(
            group, "", {"helm": f"helm.sh/helm/v3/cmd/helm@{v}"},
            ldflags=f"-s -w -X helm.sh/helm/v3/internal/version.version={v}", install=True,
        )
    if group == "kine":
        # As kine's own scripts/build makes it: cgo, so SQLite is the C library
        # (mattn/go-sqlite3) with the options k3s builds it with.
        return BuildPlan(
            group, "", {"kine": f"github.com/k3s-io/kine@{v}"},
            ldflags=f"-s -w -X github.com/k3s-io/kine/pkg/version.Version={v}", install=True,
            env={"CGO_ENABLED": "1", "CGO_CFLAGS": KINE_CGO_CFLAGS}, debs=syspkgs.CGO,
            tags=("sqlite_unlock_notify", "sqlite_vtable", "sqlite_stat4", "sqlite_preupdate_hook", "sqlite_math_functions",
                  "sqlite_dbstat", "sqlite_column_metadata"),
        )
    raise ToolchainError(f"no build recipe for group {group!r}")


def _patched_copy(recipe: Recipe, work: Path, env: Mapping[str, str]) -> Path:
    """A writable copy of the recipe's module, its patches applied, its stubs
    and replaces in its go.mod: the main module of the build."""
    import json

    out = _run_go(["mod", "download", "-json", f"{recipe.module}@{recipe.module_version or recipe.version}"], work, dict(env), recipe.name)
    tree = work / "src"
    shutil.copytree(Path(json.loads(out)["Dir"]), tree)
    for path in [tree, *tree.rglob("*")]:  # the module cache is read-only
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    for patch in recipe.patches:
        target = tree / str(patch["file"])
        if not target.is_file():
            raise ToolchainError(f"{recipe.name} {recipe.version}: patch of {patch['file']}: no such file in {recipe.module}")
        text = target.read_text()
        for old, new in patch["replace"]:  # type: ignore[union-attr]
            if old not in text:
                raise ToolchainError(f"{recipe.name} {recipe.version}: patch of {patch['file']}: {old!r} is not there (not the module the patch was written for)")
            text = text.replace(old, new)
        target.write_text(text)
    edits = []
    for module, spec in recipe.stubs.items():
        folder = work / "stubs" / re.sub(r"[^A-Za-z0-9._-]+", "_", module)
        requires = "".join(f"require {m} {v}\n" for m, v in sorted((spec.get("require") or {}).items()))  # type: ignore[union-attr]
        (folder).mkdir(parents=True, exist_ok=True)
        (folder / "go.mod").write_text(f"module {module}\n\ngo 1.18\n\n{requires}")
        for rel, text in spec["files"].items():  # type: ignore[union-attr]
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(str(text))
        edits.append(f"-replace={module}={folder}")
    for module, version in recipe.replace.items():
        edits.append(f"-replace={module}={version.replace(' ', '@') if ' ' in version else module + '@' + version}")
    if edits:
        _run_go(["mod", "edit", *edits], tree, dict(env), f"{recipe.name}: go mod edit")
    return tree


def _module_go_sum(recipe: Recipe, work: Path, env: Mapping[str, str]) -> str:
    """The recipe's module's own go.sum (checksums of everything it pins)."""
    import json

    out = _run_go(["mod", "download", "-json", f"{recipe.module}@{recipe.module_version or recipe.version}"], work, dict(env), recipe.name)
    go_sum = Path(json.loads(out)["Dir"]) / "go.sum"
    if not go_sum.is_file():
        raise ToolchainError(f"{recipe.name}: the module {recipe.module} has no go.sum to start from")
    return go_sum.read_text()


def _local_go_version(work: Path, env: Mapping[str, str]) -> str:
    """The Go version a wrapper module declares: the local toolchain's, so that
    no dependency can require a newer one than the go line (1.26.8, say)."""
    out = _run_go(["env", "GOVERSION"], work, dict(env), "go version").strip()
    match = re.match(r"go(\d+\.\d+(\.\d+)?)", out)
    return match.group(1) if match else "1.26.0"


def go_binary_name(package: str) -> str:
    """The file name `go build`/`go install` gives a main package's binary."""
    parts = package.split("@")[0].rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]  # a major-version suffix: go.etcd.io/etcd/server/v3 -> server
    return parts[-1]


class _Ticker:
    """Prints what is being built and for how long, every `every` seconds."""

    def __init__(self, what: str, report: Reporter, every: float = 15.0, counter: Callable[[], str] | None = None):
        self.what, self.report, self.every, self.counter = what, report, every, counter
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            extra = f", {self.counter()}" if self.counter else ""
            self.report(f"building {self.what}: {time.monotonic() - self.start:.0f}s so far{extra}")

    def __enter__(self) -> "_Ticker":
        self.report(f"building {self.what} from the Go module proxy")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _count_packages(packages: list[str], work: Path, env: Mapping[str, str]) -> list[int]:
    """How many packages building ``packages`` involves (``go list -deps``), as a one-item
    list, or none if go cannot say; it downloads the modules the build needs anyway."""
    try:
        out = subprocess.run([_go(), "list", "-deps", *packages], cwd=work, env=dict(env), capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [len(out.stdout.split())] if out.returncode == 0 else []


def build(group: str, names: list[str], versions: Versions, cache: Path, report: Reporter = _quiet,
          recipe: Recipe | None = None) -> float:
    """Build ``names`` of one group (or recipe) into the cache; returns the seconds taken."""
    start = time.monotonic()
    known = registry([recipe] if recipe else [])
    version = recipe.version if recipe else getattr(versions, group)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    built_dir = cache / "build" / group
    built_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fedbench-build-{group}-") as tmp:
        work = Path(tmp)
        plan = build_plan(group, names, versions, work, env, recipe)
        what = f"{', '.join(names)} ({group} {version})"
        try:
            syspkgs.ensure(plan.debs, why=f"building {what}", report=report)
        except syspkgs.SystemPackagesError as exc:
            raise ToolchainError(str(exc)) from None
        out = work / "out"
        out.mkdir()
        compiled: list[str] = []
        log_path = built_dir / f"{version}.log"
        tags = ["-tags", ",".join(plan.tags)] if plan.tags else []
        build_dir = work
        if recipe and recipe.copy:
            build_dir = _patched_copy(recipe, work, env)
            cmd = [_go(), "build", "-v", "-trimpath", *tags, "-ldflags", plan.ldflags, "-o", str(out) + "/", *plan.packages.values()]
            env_run = dict(env, **plan.env)
        elif plan.install:
            cmd = [_go(), "install", "-v", "-trimpath", *tags, "-ldflags", plan.ldflags, *plan.packages.values()]
            env_run = dict(env, GOBIN=str(out), GOFLAGS="", **plan.env)
        else:
            (work / "go.mod").write_text(plan.module)
            if recipe and recipe.go_sum:
                (work / "go.sum").write_text(_module_go_sum(recipe, work, env))
            cmd = [_go(), "build", "-v", "-trimpath", *tags, "-ldflags", plan.ldflags, "-o", str(out) + "/", *plan.packages.values()]
            env_run = dict(env, **plan.env)
        total: list[int] = []  # packages the build needs at most (found once the modules are there)

        def counter() -> str:
            of = f" of at most {total[0]} (the rest come from the build cache)" if total else ""
            return f"{len(compiled)}{of} packages compiled, last {compiled[-1] if compiled else '-'}"

        with open(log_path, "w") as log, _Ticker(what, report, counter=counter):
            if not plan.install:
                total += _count_packages(list(plan.packages.values()), build_dir, env)
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.Popen(cmd, cwd=build_dir, env=env_run, stdout=log, stderr=subprocess.PIPE, text=True)
            assert proc.stderr is not None
            tail: list[str] = []
            for line in proc.stderr:
                log.write(line)
                line = line.strip()
                if line and not line.startswith("go: "):
                    compiled.append(line)
                tail = (tail + [line])[-40:]
            rc = proc.wait()
        if rc != 0:
            raise ToolchainError(
                f"building {what} failed (exit {rc}); full log: {log_path}\n" + "\n".join(tail)
            )
        for name, pkg in plan.packages.items():
            produced = out / go_binary_name(pkg)
            if not produced.exists():
                raise ToolchainError(f"building {what}: no binary for {name} in {out}")
            _install(produced, cached_path(known[name], versions, cache))
    seconds = time.monotonic() - start
    report(f"built {what} in {seconds:.0f}s")
    return seconds


# --------------------------------------------------------------------------
# Resolution.
# --------------------------------------------------------------------------


def ensure(
    names: Iterable[str] = TESTBED_COMPONENTS,
    *,
    versions: Versions | None = None,
    source: str = "auto",
    cache: Path | None = None,
    report: Reporter = _quiet,
    recipes: Iterable[Recipe] = (),
) -> dict[str, Resolved]:
    """Make every named binary available; returns where each one is.

    ``recipes`` are frameworks' build recipes: their binaries may be named too."""
    versions = versions or Versions()
    if source not in SOURCES:
        raise ToolchainError(f"toolchain source must be one of {', '.join(SOURCES)}, got {source!r}")
    cache = cache or cache_root()
    names = list(dict.fromkeys(names))
    recipes = list(recipes)
    known = registry(recipes)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ToolchainError(
            f"unknown toolchain component(s): {', '.join(unknown)} (known: {', '.join(sorted(known))}; "
            "a framework's binaries need its recipe)"
        )

    resolved, missing = find_local(names, versions=versions, source=source, cache=cache, recipes=recipes)

    for comp in list(missing):
        if source not in ("auto", "download"):
            break
        dest = cached_path(comp, versions, cache)
        start = time.monotonic()
        try:
            download(comp, versions, dest, report)
        except ToolchainError as exc:
            if source == "download":
                raise
            report(f"{comp.name}: {exc}; will build from source")
            continue
        resolved[comp.name] = Resolved(comp.name, comp.version(versions).lstrip("v"), str(dest), "download", time.monotonic() - start)
        missing.remove(comp)

    groups: dict[str, list[str]] = {}
    for comp in missing:
        groups.setdefault(comp.group, []).append(comp.name)
    for group, group_names in groups.items():
        seconds = build(group, group_names, versions, cache, report, known[group_names[0]].recipe)
        for name in group_names:
            comp = known[name]
            path = cached_path(comp, versions, cache)
            resolved[name] = Resolved(name, comp.version(versions).lstrip("v"), str(path), "build", seconds)

    return {name: resolved[name] for name in names}


def find_local(
    names: Iterable[str], *, versions: Versions, source: str, cache: Path, recipes: Iterable[Recipe] = ()
) -> tuple[dict[str, Resolved], list[Component]]:
    """What is already on this machine (cache, or PATH at the pinned version).

    Returns (found, missing). With ``source=path`` a binary missing from PATH,
    or at another version, is an error that names it.
    """
    resolved: dict[str, Resolved] = {}
    missing: list[Component] = []
    known = registry(recipes)
    for name in names:
        if name not in known:
            raise ToolchainError(f"unknown toolchain component {name} (a framework's binaries need its recipe)")
        comp = known[name]
        want = comp.version(versions).lstrip("v")
        cached = cached_path(comp, versions, cache)
        if source != "path" and cached.is_file() and os.access(cached, os.X_OK):
            resolved[name] = Resolved(name, want, str(cached), "cache")
            continue
        if source in ("auto", "path"):
            found = shutil.which(name)
            if found and binary_version(found, comp) == want:
                resolved[name] = Resolved(name, want, found, "path")
                continue
            if source == "path":
                seen = f"found {found} at version {binary_version(found, comp)}" if found else "not on PATH"
                raise ToolchainError(
                    f"{name} v{want} is required with toolchain source 'path', but it is {seen}"
                )
        missing.append(comp)

    return resolved, missing


def kwok_manifests(versions: Versions, cache: Path | None = None) -> Path:
    """KWOK's CRDs and Helm charts (controller, fast stages) from its module, cached.

    For kind and existing clusters, where KWOK's controller runs in the
    cluster (image registry.k8s.io/kwok/kwok:<version>) instead of as a local
    process, and ``stages-fast.yaml``: the stages kwokctl gives its own
    controller (node-initialize, node-heartbeat-with-lease, pod-ready,
    pod-complete, pod-delete), for a KWOK controller run on this machine
    against another cluster. Returns the folder holding them.
    """
    cache = cache or cache_root()
    dest = cache / "share" / "kwok" / versions.kwok
    if ((dest / "chart" / "Chart.yaml").is_file() and (dest / "stage-fast" / "Chart.yaml").is_file() and (dest / "crds").is_dir()
            and (dest / "stages-fast.yaml").is_file()):
        return dest
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    with tempfile.TemporaryDirectory(prefix="fedbench-kwok-") as tmp:
        out = _run_go(["mod", "download", "-json", f"sigs.k8s.io/kwok@{versions.kwok}"], Path(tmp), env, "kwok manifests")
    import json

    module_dir = Path(json.loads(out)["Dir"])
    pieces = {"crds": module_dir / "kustomize/crd/bases", "chart": module_dir / "charts/kwok", "stage-fast": module_dir / "charts/stage-fast"}
    for name, source in pieces.items():
        if not source.is_dir():
            raise ToolchainError(f"kwok {versions.kwok}: no {name} at {source}")
    dest.mkdir(parents=True, exist_ok=True)
    for name, source in pieces.items():
        target = dest / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
        for path in [target, *target.rglob("*")]:  # the module cache is read-only
            path.chmod(0o755 if path.is_dir() else 0o644)
    stage_dir = module_dir / "kustomize/stage"
    stages = ["node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
              "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml"]
    text = "\n---\n".join((stage_dir / s).read_text().strip().removeprefix("---").strip() for s in stages) + "\n"
    (dest / "stages-fast.yaml").write_text(text)
    (dest / "stages-fast.yaml").chmod(0o644)
    return dest


def recipe_assets(recipe: Recipe, cache: Path | None = None) -> dict[str, str]:
    """A recipe's files from its Go module (CRDs, charts), cached per version;
    returns each one's path by its name."""
    if not recipe.assets:
        return {}
    cache = cache or cache_root()
    base = cache / "share" / recipe.name / recipe.version
    paths = {name: base / name / Path(inside).name for name, inside in recipe.assets.items()}
    if all(p.exists() for p in paths.values()):
        return {name: str(p) for name, p in paths.items()}
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    with tempfile.TemporaryDirectory(prefix=f"fedbench-{recipe.name}-") as tmp:
        out = _run_go(["mod", "download", "-json", f"{recipe.module}@{recipe.module_version or recipe.version}"], Path(tmp), env, f"{recipe.name} files")
    import json

    module_dir = Path(json.loads(out)["Dir"])
    for name, inside in recipe.assets.items():
        source, target = module_dir / inside, paths[name]
        if not source.exists():
            raise ToolchainError(f"{recipe.name} {recipe.version}: asset {name}: no {inside} in {recipe.module}")
        if target.exists():
            continue
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copyfile(source, partial)
        for path in [partial, *partial.rglob("*")]:  # the module cache is read-only
            path.chmod(0o755 if path.is_dir() else 0o644)
        os.replace(partial, target)
    return {name: str(p) for name, p in paths.items()}
