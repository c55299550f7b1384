"""Energy as a budget (`--max-energy-j`): RAPL read with wrap-around, enforced by the budget
tracker like the other budgets, each figure named with its source in `usage`, and refused
in one line at job start where no energy source exists (nothing written)."""

from pathlib import Path

import pytest

from harness import cli, energy
from harness.limits import BudgetTracker, LimitExceeded
from harness.models import Budget, JobConfig
from tests.unit.test_cli_lifecycle import home, tree  # noqa: F401  (fixture)


def powercap(root: Path, *packages: tuple[int, int]) -> Path:
    """A fake /sys/class/powercap: package zones (energy_uj, max_energy_range_uj) and a subzone."""
    for i, (uj, rng) in enumerate(packages):
        z = root / f"intel-rapl:{i}"
        z.mkdir(parents=True, exist_ok=True)
        (z / "energy_uj").write_text(f"{uj}\n")
        (z / "max_energy_range_uj").write_text(f"{rng}\n")
        sub = root / f"intel-rapl:{i}:0"  # a subzone (core): not added again
        sub.mkdir(exist_ok=True)
        (sub / "energy_uj").write_text("5\n")
    return root


def set_uj(root: Path, i: int, uj: int) -> None:
    (root / f"intel-rapl:{i}" / "energy_uj").write_text(f"{uj}\n")


def test_rapl_sums_packages_and_survives_a_wrap(tmp_path):
    root = powercap(tmp_path / "pc", (1_000_000, 10_000_000), (500_000, 10_000_000))
    r = energy.Rapl(root)
    assert r.reason is None and [z.name for z in r.zones] == ["intel-rapl:0", "intel-rapl:1"]
    assert r.read() == 0.0
    set_uj(root, 0, 3_000_000)  # +2 J
    set_uj(root, 1, 1_500_000)  # +1 J
    assert r.read() == pytest.approx(3.0)
    set_uj(root, 0, 500_000)  # wrapped: 10 J range - 3 J + 0.5 J = +7.5 J
    assert r.read() == pytest.approx(10.5)


def test_no_rapl_is_a_reason_not_a_zero(tmp_path):
    r = energy.Rapl(tmp_path / "none")
    assert r.reason and "RAPL not available" in r.reason
    assert isinstance(energy.rapl_reader(tmp_path / "none"), str)


class Counter:
    def __init__(self, v: float = 0.0):
        self.v = v

    def __call__(self) -> float:
        return self.v


def test_the_tracker_enforces_the_energy_budget_and_names_each_source():
    cpu, gpu = Counter(100.0), Counter(2000.0)
    t = BudgetTracker(Budget(energy_j=50.0), energy=energy.EnergyMeter(cpu, gpu))
    t.start()
    cpu.v, gpu.v = 120.0, 2010.0  # 30 J so far
    t.check()
    u = t.usage
    assert (u.energy_j, u.energy_source, u.gpu_energy_j, u.gpu_energy_source) == (
        20.0, "rapl_package", 10.0, "nvml_total_energy_counter")
    assert u.energy_note == u.gpu_energy_note == ""
    gpu.v = 2030.0  # 50 J: the budget is spent
    with pytest.raises(LimitExceeded) as e:
        t.check()
    assert (e.value.kind, e.value.value, e.value.limit) == ("energy_j", 50.0, 50.0)


def test_cpu_only_energy_counts_and_the_gpu_gets_a_note():
    cpu = Counter(0.0)
    t = BudgetTracker(Budget(energy_j=10.0), energy=energy.EnergyMeter(cpu, "no GPU passed through"))
    t.start()
    cpu.v = 11.0
    with pytest.raises(LimitExceeded, match="energy_j budget exceeded: 11 > 10"):
        t.check()
    assert t.usage.gpu_energy_j is None and t.usage.gpu_energy_note == "no GPU passed through"


def test_without_an_energy_budget_the_meter_is_not_read_until_the_end():
    calls = []
    t = BudgetTracker(Budget(), energy=energy.EnergyMeter(lambda: calls.append(1) or 1.0, "none"))
    t.start()
    n = len(calls)
    t.check()
    assert len(calls) == n  # the agent loop's checks do not read it
    assert t.read_energy() == 0.0 and t.usage.energy_j == 0.0


def test_a_meter_with_no_source_reads_none_with_notes():
    m = energy.EnergyMeter("RAPL not available", "no GPU")
    m.start()
    assert m.read() == {"cpu": None, "gpu": None} and m.total(m.read()) is None
    assert m.sources == {} and m.notes == {"cpu": "RAPL not available", "gpu": "no GPU"}


def test_budget_round_trips_and_defaults_to_none():
    assert Budget().energy_j is None
    cfg = JobConfig(job_id="j", workloads=["hackbench"], agent="linux-default", budget=Budget(energy_j=5e4))
    assert JobConfig.model_validate_json(cfg.model_dump_json()).budget.energy_j == 5e4


# -- at the CLI ------------------------------------------------------------------------------
def test_no_energy_source_refuses_the_budget_in_one_line_before_anything_is_written(home, capsys, monkeypatch,
                                                                                     tmp_path):
    monkeypatch.setattr(energy, "POWERCAP", tmp_path / "no-powercap")
    monkeypatch.setattr(cli, "_backend", lambda a: pytest.fail("nothing may start"))
    rc = cli.main(["run", "--workloads", "hackbench", "--agent", "linux-default", "--max-energy-j", "5000"])
    out = capsys.readouterr()
    assert rc == 2 and out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schedcp: error: --max-energy-j cannot be enforced here: RAPL")
    assert "no GPU passed through" in lines[0]
    assert tree(*home) == []


def test_a_non_positive_energy_budget_is_refused(home, capsys, monkeypatch):
    rc = cli.main(["run", "--workloads", "hackbench", "--agent", "linux-default", "--max-energy-j", "0"])
    assert rc == 2 and "--max-energy-j must be positive" in capsys.readouterr().err
    assert tree(*home) == []


def test_with_rapl_the_budget_reaches_the_job_config(home, monkeypatch, tmp_path):
    monkeypatch.setattr(energy, "POWERCAP", powercap(tmp_path / "pc", (1, 10)))
    seen = {}

    def stop(d, cfg, be, display, **kw):
        seen["budget"] = cfg.budget
        return 0

    monkeypatch.setattr(cli, "_backend", lambda a: None)
    monkeypatch.setattr(cli, "_default_parallel", lambda a: 1)
    monkeypatch.setattr(cli, "_vm_record", lambda a: {"recipe": "r", "vcpus": 2, "memory_mib": 4096})
    monkeypatch.setattr("harness.job.create_job", lambda cfg, be, vm=None: tmp_path / "job")
    monkeypatch.setattr(cli, "_run_and_report", stop)
    assert cli.main(["run", "--workloads", "hackbench", "--agent", "linux-default", "--max-energy-j", "5000"]) == 0
    assert seen["budget"].energy_j == 5000.0


def test_a_passed_through_gpu_is_not_yet_an_energy_source(tmp_path):
    why = energy.budget_refusal(gpus=1, root=tmp_path)  # no powercap tree under tmp_path: no RAPL
    assert why and "NVML energy inside a guest is not available yet" in why
