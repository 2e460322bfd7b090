# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container image archives written from files, with no registry and no builder.

An archive here is one tar that both loaders read: an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/sha256/…``, for containerd's
``ctr images import``) and Docker's ``manifest.json`` beside it (for
``docker load``), over the same uncompressed layer blobs. The image name
goes into ``io.containerd.image.name`` (fully qualified, as the CRI looks
images up) and into Docker's ``RepoTags``.

Layers are tar files: a root file system (mmdebstrap's output), or one made
by :func:`layer_from` from a mapping of paths in the image to files, folders,
symlinks or text, owned by root.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

LAYER_MEDIA = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA = "application/vnd.oci.image.index.v1+json"


class ImageError(Exception):
    """An image could not be written; the message names it."""


def qualified(ref: str) -> str:
    """The fully qualified name the CRI looks an image up by (docker.io/library/… for short names)."""
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    tag = tag or "latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


@dataclass(frozen=True)
class Config:
    """What a container of the image runs (the subset of the OCI image config we use)."""

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=lambda: {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    workdir: str = ""
    user: str = ""
    stop_signal: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def document(self, diff_ids: Sequence[str], created: str) -> dict:
        conf: dict[str, object] = {"Env": [f"{k}={v}" for k, v in self.env.items()]}
        if self.entrypoint:
            conf["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            conf["Cmd"] = list(self.cmd)
        if self.workdir:
            conf["WorkingDir"] = self.workdir
        if self.user:
            conf["User"] = self.user
        if self.stop_signal:
            conf["StopSignal"] = self.stop_signal
        if self.labels:
            conf["Labels"] = dict(self.labels)
        return {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": conf,
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
            "history": [{"created": created, "created_by": "fedbench (plugins/module_utils/build/oci.py)"} for _ in diff_ids],
        }


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return "sha256:" + digest.hexdigest(), size


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def layer_from(entries: Mapping[str, object], dest: Path) -> Path:
    """A layer tar from ``{path in image: source}``. A source is a Path (a
    file, or a folder copied whole), ``("dir", mode)``, ``("symlink", target)``,
    ``("text", content, mode)`` or ``("file", path, mode)``. Parent folders are
    made 0755; everything is owned by root; times are 0 (so a layer from the
    same inputs has the same digest)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    made: set[str] = set()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:

        def parents(path: str) -> None:
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder not in made:
                    made.add(folder)
                    tar.addfile(_info(folder, tarfile.DIRTYPE, 0o755))

        def add_path(path: str, source: Path, mode: int | None = None) -> None:
            if source.is_symlink():
                tar.addfile(_info(path, tarfile.SYMTYPE, 0o777, link=os.readlink(source)))
            elif source.is_dir():
                if path.strip("/") not in made:
                    made.add(path.strip("/"))
                    tar.addfile(_info(path, tarfile.DIRTYPE, mode or 0o755))
                for child in sorted(source.iterdir()):
                    add_path(f"{path.rstrip('/')}/{child.name}", child)
            elif source.is_file():
                size = source.stat().st_size
                file_mode = mode if mode is not None else (0o755 if os.access(source, os.X_OK) else 0o644)
                with open(source, "rb") as handle:
                    tar.addfile(_info(path, tarfile.REGTYPE, file_mode, size), handle)
            else:
                raise ImageError(f"{source} (for {path} in the image) is not a file or folder")

        for path in sorted(entries):
            source = entries[path]
            parents(path)
            if isinstance(source, Path):
                add_path(path, source)
            elif isinstance(source, tuple) and source[0] == "dir":
                made.add(path.strip("/"))
                tar.addfile(_info(path, tarfile.DIRTYPE, source[1]))
            elif isinstance(source, tuple) and source[0] == "symlink":
                tar.addfile(_info(path, tarfile.SYMTYPE, 0o777, link=source[1]))
            elif isinstance(source, tuple) and source[0] == "text":
                data = source[1].encode()
                tar.addfile(_info(path, tarfile.REGTYPE, source[2], len(data)), io.BytesIO(data))
            elif isinstance(source, tuple) and source[0] == "file":
                add_path(path, Path(source[1]), source[2])
            else:
                raise ImageError(f"unknown source for {path}: {source!r}")
    return dest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))


def write_archive(dest: Path, *, ref: str, layers: Sequence[Path], config: Config = Config()) -> str:
    """Write the image ``ref`` (its layers in order, bottom first) as an archive
    both containerd and Docker load; returns the image's config digest (its ID)."""
    if not layers:
        raise ImageError(f"image {ref}: no layers")
    sums = [sha256_file(layer) for layer in layers]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0))
    config_bytes = json.dumps(config.document([d for d, _ in sums], created), sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA,
        "config": {"mediaType": CONFIG_MEDIA, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_MEDIA, "digest": d, "size": s} for d, s in sums],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    full = qualified(ref)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA, "digest": manifest_digest, "size": len(manifest_bytes),
            "annotations": {"io.containerd.image.name": full, "org.opencontainers.image.ref.name": full.rsplit(":", 1)[1]},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    }
    docker_manifest = [{"Config": f"blobs/sha256/{config_digest[7:]}", "RepoTags": [ref],
                        "Layers": [f"blobs/sha256/{d[7:]}" for d, _ in sums]}]
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        tar.addfile(_info("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(_info("blobs/sha256", tarfile.DIRTYPE, 0o755))
        seen = set()
        for layer, (digest, size) in zip(layers, sums):
            if digest in seen:
                continue
            seen.add(digest)
            with open(layer, "rb") as handle:
                tar.addfile(_info(f"blobs/sha256/{digest[7:]}", tarfile.REGTYPE, 0o644, size), handle)
        _add_bytes(tar, f"blobs/sha256/{config_digest[7:]}", config_bytes)
        _add_bytes(tar, f"blobs/sha256/{manifest_digest[7:]}", manifest_bytes)
        _add_bytes(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())
    os.replace(partial, dest)
    return config_digest


def read_archive(path: Path) -> dict:
    """The name, config digest and layer digests an archive holds (for checks and tests)."""
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile("index.json"))
        docker = json.load(tar.extractfile("manifest.json"))
        entry = index["manifests"][0]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{entry['digest'][7:]}"))
        config = json.load(tar.extractfile(f"blobs/sha256/{manifest['config']['digest'][7:]}"))
    return {
        "name": entry["annotations"]["io.containerd.image.name"],
        "digest": entry["digest"],
        "repo_tags": docker[0]["RepoTags"],
        "id": manifest["config"]["digest"],
        "layers": [layer["digest"] for layer in manifest["layers"]],
        "diff_ids": config["rootfs"]["diff_ids"],
        "config": config["config"],
    }
