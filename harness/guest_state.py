"""What a guest's tunable state is, read in one go, and what changed between two reads.

:func:`sysctls` is the read the trial uses to record what the agent changed
(``tuned_config``): every ``kernel.``/``vm.``/``net.core.`` sysctl but the volatile ones,
plus EEVDF's knobs in debugfs. :class:`Fingerprint` is a wider read for goal inference
(RQ2, ``--no-slo-hint``), taken before the agent's first tool call and after each call
until it declares its goal, so that any change it makes before declaring is detected:

- those sysctls and debugfs knobs, and a few sysfs knobs (transparent huge pages, CPUs online);
- sched_ext: state, the attached scheduler's ops, and ``enable_seq`` (counts every
  scheduler ever enabled, so one started and stopped within one command is seen too);
- user processes' nice value, scheduling policy, real-time priority and CPU affinity
  (``renice``, ``chrt``, ``taskset`` on the application's processes);
- regular files under :data:`WATCHED` modified after a marker file written at the
  first read, minus :func:`ignored` paths (what running or observing the application
  writes by itself).

Nothing here changes the guest except the marker file (in ``/run``, a tmpfs).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# sysctls that change by themselves (counters, random ids, memory-dependent sizes)
VOLATILE = re.compile(r"^(kernel\.ns_last_pid|kernel\.random\.|kernel\.pty\.nr|vm\.user_reserve_kbytes"
                      r"|vm\.admin_reserve_kbytes|kernel\.perf_event_max_sample_rate)")
# ... and those that the kernel itself changes in a running guest: a soft lockup or a
# warning taints it (a stalled TCG host is enough); not the agent's change
VOLATILE_WATCH = re.compile(r"^kernel\.tainted$")

SYSCTL_CMD = "sysctl -a 2>/dev/null | grep -E '^(kernel|vm|net\\.core)\\.'"
# EEVDF's knobs live in debugfs (since 5.13), not in sysctl
DEBUGFS_CMD = ("for f in base_slice_ns migration_cost_ns nr_migrate features latency_warn_ms latency_warn_once "
               "tunable_scaling preempt; do p=/sys/kernel/debug/sched/$f; [ -f $p ] && "
               "echo \"$p = $(tr '\\n' ' ' < $p)\"; done")
SYSFS_CMD = ("for p in /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag "
             "/sys/devices/system/cpu/online; do [ -f $p ] && echo \"$p = $(tr '\\n' ' ' < $p)\"; done")
SCX_CMD = ("echo \"state=$(cat /sys/kernel/sched_ext/state 2>/dev/null || echo unsupported)\"; "
           "echo \"ops=$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)\"; "
           "echo \"enable_seq=$(cat /sys/kernel/sched_ext/enable_seq 2>/dev/null)\"")
# user processes (not kernel threads): pid, nice, policy, rt priority, name; then affinity
PROC_CMD = ("ps --ppid 2 -p 2 --deselect -o pid=,ni=,cls=,rtprio=,comm= 2>/dev/null; echo @@affinity; "
            "grep -s Cpus_allowed_list /proc/[0-9]*/status")

# where a change the agent makes by writing files would live
WATCHED = ("/etc", "/opt/schedcp", "/usr/local", "/root")
# trees that workloads write by themselves (the kernel and LLVM build trees): not read
PRUNED = ("/opt/schedcp/src",)
MARKER = "/run/schedcp/goal-watch.marker"
GUEST_ROOT = "/opt/schedcp/workloads"
# what observing or running the application writes by itself: Python's byte-code
# caches, tools' caches in root's home, perf's recordings in the working directory
_IGNORED = re.compile(r"(/__pycache__/|\.pyc$|^/root/\.cache/|/perf\.data(\.old)?$|^/root/\.python_history$"
                      r"|^/root/\.lesshst$|^/root/\.wget-hsts$)")


def parse_sysctls(*outputs: str) -> dict[str, str]:
    out = {}
    for text in outputs:
        for line in text.splitlines():
            k, _, v = line.partition(" = ")
            if k.strip() and not VOLATILE.match(k.strip()):
                out[k.strip()] = v.strip()
    return out


def sysctls(sb) -> dict[str, str]:
    """Every ``kernel.``/``vm.``/``net.core.`` sysctl but the volatile ones, and the EEVDF
    debugfs knobs (as ``/sys/kernel/debug/sched/<knob>``)."""
    r = sb.run(SYSCTL_CMD, timeout=60, max_output=4 << 20)
    d = sb.run(DEBUGFS_CMD, timeout=60)
    return parse_sysctls(r.stdout, d.stdout)


def ignored(path: str, workload_files: frozenset[str] = frozenset()) -> bool:
    """Whether a modified file is the application's or a tool's own doing, not a change:
    caches (see :data:`_IGNORED`), and under the workloads' folder everything but the
    files the harness installed there (``workload_files``: config files, scripts, spec,
    README), i.e. the application's outputs."""
    if _IGNORED.search(path):
        return True
    if path.startswith(GUEST_ROOT + "/"):
        return path not in workload_files
    return False


