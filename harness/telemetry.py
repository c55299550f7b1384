"""Scheduler telemetry of a guest, from ``/proc/stat``, ``/proc/schedstat`` and ``ps``.

One script (:data:`MONITOR`), run in the guest with the guest's ``python3``, serves both
the ``system_monitor`` tool (``interval S``: observe for S seconds) and the Gym
environment (``until STOP READY``: observe until the file STOP exists, e.g. for the
length of one workload run). It prints one JSON object:

- ``cpu_util_pct``: busy share of all CPUs over the interval (100 - idle - iowait);
- ``runqueue_len_mean``: mean of ``procs_running`` sampled every 0.25 s;
- ``ctx_switches_per_s``: ``ctxt`` delta / interval;
- ``runq_wait_us_per_sched``: mean run-queue wait per scheduling, the delta of the
  per-CPU ``run_delay`` over the delta of ``pcount`` in ``/proc/schedstat`` (fields 8
  and 9 of each ``cpuN`` line);
- ``wakeup_lat_p50_us``, ``wakeup_lat_p90_us``, ``wakeup_lat_p99_us``,
  ``wakeup_lat_max_us``: percentiles (nearest rank) of the scheduling latency of wakeups,
  the time from ``sched_waking`` of a task to the ``sched_switch`` that runs it (what
  BCC's runqlat measures for woken tasks; tasks preempted while runnable are not
  counted), in microseconds, over ``wakeup_lat_samples`` wakeups. They come from an
  in-kernel histogram (tracefs hist triggers and a synthetic event, as in the kernel's
  ``Documentation/trace/histogram.rst``): nothing is compiled, no per-event data leaves
  the kernel, and on hackbench (context-switch heavy) it slowed the run by about 4 %
  under TCG (medians of 5 alternated runs: 4.24 s -> 4.42 s). Timestamps use the
  ``global`` trace clock (cross-CPU consistent; the guest's default; another clock is
  switched to it while the monitor runs and restored after, which clears the trace
  buffers). ``wakeup_lat_dropped`` counts wakeups whose latency
  value did not fit the histogram (a map of 65536 distinct microsecond values);
  ``wakeup_lat_error`` says why there are no percentiles (no tracefs hist triggers);
- ``loadavg``, ``ncpu``, ``interval_s`` and (``interval`` mode) the busiest processes.
"""

from __future__ import annotations

import json
import shlex

from sandbox.base import Sandbox

