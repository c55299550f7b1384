"""NVML telemetry (harness/gpu.py): the no-GPU path for real on this host (one stated reason,
never zeros), the summarising arithmetic on sample sequences, and the sampling code against
a stand-in pynvml module."""

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from harness import gpu

NO_GPU = not Path("/dev/nvidiactl").exists()


# -- no GPU: a reason, never zeros -------------------------------------------------------------
@pytest.mark.skipif(not NO_GPU, reason="a host with an NVIDIA driver")
def test_no_gpu_here_gives_one_stated_reason():
    why = gpu.nvml_reason()
    assert isinstance(why, str) and why.startswith("NVML not usable")
    assert gpu.devices() == why
    assert gpu.HostSampler().start().stop() == {"note": why}
    assert gpu.host_energy_reader() == why


def test_guest_sampler_script_without_a_gpu_says_why():
    """The script that runs inside a guest, run here (no /dev/nvidiactl): one note line."""
    if not NO_GPU:
        pytest.skip("a host with an NVIDIA driver")
    r = subprocess.run([sys.executable, "-c", gpu.GUEST_SAMPLER, "once"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"note": "no NVIDIA GPU in this VM (/dev/nvidiactl absent: none passed through, "
                                            "or no driver)"}
    assert gpu.guest_summary(r.stdout) == {"note": json.loads(r.stdout)["note"]}


class LocalSandbox:
    """Runs the guest commands on this host (bash), in place of a VM."""

    def run(self, cmd, timeout=60, **kw):
        p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)
        return types.SimpleNamespace(success=p.returncode == 0, returncode=p.returncode, stdout=p.stdout,
                                     stderr=p.stderr)


@pytest.mark.skipif(not NO_GPU, reason="a host with an NVIDIA driver")
def test_guest_sampler_start_stop_without_a_gpu_is_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu, "_GUEST_DIR", str(tmp_path / "gpu"))
    s = gpu.GuestSampler(LocalSandbox()).start()
    assert s.stop() == {"note": "no NVIDIA GPU in this VM (/dev/nvidiactl absent: none passed through, or no driver)"}
    assert "no NVIDIA GPU" in gpu.guest_energy_reader(LocalSandbox())


# -- the arithmetic --------------------------------------------------------------------------------
def seq(t0=100.0, dt=0.5, n=5, gpu_i=0, energy0=5_000_000, **over):
    """A sample sequence shaped like an H200 under a training run: 116 W idle before, about
    300 W while busy (made up around the issue's figures, not recorded)."""
    util = over.get("util", [0, 95, 97, 96, 0])
    power = over.get("power", [116.0, 300.0, 310.0, 305.0, 120.0])
    mem = over.get("mem", [1000.0, 5200.0, 5400.0, 5300.0, 5300.0])
    clock = over.get("clock", [345, 1980, 1980, 1755, 345])
    thr = over.get("throttle", [0x1, 0x0, 0x0, 0x4, 0x1])
    out, e = [], energy0
    for i in range(n):
        s = {"gpu": gpu_i, "t": t0 + i * dt, "util_pct": util[i], "mem_used_mib": mem[i], "power_w": power[i],
             "sm_clock_mhz": clock[i], "throttle": thr[i]}
        if over.get("counter", True):
            s["energy_mj"] = e
        out.append(s)
        e += int(power[i] * dt * 1000)  # mJ until the next sample
    return out


def test_summary_means_peak_and_energy_from_the_counter_delta():
    s = gpu.summarize_device(seq())
    assert s["samples"] == 5 and s["interval_s"] == 2.0
    assert s["util_mean_pct"] == pytest.approx((95 + 97 + 96) / 5)
    assert s["mem_peak_mib"] == 5400.0
    assert s["power_mean_w"] == pytest.approx((116 + 300 + 310 + 305 + 120) / 5)
    assert s["sm_clock_mean_mhz"] == pytest.approx((345 + 1980 + 1980 + 1755 + 345) / 5)
    # the counter's delta first -> last: the energy of the first four intervals
    assert s["energy_j"] == pytest.approx((116 + 300 + 310 + 305) * 0.5) and s["energy_source"] == gpu.ENERGY_COUNTER
    assert s["throttle_reasons"] == ["gpu_idle", "sw_power_cap"]


def test_without_the_counter_power_is_integrated_and_named_so():
    s = gpu.summarize_device(seq(counter=False))
    trap = sum((a + b) / 2 * 0.5 for a, b in zip([116, 300, 310, 305], [300, 310, 305, 120]))
    assert s["energy_j"] == pytest.approx(trap) and s["energy_source"] == gpu.ENERGY_POWER_INTEGRAL


