"""harness/distributed.py without VMs: resources per workload, trial folders as bytes,
the first result wins, CLI errors, and the driver loop on a real local Ray (a stand-in
trial task that writes a trial folder instead of booting VMs)."""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness import distributed as dist
from harness.job import create_job, read_events, request_stop, run_job
from harness.models import JobConfig, TrialConfig, TrialResult
from harness.workload import load_workload

REPO = Path(__file__).resolve().parents[2]


def test_resources_ask_for_a_vm_slot_and_a_gpu_slot_only_for_gpu_workloads():
    spec = load_workload("hackbench").spec
    assert dist.trial_resources(spec) == {"vm_slots": 1.0}
    for need, slots in ((True, 1.0), ("required", 1.0), ("optional", None), ("none", None), (False, None)):
        gpu = spec.model_copy(update={"requirements": spec.requirements.model_copy(update={"gpu": need})})
        assert dist.trial_resources(gpu) == {"vm_slots": 1.0, **({"gpu_slots": slots} if slots else {})}, need


def _trial_folder(root: Path, tid: str, marker: str = "x") -> Path:
    t = root / tid
    (t / "files" / "root").mkdir(parents=True)
    (t / "result.json").write_text(TrialResult(trial_id=tid, workload="hackbench", agent="replay").model_dump_json())
    (t / "trajectory.jsonl").write_text(json.dumps({"type": "phase", "marker": marker}) + "\n")
    (t / "console.log").write_text("console\n")
    (t / "files" / "root" / "notes.txt").write_text("notes\n")
    (t / "files" / "root" / "notes.txt").chmod(0o600)
    return t


def _listing(t: Path) -> dict:
    return {str(p.relative_to(t)): (p.read_bytes(), p.stat().st_mode & 0o777) for p in sorted(t.rglob("*"))
            if p.is_file()}


def test_trial_folder_round_trip_and_the_first_result_wins(tmp_path):
    src = _trial_folder(tmp_path / "worker", "t1")
    job = tmp_path / "job"
    job.mkdir()
    assert dist.unpack_trial(dist.pack_dir(src), job, "t1") is True
    assert _listing(job / "t1") == _listing(src)
    # a second result for the same trial (a retry that also finished) changes nothing
    other = _trial_folder(tmp_path / "worker2", "t1", marker="second")
    before = _listing(job / "t1")
    assert dist.unpack_trial(dist.pack_dir(other), job, "t1") is False
    assert _listing(job / "t1") == before
    assert sorted(p.name for p in job.iterdir()) == ["t1"]  # no temporary folder left


def test_unpack_replaces_an_interrupted_folder_and_refuses_an_incomplete_one(tmp_path):
    job = tmp_path / "job"
    (job / "t1").mkdir(parents=True)
    (job / "t1" / "trajectory.jsonl").write_text("half\n")  # interrupted, no result.json
    src = _trial_folder(tmp_path / "w", "t1")
    assert dist.unpack_trial(dist.pack_dir(src), job, "t1") and _listing(job / "t1") == _listing(src)
    (src / "result.json").unlink()
    with pytest.raises(dist.DistributedError, match="no result.json"):
        dist.unpack_trial(dist.pack_dir(src), job, "t2")
    assert not (job / "t2").exists() and sorted(p.name for p in job.iterdir()) == ["t1"]


def test_unpack_refuses_names_outside_the_trial_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"pwned"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    job = tmp_path / "a" / "job"
    job.mkdir(parents=True)
    with pytest.raises(tarfile.TarError):
        dist.unpack_trial(buf.getvalue(), job, "t1")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "a" / "escaped.txt").exists()
    assert list(job.iterdir()) == []


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("args, msg", [
    (["run", "--workloads", "hackbench", "--agent", "linux-default", "--ray", "127.0.0.1:1"],
     "cannot reach the Ray head at 127.0.0.1:1"),
    (["run", "--workloads", "hackbench", "--agent", "linux-default", "--ray", "somewhere"],
     "give HOST:PORT of the Ray head"),
    (["worker", "start", "--address", "127.0.0.1:1", "--vm-slots", "0"], "--vm-slots must be at least 1"),
    (["worker", "start", "--address", "127.0.0.1:1", "--vm-slots", "1"], "cannot reach the Ray head"),
])
def test_cli_errors_are_one_line(args, msg, tmp_path):
    r = _cli(*args, env=dict(os.environ, SCHEDCP_JOBS=str(tmp_path / "jobs")))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert msg in r.stderr and r.stderr.startswith("schedcp: error: ")
    assert not (tmp_path / "jobs").exists()  # no job folder for a job that cannot start


