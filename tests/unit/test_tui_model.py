"""tui.model: the TUI's logic, without a UI."""

import json
import sys

import pytest

from tui import model
from tui.model import LaunchForm

from .tui_support import JOB_ID, SAMPLE, copy_sample, job_without_events

WLS = ["hackbench", "sqlite", "gzip"]
AGENTS = ["linux-default", "scx-search", "claude"]


def _validate(form, tmp_path, help_text="  --workloads W  --agent A"):
    return model.validate(form, workloads=WLS, agents=AGENTS, jobs_root=tmp_path, help_text=help_text,
                          python="py", now="20261129-120000")


# ------------------------------------------------------------------ launcher

def test_workloads_grouped_by_category_with_slo():
    groups = dict(model.by_category(model.workload_infos()))
    assert list(groups)[:2] == ["cpu", "latency"]
    hb = next(i for i in groups["latency"] if i.name == "hackbench")
    assert hb.metric == "wall_s" and hb.slo == "<= 0.9x baseline"


def test_valid_form_becomes_the_run_command(tmp_path):
    f = LaunchForm(workloads=["hackbench", "gzip"], agent="scx-search", attempts="2", parallel="2", repeat="3",
                   max_steps="10", max_wall_s="600", max_cost="1.5", slo_hint=False)
    launch = _validate(f, tmp_path)
    assert launch.job_id == "20261129-120000-scx-search"
    assert launch.argv == ["py", "-m", "harness.cli", "run", "--workloads", "hackbench,gzip", "--agent", "scx-search",
                           "--size", "smoke", "--attempts", "2", "--parallel", "2", "--repeat", "3",
                           "--max-steps", "10", "--max-wall-s", "600", "--max-cost", "1.5", "--no-slo-hint",
                           "--display", "jsonl", "--job-id", "20261129-120000-scx-search"]


def test_command_parses_with_the_real_cli_parser(tmp_path):
    from harness.cli import build_parser

    launch = _validate(LaunchForm(workloads=["hackbench"], model="m-1", repeat="2"), tmp_path,
                       help_text=model.run_help())
    a = build_parser().parse_args(launch.argv[3:])
    assert (a.workloads, a.agent, a.repeat, a.model, a.display, a.job_id) == (
        "hackbench", "linux-default", 2, "m-1", "jsonl", launch.job_id)


def test_interface_passed_only_when_the_cli_lists_it(tmp_path):
    f = LaunchForm(workloads=["hackbench"], interface="mcp")
    assert "--interface" not in _validate(f, tmp_path).argv
    argv = _validate(f, tmp_path, help_text="  [--interface {bash,mcp}]").argv
    assert argv[argv.index("--interface") + 1] == "mcp"
    assert model.cli_supports("--interface", model.run_help()) is ("--interface" in model.run_help())


def test_every_wrong_field_is_reported(tmp_path):
    (tmp_path / "taken").mkdir()
    f = LaunchForm(workloads=[], agent="nope", attempts="0", parallel="x", repeat="", max_steps="-1",
                   max_wall_s="abc", max_cost="-2", job_id="taken", size="huge", interface="ssh")
    errs = _validate(f, tmp_path)
    assert set(errs) == {"workloads", "agent", "attempts", "parallel", "repeat", "max_steps", "max_wall_s",
                         "max_cost", "job_id", "size", "interface"}
    assert errs["parallel"] == "not a whole number: 'x'"
    assert errs["repeat"] == "required"
    assert "exists already" in errs["job_id"]
    assert _validate(LaunchForm(workloads=["nginxx"]), tmp_path) == {"workloads": "unknown workload(s): nginxx"}
    assert "job_id" in _validate(LaunchForm(workloads=["gzip"], job_id="a/b"), tmp_path)


def test_generated_job_id_does_not_collide(tmp_path):
    (tmp_path / "20261129-120000-linux-default").mkdir()
    assert _validate(LaunchForm(workloads=["gzip"]), tmp_path).job_id == "20261129-120000-linux-default-2"


