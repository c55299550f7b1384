"""Where built images live, and what a built image is.

``$SCHEDCP_HOME/images/<key>/`` holds, once a build has finished (the folder is renamed
into place atomically, so a half-built image never appears here):

- ``base.qcow2``: the root filesystem (ext4, read-only backing file of every VM);
- ``vmlinuz`` and ``initrd.img``: the pinned kernel for direct kernel boot;
- ``id_ed25519`` / ``id_ed25519.pub``: the client key the host logs in with (per image);
- ``known_hosts``: the guest's host key, so the relay pins it;
- ``image.lock.json``: the manifest and the digests of every artefact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


def home() -> Path:
    """Root of schedcp's host-side state (images, saved VM states, run folders).

    Must be traversable by libvirt's QEMU user, so it is not under /root by default.
    """
    return Path(os.environ.get("SCHEDCP_HOME", "/var/lib/schedcp"))


def images_dir() -> Path:
    return home() / "images"


class ImageLock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    key: str
    recipe: str
    profile: str | None = None  # the recipe's profile it was built with (None: whole recipe)
    features: list[str] = Field(default_factory=list)  # the recipe's optional features it contains
    kernel_release: str
    kernel_version: str
    cmdline: str
    boot_initrd: bool
    digests: dict[str, str]
    packages: dict[str, str]
    manifest: dict
    built_at: str
    build_seconds: float
    tools: dict[str, str]


class Image:
    """A finished image folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = ImageLock.model_validate_json((folder / "image.lock.json").read_text())

    @property
    def key(self) -> str:
        return self.lock.key

    base = property(lambda self: self.folder / "base.qcow2")
    kernel = property(lambda self: self.folder / "vmlinuz")
    initrd = property(lambda self: self.folder / "initrd.img")
    client_key = property(lambda self: self.folder / "id_ed25519")
    known_hosts = property(lambda self: self.folder / "known_hosts")

    def verify(self, full: bool = False) -> list[str]:
        """Artefacts whose sha256 differs from the lock (empty: intact). The small files are
        hashed every time; ``base.qcow2`` (gigabytes) when ``full``, or when its size,
        mtime or inode changed since the last full check (stamp ``.verified``)."""
        bad = []
        for name, want in sorted(self.lock.digests.items()):
            p = self.folder / name
            if name == "base.qcow2" and not full and self._stamp_ok(p):
                continue
            if not p.is_file() or sha256_file(p) != want:
                bad.append(name)
            elif name == "base.qcow2":
                (self.folder / ".verified").write_text(json.dumps(_stat_key(p)))
        return bad

    def _stamp_ok(self, p: Path) -> bool:
        try:
            return json.loads((self.folder / ".verified").read_text()) == _stat_key(p)
        except (OSError, ValueError):
            return False

    def summary(self) -> dict:
        return {
            "key": self.key,
            "recipe": self.lock.recipe + (f"@{self.lock.profile}" if self.lock.profile else ""),
            "features": self.lock.features,
            "kernel": self.lock.kernel_release,
            "built_at": self.lock.built_at,
            "base_sha256": self.lock.digests.get("base.qcow2", ""),
            "vmlinuz_sha256": self.lock.digests.get("vmlinuz", ""),
            "size_mib": round(sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file()) / 2**20),
        }


def free_mib(path: Path) -> int:
    """Free space, in MiB, on the disk that holds ``path`` (or would hold it: the nearest
    existing folder above it is asked)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free >> 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(p: Path) -> list:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def find_image(key: str) -> Image | None:
    folder = images_dir() / key
    return Image(folder) if (folder / "image.lock.json").is_file() else None


def list_images() -> list[Image]:
    d = images_dir()
    if not d.is_dir():
        return []
    out = []
    for f in sorted(d.iterdir()):
        if (f / "image.lock.json").is_file():
            try:
                out.append(Image(f))
            except (ValueError, json.JSONDecodeError):
                continue
    return out