def test_a_counter_that_went_backwards_is_not_trusted():
    xs = seq()
    xs[-1]["energy_mj"] = 1  # a reset (driver reload)
    assert gpu.summarize_device(xs)["energy_source"] == gpu.ENERGY_POWER_INTEGRAL


def test_one_sample_has_no_energy_and_says_why_fields_left_out_stay_out():
    s = gpu.summarize_device([{"gpu": 0, "t": 1.0, "util_pct": 50}])
    assert s["energy_j"] is None and "one sample" in s["energy_note"]
    assert s["power_mean_w"] is None and s["mem_peak_mib"] is None  # not reported: None, not 0
    assert gpu.summarize([]) == {"note": "no GPU samples"}


def test_unknown_throttle_bits_are_kept_in_hex():
    xs = seq(throttle=[0x1000, 0, 0, 0, 0x8])
    assert gpu.summarize_device(xs)["throttle_reasons"] == ["hw_slowdown", "0x1000"]


def test_two_gpus_sum_energy_and_run_figures_flatten():
    both = seq(gpu_i=0) + seq(gpu_i=1, power=[100.0] * 5)
    s = gpu.summarize(both)
    assert [g["gpu"] for g in s["gpus"]] == [0, 1]
    e0 = (116 + 300 + 310 + 305) * 0.5
    assert s["energy_j"] == pytest.approx(e0 + 4 * 100 * 0.5) and s["energy_source"] == gpu.ENERGY_COUNTER
    f = gpu.run_figures(s)
    assert f["energy_j"] == s["energy_j"]
    assert f["power_mean_w"] == pytest.approx(s["gpus"][0]["power_mean_w"] + 100.0)
    assert f["mem_peak_mib"] == pytest.approx(2 * 5400.0)


def test_trial_summary_per_side_and_notes():
    def rec(role, warm, summ):
        return {"role": role, "warmup": warm, "gpu": summ}

    a, b = gpu.summarize(seq()), gpu.summarize(seq(power=[200.0] * 5))
    ms = [rec("baseline", True, b), rec("baseline", False, a), rec("tuned", False, b), rec("tuned", False, a)]
    t = gpu.trial_summary(ms)
    assert t["energy_source"] == gpu.ENERGY_COUNTER
    assert t["baseline"]["energy_j"] == {"median": a["energy_j"], "mean": a["energy_j"], "n": 1}  # warm-up left out
    assert t["tuned"]["energy_j"]["n"] == 2
    assert t["tuned"]["energy_j"]["mean"] == pytest.approx((a["energy_j"] + b["energy_j"]) / 2)
    assert gpu.trial_summary([rec("baseline", False, {"note": "no GPU"})]) == {"note": "no GPU"}


# -- the sampling code, against a stand-in NVML -------------------------------------------------
class FakeNVML(types.ModuleType):
    """Enough of pynvml: one GPU whose power reads fail (NotSupported) and whose counter grows."""

    NVML_CLOCK_SM = 1

    def __init__(self):
        super().__init__("pynvml")
        self.energy = 1000

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"h{i}"

    def nvmlDeviceGetUtilizationRates(self, h):
        return types.SimpleNamespace(gpu=80, memory=10)

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(used=2 * 2**30, total=141 * 2**30)

    def nvmlDeviceGetPowerUsage(self, h):
        raise RuntimeError("Not Supported")

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self.energy += 500
        return self.energy

    def nvmlDeviceGetClockInfo(self, h, which):
        return 1980

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        return 0


def test_host_sampler_with_a_stand_in_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML())
    monkeypatch.setattr(gpu, "_INIT", {"done": False, "reason": None})
    assert gpu.nvml_reason() is None
    with gpu.HostSampler(interval_s=0.01) as s:
        import time

        time.sleep(0.05)
    out = s.stop()
    g = out["gpus"][0]
    assert out["where"] == "host" and g["samples"] >= 2
    assert g["util_mean_pct"] == 80 and g["mem_peak_mib"] == 2048.0 and g["sm_clock_mean_mhz"] == 1980
    assert g["power_mean_w"] is None  # not supported: left out, not 0
    assert g["energy_source"] == gpu.ENERGY_COUNTER and g["energy_j"] == pytest.approx((g["samples"] - 1) * 0.5)
    reader = gpu.host_energy_reader()
    assert reader() - reader() == pytest.approx(-0.5)


