"""Checks made once before any VM is started: libvirtd reachable, QEMU present, and
which accelerator works here (KVM where the CPU can run guests, else QEMU TCG)."""

from __future__ import annotations

import functools
import os
import time
import shutil
import subprocess

import libvirt

from ..base import SandboxUnavailable

LIBVIRT_URI = os.environ.get("SCHEDCP_LIBVIRT_URI", "qemu:///system")
QEMU = "/usr/bin/qemu-system-x86_64"


def _quiet_libvirt_errors() -> None:
    # libvirt prints every error to stderr by default; we raise them as exceptions instead.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def connect(wait_s: float = 0.0) -> libvirt.virConnect:
    """Open the libvirt connection; with ``wait_s`` keep trying that long (libvirtd being
    restarted comes back within seconds, and the guests it runs keep running)."""
    _quiet_libvirt_errors()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return libvirt.open(LIBVIRT_URI)
        except libvirt.libvirtError as e:
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise SandboxUnavailable(
                f"libvirtd not reachable at {LIBVIRT_URI} ({e.get_error_message()}); "
                "start it with `virtlogd -d && libvirtd -d` or run `make setup`"
            ) from None


def qemu_binary() -> str:
    if not os.access(QEMU, os.X_OK):
        raise SandboxUnavailable(f"{QEMU} not found: run `make setup` (installs qemu-system-x86)")
    return QEMU


@functools.lru_cache(maxsize=1)
def detect_accel() -> str:
    """'kvm' when KVM can run a guest on this host, else 'tcg' (see :func:`accel_detail`)."""
    return accel_detail()[0]


@functools.lru_cache(maxsize=1)
def accel_detail() -> tuple[str, str]:
    """The accelerator ('kvm' or 'tcg') and why, in a few words.

    SCHEDCP_ACCEL=kvm|tcg overrides. /dev/kvm alone is not enough (some hosts expose a
    paravirtual KVM that cannot boot ordinary guests): the CPU must advertise vmx/svm
    and QEMU must accept ``-accel kvm``.
    """
    forced = os.environ.get("SCHEDCP_ACCEL")
    if forced in ("kvm", "tcg"):
        return forced, f"forced by SCHEDCP_ACCEL={forced}"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm missing or not read-writable"
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError as e:
        return "tcg", f"/proc/cpuinfo unreadable ({e})"
    if " vmx" not in flags and " svm" not in flags:
        return "tcg", "/dev/kvm exists but the CPU advertises no vmx/svm (a paravirtual KVM that cannot boot guests)"
    try:
        r = subprocess.run(
            [qemu_binary(), "-accel", "kvm", "-machine", "q35", "-nodefaults", "-display", "none",
             "-no-user-config", "-S", "-qmp", "stdio"],
            input='{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n',
            capture_output=True, text=True, timeout=20,
        )
        if r.returncode == 0:
            return "kvm", "QEMU starts with -accel kvm"
        return "tcg", f"QEMU refused -accel kvm: {(r.stderr.strip().splitlines() or ['exit %d' % r.returncode])[-1]}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return "tcg", f"QEMU could not be probed with -accel kvm ({e})"


def qemu_user() -> tuple[int, int]:
    """uid/gid that QEMU runs as (libvirt-qemu on Debian); files it opens must be readable by it."""
    import grp
    import pwd

    try:
        pw = pwd.getpwnam("libvirt-qemu")
        gid = grp.getgrnam("libvirt-qemu").gr_gid if _has_group("libvirt-qemu") else pw.pw_gid
        return pw.pw_uid, gid
    except KeyError:
        return 0, 0


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def version_text(v: int) -> str:
    """libvirt's packed version number (major * 1e6 + minor * 1e3 + release) as text."""
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


def host_tools() -> dict[str, str]:
    out = {"libvirt": "", "qemu": ""}
    try:
        out["libvirt"] = version_text(libvirt.getVersion())
    except libvirt.libvirtError:
        pass
    if shutil.which(QEMU):
        out["qemu"] = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return out
