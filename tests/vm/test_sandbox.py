import re
import socket
import threading
import time

import pytest

from sandbox.base import GuestCrashed, KernelPinMismatch
from sandbox.guest import (
    SchedulerError, kernel_release, list_schedulers, sched_ext_state, start_scheduler, stop_scheduler,
)


def test_commands_exit_codes_and_streams(sb):
    r = sb.run("echo out; echo err >&2; exit_with() { return $1; }; exit_with 3")
    assert (r.returncode, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    assert sb.run("true").success
    assert sb.run("false").returncode == 1
    assert sb.run("printf 'no newline'").stdout == "no newline"
    # quoting survives: the command is passed verbatim
    assert sb.run("""printf '%s|' "a b" 'c"d' $'e\\tf'""").stdout == 'a b|c"d|e\tf|'
    # stdin is /dev/null, so a command reading it gets EOF instead of hanging
    assert sb.run("cat", timeout=10).returncode == 0
    # shell state persists like in a terminal
    sb.run("cd /tmp && export SCHEDCP_X=42")
    assert sb.run("echo $PWD $SCHEDCP_X").stdout == "/tmp 42\n"
    # a command starting with "-" is run as a command (as in a terminal), not taken as an option
    r = sb.run("--version")
    assert r.returncode == 127 and "command not found" in r.stderr


def test_hung_command_is_killed_and_channel_stays_usable(sb):
    sb.run("set -o noclobber")  # must not stop the relay's bookkeeping of the last pid
    sb.run("sleep 300 >/dev/null 2>&1 &")  # an earlier background job: must survive the kill
    r = sb.run("sleep 1000; echo never", timeout=2)
    assert r.timed_out and r.returncode == 124 and "never" not in r.stdout
    assert r.meta.get("shell_restarted")
    assert 2 <= r.duration_s < 10
    left = sb.run("pgrep -a sleep").stdout
    assert "sleep 1000" not in left and "sleep 300" in left
    assert sb.run("echo alive").stdout == "alive\n"
    # a busy loop inside the shell itself: the shell is replaced, the relay still works
    r = sb.run("while :; do :; done", timeout=2)
    assert r.timed_out and r.meta.get("shell_restarted")
    assert sb.run("echo again").stdout == "again\n"


def test_output_cap_cuts_and_marks(sb):
    r = sb.run("head -c 300000 /dev/zero | tr '\\0' x", max_output=1000)
    assert r.truncated and r.returncode == 0
    assert r.stdout.startswith("x" * 1000)
    assert "[schedcp: output truncated, 299000 bytes dropped]" in r.stdout
    r = sb.run("yes", max_output=100, timeout=60)  # endless output is stopped, not streamed for a minute
    assert r.truncated and r.meta.get("killed_for_output") and not r.timed_out
    assert sb.run("echo ok").stdout == "ok\n"


def test_put_and_get_files(sb):
    data = bytes(range(256)) * 1000
    sb.put_file("/root/blob.bin", data)
    assert sb.get_file("/root/blob.bin") == data
    assert sb.run("sha256sum /root/blob.bin").stdout.split()[0] == __import__("hashlib").sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError):
        sb.get_file("/root/nope")


def test_guest_facts_and_example_scheduler(sb, backend):
    assert kernel_release(sb) == backend.image.lock.kernel_release
    names = list_schedulers(sb)
    assert {"scx_simple", "scx_qmap", "scx_central", "scx_flatcg"} <= set(names)
    assert sched_ext_state(sb).state == "disabled"
    st = start_scheduler(sb, "scx_simple")
    assert st.enabled and st.ops == "simple"
    assert sb.run("cat /sys/kernel/sched_ext/root/ops").stdout.strip() == "simple"
    assert sb.run("hackbench -g 2 -l 50 >/dev/null 2>&1 || stress-ng --cpu 2 -t 2 >/dev/null", timeout=120).success
    assert sched_ext_state(sb).ops == "simple"  # survived load
    st = stop_scheduler(sb)
    assert st.state == "disabled" and st.ops == ""
    with pytest.raises(SchedulerError, match="no such scheduler"):
        start_scheduler(sb, "scx_nope")


def test_reset_discards_changes(backend):
    with backend.open(job="pytest", trial="writer") as a:
        a.run("echo secret > /root/marker && sync && sysctl -w kernel.sched_autogroup_enabled=0")
        assert a.run("cat /root/marker").stdout == "secret\n"
    with backend.open(job="pytest", trial="reader") as b:
        assert b.run("cat /root/marker").returncode != 0
        assert b.run("sysctl -n kernel.sched_autogroup_enabled").stdout.strip() == "1"


def test_saved_state_format(backend):
    """`make setup` installs libvirt >= 11.2, so saved states are sparse (mapped-ram): the
    file has holes where the guest's memory is zero, and restores read it directly. Under
    TCG the guest's RAM is a shared memfd, in the saved state and in the restored VM."""
    import json
    import os

    from sandbox.libvirt.backend import save_format

    assert save_format(backend.conn) == "sparse", backend.conn.getLibVersion()
    with backend.open(job="pytest", trial="format") as sb:
        slot = backend.state_dir / f"slot{sb.slot}"
        meta = json.loads((slot / "meta.json").read_text())
        assert meta["format"] == "sparse"
        if backend.accel == "tcg":
            assert meta["memory_backing"] == "memfd"
            assert "<source type='memfd'/>" in sb.dom.XMLDesc()
        st = os.stat(slot / "state.save")
        assert st.st_size >= backend.shape.memory_mib << 20  # one file offset per guest page
        assert st.st_blocks * 512 < st.st_size / 4, (st.st_blocks * 512, st.st_size)
        assert sb.run("echo restored").stdout == "restored\n"


