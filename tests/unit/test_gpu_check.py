"""scripts/gpu-check.sh: on a host without a GPU it fails clearly and writes nothing; its table
of programs follows the workload specs; with a stand-in NVML and a stand-in program its whole
path runs and writes one report (no real GPU was available to run it)."""

import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from harness import gpu
from harness.workload import load_workload

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu-check.sh"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="a host with an NVIDIA driver")
def test_without_a_gpu_it_fails_clearly_and_writes_nothing(tmp_path):
    p = subprocess.run([str(SCRIPT), "--runs", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHON": sys.executable})
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no usable NVIDIA GPU here (NVML not usable")
    assert "no report written" in lines[0] and list(tmp_path.iterdir()) == []


def test_without_pynvml_it_says_so(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")  # an interpreter that cannot import pynvml
    fake.chmod(0o755)
    p = subprocess.run([str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHON": str(fake)})
    assert p.returncode == 2 and "has no pynvml module (pip install nvidia-ml-py)" in p.stderr


def test_programs_follow_the_workload_specs():
    m = _module()
    for name, prog in m.PROGRAMS.items():
        spec = load_workload(name).spec
        assert prog["run"] == {"smoke": spec.run.smoke, "full": spec.run.full}, name
        assert prog["primary"] == spec.primary.metric, name


def test_cv_and_run_summaries():
    m = _module()
    assert m.cv([1.0]) is None and m.cv([0.0, 0.0]) is None
    xs = [962.0, 1010.0, 850.0, 1100.0, 990.0]
    assert m.cv(xs) == pytest.approx(statistics.stdev(xs) / statistics.fmean(xs))
    runs = [{"metrics": {"steps_per_s": x}, "gpu": {"energy_j": 40.0 + i}} for i, x in enumerate(xs)]
    s = m.summarize_runs(runs)
    assert s["steps_per_s"]["median"] == 990.0 and s["steps_per_s"]["n"] == 5
    assert s["gpu.energy_j"]["median"] == 42.0 and s["gpu.energy_j"]["cv_pct"] == pytest.approx(
        100 * statistics.stdev([40, 41, 42, 43, 44]) / 42, abs=0.01)
    assert m.parse("device=cuda threads=16\nsteps_per_s=1033.5\ntext='x=1'\n") == ({"steps_per_s": 1033.5}, "cuda")


def test_the_whole_path_with_a_stand_in_nvml_and_program(tmp_path, monkeypatch, capsys):
    from tests.unit.test_gpu_telemetry import FakeNVML

    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML())
    monkeypatch.setattr(gpu, "_INIT", {"done": False, "reason": None})
    m = _module()
    wl = tmp_path / "workloads" / "pytorch"
    wl.mkdir(parents=True)
    (wl / "train.py").write_text("import sys\nprint('device=cuda threads=1')\nprint(f'steps_per_s={1000 + int(sys.argv[1])}')\n")
    monkeypatch.setattr(m, "REPO", tmp_path)
    monkeypatch.setattr(m, "gpu_path_reason", lambda name: None if name == "pytorch" else "not installed here")
    monkeypatch.setattr(m.time, "sleep", lambda s: None)  # the idle sampling
    out = tmp_path / "report.md"
    assert m.main(["--runs", "3", "--sizes", "smoke", "--workloads", "pytorch,vllm", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| pytorch | smoke | cuda | steps_per_s | 1150 | 0.0 | 2 |" in text  # 3 runs, the warm-up dropped
    assert "| pytorch | smoke | cuda | gpu.energy_j |" in text and "gpu.util_mean_pct" in text
    assert "| vllm | - | - | skipped: not installed here |" in text
    assert f"report written to {out}" in capsys.readouterr().out


STUB_TORCH = '''
import os
__version__ = "stub"
class _T:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return _T()
    def __getattr__(self, n): return _T()
    def __getitem__(self, k): return _T()
    def __float__(self): return 0.5
class device:
    def __init__(self, t): self.type = t
class cuda:
    @staticmethod
    def is_available(): return os.environ.get("STUB_CUDA") == "1"
    @staticmethod
    def synchronize(): pass
class Generator(_T):
    def manual_seed(self, s): return self
class nn:
    Sequential = Linear = ReLU = CrossEntropyLoss = _T
class optim:
    SGD = _T
def set_num_threads(n): pass
def get_num_threads(): return 1
def manual_seed(s): pass
def randn(*a, **k): return _T()
def randint(*a, **k): return _T()
'''


@pytest.mark.parametrize("cuda,want", [("0", "steps=150 batch=64"), ("1", "steps=3000 batch=64")])
def test_train_py_takes_gpu_steps_only_on_a_gpu(tmp_path, cuda, want):
    """The pytorch smoke size is device-aware: --gpu-steps replaces STEPS only under CUDA
    (a stand-in torch module; the real one is not installed on these hosts)."""
    (tmp_path / "torch.py").write_text(STUB_TORCH)
    p = subprocess.run([sys.executable, str(REPO / "workloads/pytorch/train.py"), "150", "--gpu-steps", "3000"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(tmp_path), "STUB_CUDA": cuda})
    assert p.returncode == 0, p.stderr
    assert want in p.stdout and ("device=cuda" if cuda == "1" else "device=cpu") in p.stdout