MONITOR = r'''
import json, os, re, subprocess, sys, time
T = "/sys/kernel/tracing"
SYN = "schedcp_wakeup_lat u64 lat"
TRIG = [(T + "/events/sched/sched_waking/trigger", "hist:keys=pid:ts0=common_timestamp.usecs:size=16384"),
        (T + "/events/sched/sched_switch/trigger", "hist:keys=next_pid:lat=common_timestamp.usecs-$ts0:"
         "onmatch(sched.sched_waking).trace(schedcp_wakeup_lat,$lat):size=16384"),
        (T + "/events/synthetic/schedcp_wakeup_lat/trigger", "hist:keys=lat:size=65536")]
def put(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)
def lat_off(restore_clock=None):
    for path, t in reversed(TRIG):
        try:
            put(path, "!" + t)
        except OSError:
            pass
    try:
        put(T + "/synthetic_events", "!" + SYN)
    except OSError:
        pass
    if restore_clock:  # only when it was changed: setting a clock clears the trace buffers
        try:
            put(T + "/trace_clock", restore_clock)
        except OSError:
            pass
def lat_on():
    """Set the histogram up; returns the trace clock to restore afterwards, or None."""
    lat_off()  # a killed monitor's leftovers
    clock = re.search(r"\[(\w+)\]", open(T + "/trace_clock").read()).group(1)
    restore = None
    if clock != "global":
        put(T + "/trace_clock", "global")
        restore = clock
    try:
        put(T + "/synthetic_events", SYN)
        for path, t in TRIG:
            put(path, t)
    except OSError:
        lat_off(restore)
        raise
    return restore
def lat_read():
    h, dropped = [], 0
    for l in open(T + "/events/synthetic/schedcp_wakeup_lat/hist"):
        m = re.match(r"\{ lat:\s*(\d+) \} hitcount:\s*(\d+)", l)
        if m:
            h.append((int(m.group(1)), int(m.group(2))))
        elif l.strip().startswith("Dropped:"):
            dropped = int(l.split()[1])
    h.sort()
    n = sum(c for _, c in h)
    def pct(q):
        acc = 0
        for v, c in h:
            acc += c
            if acc >= q * n:
                return v
    return {"wakeup_lat_p50_us": pct(0.5), "wakeup_lat_p90_us": pct(0.9), "wakeup_lat_p99_us": pct(0.99),
            "wakeup_lat_max_us": h[-1][0] if h else None, "wakeup_lat_samples": n, "wakeup_lat_dropped": dropped}
def snap():
    st = {l.split()[0]: l.split()[1:] for l in open("/proc/stat")}
    cpu = [int(x) for x in st["cpu"]]
    wait = cnt = 0
    for l in open("/proc/schedstat"):
        f = l.split()
        if f[0].startswith("cpu") and len(f) >= 10:
            wait += int(f[8]); cnt += int(f[9])
    return sum(cpu), cpu[3] + cpu[4], int(st["ctxt"][0]), wait, cnt, int(st["procs_running"][0])
mode = sys.argv[1] if len(sys.argv) > 2 else "interval"
arg = sys.argv[-1] if mode == "interval" else sys.argv[2]
lat, on, restore = {}, False, None
try:
    restore, on = lat_on(), True
except (OSError, AttributeError) as e:
    lat = {"wakeup_lat_error": f"no scheduling-latency histogram (tracefs hist triggers): {e}"}
try:
    a = snap(); rq = []
    t0 = time.time()
    if mode == "interval":
        s = float(arg)
        while time.time() - t0 < s:
            time.sleep(min(0.25, s)); rq.append(snap()[5])
    else:
        open(sys.argv[3], "w").close()
        while not os.path.exists(arg):
            time.sleep(0.25); rq.append(snap()[5])
    b = snap(); dt = max(time.time() - t0, 1e-3)
    if on:
        lat = lat_read()
finally:
    if on:
        lat_off(restore)
tot, idle = b[0] - a[0], b[1] - a[1]
out = {"interval_s": round(dt, 2), "cpu_util_pct": round(100 * (tot - idle) / max(tot, 1), 1),
    "ctx_switches_per_s": round((b[2] - a[2]) / dt, 1), "runqueue_len_mean": round(sum(rq) / max(len(rq), 1), 2),
    "runq_wait_us_per_sched": round((b[3] - a[3]) / 1000 / max(b[4] - a[4], 1), 2),
    "loadavg": open("/proc/loadavg").read().split()[:3], "ncpu": os.cpu_count(), **lat}
if mode == "interval":
    top = subprocess.run(["ps", "-eo", "pid,comm,pcpu,nlwp", "--sort=-pcpu"], capture_output=True, text=True).stdout
    out["top"] = top.splitlines()[:8]
print(json.dumps(out))
'''

# what the background monitor uses in the guest
_DIR = "/run/schedcp/monitor"


class TelemetryError(RuntimeError):
    pass


def _parse(stdout: str, stderr: str) -> dict:
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TelemetryError((stderr or stdout).strip()[-2000:] or "monitor printed nothing") from None


def monitor(sb: Sandbox, seconds: float) -> dict:
    """Observe the guest for ``seconds``; the monitor's JSON (raises :class:`TelemetryError`)."""
    r = sb.run(f"python3 -c {shlex.quote(MONITOR)} {seconds}", timeout=seconds + 60)
    return _parse(r.stdout, r.stderr)


class Background:
    """Observe the guest while something else runs: ``start()``, run it, ``stop()``.

    ``start`` returns once the monitor has taken its first snapshot (a ready file), so
    the interval covers the whole run; ``stop`` ends it within 0.25 s and returns the JSON.
    """

    def __init__(self, sb: Sandbox):
        self.sb = sb

    def start(self) -> None:
        d = _DIR
        r = self.sb.run(
            f"mkdir -p {d} && cd {d} && rm -f stop ready out.json && "
            f"cat > {d}/monitor.py <<'SCHEDCP_MONITOR_EOF'\n{MONITOR}\nSCHEDCP_MONITOR_EOF\n"
            f"setsid -f sh -c 'exec python3 {d}/monitor.py until {d}/stop {d}/ready > {d}/out.json 2>&1' < /dev/null; "
            f"for i in $(seq 400); do [ -e {d}/ready ] && exit 0; sleep 0.05; done; echo 'monitor did not start' >&2; "
            f"cat {d}/out.json >&2; exit 1", timeout=60)
        if not r.success:
            raise TelemetryError(r.stderr.strip() or r.stdout.strip())

    def stop(self) -> dict:
        d = _DIR
        r = self.sb.run(f"touch {d}/stop; for i in $(seq 400); do [ -s {d}/out.json ] && "
                        f"grep -q '}}' {d}/out.json && break; sleep 0.05; done; cat {d}/out.json", timeout=60)
        return _parse(r.stdout, r.stderr)
