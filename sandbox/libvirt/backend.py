"""The libvirt/QEMU sandbox backend: a fresh VM per trial, started from a saved state.

Reset model (see FACTS "Boot and reset"):

1. Once per (image, VM shape, slot), cold-boot the image on a post-boot overlay
   ``frozen.qcow2`` (backed by the image's ``base.qcow2``), wait for SSH, close every
   connection, ``virDomainSaveParams`` to ``state.save`` (format: :func:`save_format`),
   and make ``frozen.qcow2`` read-only.
2. Per sandbox: a new ``overlay.qcow2`` backed by ``frozen.qcow2`` and
   ``virDomainRestoreParams(state.save, xml)`` with the XML pointing at that overlay, a
   free SSH port and the sandbox's own console log. The guest resumes exactly where it was
   saved (sshd listening) with the disk it saw then; everything a trial changes lives in
   the overlay and in RAM, and is gone when the sandbox closes.

A slot is a saved state with its own domain UUID; a running sandbox holds its slot's lock
file, so several sandboxes run side by side (one per slot) without clashing names, ports,
or files. Slots are created on demand. Every sandbox has a run folder
``$SCHEDCP_HOME/run/<name>/`` with a held lock; a folder whose lock is free belongs to a
killed run, and :func:`cleanup_stale` destroys its domain and removes it. Domain names
start with :func:`domain_prefix` (a hash of ``SCHEDCP_HOME``): two homes on one host
neither share names nor clean up each other's VMs.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import libvirt
import paramiko

from images.store import Image, free_mib, home
from ..base import (
    DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT_S, BootTimeout, ExecResult, GuestCrashed, GuestUnresponsive,
    KernelPinMismatch, RelayError, Sandbox, SandboxError, SandboxUnavailable,
)
from ..relay import Relay
from . import prereqs
from .domain import DomainSpec, PciAddress, build_xml

PREFIX = "schedcp-"
MAX_SLOTS = 16
PANIC_MARKERS = ("Kernel panic - not syncing", "BUG: kernel NULL pointer", "Oops:", "general protection fault")
Events = Callable[[str, dict], None]


def _noop(_kind: str, _data: dict) -> None:
    pass


@dataclass(frozen=True)
class VMShape:
    vcpus: int = 2
    memory_mib: int = 4096
    gpus: tuple[str, ...] = ()

    def tag(self, accel: str) -> str:
        g = "-gpu" + "_".join(x.replace(":", "").replace(".", "") for x in self.gpus) if self.gpus else ""
        return f"{accel}-{self.vcpus}c-{self.memory_mib}m{g}"


def run_root() -> Path:
    return home() / "run"


def states_root() -> Path:
    return home() / "states"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _try_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


# Free host disk wanted before a sandbox starts: a trial's overlay grows with what the
# guest writes, and QEMU pauses a guest whose disk write hits a full host disk.
TRIAL_FREE_MIB = 512


def state_free_mib(memory_mib: int) -> int:
    """Free host disk wanted before a saved state is made: a just-booted guest's state is
    about 150 MiB plus 20-27 MiB per GiB of guest memory (mostly the kernel's memory map,
    one struct page per 4 KiB; measured 174/254/328 MiB at 1/4/8 GiB), with room to spare
    for the trial after it."""
    return 512 + memory_mib // 32 + TRIAL_FREE_MIB


def require_free_space(path: Path, need_mib: int, what: str) -> None:
    """:class:`SandboxUnavailable` with what to do when the disk holding ``path`` has less
    than ``need_mib`` MiB free (checked before anything is created)."""
    free = free_mib(path)
    if free < need_mib:
        raise SandboxUnavailable(
            f"not enough free disk for {what} under {path}: {free} MiB free, {need_mib} MiB needed; "
            "free some space (`schedcp sandbox cleanup` removes leftovers) or set SCHEDCP_HOME to a larger disk")


# Saved-state format. libvirt >= 11.2 with QEMU >= 9 writes "sparse" states (QEMU's
# mapped-ram stream: guest pages at fixed file offsets, zero pages left as holes), which
# QEMU reads straight from the file over SAVE_CHANNELS parallel channels; older libvirt
# writes "raw" states, streamed to QEMU through a pipe. Measured here (2-core TCG host,
# 4 GiB guest, interleaved): restore call 1.37 s raw, 1.15 s sparse (2 channels).
SPARSE_MIN_LIBVIRT = 11_002_000
SAVE_CHANNELS = 2


def save_format(conn: libvirt.virConnect) -> str:
    """"sparse" when libvirtd and the Python binding (built against libvirt >= 11.2, so
    it knows the parameters' types) both support it, else "raw"."""
    if not hasattr(libvirt, "VIR_DOMAIN_SAVE_PARAM_PARALLEL_CHANNELS"):
        return "raw"
    try:
        return "sparse" if conn.getLibVersion() >= SPARSE_MIN_LIBVIRT else "raw"
    except libvirt.libvirtError:
        return "raw"


def save_params(path: Path, fmt: str) -> dict:
    """virDomainSaveParams' parameters for a state file at ``path`` in format ``fmt``."""
    params = {libvirt.VIR_DOMAIN_SAVE_PARAM_FILE: str(path)}
    if fmt == "sparse":
        params.update({libvirt.VIR_DOMAIN_SAVE_PARAM_IMAGE_FORMAT: fmt,
                       libvirt.VIR_DOMAIN_SAVE_PARAM_PARALLEL_CHANNELS: SAVE_CHANNELS})
    return params


def memory_backing(accel: str) -> str:
    """Guest RAM: a shared "memfd" under TCG (no host huge pages to zero and compact when
    a state is loaded; see sandbox/libvirt/domain.py), "anonymous" under KVM."""
    return "memfd" if accel == "tcg" else "anonymous"


# What images/guest/schedcp-init writes to the console once dropbear listens.
CONSOLE_READY = b"schedcp-init: ready"
CONSOLE_READY_WAIT_S = 60.0


# libvirt errors on a domain start that are worth another attempt: QEMU could not bind
# the SSH forward (another process took the free port we picked: a new port is picked),
# and a transient failure of libvirtd's cgroup device filter, a BPF program that the
# kernel's verifier abandons with EAGAIN when a signal (e.g. SIGCHLD from another VM's
# QEMU exiting) reaches libvirtd during the load (seen once with two trials in parallel).
START_RETRY_ON = ("host forwarding", "Address already in use", "failed to load cgroup BPF prog")
START_ATTEMPTS = 4


def start_retryable(msg: str) -> bool:
    return any(s in msg for s in START_RETRY_ON)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", s)[:48]


def domain_prefix() -> str:
    """The start of the name of every domain this ``SCHEDCP_HOME`` creates: ``schedcp-``
    plus a short hash of the home's path. Two homes on one host (a CI clone beside a
    user's jobs) then never reuse each other's domain names, and each one's clean-up
    leaves the other's VMs alone."""
    return f"{PREFIX}{hashlib.sha256(str(home().resolve()).encode()).hexdigest()[:6]}-"


def cleanup_stale(conn: libvirt.virConnect | None = None) -> list[str]:
    """Destroy domains and remove run folders left by killed runs. Returns what was removed."""
    conn = conn or prereqs.connect()
    removed: list[str] = []
    live: set[str] = set()
    rr = run_root()
    if rr.is_dir():
        for d in sorted(rr.iterdir()):
            if d.is_dir() and _reclaim_run_dir(conn, d):
                removed.append(d.name)
            else:
                live.add(d.name)
    return removed + _destroy_orphans(conn, domain_prefix(), live, rr)


def _destroy_orphans(conn: libvirt.virConnect, prefix: str, live: set[str], rr: Path) -> list[str]:
    """Destroy the domains named ``prefix...`` that have no live run folder. A sandbox makes
    (and locks) its run folder before its domain, so a folder that appeared after the
    ``live`` listing (another process starting a sandbox meanwhile) is looked at again,
    and its domain is left alone while that folder's lock is held."""
    removed = []
    for dom in conn.listAllDomains():
        name = dom.name()
        if not name.startswith(prefix) or name in live:
            continue
        if (rr / name).is_dir():
            if _reclaim_run_dir(conn, rr / name):
                removed.append(name)
            continue
        _destroy_by_name(conn, name)
        removed.append(name)
    return removed


def _reclaim_run_dir(conn: libvirt.virConnect, d: Path) -> bool:
    """If no process holds the run folder's lock, it belongs to a killed run: destroy its
    domain and remove it (True). False when it is in use."""
    if not d.is_dir():  # removed meanwhile by another clean-up
        return True
    fd = _try_lock(d / "lock")
    if fd is None:
        return False
    try:
        _destroy_by_name(conn, d.name)
        shutil.rmtree(d, ignore_errors=True)
    finally:
        os.close(fd)
    return True


RECLAIM_WAIT_S = 30.0


def claim_run_dir(conn: libvirt.virConnect, d: Path, wait_s: float = RECLAIM_WAIT_S) -> tuple[Path, int]:
    """Make the run folder ``d`` for a new sandbox and hold its lock (the folder and the
    lock's fd). Call it holding the slot's lock. A folder left by a run killed after our
    start-up clean-up is reclaimed. Its lock can still be held for a moment by another
    process's clean-up of that killed run (``cleanup_stale``, or an MCP server's watchdog
    in ``reap_job``, which hold it while they destroy the domain and remove the folder):
    wait up to ``wait_s`` for that, then fail naming the holder."""
    deadline = time.monotonic() + wait_s
    while True:
        if _reclaim_run_dir(conn, d):  # no folder, or a killed run's, now removed
            try:
                d.mkdir(parents=True, exist_ok=False)
            except FileExistsError:  # another clean-up's lock file made it again for a moment
                pass
            else:
                os.chmod(d, 0o755)
                fd = _try_lock(d / "lock")
                if fd is not None:
                    return d, fd
        if time.monotonic() >= deadline:
            try:
                holder = (d / "lock").read_text().strip() or "?"
            except OSError:
                holder = "?"
            raise SandboxUnavailable(f"VM {d.name} is in use by another process (pid {holder}, lock in {d}; "
                                     f"waited {wait_s:.0f}s)")
        time.sleep(0.2)


def _destroy_by_name(conn: libvirt.virConnect, name: str) -> None:
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefine()
    except libvirt.libvirtError:
        pass


def _qemu_img_overlay(path: Path, backing: Path, owner: tuple[int, int]) -> None:
    r = subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(backing), str(path)],
        capture_output=True, text=True,
    )
    if r.returncode != 0:
        msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "unknown error"
        if "No space" in msg:
            msg += f" (free space under {path.parent})"
        raise SandboxError(f"cannot create overlay {path}: {msg}")
    os.chown(path, *owner)


