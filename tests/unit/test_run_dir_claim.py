"""Run folders and clean-up across processes.

Claiming a sandbox's run folder (``claim_run_dir``) while another process holds its
lock for a moment: the watchdog of a SIGKILLed `schedcp mcp serve` (``reap_job``) or
another process's ``cleanup_stale`` holds a killed run's folder while it destroys the
domain and removes the folder. The next sandbox of that slot waits for it instead of
failing "in use" (a CI failure of test_parallel right after test_lifecycle's SIGKILL
test). And ``cleanup_stale``'s domain pass must not take a sandbox that another process
started after the pass listed the run folders for an orphan.

Real processes hold real flocks; libvirt's in-process test driver stands in for libvirtd."""

import os
import subprocess
import sys
import textwrap
import time

import libvirt
import pytest

from sandbox.base import SandboxUnavailable
from sandbox.libvirt.backend import _destroy_orphans, claim_run_dir

# Another process takes the folder's lock the way _try_lock does, says so, holds it for
# argv[2] seconds (forever if negative), then removes the folder, as a clean-up would.
HOLDER = textwrap.dedent("""
    import fcntl, os, shutil, sys, time
    d = sys.argv[1]
    fd = os.open(os.path.join(d, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0); os.write(fd, f"{os.getpid()}\\n".encode())
    print("held", flush=True)
    hold = float(sys.argv[2])
    time.sleep(hold if hold >= 0 else 3600)
    shutil.rmtree(d)
""")


@pytest.fixture
def conn():
    c = libvirt.open("test:///default")
    yield c
    c.close()


def hold(d, seconds: float) -> subprocess.Popen:
    d.mkdir(parents=True)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(d), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def locked_by_me(d) -> bool:
    return (d / "lock").read_text().strip() == str(os.getpid())


def test_waits_for_a_clean_up_that_holds_the_folder_for_a_moment(tmp_path, conn):
    d = tmp_path / "run" / "schedcp-x-s0"
    p = hold(d, 1.0)
    t0 = time.monotonic()
    got, fd = claim_run_dir(conn, d, wait_s=20)
    waited = time.monotonic() - t0
    try:
        assert p.wait(10) == 0
        assert got == d and d.is_dir() and locked_by_me(d)
        assert waited >= 0.5  # it did wait for the holder, which held it for 1 s after saying so
        assert [x.name for x in d.iterdir()] == ["lock"]  # a fresh folder, not the holder's
    finally:
        os.close(fd)


def test_a_folder_held_for_good_fails_naming_the_holder(tmp_path, conn):
    d = tmp_path / "run" / "schedcp-x-s0"
    p = hold(d, -1)
    try:
        t0 = time.monotonic()
        with pytest.raises(SandboxUnavailable) as e:
            claim_run_dir(conn, d, wait_s=1.0)
        assert 1.0 <= time.monotonic() - t0 < 10
        assert f"pid {p.pid}" in str(e.value) and "in use by another process" in str(e.value)
        assert d.is_dir()  # the holder's folder is left alone
    finally:
        p.kill()
        p.wait()


def test_a_stale_folder_is_reclaimed_at_once_with_its_domain(tmp_path, conn):
    # the test driver's own domain "test" plays the VM a killed run left behind
    assert conn.lookupByName("test").isActive()
    d = tmp_path / "run" / "test"
    d.mkdir(parents=True)
    (d / "lock").write_text("12345\n")
    (d / "overlay.qcow2").write_bytes(b"left over")
    t0 = time.monotonic()
    got, fd = claim_run_dir(conn, d, wait_s=20)
    try:
        assert time.monotonic() - t0 < 5
        assert sorted(x.name for x in got.iterdir()) == ["lock"] and locked_by_me(d)
        with pytest.raises(libvirt.libvirtError):  # destroyed and undefined
            conn.lookupByName("test")
    finally:
        os.close(fd)


def test_clean_up_spares_a_domain_whose_folder_appeared_after_its_listing(tmp_path, conn):
    """``cleanup_stale`` lists the live run folders, then the domains: a sandbox another
    process started in between (folder made and locked, then its domain) is not an orphan."""
    rr = tmp_path / "run"
    p = hold(rr / "test", -1)  # another process's new sandbox: its folder held, its domain "test" running
    try:
        assert _destroy_orphans(conn, "test", live=set(), rr=rr) == []
        assert conn.lookupByName("test").isActive()
    finally:
        p.kill()
        p.wait()
    # once that process is gone, the same pass reclaims both
    assert _destroy_orphans(conn, "test", live=set(), rr=rr) == ["test"]
    assert not (rr / "test").exists()
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName("test")


def test_clean_up_destroys_a_domain_without_a_folder(tmp_path, conn):
    rr = tmp_path / "run"
    rr.mkdir()
    assert _destroy_orphans(conn, "test", live=set(), rr=rr) == ["test"]
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName("test")
