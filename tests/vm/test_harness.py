"""Trials and jobs end to end: real VMs, real agents; the Claude agent talks to a local
server that speaks the Messages API (the real anthropic SDK, pointed at it by base_url)."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.models import Budget, TrialConfig
from harness.stats import paired_compare
from harness.trial import run_trial
from tests.fake_anthropic import FakeAnthropic, tool_use
from tests.faults.tally import Guard

REPO = Path(__file__).resolve().parents[2]


def events(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture
def api(monkeypatch):
    servers = []

    def start(script):
        s = FakeAnthropic(script)
        servers.append(s)
        key = "sk-ant-test-" + secrets.token_hex(12)
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", s.url)
        return s, key

    yield start
    for s in servers:
        s.close()


def valid_atif(trial_dir: Path) -> dict:
    """The trial's trajectory.atif.json (written by ``atif=True``), checked by Harbor's own
    validator and models (a test-only install: make test-tools)."""
    from harbor.models.trajectories import Trajectory as HarborTrajectory
    from harbor.utils.trajectory_validator import TrajectoryValidator

    path = trial_dir / "trajectory.atif.json"
    v = TrajectoryValidator()
    assert v.validate(path), v.get_errors()
    data = json.loads(path.read_text())
    HarborTrajectory.model_validate(data)
    return data


def atif_calls(data: dict) -> list[str]:
    return [c["function_name"] for st in data["steps"] for c in st.get("tool_calls", [])]


def test_claude_trial_with_scripted_model(backend, api, tmp_path):
    script = [
        529,  # overloaded once: retried with backoff
        tool_use(("bash", {"command": "tr '\\0' '\\n' < /proc/1/environ; cat /proc/[0-9]*/environ 2>/dev/null "
                                      "| tr '\\0' '\\n' | grep -c ANTHROPIC || true"})),
        tool_use(("bash", {"command": "sysctl -w kernel.sched_autogroup_enabled=0"}),
                 ("bash", {"command": "setsid -f /opt/schedcp/scx/bin/scx_simple >/var/log/scx.log 2>&1; "
                                      "for i in $(seq 50); do grep -q enabled /sys/kernel/sched_ext/state && break; "
                                      "sleep 0.1; done; cat /sys/kernel/sched_ext/root/ops"})),
        tool_use(("write_file", {"path": "/root/notes.txt", "content": "tried scx_simple\n"})),
        tool_use(("run_workload", {})),
        tool_use(("finish", {"summary": "scx_simple + no autogroup"})),
    ]
    srv, key = api(script)
    cfg = TrialConfig(trial_id="hackbench__claude__a0", workload="hackbench", agent="claude",
                      model="claude-sonnet-4-6", repeat=2, budget=Budget(steps=10, wall_s=600), atif=True)
    tdir = tmp_path / cfg.trial_id
    res = run_trial(cfg, tdir, backend, agent_kwargs={"backoff_s": 0.1})
    assert res.status == "done" and res.failure_kind == "none", res.failure
    # the ATIF export of this real trial (issue 19): Harbor's validator accepts it, with
    # every tool call, each LLM step's tokens and the measured outcome
    atif = valid_atif(tdir)
    assert atif_calls(atif) == ["bash", "bash", "bash", "write_file", "run_workload", "finish"]
    assert atif["final_metrics"]["total_prompt_tokens"] == 5 * 1200
    assert atif["extra"]["ratio"] == pytest.approx(res.improvement["ratio"])
    assert res.tuned_config["sched_ext"] == {"state": "enabled", "ops": "simple"}
    assert res.tuned_config["sysctl_changed"] == {"kernel.sched_autogroup_enabled": "0"}
    assert res.scheduler_in_place is True
    assert res.usage.steps == 5 and res.usage.input_tokens == 5 * 1200 and res.usage.output_tokens == 5 * 80
    assert res.usage.cost_usd == pytest.approx((6000 * 3 + 400 * 15) / 1e6)
    assert res.usage.guest_cpu_s and res.usage.guest_cpu_s > 0
    assert len(res.baseline_runs) == 2 and len(res.tuned_runs) == 2
    assert res.improvement["ratio"] > 0 and len(res.improvement["ci95"]) == 2
    assert set(res.phases_s) >= {"reset", "setup", "agent", "measure", "stats", "total"}
    ev = events(tdir / "trajectory.jsonl")
    kinds = [e["type"] for e in ev]
    assert kinds.count("tool_call") == 6 and kinds.count("tool_result") == 6
    assert any(e["type"] == "api_error" and e["status"] == 529 and e["retry"] for e in ev)
    assert [e["name"] for e in ev if e["type"] == "tool_call"] == ["bash", "bash", "bash", "write_file",
                                                                  "run_workload", "finish"]
    # the key reached the API server (as the SDK's header) ...
    hdrs = {k.lower(): v for k, v in srv.requests[-1]["headers"].items()}
    assert key in (hdrs.get("x-api-key"), hdrs.get("authorization", "").removeprefix("Bearer "))
    # ... but never the guest: no process there has ANTHROPIC in its environment
    first = next(e for e in ev if e["type"] == "tool_result")
    assert json.loads(first["output"])["stdout"].strip().splitlines()[-1] == "0"
    # ... nor any file of the trial (trajectory, result, console logs, files/)
    for p in tdir.rglob("*"):
        if p.is_file():
            assert key not in p.read_text(errors="replace"), p
    assert (tdir / "files/root/notes.txt").read_text() == "tried scx_simple\n"
    assert (tdir / "console.log").is_file()


@pytest.mark.fault
@pytest.mark.parametrize("status", [429, 500])
def test_unreachable_api_is_infra_error(backend, api, tmp_path, status):
    srv, _ = api([status] * 3)
    cfg = TrialConfig(trial_id="t-api-down", workload="sqlite", agent="claude", repeat=1)
    res = run_trial(cfg, tmp_path / "t", backend, agent_kwargs={"max_retries": 2, "backoff_s": 0.05})
    assert res.failure_kind == "infra_error" and "after 3 attempts" in res.failure
    assert len(srv.requests) == 3  # retried, then given up
    ev = events(tmp_path / "t" / "trajectory.jsonl")
    assert [e["status"] for e in ev if e["type"] == "api_error"] == [status] * 3
    assert (tmp_path / "t" / "result.json").is_file()


def test_scx_search_completes_a_smoke_trial(backend, tmp_path):
    cfg = TrialConfig(trial_id="sqlite__scx-search__a0", workload="sqlite", agent="scx-search", repeat=2)
    res = run_trial(cfg, tmp_path / "t", backend,
                    agent_kwargs={"schedulers": ["scx_simple"], "presets": {"latency": {"kernel.sched_autogroup_enabled": "0"}},
                                  "runs_per_candidate": 1})
    assert res.status == "done", res.failure
    assert res.usage.steps == 3  # default, scx_simple, one sysctl preset
    msgs = [e["text"] for e in events(tmp_path / "t" / "trajectory.jsonl") if e["type"] == "message"]
    assert any(m.startswith("candidate sched:scx_simple:") for m in msgs)
    assert any(m.startswith("keeping ") for m in msgs)
    assert res.improvement["ratio"] > 0


def test_linux_default_is_one_within_its_interval(backend, tmp_path):
    """The change-nothing control comes out at 1.00x. Its 95 % CI misses 1.0 in about one
    trial of 20 by construction (CI saw [0.946, 0.983] once), so a CI test asserting it
    would fail that often; the 99.9 % interval of the same paired runs misses 1.0 about
    once in 1000 when the design is right, while instance luck (the old design: 0.64x-1.15x
    with tight CIs) still fails it."""
    cfg = TrialConfig(trial_id="sqlite__linux-default__a0", workload="sqlite", agent="linux-default", repeat=6)
    res = run_trial(cfg, tmp_path / "t", backend)
    assert res.status == "done", res.failure
    measured = {(m["round"], m["role"]): m["metrics"][res.primary_metric]
                for m in res.measurements if not m["warmup"]}
    rounds = sorted({r for r, _ in measured})
    assert len(rounds) == 6
    wide = paired_compare([measured[(r, "baseline")] for r in rounds], [measured[(r, "tuned")] for r in rounds],
                          res.direction, level=0.999)
    assert wide["ratio"] == pytest.approx(res.improvement["ratio"])
    lo, hi = wide["ci95"]
    assert lo <= 1.0 <= hi, (wide, res.improvement)
    assert res.tuned_config["sysctl_changed"] == {} and res.tuned_config["sched_ext"]["state"] == "disabled"


@pytest.mark.fault
def test_job_killed_with_sigkill_resumes_without_redoing(backend, tmp_path):
    env = dict(os.environ, SCHEDCP_JOBS=str(tmp_path / "jobs"), PYTHONPATH=str(REPO))
    env.pop("ANTHROPIC_API_KEY", None)
    cmd = [sys.executable, "-m", "harness.cli", "run", "--workloads", "sqlite,hackbench", "--agent", "linux-default",
           "--repeat", "1", "--job-id", "resume-test", "--display", "jsonl"]
    p = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    job = tmp_path / "jobs" / "resume-test"
    first = job / "sqlite__linux-default__a0" / "result.json"
    second = job / "hackbench__linux-default__a0"
    deadline = time.monotonic() + 600
    while not (first.is_file() and (second / "trajectory.jsonl").is_file()):
        assert p.poll() is None, p.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(2)  # well inside the second trial
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    before = first.read_bytes()
    guard = Guard()
    guard.record(first)
    assert not (second / "result.json").exists()
    r = subprocess.run([sys.executable, "-m", "harness.cli", "jobs", "resume", "resume-test", "--display", "jsonl"],
                       env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    evs = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert {"event": "trial_skip", "trial": "sqlite__linux-default__a0", "reason": "already recorded"} in evs
    assert [e["trial"] for e in evs if e["event"] == "trial_start"] == ["hackbench__linux-default__a0"]
    assert first.read_bytes() == before and guard.lost() == 0
    results = sorted(job.glob("*/result.json"))
    assert len(results) == 2
    lst = subprocess.run([sys.executable, "-m", "harness.cli", "jobs", "list"], env=env, cwd=REPO,
                         capture_output=True, text=True)
    assert "resume-test" in lst.stdout and "complete" in lst.stdout
    rep = subprocess.run([sys.executable, "-m", "harness.cli", "report", "resume-test", "--format", "json"],
                         env=env, cwd=REPO, capture_output=True, text=True)
    data = json.loads(rep.stdout)
    assert [w["workload"] for w in data["workloads"]] == ["hackbench", "sqlite"]
    # the fresh job beside the committed reference (issue 21): its rows next to the
    # reference's control rows, warned exactly when the machine profiles differ
    from harness.job import job_manifest
    from harness.manifest import differences

    ref_dir = sorted((REPO / "results").glob("*/report.json"))[0].parent
    ref_json = json.loads((ref_dir / "report.json").read_text())
    ref_rows = {w["workload"]: w for w in ref_json["agents"]["linux-default"]["workloads"]}
    vs = subprocess.run([sys.executable, "-m", "harness.cli", "report", "resume-test", "--against", str(ref_dir),
                         "--format", "json"], env=env, cwd=REPO, capture_output=True, text=True)
    assert vs.returncode == 0, vs.stderr
    side = json.loads(vs.stdout)
    common = sorted({"hackbench", "sqlite"} & set(ref_rows))
    assert common and sorted(r["workload"] for r in side["rows"]) == common
    mine = {w["workload"]: w for w in data["workloads"]}
    for r in side["rows"]:
        assert r["reference_agent"] == "linux-default" and r["reference"] == ref_rows[r["workload"]]
        assert r["job"]["best"] == pytest.approx(mine[r["workload"]]["best"])
    fresh = job_manifest(job)
    assert fresh is not None  # a fresh job records its machine
    diff = differences(fresh, json.loads((ref_dir / "manifest.json").read_text()))
    assert bool(side["warnings"]) == bool(diff) and all(d in side["warnings"][0] for d in diff)
    md = subprocess.run([sys.executable, "-m", "harness.cli", "report", "resume-test", "--against", str(ref_dir)],
                        env=env, cwd=REPO, capture_output=True, text=True)
    assert f"Against {ref_dir}:" in md.stdout and f"| {common[0]} | linux-default |" in md.stdout