class LibvirtBackend:
    """Creates sandboxes of one image and one VM shape."""

    def __init__(self, image: Image, shape: VMShape = VMShape(), events: Events = _noop):
        self.image = image
        self.shape = shape
        self.events = events
        self._conn = prereqs.connect()
        self._conn_lock = threading.Lock()
        prereqs.qemu_binary()
        self.accel = prereqs.detect_accel()
        self.qemu_owner = prereqs.qemu_user()
        self._running: dict[str, LibvirtSandbox] = {}  # checkpoint instances by domain name
        for p in (image.base, image.kernel, image.initrd, image.client_key):
            if not p.is_file():
                raise SandboxUnavailable(f"image {image.key} is incomplete ({p.name} missing): rebuild it")
        cleanup_stale(self.conn)

    @property
    def conn(self) -> libvirt.virConnect:
        """The libvirt connection, re-opened when it broke (libvirtd restarted): the
        guests keep running under a restarted libvirtd, and it knows them again."""
        with self._conn_lock:
            try:
                if self._conn.isAlive() == 1:
                    return self._conn
            except libvirt.libvirtError:
                pass
        return self.reconnect()

    def reconnect(self) -> libvirt.virConnect:
        with self._conn_lock:
            self.events("libvirt_reconnect", {})
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.close()
            self._conn = prereqs.connect(wait_s=60.0)
            return self._conn

    # -- shared pieces ---------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return states_root() / self.image.key / self.shape.tag(self.accel)

    @property
    def memory_backing(self) -> str:
        return memory_backing(self.accel)

    def _spec(self, name: str, uuid: str, disk: Path, console: Path, port: int, meta: dict) -> DomainSpec:
        lock = self.image.lock
        return DomainSpec(
            name=name, uuid=uuid, kernel=str(self.image.kernel),
            initrd=str(self.image.initrd),
            cmdline=f"root=/dev/vda rootfstype=ext4 rw init=/sbin/schedcp-init {lock.cmdline}",
            disk=str(disk), console_log=str(console), ssh_port=port,
            vcpus=self.shape.vcpus, memory_mib=self.shape.memory_mib, accel=self.accel,
            memory_backing=self.memory_backing,
            qemu_uid=self.qemu_owner[0], qemu_gid=self.qemu_owner[1],
            gpus=[PciAddress.parse(g) for g in self.shape.gpus], metadata=meta,
            emulator=prereqs.QEMU,
        )

    def _new_run_dir(self, name: str) -> tuple[Path, int]:
        return claim_run_dir(self.conn, run_root() / name)

    def _relay(self, port: int) -> Relay:
        return Relay("127.0.0.1", port, self.image.client_key, self.image.known_hosts)

    # -- saved states ----------------------------------------------------------------
    def _acquire_slot(self) -> tuple[int, int]:
        for n in range(MAX_SLOTS):
            fd = _try_lock(self.state_dir / f"slot{n}.lock")
            if fd is not None:
                return n, fd
        raise SandboxUnavailable(f"all {MAX_SLOTS} sandbox slots of {self.state_dir} are in use")

    def _ensure_state(self, slot: int) -> tuple[Path, dict]:
        """The saved state of this slot and its meta.json, made with one cold boot the
        first time."""
        sdir = self.state_dir / f"slot{slot}"
        if (sdir / "meta.json").is_file():
            meta = json.loads((sdir / "meta.json").read_text())
            # a state saved by an older version (other guest RAM, or a domain name without
            # the home's hash, under which libvirt would restore it) is made again
            if (meta.get("memory_backing", "anonymous") == self.memory_backing
                    and meta.get("name") == self._slot_name(slot)):
                return sdir, meta
        require_free_space(self.state_dir, state_free_mib(self.shape.memory_mib), "a saved VM state")
        self.events("state_create", {"slot": slot})
        tmp = self.state_dir / f".slot{slot}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        os.chmod(tmp, 0o755)
        frozen = tmp / "frozen.qcow2"
        _qemu_img_overlay(frozen, self.image.base, self.qemu_owner)
        uuid = str(uuidlib.uuid4())
        sb = self._boot(self._slot_name(slot), uuid, frozen, {"role": "state", "slot": str(slot)})
        try:
            sb.relay.close()  # no connection may be open inside the saved state
            time.sleep(0.5)
            fmt = save_format(self.conn)
            sb.dom.saveParams(save_params(tmp / "state.save", fmt), 0)
        except libvirt.libvirtError as e:
            sb.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise SandboxError(f"saving the booted guest failed: {e.get_error_message()}") from None
        boot_s = sb.meta.get("boot_s")
        sb.dom = None
        sb.close()
        os.chown(frozen, 0, 0)
        os.chmod(frozen, 0o444)
        meta = {"uuid": uuid, "image": self.image.key, "shape": self.shape.tag(self.accel),
                "created": time.time(), "cold_boot_s": boot_s, "format": fmt,
                "memory_backing": self.memory_backing, "name": self._slot_name(slot)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        if sdir.exists():
            shutil.rmtree(sdir)
        os.rename(tmp, sdir)
        return sdir, meta

    # -- boot / restore ----------------------------------------------------------------
    def _restore_state(self, state: Path, fmt: str | None, xml: str, name: str) -> libvirt.virDomain:
        """Start the saved guest in ``state`` (written in format ``fmt``) with ``xml``."""
        params = {libvirt.VIR_DOMAIN_SAVE_PARAM_FILE: str(state), libvirt.VIR_DOMAIN_SAVE_PARAM_DXML: xml}
        if fmt == "sparse":
            params[libvirt.VIR_DOMAIN_SAVE_PARAM_PARALLEL_CHANNELS] = SAVE_CHANNELS
        self.conn.restoreParams(params, libvirt.VIR_DOMAIN_SAVE_RUNNING)
        return self.conn.lookupByName(name)

    def _start(self, what: str, spec_for: Callable[[int], DomainSpec],
               start: Callable[[str], libvirt.virDomain]) -> tuple[libvirt.virDomain, int, str]:
        """``start(xml)`` with the XML of ``spec_for(port)`` for a free SSH port. An error
        worth another attempt (:data:`START_RETRY_ON`) is retried on a new port, up to
        :data:`START_ATTEMPTS` in all; any other raises :class:`SandboxUnavailable` at once.
        Returns the domain, its port and its XML."""
        last_err = ""
        for _attempt in range(START_ATTEMPTS):
            port = _free_port()
            xml = build_xml(spec_for(port))
            try:
                return start(xml), port, xml
            except libvirt.libvirtError as e:
                last_err = e.get_error_message()
                if not start_retryable(last_err):
                    raise SandboxUnavailable(f"cannot {what}: {last_err}") from None
                time.sleep(0.2)
        raise SandboxUnavailable(f"cannot {what} in {START_ATTEMPTS} attempts: {last_err}")

    def _boot(self, name: str, uuid: str, disk: Path, meta: dict, boot_timeout: float = 180.0) -> "LibvirtSandbox":
        run_dir, lock_fd = self._new_run_dir(name)
        console = run_dir / "console.log"
        t0 = time.monotonic()

        def create(xml: str) -> libvirt.virDomain:
            (run_dir / "domain.xml").write_text(xml)
            self.events("boot_started", {"name": name, "accel": self.accel})
            return self.conn.createXML(xml, 0)

        try:
            dom, port, _xml = self._start(
                f"start VM {name}", lambda port: self._spec(name, uuid, disk, console, port, meta), create)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            os.close(lock_fd)
            raise
        sb = LibvirtSandbox(self, name, run_dir, lock_fd, dom, port, slot_fd=None)
        try:
            sb._wait_console_ready(time.monotonic() + min(boot_timeout, CONSOLE_READY_WAIT_S))
            sb._wait_ssh(time.monotonic() + boot_timeout)
        except BaseException:
            sb.close()
            raise
        sb.meta["boot_s"] = round(time.monotonic() - t0, 3)
        self.events("boot_ended", {"name": name, "seconds": sb.meta["boot_s"]})
        return sb

    def cold_boot(self, job: str = "adhoc", trial: str | None = None) -> "LibvirtSandbox":
        """A guest booted from scratch (no saved state): for measurements and debugging."""
        name = self._name(job, trial)
        require_free_space(run_root(), TRIAL_FREE_MIB, "a sandbox")
        # The overlay is made before the VM's run folder exists, in a locked folder of its
        # own: a run killed meanwhile leaves it to cleanup_stale, like any run folder.
        tmp_dir, tmp_fd = self._new_run_dir(f".cold-{name}")
        disk = tmp_dir / "overlay.qcow2"
        try:
            _qemu_img_overlay(disk, self.image.base, self.qemu_owner)
            sb = self._boot(name, str(uuidlib.uuid4()), disk, {"job": job, "trial": trial or "", "role": "cold"})
            shutil.move(str(disk), sb.run_dir / "overlay.qcow2")  # same inode: QEMU keeps it open
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            os.close(tmp_fd)
        sb.check_kernel_pin()
        return sb

    def _name(self, job: str, trial: str | None) -> str:
        return f"{domain_prefix()}{_safe(job)}-{_safe(trial or secrets.token_hex(4))}"

    def _slot_name(self, slot: int) -> str:
        # libvirt restores a saved domain only under its saved name and UUID, so the
        # domain name belongs to the slot; job and trial go into the metadata.
        return f"{domain_prefix()}{self.image.key.rsplit('-', 1)[-1]}-{self.shape.tag(self.accel)}-s{slot}"

    def open(self, job: str = "adhoc", trial: str | None = None, ready_timeout: float = 60.0,
             cores: tuple[int, ...] | None = None) -> "LibvirtSandbox":
        """A fresh sandbox restored from this slot's saved state (about a second). With
        ``cores``, vCPU i runs on host core ``cores[i % len(cores)]`` and QEMU's other
        threads on those cores too (so trials given disjoint cores never share one).

        A restored guest that never answers SSH (seen rarely on a loaded host: the
        restore returns but the guest's SSH server stays silent) is destroyed and
        restored once more from the same state before the open fails."""
        try:
            return self._open_once(job, trial, ready_timeout, cores)
        except BootTimeout as e:
            self.events("restore_retry", {"job": job, "trial": trial or "", "reason": str(e)[:300]})
            return self._open_once(job, trial, ready_timeout, cores)

    def _open_once(self, job: str, trial: str | None, ready_timeout: float,
                   cores: tuple[int, ...] | None) -> "LibvirtSandbox":
        t0 = time.monotonic()
        slot, slot_fd = self._acquire_slot()
        try:
            require_free_space(run_root(), TRIAL_FREE_MIB, "a sandbox")
            sdir, state = self._ensure_state(slot)
            name = self._slot_name(slot)
            run_dir, lock_fd = self._new_run_dir(name)
        except BaseException:
            os.close(slot_fd)
            raise
        try:
            overlay = run_dir / "overlay.qcow2"
            _qemu_img_overlay(overlay, sdir / "frozen.qcow2", self.qemu_owner)
            console = run_dir / "console.log"
            meta = {"job": job, "trial": trial or "", "slot": str(slot), "role": "trial"}
            def restore(xml: str) -> libvirt.virDomain:
                return self._restore_state(sdir / "state.save", state.get("format"), xml, name)

            # Connect only after the restore returns: a connection made while the guest is
            # still paused leaves QEMU's user-mode TCP waiting for a retransmit (~5 s).
            dom, port, xml = self._start(
                f"restore VM {name} from {sdir}",
                lambda port: self._spec(name, state["uuid"], overlay, console, port, meta), restore)
            (run_dir / "domain.xml").write_text(xml)
        except BaseException:
            _destroy_by_name(self.conn, name)
            shutil.rmtree(run_dir, ignore_errors=True)
            os.close(lock_fd)
            os.close(slot_fd)
            raise
        sb = LibvirtSandbox(self, name, run_dir, lock_fd, dom, port, slot_fd=slot_fd)
        sb.label = f"{job}/{trial}" if trial else job
        sb.slot = slot
        sb.dom_meta = meta
        self._restored_ready(sb, cores, ready_timeout, t0)
        self.events("sandbox_ready", {"name": name, "seconds": sb.meta["restore_s"], "slot": slot})
        return sb


    # -- checkpoints of running sandboxes ---------------------------------------------------
    def restore_checkpoint(self, ckpt: "Checkpoint", label: str = "", ready_timeout: float = 60.0) -> "LibvirtSandbox":
        """A new VM instance of ``ckpt`` (about a second): the saved guest resumes on a fresh
        overlay backed by the checkpoint's frozen disk. One instance of a checkpoint runs at
        a time (libvirt restores it under its saved name and UUID); each instance has its
        own run sub-folder and console, and :meth:`LibvirtSandbox.close` destroys it. An
        instance that never answers SSH is destroyed and restored once more, as in :meth:`open`."""
        try:
            return self._restore_checkpoint_once(ckpt, label, ready_timeout)
        except BootTimeout as e:
            self.events("restore_retry", {"checkpoint": ckpt.name, "reason": str(e)[:300]})
            return self._restore_checkpoint_once(ckpt, label, ready_timeout)

    def _restore_checkpoint_once(self, ckpt: "Checkpoint", label: str, ready_timeout: float) -> "LibvirtSandbox":
        other = self._running.get(ckpt.name)
        if other is not None and other.running:  # this checkpoint's, or another's of the same domain name
            raise SandboxError(f"VM {ckpt.name} already runs (instance {other.instance_id}): one instance at a time")
        t0 = time.monotonic()
        ckpt.restores += 1
        idir = ckpt.dir / f"i{ckpt.restores}"
        idir.mkdir()
        os.chmod(idir, 0o755)
        try:
            overlay = idir / "overlay.qcow2"
            _qemu_img_overlay(overlay, ckpt.disk, self.qemu_owner)
            console = idir / "console.log"
            meta = {**ckpt.meta, "role": "instance", "instance": str(ckpt.restores)}

            def restore(xml: str) -> libvirt.virDomain:
                return self._restore_state(ckpt.state, ckpt.format, xml, ckpt.name)

            dom, port, xml = self._start(
                f"restore VM {ckpt.name} from checkpoint {ckpt.state}",
                lambda port: self._spec(ckpt.name, ckpt.uuid, overlay, console, port, meta), restore)
            (idir / "domain.xml").write_text(xml)
        except BaseException:
            _destroy_by_name(self.conn, ckpt.name)
            shutil.rmtree(idir, ignore_errors=True)
            raise
        # the instance borrows the checkpoint's locks (run folder, slot): it owns no fds
        sb = LibvirtSandbox(self, ckpt.name, idir, None, dom, port, slot_fd=None)
        sb.label = label or ckpt.name
        sb.slot = ckpt.slot
        try:  # e.g. <slot domain>/i1 (an instance of the first checkpoint), <slot domain>/i1/i2 (of one saved in it)
            sb.instance_id = f"{ckpt.dir.relative_to(run_root())}/i{ckpt.restores}"
        except ValueError:
            sb.instance_id = f"{ckpt.dir.name}/i{ckpt.restores}"
        sb.dom_meta = meta
        ckpt.instance = sb
        self._running[ckpt.name] = sb
        self._restored_ready(sb, ckpt.cores, ready_timeout, t0)
        return sb

    def _restored_ready(self, sb: "LibvirtSandbox", cores: tuple[int, ...] | None, ready_timeout: float,
                        t0: float) -> None:
        """Pin a restored guest to ``cores``, wait for its relay (clock and entropy
        refreshed), check the kernel pin; close it on any failure."""
        try:
            if cores:
                pin_cores(sb.dom, self.shape.vcpus, cores)
                sb.cores = tuple(cores)
            sb._wait_ssh(time.monotonic() + ready_timeout, _restored_guest_refresh)
            sb.meta["restore_s"] = round(time.monotonic() - t0, 3)
            sb.check_kernel_pin()
        except BaseException:
            sb.close()
            raise


@dataclass
class Checkpoint:
    """A running sandbox saved to disk (:meth:`LibvirtSandbox.checkpoint`): its memory state
    and its disk, frozen, in the sandbox's run folder. It lives until that sandbox is
    closed, which also removes it. An instance restored from it can be checkpointed in
    turn (its disk then backs onto this one's): a trial's tuned state is saved from the
    instance the agent worked in, restored from the baseline checkpoint, so both share
    the guest's history up to the agent's start."""

    name: str
    uuid: str
    dir: Path
    state: Path
    disk: Path
    format: str
    meta: dict
    slot: int | None
    cores: tuple[int, ...] | None
    restores: int = 0
    instance: "LibvirtSandbox | None" = None


def host_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin_cores(dom: libvirt.virDomain, vcpus: int, cores: tuple[int, ...]) -> None:
    n = max(host_cores()) + 1

    def cpumap(cs) -> tuple[bool, ...]:
        return tuple(i in cs for i in range(n))

    for v in range(vcpus):
        dom.pinVcpu(v, cpumap({cores[v % len(cores)]}))
    dom.pinEmulator(cpumap(set(cores)))


def plan_cores(parallel: int, vcpus: int) -> list[tuple[int, ...]] | None:
    """Disjoint host cores for ``parallel`` concurrent trials of ``vcpus`` vCPUs each (the
    tuned and baseline VMs of a trial take turns, so they share their trial's cores), or
    None when the host has too few cores for that: then trials share cores."""
    cores = host_cores()
    if parallel * vcpus > len(cores):
        return None
    return [tuple(cores[i * vcpus:(i + 1) * vcpus]) for i in range(parallel)]


def default_parallel(vcpus: int, memory_mib: int) -> int:
    """Trials that fit at once: one per ``vcpus`` host cores, and memory for two VMs each."""
    try:
        avail = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                     if x.startswith("MemAvailable")) // 1024
    except (OSError, StopIteration, ValueError):
        avail = 2 * memory_mib
    return max(1, min(len(host_cores()) // max(1, vcpus), avail // (2 * memory_mib + 1024)))


def _restored_guest_refresh() -> str:
    """Shell code run as the relay shell of a restored guest starts. A restored guest's
    clock is where it was at save time, and every restore of a state starts with the same
    entropy pool: refresh both (date in the background: readiness does not wait for it)."""
    return f"date -s @{time.time():.6f} >/dev/null 2>&1 & echo {secrets.token_hex(64)} > /dev/urandom"


class LibvirtSandbox(Sandbox):
    def __init__(self, backend: LibvirtBackend, name: str, run_dir: Path, lock_fd: int,
                 dom: libvirt.virDomain, port: int, slot_fd: int | None):
        self.backend, self.name, self.run_dir = backend, name, run_dir
        self.dom = dom
        self.port = port
        self._lock_fd, self._slot_fd = lock_fd, slot_fd
        self.relay = backend._relay(port)
        self.meta: dict = {}
        self.label = name
        self.closed = False
        self.cores: tuple[int, ...] | None = None
        self.slot: int | None = None  # the saved-state slot a restored sandbox came from
        self.instance_id: str = name  # which VM instance this is (a checkpoint's restores are numbered)
        self.saved: Checkpoint | None = None  # set by checkpoint(): the guest now lives on disk
        self.dom_meta: dict = {}  # the domain's schedcp metadata (job, trial, slot, role)

    @property
    def console_path(self) -> Path:
        return self.run_dir / "console.log"

    @property
    def running(self) -> bool:
        """The guest runs (not closed, not saved by :meth:`checkpoint`)."""
        return not self.closed and self.dom is not None

    def checkpoint(self) -> Checkpoint:
        """Save this guest, as it is now, to disk and stop it: its RAM to a state file, its
        overlay frozen (read-only, the backing file of every restored instance's overlay:
        a restored guest must see the disk exactly as at save time). The sandbox is closed
        for commands from then on; :meth:`LibvirtBackend.restore_checkpoint` starts new
        instances of it, and :meth:`close` removes it all. Processes keep running in the
        saved guest; the relay's SSH session is closed first (no connection may be open
        inside a saved state), so what an agent started must not depend on that session."""
        if self.closed or self.dom is None:
            raise SandboxError(f"sandbox {self.name} is not running: cannot checkpoint it")
        overlay = self.run_dir / "overlay.qcow2"
        if not overlay.is_file():
            raise SandboxError(f"sandbox {self.name} has no overlay to freeze (a cold-booted one cannot be checkpointed)")
        self.check_alive()
        require_free_space(self.run_dir, state_free_mib(self.backend.shape.memory_mib), "a trial checkpoint")
        uuid = self.dom.UUIDString()
        meta = dict(self.dom_meta)
        self.relay.close()
        time.sleep(0.3)
        fmt = save_format(self.backend.conn)
        state = self.run_dir / "checkpoint.save"
        try:
            self.dom.saveParams(save_params(state, fmt), 0)
        except libvirt.libvirtError as e:
            self.check_alive()
            raise SandboxError(f"saving sandbox {self.name} failed: {e.get_error_message()}") from None
        self.dom = None
        os.chown(overlay, 0, 0)
        os.chmod(overlay, 0o444)
        self.saved = Checkpoint(name=self.name, uuid=uuid, dir=self.run_dir, state=state, disk=overlay,
                                format=fmt, meta=meta, slot=self.slot, cores=self.cores)
        return self.saved

    # -- readiness / health ---------------------------------------------------------------
    def _wait_console_ready(self, deadline: float) -> None:
        """Wait for the guest init's ready line on the console (dropbear is listening then)
        before the first SSH attempt of a cold boot. An earlier attempt is accepted by
        QEMU's user-mode network while the guest cannot answer yet, and then sits out a
        whole banner timeout (10 s): cold boots measured 11-17 s that way instead of
        10.0-10.8 s. Without the line by ``deadline`` (an image with another init), SSH
        polling takes over."""
        tail, pos, next_check = b"", 0, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_check:  # a libvirt call and a console read: not every poll
                self.check_alive()
                next_check = time.monotonic() + 0.25
            try:
                with open(self.console_path, "rb") as f:
                    f.seek(pos)
                    new = f.read()
            except OSError:
                new = b""
            pos += len(new)
            window = tail + new
            if CONSOLE_READY in window:
                return
            tail = window[-(len(CONSOLE_READY) - 1):]  # a ready line split across two reads
            time.sleep(0.02)

    def _wait_ssh(self, deadline: float, on_start: str | Callable[[], str] = "") -> None:
        last = ""
        while True:
            self.check_alive()
            try:
                self.relay.connect(timeout=max(1.0, min(10.0, deadline - time.monotonic())), on_start=on_start)
                return
            except (paramiko.SSHException, OSError, EOFError, RelayError) as e:
                # RelayError: connected, but the relay shell did not start (yet)
                last = f"{type(e).__name__}: {e}"
                self.relay.close()
            if time.monotonic() > deadline:
                raise BootTimeout(
                    f"guest {self.name} not reachable over SSH in time ({last}); console tail: "
                    + self.console_tail(600).replace("\n", " | ")
                )
            time.sleep(0.05)

    def check_kernel_pin(self) -> None:
        """Refuse a guest whose kernel is not the image's pin. The release is the one the
        relay shell read when it started (no extra round trip); a restored guest's shell
        start also synced its clock and entropy with the host (see open())."""
        self._check_release(self.relay.guest_release)

    def _check_release(self, release: str) -> None:
        pinned = self.backend.image.lock.kernel_release
        if release != pinned:
            raise KernelPinMismatch(f"guest runs kernel {release!r} but image {self.backend.image.key} pins {pinned!r}")

    def _domain_state(self) -> tuple[bool, list | None]:
        """(active, state). A libvirt call that fails on a broken connection is retried on a
        new one (libvirtd restarted) before the guest is taken for dead."""
        for attempt in range(2):
            try:
                if attempt:
                    self.dom = self.backend.reconnect().lookupByName(self.name)
                active = self.dom is not None and bool(self.dom.isActive())
                return active, (self.dom.state() if active else None)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return False, None
        return False, None

    def check_alive(self) -> None:
        active, state = self._domain_state()
        tail = self.console_tail()
        if not active:
            why = "panicked" if any(m in tail for m in PANIC_MARKERS) else "died"
            raise GuestCrashed(f"guest {self.name} {why}; console tail: " + _last_lines(tail, 8), tail)
        if state and state[0] == libvirt.VIR_DOMAIN_CRASHED:
            raise GuestCrashed(f"guest {self.name} crashed; console tail: " + _last_lines(tail, 8), tail)

    def _wait_dead(self, grace: float) -> None:
        """After a broken link: the guest may be going down (panic -> destroy) a moment
        later than the SSH connection; give it ``grace`` seconds to show it."""
        deadline = time.monotonic() + grace
        while True:
            self.check_alive()
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def qemu_cpu_s(self) -> float | None:
        """CPU time (user + system) of this guest's QEMU process as the host sees it."""
        try:
            pid = int(Path(f"/run/libvirt/qemu/{self.name}.pid").read_text().strip())
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def console_tail(self, max_bytes: int = 4000) -> str:
        try:
            with open(self.console_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    # -- the Sandbox contract ------------------------------------------------------------
    def run(self, cmd: str, timeout: float = DEFAULT_TIMEOUT_S, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        t0 = time.monotonic()
        try:
            res = self.relay.run(cmd, timeout=timeout, max_output=max_output)
        except RelayError as e:
            self._wait_dead(3.0)  # raises GuestCrashed when the guest is gone
            try:  # the guest lives: a new link, and the caller learns this command's fate is unknown
                self.relay.reconnect(timeout=15.0)
            except (paramiko.SSHException, OSError, EOFError, RelayError):
                self._wait_dead(5.0)
                raise GuestUnresponsive(f"guest {self.name} runs but no longer answers over SSH ({e}); "
                                        "console tail: " + _last_lines(self.console_tail(), 8)) from None
            return ExecResult(returncode=-1, stdout="", duration_s=time.monotonic() - t0,
                              stderr=f"schedcp: {e}; the link was re-established, the command's outcome is unknown",
                              meta={"link_reset": True})
        if res.timed_out:
            self.check_alive()
            if res.meta.get("kill_failed"):
                self._probe_unresponsive()
        return res

    def _probe_unresponsive(self, timeout: float = 20.0) -> None:
        """The killer of a timed-out command could not run: is the guest still answering?"""
        try:
            rc, _, _ = self.relay.exec_once("true", timeout=timeout)
            if rc == 0:
                return
        except (RelayError, paramiko.SSHException, OSError, EOFError):
            pass
        self.check_alive()
        raise GuestUnresponsive(f"guest {self.name} runs but did not answer a trivial command in {timeout:.0f}s; "
                                "console tail: " + _last_lines(self.console_tail(), 8))

    def exec_once(self, cmd: str, timeout: float = 30.0) -> tuple[int, bytes, bytes]:
        return self.relay.exec_once(cmd, timeout)

    def put_file(self, remote: str, data: bytes | str | Path, mode: int = 0o644) -> None:
        if isinstance(data, Path):
            data = data.read_bytes()
        elif isinstance(data, str):
            data = data.encode()
        self.relay.put(remote, data, mode)

    def get_file(self, remote: str) -> bytes:
        return self.relay.get(remote)

    def close(self, keep_console: Path | None = None, wait: bool = True) -> None:
        """Destroy the guest and its overlay. With ``wait=False`` the destroy (1-2 s under
        TCG, mostly QEMU's exit) runs in a background thread that holds the slot until it
        is done; :func:`wait_closed` (also run at exit) waits for such threads."""
        if self.closed:
            return
        self.closed = True
        self.relay.close()
        if keep_console is not None and self.console_path.exists():
            keep_console.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.console_path, keep_console)
        if wait:
            self._teardown()
            return
        t = threading.Thread(target=self._teardown, name=f"close-{self.name}", daemon=True)
        _CLOSING.add(t)
        t.start()

    def _teardown(self) -> None:
        try:
            inst = self.saved.instance if self.saved is not None else None
            if inst is not None and not inst.closed:  # a checkpoint's running instance goes with it
                inst.close()
            if self.dom is not None:
                try:
                    self.dom.destroy()
                except libvirt.libvirtError:
                    with contextlib.suppress(libvirt.libvirtError, SandboxError):  # libvirtd restarted
                        self.backend.conn.lookupByName(self.name).destroy()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        finally:
            for fd in (self._lock_fd, self._slot_fd):
                if fd is not None:
                    os.close(fd)
            _CLOSING.discard(threading.current_thread())


_CLOSING: set[threading.Thread] = set()


def wait_closed(timeout: float = 60.0) -> None:
    """Wait for sandboxes closed with ``wait=False`` to be fully torn down."""
    for t in list(_CLOSING):
        t.join(timeout)


atexit.register(wait_closed)


def _last_lines(text: str, n: int) -> str:
    return " | ".join([ln for ln in text.strip().splitlines() if ln.strip()][-n:])
