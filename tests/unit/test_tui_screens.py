"""Pilot tests of every screen (80x24), on copies of the recorded job fixture."""

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

from textual.widgets import DataTable, Input, SelectionList, Static

from tui.app import make_app
from tui.jobs import JobProcess
from tui.screens.compare import CompareScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.help import HelpScreen
from tui.screens.launcher import LauncherScreen
from tui.screens.modals import ExportModal, StopModal
from tui.screens.results import ResultsScreen
from tui.screens.trial import TrialScreen

from .tui_support import JOB_ID, copy_sample, job_without_events

SIZE = (80, 24)
FAKES = Path(__file__).parent / "fakes"


def run(scenario):
    return asyncio.run(scenario())


async def settle(pilot, n=3):
    for _ in range(n):
        await pilot.pause()


def refresh(app) -> None:
    scr = app.screen
    (scr.follow if isinstance(scr, TrialScreen) else scr.refresh_data)()


def cell_texts(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


# ------------------------------------------------------------------ home

def test_home_lists_jobs_and_opens_dashboard(tmp_path):
    root = copy_sample(tmp_path)

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            rows = cell_texts(app.screen.query_one("#jobs", DataTable))
            shutil.copytree(root / JOB_ID, root / "second-job")
            await pilot.press("g")
            with_second = [r[0] for r in cell_texts(app.screen.query_one("#jobs", DataTable))]
            shutil.rmtree(root / "second-job")
            await pilot.press("g")
            assert [r[0] for r in cell_texts(app.screen.query_one("#jobs", DataTable))] == [JOB_ID]
            assert with_second == [JOB_ID, "second-job"]
            await pilot.press("enter")
            await settle(pilot)
            return rows, app.screen

    rows, screen = run(scenario)
    assert rows == [[JOB_ID, "scx-search", "hackbench,sqlite,gzip", "complete"]]
    assert isinstance(screen, DashboardScreen) and screen.job_dir == root / JOB_ID


def test_app_opens_the_dashboard_of_a_job_given_at_start(tmp_path):
    root = copy_sample(tmp_path)

    async def scenario():
        app = make_app(root, job=JOB_ID)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            return app.screen, str(app.screen.query_one("#jobline").render())

    screen, jobline = run(scenario)
    assert isinstance(screen, DashboardScreen) and jobline.startswith(f"{JOB_ID}  scx-search  3/3 finished")


# ------------------------------------------------------------------ launcher

def test_launcher_shows_validation_errors_inline_and_starts_nothing(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await settle(pilot)
            scr = app.screen
            assert isinstance(scr, LauncherScreen)
            await pilot.press("ctrl+s")
            await settle(pilot)
            err_wl = scr.query_one("#err-workloads", Static)
            first = (str(err_wl.render()), err_wl.has_class("shown"), app.focused.id)
            scr.query_one("#workloads", SelectionList).select("hackbench")
            scr.query_one("#attempts", Input).value = "0"
            scr.query_one("#max_cost", Input).value = "lots"
            await pilot.press("ctrl+s")
            await settle(pilot)
            errs = {e.id: str(e.render()) for e in scr.query(".error.shown")}
            return first, errs, app.processes, list(tmp_path.iterdir())

    first, errs, procs, files = run(scenario)
    assert first == ("choose at least one workload", True, "workloads")
    assert errs == {"err-attempts": "must be 1..100", "err-max_cost": "not a number: 'lots'"}
    assert procs == {} and files == []


def test_launcher_interface_disabled_with_note_when_cli_lacks_it(tmp_path):
    from tui.model import cli_supports

    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await settle(pilot)
            return app.screen.query_one("#interface").disabled, bool(app.screen.query("#interface-note"))

    disabled, note = run(scenario)
    assert disabled == note == (not cli_supports("--interface"))


def test_launcher_starts_job_subprocess_and_dashboard_follows_it(tmp_path, monkeypatch):
    """Start with a stand-in interpreter (a real process that writes a job folder and
    events like `schedcp run`), watch it on the dashboard, then stop it now."""
    from tui import model

    os.environ["FAKE_PY"] = sys.executable
    help_text = model.run_help()
    if "--interface" not in help_text:  # as the CLI will have it (issue 9)
        monkeypatch.setattr(model, "run_help", lambda: help_text + "\n  --interface {bash,mcp}\n")

    async def scenario():
        app = make_app(tmp_path, python=str(FAKES / "fake_python"), poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await settle(pilot)
            scr = app.screen
            scr.query_one("#workloads", SelectionList).select("hackbench")
            scr.query_one("#job_id", Input).value = "tui-test-job"
            scr.query_one("#repeat", Input).value = "2"
            assert not scr.query_one("#interface").disabled
            scr.query_one("#interface").value = "mcp"
            await pilot.press("ctrl+s")
            await settle(pilot)
            dash = app.screen
            assert isinstance(dash, DashboardScreen)
            proc = app.processes["tui-test-job"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the process creates the folder and events
                await pilot.pause(0.05)
                dash.refresh_data()
                if dash.monitor.rows and dash.monitor.rows["hackbench__linux-default__a0"].phase == "agent":
                    break
            row = cell_texts(dash.query_one("#trials", DataTable))[0]
            argv = proc.proc.args
            await pilot.press("s")
            await settle(pilot)
            assert isinstance(app.screen, StopModal)
            await pilot.press("n")
            await settle(pilot)
            dash.reclaim.wait(30)
            return row, argv, proc, dash.reclaim

    row, argv, proc, reclaim = run(scenario)
    assert row[0] == "hackbench a0" and row[1] == "agent" and row[4] == "2" and row[5] == "300"
    assert argv[1:4] == ["-m", "harness.cli", "run"] and argv[-4:] == ["--display", "jsonl", "--job-id", "tui-test-job"]
    assert argv[argv.index("--interface") + 1] == "mcp"
    assert proc.returncode == -15  # terminated by "stop now"
    assert (tmp_path / "tui-test-job" / "events.jsonl").is_file()  # what it recorded stays
    assert reclaim.args[1:] == ["-m", "harness.cli", "sandbox", "cleanup"] and reclaim.returncode == 0
    assert (tmp_path / "cleanup-ran").is_file()


def test_dashboard_shows_why_a_started_job_died_before_its_folder(tmp_path):
    os.environ["FAKE_PY"] = sys.executable

    async def scenario():
        app = make_app(tmp_path, python=str(FAKES / "fake_python"), poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await settle(pilot)
            app.screen.query_one("#workloads", SelectionList).select("gzip")
            app.screen.query_one("#job_id", Input).value = "fail-early"
            await pilot.press("ctrl+s")
            app.processes["fail-early"].proc.wait(30)
            await pilot.pause(0.1)
            refresh(app)  # what the poll timer does, without waiting for it
            await settle(pilot)
            return str(app.screen.query_one("#jobline").render()), list(app.screen.query_one("#transcript").lines)

    jobline, transcript = run(scenario)
    assert "job process exited (2) before creating it" in jobline
    assert "schedcp: error: no image built (run `schedcp image build`)" in transcript


# ------------------------------------------------------------------ dashboard

def test_dashboard_rows_update_as_events_are_appended(tmp_path):
    d = job_without_events(copy_sample(tmp_path))
    tid = "sqlite__scx-search__a0"

    def emit(kind, **data):
        with open(d / "events.jsonl", "a") as f:
            f.write(json.dumps({"ts": data.pop("ts", 1000.0), "event": kind, **data}) + "\n")

    async def scenario():
        app = make_app(d.parent, poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            app.open_dashboard(JOB_ID)
            await settle(pilot)
            table = app.screen.query_one("#trials", DataTable)
            before = cell_texts(table)
            emit("job_start", trials=3, to_run=3)
            emit("trial_start", trial=tid)
            emit("phase", trial=tid, phase="measure")
            emit("measure", trial=tid, role="baseline", index=1, warmup=False, value=10.0)
            emit("measure", trial=tid, role="tuned", index=1, warmup=False, value=8.0)
            (d / tid).mkdir()
            (d / tid / "trajectory.jsonl").write_text(
                json.dumps({"t": 1.0, "type": "command", "cmd": "sysctl -w kernel.x=1", "returncode": 0,
                            "stdout": "kernel.x = 1\n", "duration_s": 0.01}) + "\n")
            (d / tid / "console.log").write_text("[  1.0] sched_ext: BPF scheduler \"simple\" enabled\n")
            await pilot.pause(0.1)
            refresh(app)  # what the poll timer does, without waiting for it
            await settle(pilot)
            after = cell_texts(table)
            await pilot.press("down")  # select the sqlite row
            await pilot.pause(0.1)
            refresh(app)  # what the poll timer does, without waiting for it
            transcript = list(app.screen.query_one("#transcript").lines)
            console = list(app.screen.query_one("#console").lines)
            jobline = str(app.screen.query_one("#jobline").render())
            emit("agent", trial=tid, text="candidate sched:scx_simple: 8.1", steps=4, tokens=0, cost_usd=0.0)
            await pilot.pause(0.1)
            refresh(app)  # what the poll timer does, without waiting for it
            await settle(pilot)
            last = str(app.screen.query_one("#last").render())
            return before, after, transcript, console, jobline, last

    before, after, transcript, console, jobline, last = run(scenario)
    assert last == f"{tid}: candidate sched:scx_simple: 8.1"
    assert [r[1] for r in before] == ["queued"] * 3
    sq = after[1]
    assert sq[0] == "sqlite a0" and sq[1] == "measure" and sq[7] == "~1.25x"  # 10 / 8, lower is better
    assert "█" in sq[2]
    assert any("$ sysctl -w kernel.x=1" in x for x in transcript) and any("kernel.x = 1" in x for x in transcript)
    assert console == ['[  1.0] sched_ext: BPF scheduler "simple" enabled']
    assert "running" in jobline


def test_stop_modal_finish_writes_stop_file(tmp_path):
    root = copy_sample(tmp_path)

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_dashboard(JOB_ID)
            await settle(pilot)
            await pilot.press("s")
            await settle(pilot)
            modal = app.screen
            now_disabled = modal.query_one("#now").disabled
            await pilot.press("n")  # not offered: the job was not started here
            await settle(pilot)
            still_modal = isinstance(app.screen, StopModal)
            await pilot.press("f")
            await settle(pilot)
            return now_disabled, still_modal, app.screen

    now_disabled, still_modal, screen = run(scenario)
    assert now_disabled and still_modal and isinstance(screen, DashboardScreen)
    assert (root / JOB_ID / "STOP").is_file()


def test_stop_modal_stop_now_terminates_process_and_cancel_does_nothing(tmp_path):
    root = copy_sample(tmp_path)
    proc = JobProcess.start(["sleep", "60"], JOB_ID, root)

    async def scenario():
        app = make_app(root)
        app.processes[JOB_ID] = proc
        async with app.run_test(size=SIZE) as pilot:
            app.open_dashboard(JOB_ID)
            await settle(pilot)
            await pilot.press("s")
            await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
            alive_after_cancel = proc.running
            await pilot.press("s")
            await settle(pilot)
            await pilot.click("#now")
            await settle(pilot)
            return alive_after_cancel

    try:
        alive_after_cancel = run(scenario)
    finally:
        proc.stop_now(1)
    assert proc.reclaim_vms() is None  # not a harness job: nothing to clean up
    assert alive_after_cancel
    assert proc.returncode == -15
    assert not (root / JOB_ID / "STOP").exists()
    assert (root / JOB_ID / "hackbench__scx-search__a0" / "result.json").is_file()  # nothing recorded is lost


def test_dashboard_resumes_an_unfinished_job(tmp_path):
    os.environ["FAKE_PY"] = sys.executable
    root = copy_sample(tmp_path)
    d = root / JOB_ID
    # as a job killed (SIGKILL) in its second trial's measure phase leaves it
    (d / "sqlite__scx-search__a0" / "result.json").unlink()
    lines = (d / "events.jsonl").read_text().splitlines(keepends=True)
    end = next(i for i, x in enumerate(lines) if '"trial_end", "trial": "sqlite' in x)
    (d / "events.jsonl").write_text("".join(lines[:end]))

    async def scenario():
        app = make_app(root, python=str(FAKES / "fake_python"), poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            app.open_dashboard(JOB_ID)
            await settle(pilot)
            scr = app.screen
            before = scr.monitor.rows["sqlite__scx-search__a0"].phase
            await pilot.press("u")  # the events say running: asks to press again
            await settle(pilot)
            assert JOB_ID not in app.processes
            await pilot.press("u")
            app.processes[JOB_ID].proc.wait(30)
            await pilot.pause(0.1)
            refresh(app)  # what the poll timer does, without waiting for it
            await settle(pilot)
            rows = cell_texts(scr.query_one("#trials", DataTable))
            return before, rows, app.processes[JOB_ID].proc.args, str(scr.query_one("#jobline").render())

    before, rows, argv, jobline = run(scenario)
    assert before == "stats"
    assert argv[1:] == ["-m", "harness.cli", "jobs", "resume", JOB_ID, "--display", "jsonl"]
    assert [(r[0], r[1], r[7]) for r in rows] == [("hackbench a0", "done", "1.13x"), ("sqlite a0", "done", "1.01x"),
                                                  ("gzip a0", "failed", "-")]
    assert "(complete)" in jobline


# ------------------------------------------------------------------ trial detail

def test_trial_detail_search_filters_the_trajectory(tmp_path):
    root = copy_sample(tmp_path)

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_trial(root / JOB_ID / "hackbench__scx-search__a0")
            await settle(pilot)
            scr = app.screen
            total = len(scr.shown)
            await pilot.press("slash")
            await pilot.press(*"autogroup")
            await settle(pilot)
            hits = [s.title for s in scr.shown]
            count = str(scr.query_one("#count").render())
            await pilot.press("escape")  # clears the filter first
            await settle(pilot)
            return total, hits, count, len(scr.shown), str(scr.query_one("#summary").render())

    total, hits, count, after, summary = run(scenario)
    assert total == 57 and after == 57
    assert hits and all("autogroup" in h for h in hits) and len(hits) < 10
    assert count == f"{len(hits)} of 57 steps"
    assert "1.13x [1.01, 1.20] p=0.0079" in summary and "SLO met" in summary


def test_trial_detail_follows_a_running_trial(tmp_path):
    root = copy_sample(tmp_path)
    src = root / JOB_ID / "hackbench__scx-search__a0"
    tdir = root / JOB_ID / "running"
    tdir.mkdir()
    lines = (src / "trajectory.jsonl").read_text().splitlines(keepends=True)
    (tdir / "trajectory.jsonl").write_text("".join(lines[:10]))

    async def scenario():
        app = make_app(root, poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            app.open_trial(tdir)
            await settle(pilot)
            scr = app.screen
            await pilot.press("slash", *"candidate")
            await settle(pilot)
            first = (len(scr.steps), len(scr.shown), str(scr.query_one("#summary").render()))
            with open(tdir / "trajectory.jsonl", "a") as f:
                f.write("".join(lines[10:]))
            shutil.copy(src / "result.json", tdir / "result.json")
            await pilot.pause(0.1)
            refresh(app)  # what the poll timer does, without waiting for it
            await settle(pilot)
            return first, len(scr.steps), [s.title for s in scr.shown], str(scr.query_one("#summary").render())

    first, n_steps, shown, summary = run(scenario)
    assert first[:2] == (10, 2) and "no result.json yet" in first[2]
    assert n_steps == len(lines)
    assert len(shown) == 7 and all("candidate" in t for t in shown)  # the filter applies to new steps
    assert "1.13x [1.01, 1.20] p=0.0079" in summary


def test_trial_detail_metrics_and_files(tmp_path):
    root = copy_sample(tmp_path)
    tdir = root / JOB_ID / "hackbench__scx-search__a0"
    r = json.loads((tdir / "result.json").read_text())
    r["goal"] = {"declared": {"metric": "wall time", "direction": "lower"}, "step": 3, "correct": True,
                 "metric_ok": True, "direction_ok": True, "truth": {"metric": "wall_s", "direction": "lower"}}
    (tdir / "result.json").write_text(json.dumps(r))
    (tdir / "files" / "root").mkdir(parents=True)
    (tdir / "files" / "root" / "tune.sh").write_text("#!/bin/sh\nsysctl -w kernel.sched_autogroup_enabled=0\n")

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_trial(tdir)
            await settle(pilot)
            await pilot.press("m")
            await settle(pilot)
            metrics = cell_texts(app.screen.query_one("#metric-table", DataTable))
            plot = app.screen.query_one("#plot")
            goal = str(app.screen.query_one("#goal").render())
            await pilot.press("f")
            await settle(pilot)
            syntax = app.screen.file_shown
            return metrics, (plot.baseline, plot.tuned), syntax, goal

    metrics, (b, t), syntax, goal = run(scenario)
    assert goal == "goal inference: ok; declared wall time lower at step 3; truth wall_s lower"
    assert metrics[0][:3] == ["wall_s", "baseline", "4.169"] and metrics[1][:3] == ["wall_s", "tuned", "3.695"]
    assert b == [4.154, 4.158, 4.417, 4.249, 4.169] and len(t) == 5
    assert "sched_autogroup_enabled" in syntax.code and syntax.lexer.name == "Bash"


# ------------------------------------------------------------------ results

def _second_job(root):
    other = root / "20261129-110000-scx-search"
    shutil.copytree(root / JOB_ID, other)
    p = other / "sqlite__scx-search__a0" / "result.json"
    r = json.loads(p.read_text())
    r["improvement"]["ratio"] = 1.5
    p.write_text(json.dumps(r))
    return other.name


def test_results_sort_filter_compare_export(tmp_path):
    root = copy_sample(tmp_path)
    other = _second_job(root)

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("r")
            await settle(pilot)
            scr = app.screen
            assert isinstance(scr, ResultsScreen)
            table = scr.query_one("#results", DataTable)
            n_all = table.row_count
            table.move_cursor(column=1)  # improv.
            await pilot.press("s")
            await settle(pilot)
            by_improvement = [r[1] for r in cell_texts(table)]
            await pilot.press("slash", *"workload:sqlite", "enter")
            await settle(pilot)
            filtered = [(r[-1], r[0]) for r in cell_texts(table)]
            # mark both jobs (rows are sorted by improvement: other's sqlite first)
            table.move_cursor(row=0)
            await pilot.press("m")
            table.move_cursor(row=1)
            await pilot.press("m")
            await pilot.press("c")
            await settle(pilot)
            cmp_screen = app.screen
            cmp = cell_texts(cmp_screen.query_one("#compare", DataTable))
            await pilot.press("escape")
            await settle(pilot)
            table.move_cursor(row=0)
            await pilot.press("e")
            await settle(pilot)
            modal = app.screen
            await pilot.press("j")
            await settle(pilot)
            status = str(scr.query_one("#status").render())
            return n_all, by_improvement, filtered, cmp_screen, cmp, modal, status

    n_all, by_imp, filtered, cmp_screen, cmp, modal, status = run(scenario)
    assert n_all == 6
    assert by_imp == ["1.50x", "1.13x", "1.13x", "1.03x", "-", "-"]
    assert filtered == [(other, "sqlite"), (JOB_ID, "sqlite")]
    assert isinstance(cmp_screen, CompareScreen) and (cmp_screen.job_a, cmp_screen.job_b) == (other, JOB_ID)
    assert ["sqlite", "1.50x", "no", "1.03x", "no", "-0.474"] in cmp
    assert isinstance(modal, ExportModal)
    out = root / other / "report.json"
    assert json.loads(out.read_text())["workloads"][2]["best"] == 1.5
    assert str(out) in status


def test_results_sort_by_header_and_enter_opens_trial(tmp_path):
    root = copy_sample(tmp_path)

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_results()
            await settle(pilot)
            scr = app.screen
            await pilot.click("#results", offset=(2, 0))  # the header of the first column
            await settle(pilot)
            wls = [r[0] for r in cell_texts(scr.query_one("#results", DataTable))]
            scr.query_one("#results", DataTable).move_cursor(row=1)
            await pilot.press("enter")
            await settle(pilot)
            return wls, scr.sort_col, app.screen

    wls, col, detail = run(scenario)
    assert wls == ["gzip", "hackbench", "sqlite"] and col == "workload"
    assert isinstance(detail, TrialScreen) and detail.trial_dir == root / JOB_ID / "hackbench__scx-search__a0"


# ------------------------------------------------------------------ help

def test_help_lists_the_bindings_of_the_screen_below(tmp_path):
    root = copy_sample(tmp_path)

    async def scenario():
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            app.open_dashboard(JOB_ID)
            await settle(pilot)
            await pilot.press("question_mark")
            await settle(pilot)
            shown = isinstance(app.screen, HelpScreen)
            text = str(app.screen.query_one("#help-text").render())
            await pilot.press("escape")
            await settle(pilot)
            return shown, text, app.screen

    shown, text, after = run(scenario)
    assert shown and "Stop job" in text and "Trial detail" in text and "Help" in text
    assert isinstance(after, DashboardScreen)
