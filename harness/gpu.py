"""GPU telemetry through NVML (``pynvml``, from nvidia-ml-py): one module, for the host
and for a guest that has a GPU passed through.

Only the standard library and ``pynvml`` are imported here, so that ``scripts/gpu-check.sh``
can use this module on a GPU host that has nothing of the project installed.

- :func:`nvml_reason`: why NVML cannot be used here (None: it can).
- :func:`devices`: what NVML says about each GPU (name, PCI bus id, driver, memory, power limits).
- :func:`sample_devices`: one sample of every GPU: utilisation, memory used, power, the
  total-energy counter, SM clock, throttle reasons; a field the GPU does not support is
  left out, never filled with 0.
- :func:`summarize`: samples taken over a run -> mean utilisation, peak memory, mean
  power, energy (the total-energy counter's delta; where the GPU has no such counter,
  power integrated over time, named as such), mean SM clock, the throttle reasons seen.
- :class:`HostSampler`: samples on a thread while something runs (``start``/``stop``).
- :data:`GUEST_SAMPLER` / :class:`GuestSampler`: the same sampling code run *inside* a
  guest that has a GPU passed through. **Unverified**: no host with a GPU that can be
  passed through (IOMMU) was available; the guest image does not ship pynvml.

Absent a GPU or NVML every entry point gives one stated reason (``{"note": ...}``), never zeros.
"""

from __future__ import annotations

import inspect
import json
import shlex
import threading
import time
import warnings

# NVML throttle ("clocks event") reason bits, nvml.h
THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting",
}
# what the energy figure of a summary was computed from
ENERGY_COUNTER = "nvml_total_energy_counter"  # nvmlDeviceGetTotalEnergyConsumption, delta over the run
ENERGY_POWER_INTEGRAL = "nvml_power_integral"  # nvmlDeviceGetPowerUsage integrated (no energy counter)