def test_two_sandboxes_side_by_side(backend):
    with backend.open(job="pytest", trial="p1") as a, backend.open(job="pytest", trial="p2") as b:
        assert a.name != b.name and a.port != b.port and a.run_dir != b.run_dir
        a.run("echo A > /root/who")
        assert b.run("cat /root/who 2>/dev/null || echo none").stdout == "none\n"
        assert a.run("cat /root/who").stdout == "A\n"


def _listen(addr):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 0))
    s.listen(5)
    s.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                c, peer = s.accept()
                hits.append(peer)
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    return s, hits, stop


def _host_ip():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        return u.getsockname()[0]


def test_guest_cannot_reach_host_or_outside(sb):
    lo, lo_hits, lo_stop = _listen("127.0.0.1")
    any_, any_hits, any_stop = _listen("0.0.0.0")
    try:
        probe = "timeout 5 bash -c 'exec 3<>/dev/tcp/{}/{}' && echo CONNECTED || echo BLOCKED"
        targets = [("10.0.2.2", lo.getsockname()[1]), ("10.0.2.2", any_.getsockname()[1]),
                   (_host_ip(), any_.getsockname()[1]), ("192.0.2.1", 80)]
        for host, port in targets:
            r = sb.run(probe.format(host, port), timeout=30)
            assert r.stdout.strip() == "BLOCKED", (host, port, r)
        time.sleep(0.5)
        assert lo_hits == [] and any_hits == []
        # ...while the host still reaches the guest (this very command came over SSH)
        assert sb.run("echo reachable").stdout == "reachable\n"
    finally:
        for s, stop in ((lo, lo_stop), (any_, any_stop)):
            stop.set()
            s.close()


def test_kernel_pin_mismatch_is_refused(backend):
    pinned = backend.image.lock.kernel_release
    backend.image.lock.kernel_release = "6.15.11-061511-generic"
    try:
        with pytest.raises(KernelPinMismatch, match=rf"guest runs kernel '{re.escape(pinned)}' but image .* pins '6\.15\.11"):
            backend.open(job="pytest", trial="pin")
    finally:
        backend.image.lock.kernel_release = pinned
    with backend.open(job="pytest", trial="pin-ok") as sb:  # nothing was left half-open
        assert sb.run("uname -r").stdout.strip() == pinned


@pytest.mark.fault
def test_guest_panic_is_a_sandbox_failure(backend):
    sb = backend.open(job="pytest", trial="panic")
    try:
        assert sb.run("echo 1 > /proc/sys/kernel/sysrq").success
        with pytest.raises(GuestCrashed, match="panicked") as ei:
            sb.run("echo c > /proc/sysrq-trigger; sleep 30", timeout=60)
        assert "Kernel panic" in ei.value.console_tail
    finally:
        sb.close()


def test_cold_boot_and_a_killed_cold_boots_leftovers(backend):
    """A cold boot (no saved state) gives a working guest with its overlay in its run
    folder; the locked folder its overlay was made in is gone. One left by a killed run
    (lock free) is removed by cleanup_stale."""
    from sandbox.libvirt.backend import cleanup_stale, run_root

    with backend.cold_boot(job="pytest", trial="cold") as sb:
        assert sb.run("uname -r").stdout.strip() == backend.image.lock.kernel_release
        assert (sb.run_dir / "overlay.qcow2").is_file()
        assert not list(run_root().glob(".cold-*"))
    left = run_root() / ".cold-schedcp-pytest-killed"
    left.mkdir(parents=True)
    (left / "lock").write_text("12345\n")  # no process holds it
    (left / "overlay.qcow2").write_bytes(b"\0" * 4096)
    assert left.name in cleanup_stale() and not left.exists()


def test_another_homes_cleanup_leaves_our_vms_alone(backend, tmp_path, monkeypatch):
    """Two SCHEDCP_HOMEs on one host (a CI clone beside a user's jobs): domain names carry
    a hash of the home, and one home's start-up clean-up destroys only its own leftovers."""
    from sandbox.libvirt.backend import cleanup_stale, domain_prefix

    with backend.open(job="pytest", trial="home") as sb:
        mine = domain_prefix()
        assert sb.name.startswith(mine)
        with monkeypatch.context() as m:
            m.setenv("SCHEDCP_HOME", str(tmp_path / "other-home"))
            assert domain_prefix() != mine
            assert sb.name not in cleanup_stale(backend.conn)
        assert sb.dom.isActive()
        assert sb.run("echo alive").stdout == "alive\n"


def test_full_host_disk_is_refused_before_anything_starts(backend, tmp_path, monkeypatch):
    """A host disk too full for a saved state or a trial's overlay: one line saying what
    to do, no VM started, no state or run folder begun (a real small tmpfs, not a mock)."""
    import subprocess

    import libvirt

    from sandbox.base import SandboxUnavailable

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        monkeypatch.setenv("SCHEDCP_HOME", str(small))
        before = {d.name() for d in backend.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        for start in (lambda: backend.open(job="pytest", trial="full"),
                      lambda: backend.cold_boot(job="pytest", trial="full")):
            with pytest.raises(SandboxUnavailable) as ei:
                start()
            msg = str(ei.value)
            assert "\n" not in msg and "not enough free disk" in msg and "SCHEDCP_HOME" in msg, msg
        after = {d.name() for d in backend.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        assert after == before
        left = [p for p in small.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
        assert left == [] and not (small / "run").exists(), left
    finally:
        monkeypatch.delenv("SCHEDCP_HOME")
        subprocess.run(["umount", str(small)])
