"""The machine manifest of a job: the hardware and software profile its numbers come from.

Written into ``job.json`` (``manifest``) when a job is created; ``schedcp report`` prints
it as a short header, and results of jobs whose profiles differ are never put in one
table without a warning (:func:`differences`). The *profile* is the part that decides
how fast things run (CPU, cores, memory, accelerator, host kernel, QEMU, libvirt, image,
guest kernel); the project's commit and package versions are recorded beside it but do
not make two profiles differ.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("anthropic", "libvirt-python", "paramiko", "numpy", "scipy", "pydantic", "textual", "mcp", "pyyaml")
# what must match for two jobs' numbers to share a table
PROFILE_KEYS = ("cpu_model", "cores", "memory_gib", "accel", "host_kernel", "qemu", "libvirt", "image",
                "image_lock_sha256", "guest_kernel", "vcpus", "memory_mib")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> int:
    try:
        kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                  if x.startswith("MemTotal"))
        return round(kb / 1024 / 1024)
    except (OSError, StopIteration, ValueError):
        return 0


def _git(*args: str, repo: Path = REPO) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def tree_dirty(repo: Path = REPO) -> bool:
    """Whether tracked files differ from the commit, not counting ``results/``: the
    reference run writes its own output there, which says nothing about the code that
    produced it."""
    return bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results",
                     repo=repo))


def _versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = ""
    return out


def machine_manifest(backend) -> dict:
    """The profile of this host and of ``backend``'s image and VM shape, plus the
    project's commit and the key package versions."""
    from sandbox.libvirt import prereqs

    tools = prereqs.host_tools()
    image = backend.image
    lock_file = Path(image.folder) / "image.lock.json" if hasattr(image, "folder") else None
    try:
        lock_sha = hashlib.sha256(lock_file.read_bytes()).hexdigest() if lock_file else ""
    except OSError:
        lock_sha = ""
    shape = getattr(backend, "shape", None)
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "accel": getattr(backend, "accel", ""),
        "host_kernel": platform.release(),
        "qemu": re.sub(r"^QEMU emulator version ", "", tools.get("qemu", "")),
        "libvirt": tools.get("libvirt", ""),
        "image": image.key,
        "image_lock_sha256": lock_sha,
        "guest_kernel": image.lock.kernel_release,
        "vcpus": getattr(shape, "vcpus", None),
        "memory_mib": getattr(shape, "memory_mib", None),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": tree_dirty(),
        "python": platform.python_version(),
        "packages": _versions(),
    }


def _slug(s: str) -> str:
    s = re.sub(r"\((r|tm)\)|cpu|processor|@.*$", "", s.lower())
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")[:32] or "cpu"


def profile_name(m: dict) -> str:
    """A folder name for results of this profile, e.g. ``tcg-2c-24g-intel-xeon-platinum-8481c``."""
    return f"{m.get('accel') or 'unknown'}-{m.get('cores')}c-{m.get('memory_gib')}g-{_slug(m.get('cpu_model', ''))}"


def profile(m: dict) -> dict:
    return {k: m.get(k) for k in PROFILE_KEYS}


def differences(a: dict, b: dict) -> list[str]:
    """The profile fields in which two manifests differ ("field: a != b")."""
    return [f"{k}: {a.get(k)} != {b.get(k)}" for k in PROFILE_KEYS if a.get(k) != b.get(k)]


def short_commit(commit: str | None) -> str:
    """A commit id as every report shows it (7 characters, like ``git log --oneline``)."""
    return (commit or "?")[:7]


def header(m: dict | None) -> str:
    """One or two lines for the top of a report."""
    if not m:
        return "Machine: not recorded (a job made before manifests existed)"
    commit = short_commit(m.get("commit")) + (" (dirty tree)" if m.get("dirty") else "")
    return (f"Machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, {m.get('accel')}; "
            f"host kernel {m.get('host_kernel')}, QEMU {m.get('qemu')}, libvirt {m.get('libvirt')}\n"
            f"Guest: image {m.get('image')} (lock sha256 {str(m.get('image_lock_sha256'))[:12]}), kernel "
            f"{m.get('guest_kernel')}, {m.get('vcpus')} vCPUs, {m.get('memory_mib')} MiB; schedcp {commit}, "
            f"Python {m.get('python')}; profile {profile_name(m)}")