def _pynvml():
    """The pynvml module (the PyPI ``pynvml`` shim warns that it is deprecated: quiet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pynvml
    return pynvml


_INIT = {"done": False, "reason": None}
_LOCK = threading.Lock()


def nvml_reason() -> str | None:
    """Why NVML cannot be used on this machine (no module, no driver, no GPU); None when it can.
    NVML is initialised once per process and kept."""
    with _LOCK:
        if _INIT["done"]:
            return _INIT["reason"]
        _INIT["done"] = True
        try:
            nv = _pynvml()
        except ImportError as e:
            _INIT["reason"] = f"NVML not usable: the pynvml module (nvidia-ml-py) is not installed ({e})"
            return _INIT["reason"]
        try:
            nv.nvmlInit()
            n = nv.nvmlDeviceGetCount()
        except Exception as e:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            _INIT["reason"] = f"NVML not usable: {_err_text(e)} (no NVIDIA driver on this machine)"
            return _INIT["reason"]
        if n == 0:
            _INIT["reason"] = "NVML answers but finds no GPU"
        return _INIT["reason"]


def _err_text(e: Exception) -> str:
    s = str(e)
    return s if s and s != "None" else type(e).__name__


def _handles(nv) -> list:
    return [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def devices() -> list[dict] | str:
    """Static facts of every GPU NVML sees, or the reason string when there are none."""
    why = nvml_reason()
    if why:
        return why
    nv = _pynvml()
    out = []
    for i, h in enumerate(_handles(nv)):
        d = {"index": i}
        for key, fn in (("name", lambda: _s(nv.nvmlDeviceGetName(h))),
                        ("pci_bus_id", lambda: _s(nv.nvmlDeviceGetPciInfo(h).busId)),
                        ("driver", lambda: _s(nv.nvmlSystemGetDriverVersion())),
                        ("memory_total_mib", lambda: round(nv.nvmlDeviceGetMemoryInfo(h).total / 2**20)),
                        ("power_limit_w", lambda: nv.nvmlDeviceGetPowerManagementLimit(h) / 1000),
                        ("power_limit_range_w", lambda: [x / 1000 for x in
                                                         nv.nvmlDeviceGetPowerManagementLimitConstraints(h)]),
                        ("energy_counter", lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h) is not None)):
            try:
                d[key] = fn()
            except Exception:  # not supported on this GPU: left out
                pass
        out.append(d)
    return out


def sample_devices(nv, handles) -> list[dict]:
    """One sample per GPU. ``nv``: the pynvml module; ``handles``: its device handles.
    Runs on the host and, as source text (:data:`GUEST_SAMPLER`), in a guest: standard
    library only. A field the GPU does not support is left out."""
    import time as _t

    out = []
    for i, h in enumerate(handles):
        s = {"gpu": i, "t": _t.monotonic()}
        for key, fn in (("util_pct", lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu),
                        ("mem_used_mib", lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
                        ("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000),
                        ("energy_mj", lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h)),
                        ("sm_clock_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
                        ("throttle", lambda: nv.nvmlDeviceGetCurrentClocksThrottleReasons(h))):
            try:
                s[key] = fn()
            except Exception:
                pass
        out.append(s)
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize_device(samples: list[dict]) -> dict:
    """One GPU's samples (time order) -> its figures over the run. Energy: the delta of the
    total-energy counter (mJ) when the first and last samples have it; else the power samples
    integrated over time (trapezoids); else None, with ``energy_note`` saying why."""
    samples = sorted(samples, key=lambda s: s["t"])
    if not samples:
        return {"note": "no samples"}

    def col(k):
        return [s[k] for s in samples if s.get(k) is not None]

    out: dict = {"samples": len(samples), "interval_s": round(samples[-1]["t"] - samples[0]["t"], 3)}
    util, mem, power, clock = col("util_pct"), col("mem_used_mib"), col("power_w"), col("sm_clock_mhz")
    out["util_mean_pct"] = None if not util else round(_mean(util), 2)
    out["mem_peak_mib"] = None if not mem else round(max(mem), 1)
    out["power_mean_w"] = None if not power else round(_mean(power), 2)
    out["sm_clock_mean_mhz"] = None if not clock else round(_mean(clock), 1)
    e0, e1 = samples[0].get("energy_mj"), samples[-1].get("energy_mj")
    pw = [(s["t"], s["power_w"]) for s in samples if s.get("power_w") is not None]
    if e0 is not None and e1 is not None and e1 >= e0 and len(samples) > 1:
        out["energy_j"], out["energy_source"] = round((e1 - e0) / 1000, 3), ENERGY_COUNTER
    elif len(pw) > 1:
        j = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(pw, pw[1:]))
        out["energy_j"], out["energy_source"] = round(j, 3), ENERGY_POWER_INTEGRAL
    else:
        out["energy_j"], out["energy_source"] = None, ""
        out["energy_note"] = ("one sample only: no interval to measure energy over" if len(samples) < 2
                              else "the GPU reports neither the total-energy counter nor power")
    bits = 0
    for t in col("throttle"):
        bits |= int(t)
    out["throttle_reasons"] = [name for b, name in THROTTLE_REASONS.items() if bits & b]
    unknown = bits & ~sum(THROTTLE_REASONS)
    if unknown:
        out["throttle_reasons"].append(f"0x{unknown:x}")
    return out


def summarize(samples: list[dict]) -> dict:
    """Samples of all GPUs (as :func:`sample_devices` returns them, concatenated over
    time) -> ``{"gpus": [per-GPU summary], "energy_j": total, "energy_source": ...}``."""
    by: dict[int, list[dict]] = {}
    for s in samples:
        by.setdefault(int(s.get("gpu", 0)), []).append(s)
    if not by:
        return {"note": "no GPU samples"}
    gpus = [{"gpu": i, **summarize_device(by[i])} for i in sorted(by)]
    es = [g.get("energy_j") for g in gpus]
    srcs = sorted({g.get("energy_source") for g in gpus if g.get("energy_source")})
    return {"gpus": gpus, "energy_j": None if any(e is None for e in es) else round(sum(es), 3),
            "energy_source": "+".join(srcs)}


def run_figures(summary: dict) -> dict[str, float]:
    """One run's :func:`summarize` dict as flat numbers over all its GPUs: energy_j (total),
    power_mean_w (sum), util_mean_pct and sm_clock_mean_mhz (means), mem_peak_mib (sum of
    peaks). A figure no GPU reported is left out."""
    gs = summary.get("gpus") or []
    out: dict[str, float] = {}
    if summary.get("energy_j") is not None:
        out["energy_j"] = summary["energy_j"]
    for key, agg in (("power_mean_w", sum), ("util_mean_pct", _mean), ("sm_clock_mean_mhz", _mean),
                     ("mem_peak_mib", sum)):
        vals = [g[key] for g in gs if g.get(key) is not None]
        if vals:
            out[key] = round(agg(vals), 3)
    return out


def trial_summary(measurements: list[dict]) -> dict:
    """A trial's measured runs (their ``gpu`` entries) -> per side (baseline, tuned) the median
    and mean of each run figure, with the energy's source; or ``{"note": ...}``."""
    import statistics

    sides: dict[str, list[dict]] = {}
    notes, srcs, where = set(), set(), set()
    for m in measurements:
        g = m.get("gpu")
        if m.get("warmup") or not g:
            continue
        if "note" in g:
            notes.add(g["note"])
            continue
        sides.setdefault(m["role"], []).append(run_figures(g))
        srcs.add(g.get("energy_source") or "")
        where.add(g.get("where", ""))
    if not sides:
        return {"note": "; ".join(sorted(notes)) or "no GPU samples from the measured runs"}
    out: dict = {"where": ", ".join(sorted(w for w in where if w)), "energy_source": "+".join(sorted(s for s in srcs if s))}
    for role, runs in sides.items():
        keys = sorted({k for r in runs for k in r})
        out[role] = {k: {"median": round(statistics.median([r[k] for r in runs if k in r]), 3),
                         "mean": round(statistics.fmean([r[k] for r in runs if k in r]), 3),
                         "n": sum(k in r for r in runs)} for k in keys}
    if notes:
        out["notes"] = sorted(notes)
    return out


