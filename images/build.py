"""Build a recipe into an image folder (see ``images.store``), reproducibly and all-or-nothing.

Order: validate -> preflight (tools, disk space, pins) -> download and sha256-check the
kernel debs -> generate the per-image SSH keys -> mmdebstrap (packages, kernel, recipe
steps) -> install the guest files -> ext4 filesystem -> qcow2 -> lock file -> rename the
build folder into place. Any failure removes the build folder; the build log is kept
under ``$SCHEDCP_HOME/logs/``.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

from .recipe import GUEST_DIR, LoadedRecipe, RecipeError, load_recipe
from .store import Image, ImageLock, find_image, free_mib, home, images_dir, sha256_file

Log = Callable[[str], None]

REQUIRED_TOOLS = {
    "mmdebstrap": "apt-get install mmdebstrap",
    "mkfs.ext4": "apt-get install e2fsprogs",
    "qemu-img": "apt-get install qemu-utils",
    "ssh-keygen": "apt-get install openssh-client",
}
MIN_FREE_MIB = 24 << 10  # the rootfs, the raw filesystem and the qcow2 of the default recipe at once


class BuildError(Exception):
    """An image build that cannot go on; the message says what to do."""


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def preflight(lr: LoadedRecipe) -> None:
    if os.geteuid() != 0:
        raise BuildError("image builds need root (mmdebstrap --mode=root, chroot): run as root")
    for tool, fix in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found: {fix} (or run `make setup`)")
    unpinned = [d.url for d in lr.recipe.kernel.debs if len(d.sha256) != 64]
    if unpinned:
        raise BuildError(
            f"recipe {lr.name}: {len(unpinned)} kernel deb(s) have no sha256 pin "
            f"(first: {unpinned[0]}); copy the sha256 from the publisher's checksum file into recipe.yaml"
        )
    images_dir().mkdir(parents=True, exist_ok=True)
    free = free_mib(images_dir())
    if free < MIN_FREE_MIB:
        raise BuildError(
            f"only {free / 1024:.1f} GiB free under {images_dir()}; an image build needs "
            f"{MIN_FREE_MIB / 1024:.0f} GiB: free some space or set SCHEDCP_HOME elsewhere"
        )


def download_debs(lr: LoadedRecipe, dest: Path, log: Log) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for deb in lr.recipe.kernel.debs:
        target = dest / deb.filename
        try:
            with urllib.request.urlopen(deb.url, timeout=60) as r, open(target, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise BuildError(
                f"cannot download {deb.url}: {reason}; this recipe needs that host to be reachable"
            ) from None
        got = sha256_file(target)
        if got != deb.sha256:
            raise BuildError(
                f"sha256 mismatch for {deb.filename}: recipe pins {deb.sha256}, got {got}; "
                "refusing to build (fix the pin only if the new file is trusted)"
            )
        log(f"  kernel deb ok: {deb.filename}")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )


def _install_guest_files(root: Path, lr: LoadedRecipe, work: Path, key: str) -> None:
    shutil.copy2(GUEST_DIR / "schedcp-init", root / "sbin/schedcp-init")
    os.chmod(root / "sbin/schedcp-init", 0o755)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copy2(work / "id_ed25519.pub", ssh_dir / "authorized_keys")
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    # Guest SSH server: dropbear (see images/guest/schedcp-init), with the host key
    # generated for this image (converted from OpenSSH format) and SFTP through
    # OpenSSH's sftp-server.
    (root / "etc/dropbear").mkdir(parents=True, exist_ok=True)
    shutil.copy2(work / "ssh_host_ed25519_key", root / "tmp/host_key")
    subprocess.run(["chroot", str(root), "dropbearconvert", "openssh", "dropbear", "/tmp/host_key",
                    "/etc/dropbear/dropbear_ed25519_host_key"], check=True, capture_output=True)
    (root / "tmp/host_key").unlink()
    os.chmod(root / "etc/dropbear/dropbear_ed25519_host_key", 0o600)
    sftp = root / "usr/lib/sftp-server"
    if not sftp.exists():
        sftp.symlink_to("/usr/lib/openssh/sftp-server")
    (root / "etc/hostname").write_text("schedcp-guest\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 schedcp-guest\n")
    (root / "etc/schedcp").mkdir(exist_ok=True)
    (root / "etc/schedcp/image.json").write_text(
        json.dumps({"key": key, "recipe": lr.name, "profile": lr.profile, "features": lr.features,
                    "kernel_release": lr.recipe.kernel.release}, indent=2)
    )
    for junk in list((root / "var/cache/apt/archives").glob("*.deb")) + list(
        (root / "var/lib/apt/lists").glob("*_Packages*")
    ):
        junk.unlink()


def _run_logged(cmd: list[str], logf, env: dict | None = None) -> None:
    logf.write(f"$ {shlex.join(cmd)}\n")
    logf.flush()
    r = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    if r.returncode != 0:
        raise BuildError(f"{cmd[0]} failed with exit {r.returncode}")


def build(spec: str | LoadedRecipe | None = None, *, force: bool = False, log: Log = print) -> Image:
    lr = spec if isinstance(spec, LoadedRecipe) else load_recipe(spec)
    key = lr.key
    existing = find_image(key)
    if existing and not force:
        log(f"image {key} is already built (cached by recipe content)")
        return existing
    images_dir().mkdir(parents=True, exist_ok=True)
    # One build per key at a time (two processes wanting the same missing image, e.g. a
    # job and a test run): the second waits, then uses what the first built.
    with open(images_dir() / f".{key}.lock", "a+") as lockf:
        try:
            fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lockf.seek(0)
            log(f"image {key} is being built by another process (pid {lockf.read().strip() or '?'}): waiting")
            fcntl.flock(lockf, fcntl.LOCK_EX)
            existing = find_image(key)
            if existing:
                log(f"image {key} was built meanwhile by that process")
                return existing
        lockf.seek(0)
        lockf.truncate()
        lockf.write(f"{os.getpid()}\n")
        lockf.flush()
        return _build_locked(lr, key, log)


def _build_locked(lr: LoadedRecipe, key: str, log: Log) -> Image:
    preflight(lr)
    final = images_dir() / key
    work = images_dir() / f".build-{key}-{os.getpid()}"
    logs = home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"image-build-{key}.log"
    rootfs = work / "rootfs"
    t0 = time.monotonic()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        with open(log_path, "w") as logf:
            log(f"building image {key} (log: {log_path})")
            download_debs(lr, work / "debs", log)
            _keygen(work / "id_ed25519", f"schedcp-host@{key}")
            _keygen(work / "ssh_host_ed25519_key", f"schedcp-guest@{key}")
            r = lr.recipe
            mirror_lines = [
                f"deb {r.distribution.mirror} {s} {' '.join(r.distribution.components)}"
                for s in [r.distribution.suite, *r.distribution.extra_suites]
            ]
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", SOURCE_DATE_EPOCH="1767225600")
            cmd = [
                "mmdebstrap", "--variant=apt", "--mode=root", "--format=directory",
                "--aptopt=Acquire::Retries \"3\"",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                f"--include={','.join(r.packages)}",
                "--customize-hook=mkdir -p \"$1/tmp/schedcp-kernel\"",
                f"--customize-hook=sync-in {work / 'debs'} /tmp/schedcp-kernel",
                "--customize-hook=chroot \"$1\" env DEBIAN_FRONTEND=noninteractive "
                "apt-get install -y --no-install-recommends "
                + " ".join(f"/tmp/schedcp-kernel/{d.filename}" for d in r.kernel.debs)
                + " && rm -rf \"$1/tmp/schedcp-kernel\"",
            ]
            cmd += [f"--customize-hook=sh {shlex.quote(str(s))} \"$1\"" for s in lr.steps]
            cmd += [r.distribution.suite, str(rootfs), *mirror_lines]
            log(f"  mmdebstrap {r.distribution.suite} with {len(r.packages)} packages + kernel {r.kernel.release}")
            _run_logged(cmd, logf, env)
            boot = rootfs / "boot"
            vmlinuz = boot / f"vmlinuz-{r.kernel.release}"
            if not vmlinuz.is_file():
                found = sorted(p.name for p in boot.glob("vmlinuz-*"))
                raise BuildError(f"kernel release mismatch: recipe pins {r.kernel.release}, image has {found}")
            shutil.copy2(vmlinuz, work / "vmlinuz")
            initrd = boot / f"initrd.img-{r.kernel.release}"
            if initrd.is_file():
                shutil.copy2(initrd, work / "initrd.img")
            elif r.kernel.boot_initrd:
                raise BuildError(f"recipe boots with an initrd but none was generated for {r.kernel.release}")
            pkgs = subprocess.run(
                ["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W", "-f", "${Package}\t${Version}\n"],
                capture_output=True, text=True, check=True,
            ).stdout
            _install_guest_files(rootfs, lr, work, key)
            log("  ext4 + qcow2")
            fs_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
            _run_logged(
                ["mkfs.ext4", "-q", "-F", "-L", "schedcp-root", "-U", fs_uuid, "-E", f"hash_seed={fs_uuid}",
                 "-d", str(rootfs), str(work / "base.raw"), r.disk_size],
                logf, env,
            )
            shutil.rmtree(rootfs)
            _run_logged(
                ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(work / "base.raw"), str(work / "base.qcow2")],
                logf,
            )
            (work / "base.raw").unlink()
            shutil.rmtree(work / "debs")
            (work / "known_hosts").write_text(
                "[127.0.0.1]:* " + " ".join((work / "ssh_host_ed25519_key.pub").read_text().split()[:2]) + "\n"
            )
            (work / "ssh_host_ed25519_key").unlink()  # the host never needs the guest's private key
            digests = {
                p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file() and p.name != "id_ed25519"
            }
            lock = ImageLock(
                key=key,
                recipe=lr.name,
                profile=lr.profile,
                features=lr.features,
                kernel_release=r.kernel.release,
                kernel_version=r.kernel.version,
                cmdline=r.kernel.cmdline,
                boot_initrd=r.kernel.boot_initrd,
                digests=digests,
                packages=dict(line.split("\t", 1) for line in pkgs.splitlines() if "\t" in line),
                manifest=lr.manifest(),
                built_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                build_seconds=round(time.monotonic() - t0, 1),
                tools={
                    "mmdebstrap": _tool_version(["mmdebstrap", "--version"]),
                    "mkfs.ext4": _tool_version(["mkfs.ext4", "-V"]),
                    "qemu-img": _tool_version(["qemu-img", "--version"]),
                },
            )
            (work / "image.lock.json").write_text(lock.model_dump_json(indent=2))
            # The QEMU process runs unprivileged: it must be able to read the image.
            for p in work.iterdir():
                if p.name != "id_ed25519":
                    os.chmod(p, 0o644)
            os.chmod(work, 0o755)
        if final.exists():
            shutil.rmtree(final)
        os.rename(work, final)
    except BaseException as e:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(e, BuildError) and "failed with exit" in str(e):
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise BuildError(f"{e}; see {log_path}; last lines: " + " | ".join(tail)) from None
        raise
    log(f"built {key} in {time.monotonic() - t0:.0f} s")
    return Image(final)


__all__ = ["build", "BuildError", "RecipeError", "sha256_file"]