def test_ray_is_imported_only_by_the_ray_code_paths():
    code = ("import sys, harness.cli, harness.job, harness.distributed; "
            "harness.cli.build_parser().parse_args(['run', '--workloads', 'x', '--ray', 'h:1']); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_worker_start_requires_an_address():
    r = _cli("worker", "start")
    assert r.returncode == 2 and "--address" in r.stderr


def test_without_ray_installed_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(dist.DistributedError, match=r"Ray is not installed: pip install -e '\.\[ray\]'"):
        dist.require_ray()


def test_missing_image_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_HOME", str(tmp_path))
    with pytest.raises(dist.DistributedError, match=r"is not built on this host: run `schedcp image build"):
        dist.check_image(None)


def test_token_auth_is_turned_on_only_where_a_token_is(tmp_path, monkeypatch):
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.setenv(k, "")  # so that monkeypatch restores what was there, whatever the test sets
        monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dist.use_token_if_present() is False and "RAY_AUTH_MODE" not in os.environ
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("t" * 32)
    assert dist.use_token_if_present() is True and os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit choice is kept
    assert dist.use_token_if_present() is False and os.environ["RAY_AUTH_MODE"] == "disabled"


def test_ray_start_command_advertises_slots_and_no_cpus():
    cmd = dist.ray_start_command("10.0.0.1:6379", 4, 1, node_ip="10.0.0.7", block=True)
    assert cmd[1:4] == ["start", "--address", "10.0.0.1:6379"]
    assert cmd[cmd.index("--num-cpus") + 1] == "0"
    assert json.loads(cmd[cmd.index("--resources") + 1]) == {"vm_slots": 4, "gpu_slots": 1}
    assert "--block" in cmd and cmd[cmd.index("--node-ip-address") + 1] == "10.0.0.7"
    assert json.loads(dist.ray_start_command("h:1", 2)[dist.ray_start_command("h:1", 2).index("--resources") + 1]) \
        == {"vm_slots": 2}


# -- the driver loop on a real local Ray ---------------------------------------------------
def fake_trial_task(tc_json, setup, agent_kwargs, replay, events):
    """Stands in for run_trial_task: the first attempt of trial a0 loses its process
    (as when its host dies); trial a2 fails with an error of its own (not retried)."""
    import os
    import socket
    import tempfile

    import ray

    tc = TrialConfig.model_validate_json(tc_json)
    attempt = ray.get(events.start.remote(tc.trial_id))
    ray.get(events.put.remote("trial_start", {"trial": tc.trial_id, "host": socket.gethostname(),
                                              "attempt": attempt}))
    if tc.trial_id.endswith("a0") and attempt == 1:
        os._exit(1)
    if tc.trial_id.endswith("a2"):
        raise RuntimeError("image trixie-x is not built on this host")
    events.put.remote("phase", {"trial": tc.trial_id, "phase": "agent"})
    with tempfile.TemporaryDirectory() as t:
        f = Path(t) / tc.trial_id
        f.mkdir()
        (f / "config.json").write_text(tc_json)
        note = replay if isinstance(replay, str) else ""  # what a test wants to see on the driver's side
        (f / "result.json").write_text(TrialResult(trial_id=tc.trial_id, workload=tc.workload, agent=tc.agent,
                                                   attempt=attempt, failure=note).model_dump_json())
        return dist.pack_dir(f)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    ray = pytest.importorskip("ray")
    import tempfile

    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # AF_UNIX paths must stay short
    # a local ray.init() would turn on token auth and write ~/.ray/auth_token (tests/vm/test_ray.py uses a token)
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE",)}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=0, resources={"vm_slots": 2}, include_dashboard=False, object_store_memory=80_000_000,
             _temp_dir=tmp, logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray
    ray.shutdown()
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    subprocess.run(["rm", "-rf", tmp])


def test_driver_retries_a_lost_trial_once_and_records_each_trial_once(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    cfg = JobConfig(job_id="rayjob", workloads=["hackbench"], agent="linux-default", attempts=3, parallel=2, repeat=1)
    runner = dist.RayRunner("auto", task=fake_trial_task)
    facts = type("F", (), {"image": type("I", (), {"key": "img", "lock": type("L", (), {"kernel_release": "k"})}),
                           "accel": "tcg"})
    d = create_job(cfg, facts)
    shown = []
    run_job(d, cfg, None, lambda k, e: shown.append((k, e)), runner=runner)
    ev, _ = read_events(d)
    starts = [(e["trial"], e["attempt"]) for e in ev if e["event"] == "trial_start"]
    assert sorted(starts) == [("hackbench__linux-default__a0", 1), ("hackbench__linux-default__a0", 2),
                              ("hackbench__linux-default__a1", 1), ("hackbench__linux-default__a2", 1)]
    ends = [e["trial"] for e in ev if e["event"] == "trial_end"]
    assert sorted(ends) == ["hackbench__linux-default__a0", "hackbench__linux-default__a1"]  # once each
    errors = [e for e in ev if e["event"] == "trial_error"]
    assert [e["trial"] for e in errors] == ["hackbench__linux-default__a2"]
    assert "image trixie-x is not built on this host" in errors[0]["error"]
    a0 = TrialResult.model_validate_json((d / "hackbench__linux-default__a0" / "result.json").read_text())
    assert a0.attempt == 2  # the retry's result
    assert not (d / "hackbench__linux-default__a2").exists()  # left for `schedcp jobs resume`
    assert [e["state"] for e in ev if e["event"] == "job_end"] == ["2/3 trials"]
    assert [k for k, _ in shown] == [e["event"] for e in ev]  # the display saw what events.jsonl has
    assert sorted(p.name for p in d.iterdir()) == ["events.jsonl", "hackbench__linux-default__a0",
                                                   "hackbench__linux-default__a1", "job.json"]


def test_driver_ships_the_replay_recording_and_honours_stop(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("SCHEDCP_JOBS", str(tmp_path / "jobs"))
    rec = tmp_path / "rec" / "trajectory.jsonl"
    (rec.parent / "files" / "root").mkdir(parents=True)
    rec.write_text('{"type": "command", "cmd": "true"}\n')
    (rec.parent / "files" / "root" / "n.txt").write_text("n")

    def task(tc_json, setup, agent_kwargs, replay, events):
        names = sorted(m.name for m in tarfile.open(fileobj=io.BytesIO(replay), mode="r:gz").getmembers())
        return fake_trial_task(tc_json, setup, agent_kwargs, json.dumps(names), events)

    cfg = JobConfig(job_id="stopjob", workloads=["hackbench"], agent="replay", attempts=3, parallel=1, repeat=1)
    facts = type("F", (), {"image": type("I", (), {"key": "img", "lock": type("L", (), {"kernel_release": "k"})}),
                           "accel": "tcg"})
    d = create_job(cfg, facts)

    def display(kind, data):
        if kind == "trial_end":
            request_stop(d)  # after the first trial (a0 twice, as its first attempt is lost)

    run_job(d, cfg, None, display, agent_kwargs={"trajectory": str(rec)},
            runner=dist.RayRunner("auto", task=task))
    ev, _ = read_events(d)
    assert [e["trial"] for e in ev if e["event"] == "trial_end"] == ["hackbench__replay__a0"]
    skips = [(e["trial"], e["reason"]) for e in ev if e["event"] == "trial_skip"]
    assert skips == [("hackbench__replay__a1", "job stop requested"), ("hackbench__replay__a2", "job stop requested")]
    assert ev[-1]["event"] == "job_end" and ev[-1]["state"] == "stopped, 1/3 trials"
    a0 = TrialResult.model_validate_json((d / "hackbench__replay__a0" / "result.json").read_text())
    assert json.loads(a0.failure) == ["files/root/n.txt", "trajectory.jsonl"]