class HostSampler:
    """Sample this machine's GPUs every ``interval_s`` on a thread while something runs.

    ``stop()`` returns :func:`summarize`'s dict (plus ``raw`` samples with ``keep_raw``), or
    ``{"note": reason}`` when NVML is not usable here."""

    def __init__(self, interval_s: float = 0.1, keep_raw: bool = False):
        self.interval_s, self.keep_raw = interval_s, keep_raw
        self.samples: list[dict] = []
        self.reason = nvml_reason()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "HostSampler":
        if self.reason:
            return self
        nv = _pynvml()
        hs = _handles(nv)
        self.samples += sample_devices(nv, hs)

        def loop():
            while not self._stop.wait(self.interval_s):
                self.samples.extend(sample_devices(nv, hs))
            self.samples.extend(sample_devices(nv, hs))

        self._thread = threading.Thread(target=loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        if self.reason:
            return {"note": self.reason}
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        out = summarize(self.samples)
        out["where"] = "host"
        if self.keep_raw:
            out["raw"] = self.samples
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if not self.reason and not self._stop.is_set():
            self.stop()


def host_energy_reader():
    """A callable giving the host GPUs' total-energy counters summed, in J (for an energy
    meter), or the reason string when there is none."""
    why = nvml_reason()
    if why:
        return why
    nv = _pynvml()
    hs = _handles(nv)
    try:
        for h in hs:
            nv.nvmlDeviceGetTotalEnergyConsumption(h)
    except Exception as e:
        return f"the GPU has no total-energy counter ({_err_text(e)})"
    return lambda: sum(nv.nvmlDeviceGetTotalEnergyConsumption(h) for h in hs) / 1000


# -- in a guest with a GPU passed through (UNVERIFIED: never run with a real GPU) -------------
# It prints one JSON line: {"samples": [...]} or {"note": reason}. Usage inside the guest:
# python3 -c GUEST_SAMPLER until STOPFILE READYFILE INTERVAL_S   (samples until STOPFILE exists)
# python3 -c GUEST_SAMPLER once                                  (one sample: the counters now)
GUEST_SAMPLER = (
    "import json, os, sys, time\n"
    + inspect.getsource(sample_devices)
    + r'''
def main():
    if not os.path.exists("/dev/nvidiactl"):
        return {"note": "no NVIDIA GPU in this VM (/dev/nvidiactl absent: none passed through, or no driver)"}
    try:
        import warnings
        warnings.simplefilter("ignore")
        import pynvml as nv
    except ImportError as e:
        return {"note": f"NVML not usable in this VM: the image has no pynvml module ({e})"}
    try:
        nv.nvmlInit()
        hs = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
    except Exception as e:
        return {"note": f"NVML not usable in this VM: {e}"}
    if not hs:
        return {"note": "NVML answers in this VM but finds no GPU"}
    out = sample_devices(nv, hs)
    if sys.argv[1] == "until":
        stop, ready, dt = sys.argv[2], sys.argv[3], float(sys.argv[4])
        open(ready, "w").close()
        while not os.path.exists(stop):
            time.sleep(dt)
            out += sample_devices(nv, hs)
        out += sample_devices(nv, hs)
    return {"samples": out}
print(json.dumps(main()))
''')

_GUEST_DIR = "/run/schedcp/gpu"


class GuestSampler:
    """:class:`HostSampler`'s counterpart inside a sandbox's guest (``sb.run``), used when
    the trial's VMs have GPUs passed through. **Unverified** (no such host was available)."""

    def __init__(self, sb, interval_s: float = 0.25):
        self.sb, self.interval_s = sb, interval_s
        self.note: str | None = None

    def start(self) -> "GuestSampler":
        d = _GUEST_DIR
        r = self.sb.run(
            f"mkdir -p {d} && cd {d} && rm -f stop ready out.json && "
            f"cat > {d}/sampler.py <<'SCHEDCP_GPU_EOF'\n{GUEST_SAMPLER}\nSCHEDCP_GPU_EOF\n"
            f"setsid -f sh -c 'exec python3 {d}/sampler.py until {d}/stop {d}/ready {self.interval_s} "
            f"> {d}/out.json 2>&1' < /dev/null; "
            f"for i in $(seq 400); do [ -e {d}/ready ] && exit 0; [ -s {d}/out.json ] && break; sleep 0.05; done; "
            f"cat {d}/out.json; exit 3", timeout=60)
        if not r.success:
            self.note = _guest_note(r.stdout, r.stderr)
        return self

    def stop(self) -> dict:
        if self.note:
            return {"note": self.note}
        d = _GUEST_DIR
        r = self.sb.run(f"touch {d}/stop; for i in $(seq 400); do [ -s {d}/out.json ] && "
                        f"grep -q '}}' {d}/out.json && break; sleep 0.05; done; cat {d}/out.json", timeout=60)
        return guest_summary(r.stdout, r.stderr)


def _guest_note(stdout: str, stderr: str) -> str:
    try:
        return json.loads(stdout.strip().splitlines()[-1])["note"]
    except (ValueError, IndexError, KeyError, TypeError):
        return "the guest's GPU sampler did not start: " + ((stderr or stdout).strip()[-500:] or "no output")


def guest_summary(stdout: str, stderr: str = "") -> dict:
    """The guest sampler's JSON line -> :func:`summarize`'s dict (``where: guest``) or a note."""
    try:
        d = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"note": "the guest's GPU sampler printed no result: " + ((stderr or stdout).strip()[-500:] or "nothing")}
    if "note" in d:
        return {"note": d["note"]}
    return {**summarize(d.get("samples", [])), "where": "guest (unverified)"}


def guest_energy_reader(sb):
    """A callable reading the guest GPUs' total-energy counters (J, summed) with one guest
    command each time, or the reason string. **Unverified.**"""
    cmd = f"python3 -c {shlex.quote(GUEST_SAMPLER)} once"

    def read() -> float | None:
        r = sb.run(cmd, timeout=60)
        try:
            d = json.loads(r.stdout.strip().splitlines()[-1])
            return sum(s["energy_mj"] for s in d["samples"]) / 1000
        except (ValueError, IndexError, KeyError, TypeError):
            return None

    r = sb.run(cmd, timeout=60)
    try:
        d = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "the guest's GPU sampler printed no result"
    if "note" in d:
        return d["note"]
    if any(s.get("energy_mj") is None for s in d["samples"]):
        return "the guest's GPU has no total-energy counter"
    return read
