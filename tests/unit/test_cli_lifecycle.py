"""Bad input and job lifecycle at the CLI (issue 20, deliver 8), without VMs: each bad
input is one line on stderr, exit status 2, and nothing written; `jobs resume` restores
the job's VM and refuses another image; resume re-runs trials the harness itself failed;
`schedcp agents` lists every agent; a stdio MCP client that goes away before `finish`
ends the agent phase at once (agent_error) and its VM is closed."""

import json
import os
import threading
import time
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import cli
from harness.job import create_job, job_state, job_vm, run_job, trial_ids
from harness.models import JobConfig, TrialResult


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Empty SCHEDCP_HOME and jobs directory; returns both."""
    h, j = tmp_path / "home", tmp_path / "jobs"
    h.mkdir()
    monkeypatch.setenv("SCHEDCP_HOME", str(h))
    monkeypatch.setenv("SCHEDCP_JOBS", str(j))
    return h, j


def tree(*roots: Path) -> list[str]:
    return sorted(str(p) for r in roots if r.exists() for p in r.rglob("*"))


def one_line_error(capsys, rc: int, *words: str) -> str:
    out = capsys.readouterr()
    assert rc == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schedcp: error: "), out.err
    assert out.out == ""
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def fake_backend(key: str = "img-key", sha: str = "sha-1", vcpus: int = 2, memory: int = 4096):
    return SimpleNamespace(image=SimpleNamespace(key=key, lock=SimpleNamespace(
        kernel_release="7.3.4", digests={"base.qcow2": sha})), accel="tcg",
        shape=SimpleNamespace(vcpus=vcpus, memory_mib=memory))


def default_key() -> str:
    from images.recipe import load_recipe

    return load_recipe(None).key


# -- --repeat 0 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["run", "--workloads", "hackbench", "--agent", "linux-default"],
    ["try", "nonexistent.bpf.c", "--workload", "hackbench"],
    ["experiment", "rq1", "--workloads", "hackbench", "--agents", "linux-default"],
    ["mcp", "serve", "--workload", "hackbench", "--transport", "http"],
    ["workloads", "run", "hackbench"],
])
@pytest.mark.parametrize("repeat", ["0", "-2"])
def test_repeat_below_one_is_refused_before_anything_is_written(home, capsys, argv, repeat):
    rc = cli.main(argv + ["--repeat", repeat])
    one_line_error(capsys, rc, f"--repeat must be at least 1, not {repeat}")
    assert tree(*home) == []


def test_attempts_below_one_is_refused(home, capsys):
    rc = cli.main(["run", "--workloads", "hackbench", "--agent", "linux-default", "--attempts", "0"])
    one_line_error(capsys, rc, "--attempts")
    assert tree(*home) == []


def test_repeat_defaults_to_the_workload_spec_except_try():
    p = cli.build_parser()
    assert p.parse_args(["run", "--workloads", "x"]).repeat is None
    assert p.parse_args(["experiment", "rq1"]).repeat is None
    assert p.parse_args(["mcp", "serve"]).repeat is None
    assert p.parse_args(["try", "x.bpf.c"]).repeat == 5
    assert p.parse_args(["run", "--workloads", "x", "--repeat", "3"]).repeat == 3


# -- unknown job ids -----------------------------------------------------------------------------
@pytest.mark.parametrize("argv,job", [
    (["jobs", "resume", "nope"], "nope"),
    (["jobs", "stop", "nope"], "nope"),
    (["report", "nope"], "nope"),
    (["experiment", "rq1", "--from", "nope"], "nope"),
    (["mcp", "serve", "--trial", "nope", "--transport", "http"], "nope"),
    (["jobs", "resume", "../../etc"], "../../etc"),
])
def test_unknown_job_is_one_line(home, capsys, argv, job):
    rc = cli.main(argv)
    one_line_error(capsys, rc, "no job", repr(job))
    assert tree(*home) == []


# -- reused or bad --job-id ----------------------------------------------------------------------
@pytest.mark.parametrize("with_job_json", [True, False])
@pytest.mark.parametrize("argv", [
    ["run", "--workloads", "hackbench", "--agent", "linux-default"],
    ["mcp", "serve", "--workload", "hackbench", "--transport", "http"],
])
def test_reused_job_id_is_refused_and_nothing_is_written(home, capsys, argv, with_job_json):
    _, jobs = home
    (jobs / "taken").mkdir(parents=True)
    if with_job_json:
        (jobs / "taken" / "job.json").write_text("{}")
    before = tree(*home)
    rc = cli.main(argv + ["--job-id", "taken"])
    one_line_error(capsys, rc, "'taken' exists already", "schedcp jobs resume taken")
    assert tree(*home) == before
    if with_job_json:
        assert (jobs / "taken" / "job.json").read_text() == "{}"


@pytest.mark.parametrize("bad", ["a/b", "../up", ".hidden", "sp ace"])
def test_bad_job_id_is_refused(home, capsys, bad):
    rc = cli.main(["run", "--workloads", "hackbench", "--agent", "linux-default", "--job-id", bad])
    one_line_error(capsys, rc, "bad job id")
    assert tree(*home) == []


def test_generated_job_id_never_reuses_a_folder(home, monkeypatch):
    _, jobs = home
    monkeypatch.setattr("harness.job.new_job_id", lambda agent: "20990101-000000-x")
    (jobs / "20990101-000000-x").mkdir(parents=True)
    (jobs / "20990101-000000-x-2").mkdir()
    assert cli._new_job_id(None, "x") == ("20990101-000000-x-3", None)


# -- jobs resume: the job's VM and image --------------------------------------------------------
def resume_args(**kw) -> Namespace:
    return Namespace(recipe=None, vcpus=2, memory=4096, **kw)


def test_job_json_records_the_vm_and_resume_restores_it(home):
    cfg = JobConfig(job_id="j1", workloads=["hackbench"], agent="linux-default")
    d = create_job(cfg, fake_backend(key=default_key(), vcpus=3, memory=3072),
                   vm={"recipe": "trixie-7.3-scx", "vcpus": 3, "memory_mib": 3072})
    vm = job_vm(d)
    assert vm == {"recipe": "trixie-7.3-scx", "vcpus": 3, "memory_mib": 3072, "image": default_key(),
                  "image_sha256": "sha-1"}
    a = resume_args()
    assert cli._restore_vm(a, d, "j1") is None
    assert (a.recipe, a.vcpus, a.memory) == ("trixie-7.3-scx", 3, 3072)


def test_vm_defaults_from_the_backend_shape(home):
    d = create_job(JobConfig(job_id="j2", workloads=["hackbench"], agent="linux-default"),
                   fake_backend(vcpus=4, memory=8192))
    assert job_vm(d)["vcpus"] == 4 and job_vm(d)["memory_mib"] == 8192 and job_vm(d)["recipe"] is None


def test_resume_refuses_another_image_in_one_line(home, capsys):
    _, jobs = home
    cfg = JobConfig(job_id="old-image", workloads=["hackbench"], agent="linux-default")
    create_job(cfg, fake_backend(key="trixie-7.3-scx-0000000000000000"), vm={"recipe": None, "vcpus": 2,
                                                                             "memory_mib": 4096})
    before = tree(*home)
    rc = cli.main(["jobs", "resume", "old-image"])
    one_line_error(capsys, rc, "ran on image trixie-7.3-scx-0000000000000000", default_key(), "start a new job")
    assert tree(*home) == before  # no events.jsonl, no trial folder, no image built


def test_resume_refuses_an_image_rebuilt_under_the_same_key(home, monkeypatch):
    cfg = JobConfig(job_id="rebuilt", workloads=["hackbench"], agent="linux-default")
    d = create_job(cfg, fake_backend(key=default_key(), sha="sha-before"))
    rebuilt = SimpleNamespace(lock=SimpleNamespace(digests={"base.qcow2": "sha-after"}))
    monkeypatch.setattr("images.store.find_image", lambda key: rebuilt)
    why = cli._restore_vm(resume_args(), d, "rebuilt")
    assert why and "rebuilt since" in why
    same = SimpleNamespace(lock=SimpleNamespace(digests={"base.qcow2": "sha-before"}))
    monkeypatch.setattr("images.store.find_image", lambda key: same)
    assert cli._restore_vm(resume_args(), d, "rebuilt") is None


def test_resume_of_a_job_from_before_the_vm_was_recorded(home):
    _, jobs = home
    d = jobs / "legacy"
    d.mkdir(parents=True)
    cfg = JobConfig(job_id="legacy", workloads=["hackbench"], agent="linux-default")
    (d / "job.json").write_text(json.dumps({"schema_version": 1, "config": cfg.model_dump(mode="json"),
                                            "image": default_key()}))
    a = resume_args()
    a.vcpus, a.memory = 7, 7
    assert cli._restore_vm(a, d, "legacy") is None
    assert (a.recipe, a.vcpus, a.memory) == (None, 2, 4096)  # the defaults it ran with


# -- resume re-runs what the harness failed ------------------------------------------------------
def result(tid: str, wl: str, k: int, status: str, kind: str) -> str:
    return TrialResult(trial_id=tid, workload=wl, agent="linux-default", attempt=k, status=status,
                       failure_kind=kind, failure="boom" if kind != "none" else "",
                       improvement={"ratio": 1.0} if status == "done" else {}).model_dump_json()


def test_resume_reruns_harness_errors_and_unfinished_trials_only(home):
    cfg = JobConfig(job_id="rr", workloads=["hackbench"], agent="linux-default", attempts=5)
    d = create_job(cfg, fake_backend())
    tids = [t for t, _, _ in trial_ids(cfg)]
    outcome = {0: ("failed", "harness_error"), 1: ("done", "none"), 3: ("failed", "agent_error"),
               4: ("failed", "infra_error")}
    for k, (status, kind) in outcome.items():
        (d / tids[k]).mkdir()
        (d / tids[k] / "result.json").write_text(result(tids[k], "hackbench", k, status, kind))
        (d / tids[k] / "traceback.txt").write_text("old")
    (d / tids[2]).mkdir()  # interrupted: a folder without result.json
    (d / tids[2] / "trajectory.jsonl").write_text("")
    assert job_state(d, cfg) == "3/5 trials"  # a harness_error trial is not finished
    seen = {}

    def runner(d_, cfg_, todo, events, agent_kwargs):
        seen["todo"] = [t for t, _, _ in todo]
        seen["folders"] = {t: (d / t).exists() for t in tids}

    events = []
    run_job(d, cfg, None, lambda k, e: events.append((k, e)), runner=runner)
    assert seen["todo"] == [tids[0], tids[2]]
    assert seen["folders"] == {tids[0]: False, tids[1]: True, tids[2]: False, tids[3]: True, tids[4]: True}
    assert (d / tids[3] / "traceback.txt").read_text() == "old"
    rerun = [e for k, e in events if k == "trial_rerun"]
    assert [e["trial"] for e in rerun] == [tids[0]] and "harness_error" in rerun[0]["reason"]


# -- schedcp agents ------------------------------------------------------------------------------
def test_agents_lists_every_agent_on_one_line_each(capsys):
    from harness.agents import REGISTRY
    from harness.agents.cli_agent import load_specs

    assert cli.main(["agents"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = list(REGISTRY) + [f"cli:{n}" for n in load_specs()]
    assert [ln.split()[0] for ln in lines] == names
    for ln in lines:
        assert len(ln.split(None, 1)) == 2 and len(ln.split(None, 1)[1]) > 10, ln


# -- schedcp try prints the verdict lines of harness.try_sched.format_result ---------------------
def test_try_prints_format_result(tmp_path, monkeypatch, capsys):
    import harness.try_sched as ts

    src = tmp_path / "s.bpf.c"
    src.write_text("x")
    out = {"outcome": "ok", "verdict": {}, "improvement": {"ratio": 1.2}, "primary_metric": "m", "direction": "lower"}
    monkeypatch.setattr(ts, "try_scheduler", lambda *a, **k: out)
    monkeypatch.setattr(ts, "format_result", lambda o: ["LINE-1", f"LINE-2 {o['improvement']['ratio']}"],
                        raising=False)
    monkeypatch.setattr(cli, "_backend", lambda a: None)
    assert cli.main(["try", str(src), "--workload", "hackbench"]) == 0
    text = capsys.readouterr().out
    assert "LINE-1\nLINE-2 1.2\n" in text and "Mann-Whitney" not in text


# -- a stdio MCP client that goes away before finish ---------------------------------------------
class FakeSandbox:
    def __init__(self):
        self.closed_with = None

    def close(self, keep_console=None, wait=True):
        self.closed_with = ("closed", keep_console)


def external_ctx(tmp_path):
    from harness.agents.base import AgentContext, Trajectory
    from harness.limits import BudgetTracker
    from harness.models import Budget
    from harness.workload import load_workload

    return AgentContext(sandbox=FakeSandbox(), workload=load_workload("hackbench"), instruction="",
                        budget=BudgetTracker(Budget(wall_s=600)), trajectory=Trajectory(tmp_path / "t.jsonl"),
                        files_dir=tmp_path / "files", slo_hint=True, interface="mcp", trial_dir=tmp_path)


def start_external(tmp_path):
    from harness.agents.external import ExternalAgent

    cin_r, cin_w = os.pipe()  # the client's writes -> our stdin
    cout_r, cout_w = os.pipe()  # our stdout -> the client
    sess: dict = {}
    ctx = external_ctx(tmp_path)
    box: dict = {}

    def go():
        t0 = time.monotonic()
        try:
            ExternalAgent("stdio", stdio_fds=(cin_r, cout_w), stdio_session=sess).run(ctx)
            box["ok"] = True
        except Exception as e:  # noqa: BLE001
            box["error"] = e
        box["s"] = time.monotonic() - t0

    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th, ctx, sess, box, cin_w, cout_r


RPC = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def test_stdio_client_gone_before_finish_ends_the_agent_at_once(tmp_path):
    from harness.agents.external import McpClientGone

    th, ctx, sess, box, cin_w, cout_r = start_external(tmp_path)
    os.write(cin_w, "".join(json.dumps(m) + "\n" for m in RPC).encode())
    time.sleep(1.0)
    os.close(cin_w)  # the client goes away
    th.join(10)
    assert not th.is_alive(), "the agent still waits after the client went away"
    assert isinstance(box.get("error"), McpClientGone), box
    assert str(box["error"]) == "MCP client disconnected before finish"
    assert box["s"] < 5
    assert ctx.sandbox.closed_with == ("closed", tmp_path / "console.log")  # its VM destroyed at once
    assert sess["gone"].is_set()
    os.close(cout_r)


def test_sigterm_before_finish_ends_the_agent_too(tmp_path):
    from harness.agents.external import McpClientGone

    th, ctx, sess, box, cin_w, cout_r = start_external(tmp_path)
    time.sleep(0.5)
    sess.setdefault("gone_reason", "MCP client went away before finish (SIGTERM)")
    sess["gone"].set()  # what `schedcp mcp serve`'s signal handler does
    th.join(10)
    assert isinstance(box.get("error"), McpClientGone) and "SIGTERM" in str(box["error"])
    assert ctx.sandbox.closed_with is not None
    os.close(cin_w)
    os.close(cout_r)


def test_stdio_client_that_finished_then_left_is_not_an_error(tmp_path):
    th, ctx, sess, box, cin_w, cout_r = start_external(tmp_path)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "finish", "arguments": {}}}
    os.write(cin_w, "".join(json.dumps(m) + "\n" for m in RPC + [call]).encode())
    th.join(20)
    assert box.get("ok") is True, box  # finish ended the agent phase; the client still waits for the result
    os.close(cin_w)  # then leaves
    sess["hold"].set()
    time.sleep(0.5)
    assert ctx.sandbox.closed_with is None
    os.close(cout_r)


def test_the_experiment_grid_gives_cmd_run_every_option_of_schedcp_run(monkeypatch):
    """`schedcp experiment` calls cmd_run with a Namespace of its own: it must carry every
    option that `schedcp run` has (a new run option once crashed every grid run)."""
    seen = []
    monkeypatch.setattr(cli, "cmd_run", lambda ns: seen.append(ns) or 0)
    a = cli.build_parser().parse_args(["experiment", "rq1", "--workloads", "hackbench", "--agents", "scx-search"])
    assert cli._run_experiment_grid(a) is not None and len(seen) == 1
    run_opts = set(vars(cli.build_parser().parse_args(["run", "--workloads", "hackbench"])))
    assert run_opts - set(vars(seen[0])) <= {"fn", "group", "ray"}, run_opts - set(vars(seen[0]))
