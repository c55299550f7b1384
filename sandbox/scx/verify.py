"""Compile, load and check an untrusted sched_ext scheduler inside a guest.

The source is a ``*.bpf.c`` in the style of the kernel's ``tools/sched_ext`` examples
(``SCX_OPS_DEFINE(<x>_ops, ...)`` and ``UEI_DEFINE(uei)``, recorded in ``ops.exit``; see
``/opt/schedcp/scx/src/scx_simple.bpf.c`` in the guest). Everything happens in the guest:
``build.sh`` compiles it with the image's clang-22/bpftool/libbpf, a generated loader
(``loader.c.in``) loads it (the verifier runs there) and attaches it; then a short CPU
stress runs under it and the kernel's verdict is read back (``/sys/kernel/sched_ext``,
dmesg). The outcome is one of :data:`OUTCOMES`, with the compiler's, verifier's or
kernel's words verbatim. The host only sends text and reads text back.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from importlib import resources

from ..base import GuestCrashed, Sandbox, SandboxError
from ..guest import SchedulerError, sched_ext_state, scheduler_log, start_binary, stop_scheduler

CUSTOM_DIR = "/opt/schedcp/custom"

OUTCOMES = (
    "ok",                 # compiled, loaded, enabled, still enabled after the stress run
    "invalid_source",     # not a sched_ext scheduler the loader can drive (no SCX_OPS_DEFINE / UEI_DEFINE)
    "compile_error",      # clang, bpftool link/skeleton or the loader build failed
    "verifier_rejected",  # the BPF verifier refused a program at load time
    "load_failed",        # loaded but never enabled (e.g. ops.init failed, attach refused)
    "ejected",            # enabled, then disabled by the kernel (watchdog stall, scx_bpf_error...)
    "guest_unresponsive", # the guest stopped answering while the scheduler ran
    "guest_crashed",      # the guest panicked or died
)

_OPS_RE = re.compile(r"SCX_OPS_DEFINE\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_UEI_RE = re.compile(r"UEI_DEFINE\s*\(\s*uei\s*\)")
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,40}")
# the kernel's own lines: 'sched_ext: BPF scheduler "x" enabled' / '... disabled (reason)'
_DISABLED_RE = re.compile(r'sched_ext: BPF scheduler "([^"]*)" disabled \(([^)]*)\)')


@dataclass
class Verdict:
    outcome: str
    name: str
    stage: str = ""          # compile | link | loader | load | stress | done
    error: str = ""          # verbatim compiler / verifier / loader / kernel text
    ops: str = ""
    state: str = ""
    kernel_reason: str = ""  # e.g. "runnable task stall"
    dmesg: str = ""
    loaded: bool = False     # left attached for the caller
    timings_s: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def _asset(name: str) -> str:
    return resources.files("sandbox.scx").joinpath(name).read_text()


def loader_source(name: str, ops: str) -> str:
    return _asset("loader.c.in").replace("@NAME@", name).replace("@OPS@", ops)


def check_source(source: str, name: str) -> tuple[str, str]:
    """(ops map name, error). A source the generated loader cannot drive is refused here,
    before anything reaches the guest."""
    if not _NAME_RE.fullmatch(name):
        return "", f"scheduler name {name!r}: use 1-41 characters a-z, 0-9, _ starting with a letter"
    m = _OPS_RE.search(source)
    if not m:
        return "", ("no SCX_OPS_DEFINE(<name>_ops, ...) in the source: write the scheduler like the "
                    "tools/sched_ext examples (see /opt/schedcp/scx/src/scx_simple.bpf.c)")
    if not _UEI_RE.search(source):
        return "", ("no UEI_DEFINE(uei) in the source: declare it and call UEI_RECORD(uei, ei) in ops.exit, "
                    "as /opt/schedcp/scx/src/scx_simple.bpf.c does, so the loader can report the exit reason")
    return m.group(1), ""


def _dmesg_since(sb: Sandbox, mark: int) -> str:
    r = sb.run(f"dmesg | tail -n +{mark + 1} | grep -i sched_ext | tail -n 20", timeout=30)
    return r.stdout.strip()


def _dmesg_mark(sb: Sandbox) -> int:
    out = sb.run("dmesg | wc -l", timeout=30).stdout.strip()
    return int(out) if out.isdigit() else 0


def build(sb: Sandbox, source: str, name: str, timeout: float = 300.0) -> Verdict:
    """Compile ``source`` into ``/opt/schedcp/custom/<name>/<name>`` in the guest."""
    ops, err = check_source(source, name)
    if err:
        return Verdict("invalid_source", name, stage="check", error=err)
    d = f"{CUSTOM_DIR}/{name}"
    sb.run(f"rm -rf {d} && mkdir -p {d}", timeout=30)
    sb.put_file(f"{d}/{name}.bpf.c", source)
    sb.put_file(f"{d}/{name}.c", loader_source(name, ops))
    sb.put_file(f"{d}/build.sh", _asset("build.sh"))
    t = time.monotonic()
    r = sb.run(f"sh {d}/build.sh {d} {name}", timeout=timeout, max_output=256 << 10)
    v = Verdict("ok", name, ops=ops, timings_s={"build": round(time.monotonic() - t, 3)})
    stages = re.findall(r"^STAGE (\w+)$", r.stdout, re.M)
    v.stage = stages[-1] if stages else "compile"
    if r.returncode != 0 or v.stage != "built":
        v.outcome = "compile_error"
        v.error = (r.stderr.strip() or r.stdout.strip())[-16000:]
        if r.timed_out:
            v.error = f"build timed out after {timeout:.0f}s\n" + v.error
    return v


def verify(sb: Sandbox, source: str, name: str = "scx_custom", *, stress_s: float = 5.0,
           load_timeout: float = 30.0, keep_loaded: bool = True) -> Verdict:
    """Build, load, stress and judge a scheduler. A scheduler already attached is stopped
    first. On any failure the new scheduler is stopped; on success it stays attached when
    ``keep_loaded``."""
    v = build(sb, source, name)
    if not v.ok:
        return v
    try:
        if sched_ext_state(sb).state != "disabled":
            stop_scheduler(sb)
        mark = _dmesg_mark(sb)
        binary = f"{CUSTOM_DIR}/{name}/{name}"
        t = time.monotonic()
        v.stage = "load"
        try:
            st = start_binary(sb, binary, timeout=load_timeout)
            v.ops, v.state = st.ops, st.state
        except SchedulerError as e:
            v.timings_s["load"] = round(time.monotonic() - t, 3)
            return _classify_load_failure(sb, v, mark, str(e))
        v.timings_s["load"] = round(time.monotonic() - t, 3)
        v.stage = "stress"
        t = time.monotonic()
        r = sb.run(f"stress-ng --cpu $(nproc) --timeout {stress_s:g}s -q; hackbench -g 2 -l 50 >/dev/null 2>&1; true",
                   timeout=stress_s + 90)
        v.timings_s["stress"] = round(time.monotonic() - t, 3)
        if r.timed_out:
            sb.check_alive()  # raises GuestCrashed when the guest is gone
        st = sched_ext_state(sb)
        v.state = st.state
        v.dmesg = _dmesg_since(sb, mark)
        dis = _DISABLED_RE.search(v.dmesg)
        if st.enabled and st.ops == v.ops and not dis:
            v.stage, v.outcome = "done", "ok"
            if keep_loaded:
                v.loaded = True
            else:
                stop_scheduler(sb)
            return v
        v.outcome = "ejected"
        v.kernel_reason = dis.group(2) if dis else f"sched_ext state {st.state} after the stress run"
        v.error = _loader_log(sb, name)
        _stop_quietly(sb)
        return v
    except GuestCrashed as e:
        v.outcome, v.error = "guest_crashed", str(e)
        return v
    except SandboxError as e:
        v.outcome, v.error = "guest_unresponsive", f"{type(e).__name__}: {e}"
        return v


def _loader_log(sb: Sandbox, name: str) -> str:
    return sb.run(f"tail -c 16000 {scheduler_log(name)} 2>/dev/null", timeout=30).stdout.strip()


def _stop_quietly(sb: Sandbox) -> None:
    try:
        stop_scheduler(sb)
    except SchedulerError:
        sb.run("p=$(cat /run/schedcp/scheduler.pid 2>/dev/null) && kill -KILL $p 2>/dev/null; true", timeout=30)


def _classify_load_failure(sb: Sandbox, v: Verdict, mark: int, message: str) -> Verdict:
    log = _loader_log(sb, v.name)
    v.dmesg = _dmesg_since(sb, mark)
    v.state = sched_ext_state(sb).state
    dis = _DISABLED_RE.search(v.dmesg)
    if "BPF program load failed" in log or "PROG LOAD LOG" in log or "Failed to load skel" in log:
        v.outcome = "verifier_rejected"
    elif dis and re.search(r'sched_ext: BPF scheduler "[^"]*" enabled', v.dmesg):
        v.outcome = "ejected"  # it got enabled and was thrown out before we looked
    else:
        v.outcome = "load_failed"
    if dis:
        v.kernel_reason = dis.group(2)
    v.error = log or message
    _stop_quietly(sb)
    return v