# ------------------------------------------------------------------ jobs and live rows

def test_list_jobs_reads_state(tmp_path):
    root = copy_sample(tmp_path)
    (root / "not-a-job").mkdir()
    jobs = model.list_jobs(root)
    assert [j.id for j in jobs] == [JOB_ID]
    assert jobs[0].agent == "scx-search" and jobs[0].state == "complete"
    assert model.list_jobs(tmp_path / "missing") == []


def test_monitor_rows_from_recorded_job():
    m = model.JobMonitor(SAMPLE / JOB_ID)
    m.poll()
    rows = m.rows
    assert list(rows) == ["hackbench__scx-search__a0", "sqlite__scx-search__a0", "gzip__scx-search__a0"]
    hb = rows["hackbench__scx-search__a0"]
    res = json.loads((SAMPLE / JOB_ID / "hackbench__scx-search__a0" / "result.json").read_text())
    assert hb.phase == "done" and hb.ratio == res["improvement"]["ratio"] and hb.steps == res["usage"]["steps"]
    assert hb.elapsed() == pytest.approx(res["phases_s"]["total"], abs=0.01)
    assert rows["gzip__scx-search__a0"].phase == "failed"
    assert rows["gzip__scx-search__a0"].failure_kind == "infra_error"
    assert not m.running and m.end_state == "complete" and m.progress() == 1.0


def test_monitor_follows_appended_events(tmp_path):
    d = job_without_events(copy_sample(tmp_path))
    m = model.JobMonitor(d)
    m.poll()
    tid = "hackbench__scx-search__a0"
    assert m.rows[tid].phase == "queued" and m.rows[tid].progress() == 0.0

    def emit(kind, ts, **data):
        with open(d / "events.jsonl", "a") as f:
            f.write(json.dumps({"ts": ts, "event": kind, **data}) + "\n")

    emit("job_start", 100.0, trials=3, to_run=3)
    emit("trial_start", 100.0, trial=tid)
    emit("phase", 100.0, trial=tid, phase="agent")
    emit("agent", 101.0, trial=tid, text="candidate x: 1", steps=3, tokens=1200, cost_usd=0.02)
    m.poll()
    r = m.rows[tid]
    assert m.running and r.phase == "agent" and (r.steps, r.tokens, r.cost_usd) == (3, 1200, 0.02)
    assert r.elapsed(now=130.0) == 30.0
    emit("phase", 110.0, trial=tid, phase="measure")
    for i, (b, t) in enumerate([(9.0, 9.0), (4.0, 2.0), (6.0, 3.0)]):
        emit("measure", 111.0 + i, trial=tid, role="baseline", index=i, warmup=i == 0, value=b)
        emit("measure", 111.5 + i, trial=tid, role="tuned", index=i, warmup=i == 0, value=t)
    m.poll()
    assert r.baseline == [4.0, 6.0] and r.tuned == [2.0, 3.0]
    assert r.improvement() == (2.0, True)  # lower is better: median 5 / median 2.5
    assert 0.3 < r.progress() < 0.97
    emit("trial_end", 120.0, trial=tid, status="done", failure_kind="none", ratio=1.5)
    m.poll()
    r = m.rows[tid]
    assert r.phase == "done" and r.improvement() == (1.5, False) and r.elapsed() == 20.0
    emit("job_end", 121.0, state="stopped, 1/3 trials")
    m.poll()
    assert not m.running and m.end_state.startswith("stopped")


