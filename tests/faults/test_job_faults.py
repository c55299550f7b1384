"""Faults at the level of trials and jobs: a crash in one trial, a broken model API, two
jobs at once. The job goes on, each trial ends with the right failure kind, and nothing
already recorded is lost."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest

from harness.job import create_job, job_results, run_job
from harness.models import Budget, JobConfig, TrialConfig
from harness.trial import run_trial
from sandbox.libvirt.backend import PREFIX, run_root
from tests.fake_anthropic import tool_use
from tests.faults.tally import Guard

REPO = Path(__file__).resolve().parents[2]


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:  # another sandbox's folder, removed as we looked
        return ""


def test_guest_panic_in_one_trial_the_job_goes_on(backend, api, tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    _, key = api([
        tool_use(("bash", {"command": "echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger; sleep 30",
                           "timeout": 60})),
        tool_use(("finish", {})),
        tool_use(("finish", {})),
    ])
    cfg = JobConfig(job_id="panic-job", workloads=["sqlite"], agent="claude", attempts=3, repeat=1,
                    budget=Budget(steps=4, wall_s=600))
    d = create_job(cfg, backend)
    guard = Guard()
    seen = []

    def display(kind, data):  # snapshot each result as soon as it is recorded
        if kind == "trial_end":
            seen.append(data["trial"])
            guard.record(d / data["trial"] / "result.json")

    run_job(d, cfg, backend, display, agent_kwargs={"backoff_s": 0.1})
    res = {r.attempt: r for r in job_results(d)}
    assert res[0].failure_kind == "sandbox_crash" and "panicked" in res[0].failure
    assert res[1].status == "done" and res[2].status == "done"  # the job went on
    assert seen == [f"sqlite__claude__a{k}" for k in range(3)]
    assert guard.lost() == 0
    assert "Kernel panic" in (d / "sqlite__claude__a0" / "console.log").read_text(errors="replace")
    # the API key is in no file the job wrote
    for p in d.rglob("*"):
        if p.is_file():
            assert key not in p.read_text(errors="replace"), p


@pytest.mark.parametrize("fault", ["garbage-json", "timeout"])
def test_model_api_garbage_or_timeout_is_infra_error(backend, api, tmp_path, fault):
    item = b'{"id": "msg_1", "type": "mess' if fault == "garbage-json" else ("sleep", 3)
    srv, _ = api([item] * 3)
    cfg = TrialConfig(trial_id="t-api", workload="sqlite", agent="claude", repeat=1)
    res = run_trial(cfg, tmp_path / "t", backend, agent_kwargs={"max_retries": 2, "backoff_s": 0.05, "timeout_s": 1.0})
    assert res.failure_kind == "infra_error" and "after 3 attempts" in res.failure, res.failure
    ev = [json.loads(x) for x in (tmp_path / "t" / "trajectory.jsonl").read_text().splitlines()]
    errs = [e["error"] for e in ev if e["type"] == "api_error"]
    assert errs == (["JSONDecodeError"] * 3 if fault == "garbage-json" else ["APITimeoutError"] * 3)
    assert res.status == "failed" and (tmp_path / "t" / "result.json").is_file()


def test_two_jobs_at_once_do_not_clash(backend, tmp_path):
    env = dict(os.environ, SCHEDCP_JOBS=str(tmp_path / "jobs"), PYTHONPATH=str(REPO))
    env.pop("ANTHROPIC_API_KEY", None)
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--workloads", "sqlite", "--agent",
                               "linux-default", "--repeat", "1", "--job-id", f"twin-{i}", "--display", "jsonl"],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    names: set[str] = set()
    conn = libvirt.open("qemu:///system")
    try:
        while any(p.poll() is None for p in procs):
            for dom in conn.listAllDomains():
                try:
                    if dom.name().startswith(PREFIX) and "sqlite__linux-default__a0" in dom.XMLDesc(0):
                        names.add(dom.name())
                except libvirt.libvirtError:
                    pass  # destroyed between the listing and the look
            time.sleep(0.5)
    finally:
        conn.close()
    outs = [p.stdout.read() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    for i in range(2):
        (r,) = job_results(tmp_path / "jobs" / f"twin-{i}")
        assert r.status == "done", r.failure
    assert len(names) >= 2  # two jobs ran side by side under distinct names (a trial's VMs share its slot's name)
    time.sleep(3)
    conn = libvirt.open("qemu:///system")
    try:
        left = [d.name() for d in conn.listAllDomains() if d.name() in names]
    finally:
        conn.close()
    assert left == []
    assert not [p for p in run_root().glob("*") if p.name in names]


def test_leftovers_of_a_killed_run_are_cleaned_at_next_start(backend, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "harness.cli", "sandbox", "exec", "--", "sleep 300"], env=env,
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    conn = libvirt.open("qemu:///system")
    try:
        deadline = time.monotonic() + 300
        mine: list[str] = []
        before = {d.name() for d in conn.listAllDomains()}
        while not mine:
            assert time.monotonic() < deadline and p.poll() is None
            mine = [n for n in (d.name() for d in conn.listAllDomains())
                    if n.startswith(PREFIX) and n not in before and 'job="exec"' in _read(run_root() / n / "domain.xml")]
            time.sleep(0.5)
        time.sleep(3)
        os.killpg(p.pid, 9)
        p.wait()
        assert mine[0] in {d.name() for d in conn.listAllDomains()}  # left behind by the kill
        r = subprocess.run([sys.executable, "-m", "harness.cli", "sandbox", "cleanup"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert mine[0] not in {d.name() for d in conn.listAllDomains()}
        assert not (run_root() / mine[0]).exists()
    finally:
        conn.close()