@dataclass
class Fingerprint:
    knobs: dict[str, str] = field(default_factory=dict)  # sysctls, debugfs and sysfs knobs
    scx: dict[str, str] = field(default_factory=dict)  # state, ops, enable_seq
    procs: dict[str, tuple[str, str]] = field(default_factory=dict)  # pid -> (comm, "nice policy rtprio cpus")
    files: dict[str, str] = field(default_factory=dict)  # path -> mtime, modified after the marker

    def changes(self, later: "Fingerprint") -> list[str]:
        """What differs in ``later``, one line each (e.g. ``sysctl kernel.x: 1 -> 0``)."""
        out = []
        for k in sorted(set(self.knobs) | set(later.knobs)):
            a, b = self.knobs.get(k), later.knobs.get(k)
            if a != b and not VOLATILE_WATCH.match(k):
                kind = "sysctl" if not k.startswith("/") else "debugfs" if "/debug/" in k else "sysfs"
                out.append(f"{kind} {k}: {a if a is not None else '(absent)'} -> {b if b is not None else '(absent)'}")
        a, b = self.scx, later.scx
        if (a.get("state"), a.get("ops")) != (b.get("state"), b.get("ops")):
            out.append(f"sched_ext {b.get('state')}" + (f" ops={b['ops']}" if b.get("ops") else "")
                       + f" (was {a.get('state')}" + (f" ops={a['ops']}" if a.get("ops") else "") + ")")
        elif a.get("enable_seq", "") != b.get("enable_seq", ""):
            out.append(f"sched_ext: a scheduler was enabled and is gone again (enable_seq "
                       f"{a.get('enable_seq')} -> {b.get('enable_seq')})")
        for pid in sorted(set(self.procs) & set(later.procs), key=lambda p: int(p)):
            (ca, sa), (cb, sb_) = self.procs[pid], later.procs[pid]
            if ca == cb and sa != sb_:
                out.append(f"process {pid} ({cb}) nice/policy/rtprio/cpus: {sa} -> {sb_}")
        for path in sorted(later.files):
            if self.files.get(path) != later.files[path]:
                out.append(f"file {path}")
        return out


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].strip().isidentifier():
            cur = line[2:].strip()
            out.setdefault(cur, [])
        elif cur is not None:
            out[cur].append(line)
    return out


def fingerprint_cmd(first: bool) -> str:
    """One guest command printing every part of a :class:`Fingerprint` (the first read
    writes the marker that later reads compare files against)."""
    watched = " ".join(WATCHED)
    prune = " -o ".join(f"-path {shlex.quote(p)}" for p in PRUNED)
    marker = (f"mkdir -p {MARKER.rsplit('/', 1)[0]} && : > {MARKER}; " if first else "")
    return (f"{marker}echo @@sysctl; {SYSCTL_CMD}; {DEBUGFS_CMD}; {SYSFS_CMD}; echo @@scx; {SCX_CMD}; "
            f"echo @@procs; {PROC_CMD}; echo @@files; "
            f"[ -e {MARKER} ] && find {watched} -xdev \\( {prune} \\) -prune -o -type f -newer {MARKER} "
            f"-printf '%T@ %p\\n' 2>/dev/null; echo @@end")


def read_fingerprint(sb, first: bool = False, workload_files: frozenset[str] = frozenset()) -> Fingerprint:
    """Read the guest's state (one relay command). ``first``: write the marker file first."""
    r = sb.run(fingerprint_cmd(first), timeout=120, max_output=8 << 20)
    sec = _sections(r.stdout)
    if "end" not in sec:
        raise RuntimeError(f"guest state read failed (exit {r.returncode}): {(r.stderr or r.stdout)[-500:]}")
    fp = Fingerprint()
    fp.knobs = parse_sysctls("\n".join(sec.get("sysctl", [])))
    for line in sec.get("scx", []):
        k, _, v = line.partition("=")
        fp.scx[k.strip()] = v.strip()
    procs = {}
    for line in sec.get("procs", []):
        f = line.split(None, 4)
        if len(f) == 5 and f[0].isdigit():
            procs[f[0]] = (f[4].strip(), " ".join(f[1:4]))
    for line in sec.get("affinity", []):  # /proc/<pid>/status:Cpus_allowed_list:\t0-1
        m = re.match(r"/proc/(\d+)/status:Cpus_allowed_list:\s*(\S+)", line)
        if m and m.group(1) in procs:
            comm, s = procs[m.group(1)]
            procs[m.group(1)] = (comm, f"{s} cpus={m.group(2)}")
    fp.procs = procs
    for line in sec.get("files", []):
        t, _, path = line.partition(" ")
        if path and not ignored(path, workload_files):
            fp.files[path] = t
    return fp