def test_monitor_shows_a_ray_retry_and_a_trial_that_could_not_run(tmp_path):
    d = job_without_events(copy_sample(tmp_path))
    m = model.JobMonitor(d)
    m.poll()
    tid, other = "hackbench__scx-search__a0", "sqlite__scx-search__a0"
    evs = [("job_start", {"trials": 3, "to_run": 3}),
           ("trial_start", {"trial": tid, "host": "w1", "node": "10.0.0.1", "attempt": 1}),
           ("phase", {"trial": tid, "phase": "agent"}),
           ("trial_retry", {"trial": tid, "attempt": 2, "host": "w2", "node": "10.0.0.2"}),
           ("trial_start", {"trial": tid, "host": "w2", "node": "10.0.0.2", "attempt": 2}),
           ("trial_start", {"trial": other, "host": "w1", "attempt": 1}),
           ("trial_error", {"trial": other, "error": "SandboxUnavailable: image x is not built"})]
    with open(d / "events.jsonl", "a") as f:
        for i, (kind, data) in enumerate(evs):
            f.write(json.dumps({"ts": 100.0 + i, "event": kind, **data}) + "\n")
    m.poll()
    r = m.rows[tid]
    assert r.phase == "reset" and r.last == "attempt 2 on w2 10.0.0.2" and r.started == 104.0
    assert m.rows[other].phase == "failed" and "not built" in m.rows[other].last


def test_monitor_waits_for_job_folder(tmp_path):
    m = model.JobMonitor(tmp_path / "later")
    assert m.poll() == [] and m.rows == {}


def test_live_state_running_and_stopping(tmp_path):
    d = job_without_events(copy_sample(tmp_path))
    info = model.load_job_dir(d)
    (d / "events.jsonl").write_text('{"event": "job_start"}\n')
    assert model.live_state(d, info.config) == "running, 0/3 trials"
    (d / "STOP").write_text("x")
    assert model.live_state(d, info.config) == "stopping, 0/3 trials"


def test_cells_and_formats():
    r = model.TrialRow("t", "hackbench", 0, phase="measure", measured=6, total_runs=12, steps=4, tokens=12345,
                       cost_usd=0.1234, baseline=[2.0], tuned=[1.0])
    cells = model.row_cells(r)
    assert cells[1] == "measure" and cells[5] == "12.3k" and cells[6] == "0.123" and cells[7] == "~2.00x"
    assert model.bar(0.5, 10) == "█████░░░░░"
    assert model.fmt_s(130) == "2:10" and model.fmt_s(None) == "-"


# ------------------------------------------------------------------ tails and trajectories

def test_tail_jsonl_incremental(tmp_path):
    p = tmp_path / "trajectory.jsonl"
    p.write_text('{"t": 1, "type": "phase", "phase": "agent"}\n{"t": 2, "ty')
    recs, off = model.tail_jsonl(p)
    assert len(recs) == 1
    with open(p, "a") as f:
        f.write('pe": "command", "cmd": "ls", "returncode": 0, "stdout": "a\\n", "duration_s": 0.1}\n')
    recs, off = model.tail_jsonl(p, off)
    assert [r["type"] for r in recs] == ["command"] and off == p.stat().st_size


def test_rewritten_file_is_noticed(tmp_path):
    p = tmp_path / "trajectory.jsonl"
    p.write_text('{"t": 1, "type": "phase", "phase": "agent"}\n' * 3)
    _, off = model.tail_jsonl(p)
    assert not model.rewritten(p, off)
    p.write_text('{"t": 0, "type": "phase", "phase": "reset"}\n')
    assert model.rewritten(p, off) and not model.rewritten(tmp_path / "gone", off)


def test_tail_text(tmp_path):
    p = tmp_path / "console.log"
    p.write_text("".join(f"line {i}\r\n" for i in range(500)))
    assert model.tail_text(p, 3) == "line 497\nline 498\nline 499"
    assert model.tail_text(tmp_path / "nope") == ""


