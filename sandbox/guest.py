"""Facts about a running guest and control of its sched_ext schedulers, over any Sandbox.

The prebuilt example schedulers of the image (the kernel's own ``tools/sched_ext``) live
in ``/opt/schedcp/scx/bin``; their sources and headers in ``/opt/schedcp/scx/src``.
A started scheduler runs detached (``setsid``) with its log in
``/var/log/schedcp/<name>.log`` and its pid in ``/run/schedcp/scheduler.pid``.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass

from .base import Sandbox, SandboxError

SCX_BIN = "/opt/schedcp/scx/bin"
SCX_SRC = "/opt/schedcp/scx/src"
PIDFILE = "/run/schedcp/scheduler.pid"


class SchedulerError(SandboxError):
    """A scheduler could not be started or stopped; the message holds the kernel's reason."""


@dataclass
class ScxState:
    state: str  # disabled | enabled | enabling | disabling
    ops: str  # name of the attached BPF scheduler ('' when none)

    @property
    def enabled(self) -> bool:
        return self.state == "enabled"


def sched_ext_state(sb: Sandbox) -> ScxState:
    r = sb.run(
        "cat /sys/kernel/sched_ext/state 2>/dev/null || echo unsupported; "
        "cat /sys/kernel/sched_ext/root/ops 2>/dev/null || true",
        timeout=30,
    )
    lines = r.stdout.strip().splitlines() + ["", ""]
    return ScxState(state=lines[0].strip(), ops=lines[1].strip())


def kernel_release(sb: Sandbox) -> str:
    return sb.run("uname -r", timeout=30).stdout.strip()


def list_schedulers(sb: Sandbox) -> list[str]:
    r = sb.run(f"ls {SCX_BIN}", timeout=30)
    return sorted(x for x in r.stdout.split() if x.startswith("scx_"))


def sched_ext_dmesg(sb: Sandbox, lines: int = 3, sep: str = " | ") -> str:
    """The kernel's last ``lines`` sched_ext lines (why a scheduler was disabled), joined
    with ``sep`` (one line by default)."""
    r = sb.run(f"dmesg | grep -i 'sched_ext' | tail -n {int(lines)}", timeout=30)
    return r.stdout.strip().replace("\n", sep)


def start_scheduler(sb: Sandbox, name: str, args: str = "", timeout: float = 30.0) -> ScxState:
    """Start a prebuilt example scheduler and wait until sched_ext reports it enabled."""
    if not re.fullmatch(r"scx_[a-z0-9_]+", name):
        raise SchedulerError(f"not a scheduler name: {name!r}")
    return start_binary(sb, f"{SCX_BIN}/{name}", args, timeout)


def start_binary(sb: Sandbox, binary: str, args: str = "", timeout: float = 30.0) -> ScxState:
    """Start a scheduler's user-space loader detached (log in ``/var/log/schedcp/<name>.log``)
    and wait until sched_ext reports it enabled; :class:`SchedulerError` with the loader's
    output and the kernel's reason when it exits first or never gets there."""
    name = binary.rsplit("/", 1)[-1]
    cur = sched_ext_state(sb)
    if cur.state != "disabled":
        raise SchedulerError(f"a scheduler is already attached ({cur.ops or cur.state}): stop it first")
    log = scheduler_log(name)
    r = sb.run(
        f"test -x {shlex.quote(binary)} || {{ echo 'no such scheduler: {name}' >&2; exit 2; }}; "
        f"mkdir -p /run/schedcp /var/log/schedcp; "
        f"setsid -f sh -c 'echo $$ > {PIDFILE}; exec \"$0\" \"$@\" > {log} 2>&1' "
        f"{shlex.quote(binary)} {' '.join(shlex.quote(a) for a in shlex.split(args))} < /dev/null",
        timeout=30,
    )
    if r.returncode != 0:
        raise SchedulerError(r.stderr.strip() or f"could not start {name}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = sched_ext_state(sb)
        if st.enabled and st.ops:
            return st
        alive = sb.run(f"kill -0 $(cat {PIDFILE} 2>/dev/null) 2>/dev/null", timeout=30).returncode == 0
        if not alive:
            tail = sb.run(f"tail -n 5 {log}", timeout=30).stdout.strip().replace("\n", " | ")
            raise SchedulerError(f"{name} exited before sched_ext was enabled: {tail} (dmesg: {sched_ext_dmesg(sb)})")
        time.sleep(0.2)
    raise SchedulerError(f"{name} did not reach state enabled in {timeout:.0f}s (dmesg: {sched_ext_dmesg(sb)})")


def scheduler_log(name: str) -> str:
    return f"/var/log/schedcp/{name}.log"


def stop_scheduler(sb: Sandbox, timeout: float = 30.0) -> ScxState:
    """Stop the scheduler started by :func:`start_scheduler` (SIGINT, then SIGKILL)."""
    sb.run(f"p=$(cat {PIDFILE} 2>/dev/null) && kill -INT $p 2>/dev/null; true", timeout=30)
    deadline = time.monotonic() + timeout
    killed = False
    while time.monotonic() < deadline:
        st = sched_ext_state(sb)
        if st.state == "disabled":
            sb.run(f"rm -f {PIDFILE}", timeout=30)
            return st
        if not killed and time.monotonic() > deadline - timeout / 2:
            sb.run(f"p=$(cat {PIDFILE} 2>/dev/null) && kill -KILL $p 2>/dev/null; true", timeout=30)
            killed = True
        time.sleep(0.2)
    raise SchedulerError(f"sched_ext still {sched_ext_state(sb).state} {timeout:.0f}s after stopping the scheduler")