# -- where a GPU would be: the system_monitor tool ----------------------------------------------
class GuestStub:
    """A sandbox whose guest sampler answers with a recorded-shape sample sequence."""

    def __init__(self, gpus=()):
        self.backend = types.SimpleNamespace(shape=types.SimpleNamespace(gpus=gpus))
        self.cmds = []

    def run(self, cmd, timeout=60, **kw):
        from sandbox.base import ExecResult

        self.cmds.append(cmd)
        if "touch" in cmd and "/stop" in cmd:  # the sampler's stop: its JSON line
            return ExecResult(0, json.dumps({"samples": seq()}) + "\n", "", 0.01)
        return ExecResult(0, "", "", 0.01)


def _monitor(tmp_path, monkeypatch, sb):
    from harness import tools
    from harness.agents.base import AgentContext, Trajectory
    from harness.limits import BudgetTracker
    from harness.models import Budget
    from harness.workload import load_workload

    monkeypatch.setattr(tools.telemetry, "monitor", lambda sb, s: {"cpu_util_pct": 50.0})
    monkeypatch.setattr(tools, "sched_ext_state", lambda sb: types.SimpleNamespace(state="disabled", ops=""))
    ctx = AgentContext(sandbox=sb, workload=load_workload("pytorch"), instruction="", budget=BudgetTracker(Budget()),
                       trajectory=Trajectory(tmp_path / "t.jsonl"), files_dir=tmp_path / "f")
    return tools.TrialTools(ctx).t_system_monitor(1.0)


def test_system_monitor_without_a_gpu_says_so(tmp_path, monkeypatch):
    sb = GuestStub()
    out = _monitor(tmp_path, monkeypatch, sb)
    assert out["gpu"] == {"note": "no GPU passed through to this VM"} and out["cpu_util_pct"] == 50.0
    assert sb.cmds == []  # no guest command for the GPU


def test_system_monitor_with_a_passed_through_gpu_samples_in_the_guest(tmp_path, monkeypatch):
    sb = GuestStub(gpus=("0000:41:00.0",))
    g = _monitor(tmp_path, monkeypatch, sb)["gpu"]
    assert g["where"] == "guest (unverified)" and g["energy_source"] == gpu.ENERGY_COUNTER
    assert g["gpus"][0]["mem_peak_mib"] == 5400.0
    assert "sampler.py until" in sb.cmds[0] and "touch" in sb.cmds[1]


# -- where a GPU would be: each measured run of a trial, and result.json -------------------------
class RunStub(GuestStub):
    instance_id, meta = "i0", {}

    def run(self, cmd, timeout=60, **kw):
        from sandbox.base import ExecResult

        if "train.py" in cmd:
            self.cmds.append("bench")
            return ExecResult(0, "device=cuda\nsteps_per_s=1000\nsamples_per_s=64000\n", "", 3.0)
        return super().run(cmd, timeout)

    def close(self, **kw):
        pass


class GpuBackend:
    image = types.SimpleNamespace(key="img-test", lock=types.SimpleNamespace(profile="", features=[]))
    shape = types.SimpleNamespace(gpus=("0000:41:00.0",), vcpus=2, memory_mib=4096)

    def restore_checkpoint(self, ckpt, label):
        return RunStub(self.shape.gpus)


def _trial(tmp_path, backend):
    from harness.models import TrialConfig
    from harness.trial import Trial

    cfg = TrialConfig(trial_id="pytorch__linux-default__a0", workload="pytorch", agent="linux-default", repeat=2,
                      warmup=1)
    t = Trial(cfg, tmp_path / "t", backend)
    t.load()
    t.ckpts = {"baseline": types.SimpleNamespace(state="b"), "tuned": types.SimpleNamespace(state="t")}
    return t


def test_a_trial_with_a_gpu_records_gpu_figures_per_run_and_per_side(tmp_path):
    t = _trial(tmp_path, GpuBackend())
    t.measure()
    t.score()
    runs = [m for m in t.res.measurements if not m["warmup"]]
    assert len(runs) == 4 and all(m["gpu"]["energy_source"] == gpu.ENERGY_COUNTER for m in t.res.measurements)
    g = t.res.gpu
    assert g["where"] == "guest (unverified)" and g["energy_source"] == gpu.ENERGY_COUNTER
    e = (116 + 300 + 310 + 305) * 0.5
    assert g["baseline"]["energy_j"] == {"median": e, "mean": e, "n": 2} and g["tuned"]["energy_j"]["n"] == 2


def test_a_trial_without_a_gpu_states_why_once(tmp_path):
    class CpuBackend(GpuBackend):
        shape = types.SimpleNamespace(gpus=(), vcpus=2, memory_mib=4096)

    t = _trial(tmp_path, CpuBackend())
    t.measure()
    t.score()
    assert t.res.gpu == {"note": "no GPU passed through to this trial's VMs: no GPU telemetry"}
    assert all("gpu" not in m for m in t.res.measurements)