def test_steps_of_recorded_trajectory_and_search():
    recs, _ = model.tail_jsonl(SAMPLE / JOB_ID / "hackbench__scx-search__a0" / "trajectory.jsonl")
    steps = model.to_steps(recs)
    assert len(steps) == len(recs)
    cmds = model.search_steps(steps, "kind:command")
    assert cmds and all(s.title.startswith("$ ") for s in cmds)
    auto = model.search_steps(steps, "sched_autogroup_enabled kind:command")
    assert auto and all("sched_autogroup_enabled" in s.text() for s in auto)
    assert len(model.search_steps(steps, "CANDIDATE qmap")) == 1
    assert model.search_steps(steps, "") == steps
    assert model.search_steps(steps, "no-such-word") == []


def test_step_formats_for_llm_records():
    s = model.to_step(0, {"t": 1.5, "type": "message", "role": "assistant",
                          "content": [{"type": "text", "text": "try scx_simple"},
                                      {"type": "tool_use", "name": "bash", "input": {"cmd": "ls"}}]})
    assert s.title.startswith("assistant: try scx_simple") and "[tool_use bash]" in s.body
    c = model.to_step(1, {"t": 2, "type": "tool_call", "name": "bash", "input": {"cmd": "uname -r"}})
    assert c.title == 'call bash {"cmd": "uname -r"}'
    out = model.to_step(2, {"t": 3, "type": "tool_result", "output": "7.3.4"})
    assert out.body == "7.3.4"


def test_trial_files_and_language(tmp_path):
    (tmp_path / "files" / "etc").mkdir(parents=True)
    (tmp_path / "files" / "etc" / "my.bpf.c").write_text("int x;")
    (tmp_path / "files" / "run").write_text("#!/bin/sh\necho\n")
    files = model.trial_files(tmp_path)
    assert [str(p) for p in files] == ["etc/my.bpf.c", "run"]
    assert model.language_for(files[0]) == "c"
    assert model.language_for(files[1], "#!/bin/sh\n") == "bash"
    assert model.trial_files(tmp_path / "none") == []


# ------------------------------------------------------------------ results

def _two_jobs(tmp_path):
    root = copy_sample(tmp_path)
    import shutil

    other = root / "20261129-110000-scx-search"
    shutil.copytree(root / JOB_ID, other)
    p = other / "hackbench__scx-search__a0" / "result.json"
    r = json.loads(p.read_text())
    r["improvement"]["ratio"] = 1.3
    r["interface"] = "mcp"
    r["goal"] = {"declared": {"metric": "wall_s", "direction": "higher", "rationale": "?"}, "step": 2,
                 "correct": False, "metric_ok": True, "direction_ok": False,
                 "truth": {"metric": "wall_s", "direction": "lower"}}
    p.write_text(json.dumps(r))
    return root, other.name


def test_result_rows_filter_sort(tmp_path):
    root, other = _two_jobs(tmp_path)
    rows = model.result_rows(model.list_jobs(root))
    assert len(rows) == 6
    hb = [r for r in rows if r.workload == "hackbench"]
    assert {(r.goal, r.declared, r.interface) for r in hb} == {("", "", ""), ("wrong dir", "wall_s higher", "mcp")}
    assert len(model.filter_rows(rows, "goal:wrong iface:mcp")) == 1
    assert [r.workload for r in model.filter_rows(rows, "workload:sqlite")] == ["sqlite", "sqlite"]
    assert len(model.filter_rows(rows, "failure:infra")) == 2
    assert {r.workload for r in model.filter_rows(rows, "slo:met")} == {"hackbench"}
    assert {r.workload for r in model.filter_rows(rows, "slo:no")} == {"sqlite"}  # gzip failed: no SLO verdict
    assert len(model.filter_rows(rows, f"job:{other} hackbench")) == 1
    s = model.sort_rows(rows, "improv.", descending=True)
    assert [r.improvement for r in s][:3] == [1.3, pytest.approx(1.1283, abs=1e-3), pytest.approx(1.026, abs=1e-3)]
    assert s[-1].improvement is None and s[-2].improvement is None  # failed trials last
    assert [r.workload for r in model.sort_rows(rows, "workload")][:2] == ["gzip", "gzip"]


def test_goal_cells():
    truth = {"truth": {"metric": "wall_s", "direction": "lower"}}
    assert model.goal_cells({}) == ("", "")
    assert model.goal_cells({"goal": None}) == ("", "")
    assert model.goal_cells({"goal": {"declared": None, "correct": False, **truth}}) == ("none", "")
    ok = {"declared": {"metric": "runtime", "direction": "minimize"}, "correct": True, "metric_ok": True,
          "direction_ok": True, **truth}
    assert model.goal_cells({"goal": ok}) == ("ok", "runtime minimize")
    both = {**ok, "correct": False, "metric_ok": False, "direction_ok": False}
    assert model.goal_cells({"goal": both})[0] == "wrong metric+dir"


def test_compare_two_jobs(tmp_path):
    root, other = _two_jobs(tmp_path)
    rows = model.result_rows(model.list_jobs(root))
    cmp = {c.workload: c for c in model.compare_jobs(rows, JOB_ID, other)}
    assert set(cmp) == {"gzip", "hackbench", "sqlite"}
    assert cmp["hackbench"].b == 1.3 and cmp["hackbench"].delta == pytest.approx(1.3 - 1.12828, abs=1e-4)
    assert cmp["gzip"].a is None and cmp["gzip"].delta is None
    assert cmp["sqlite"].delta == 0.0


def test_export_report_uses_harness_report(tmp_path):
    from harness.job import job_results
    from harness.report import render

    root = copy_sample(tmp_path)
    for fmt in model.REPORT_FORMATS:
        p = model.export_report(root / JOB_ID, fmt)
        assert p == root / JOB_ID / f"report.{fmt}"
        assert p.read_bytes().decode() == render(job_results(root / JOB_ID), fmt) + "\n"
    with pytest.raises(ValueError):
        model.export_report(root / JOB_ID, "pdf")


def test_model_does_not_import_textual():
    import subprocess

    code = "import sys, tui.model, tui.jobs; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_old_job_without_events_marks_interrupted_trials(tmp_path):
    d = copy_sample(tmp_path) / JOB_ID
    (d / "events.jsonl").unlink()
    (d / "sqlite__scx-search__a0" / "result.json").unlink()
    m = model.JobMonitor(d)
    m.poll()
    assert [r.phase for r in m.rows.values()] == ["done", "interrupted", "failed"]
    assert model.resume_command(JOB_ID, "py") == ["py", "-m", "harness.cli", "jobs", "resume", JOB_ID,
                                                  "--display", "jsonl"]


def test_unknown_cost_is_shown_as_unknown_not_zero(tmp_path):
    root, _ = _two_jobs(tmp_path)
    p = next(root.glob("*/hackbench__*/result.json"))
    r = json.loads(p.read_text())
    r["usage"]["cost_usd"] = None  # a model missing from the price table
    p.write_text(json.dumps(r))
    rows = model.result_rows(model.list_jobs(root))
    unknown = [x for x in rows if x.cost_usd is None]
    assert len(unknown) == 1 and "?" in unknown[0].cells()
    assert model.sort_rows(rows, "$")[-1].cost_usd is None  # sorts last, no crash
    assert model.fmt_cost(None) == "?" and model.fmt_cost(0.0123) == "0.0123"


def test_console_path_is_live_while_running_then_the_saved_copy(tmp_path):
    trial = tmp_path / "t"
    trial.mkdir()
    assert model.console_path(trial) is None
    live = tmp_path / "run" / "console.log"
    live.parent.mkdir()
    live.write_text("[    0.1] booting\n")
    (trial / "live.json").write_text(json.dumps({"console": str(live)}))
    assert model.console_path(trial) == live and "booting" in model.tail_text(model.console_path(trial))
    (trial / "console.log").write_text("saved copy\n")  # the sandbox closed
    assert model.console_path(trial) == trial / "console.log"
