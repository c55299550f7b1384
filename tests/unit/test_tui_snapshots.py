"""SVG snapshots of every screen on the recorded job fixture (80x24).

The fixture is copied to a fixed path, so that the jobs folder shown on the home screen
is the same on every machine. Regenerate after a deliberate change with
``pytest tests/unit/test_tui_snapshots.py --snapshot-update`` and review the SVGs.
"""

import json
import shutil
from pathlib import Path

import pytest

from tui.app import make_app

from .tui_support import JOB_ID, SAMPLE

ROOT = Path("/tmp/schedcp-tui-snapshots/jobs")
OTHER = "20261129-110000-scx-search"
SIZE = (80, 24)


@pytest.fixture
def jobs():
    shutil.rmtree(ROOT.parent, ignore_errors=True)
    shutil.copytree(SAMPLE, ROOT)
    yield ROOT
    shutil.rmtree(ROOT.parent, ignore_errors=True)


@pytest.fixture
def two_jobs(jobs):
    shutil.copytree(jobs / JOB_ID, jobs / OTHER)
    p = jobs / OTHER / "sqlite__scx-search__a0" / "result.json"
    r = json.loads(p.read_text())
    r["improvement"]["ratio"] = 1.5
    p.write_text(json.dumps(r))
    return jobs


def app_for(root):
    return make_app(root, poll_s=3600)  # no re-reads while the snapshot is taken


def test_home(snap_compare, jobs):
    assert snap_compare(app_for(jobs), terminal_size=SIZE)


def test_dashboard(snap_compare, jobs):
    async def open_(pilot):
        pilot.app.open_dashboard(JOB_ID)
        await pilot.pause()

    assert snap_compare(app_for(jobs), run_before=open_, terminal_size=SIZE)


def test_stop_modal(snap_compare, jobs):
    async def open_(pilot):
        pilot.app.open_dashboard(JOB_ID)
        await pilot.pause()
        await pilot.press("s")

    assert snap_compare(app_for(jobs), run_before=open_, terminal_size=SIZE)


def _trial(name, *keys):
    async def open_(pilot):
        pilot.app.open_trial(ROOT / JOB_ID / name)
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()

    return open_


def test_trial_trajectory(snap_compare, jobs):
    assert snap_compare(app_for(jobs), run_before=_trial("hackbench__scx-search__a0"), terminal_size=SIZE)


def test_trial_trajectory_search(snap_compare, jobs):
    assert snap_compare(app_for(jobs), run_before=_trial("hackbench__scx-search__a0", "slash", *"autogroup"),
                        terminal_size=SIZE)


def test_trial_metrics(snap_compare, jobs):
    assert snap_compare(app_for(jobs), run_before=_trial("hackbench__scx-search__a0", "m"), terminal_size=SIZE)


def test_trial_failed(snap_compare, jobs):
    assert snap_compare(app_for(jobs), run_before=_trial("gzip__scx-search__a0"), terminal_size=SIZE)


# the launcher offers --interface only when `schedcp run --help` lists it: both states,
# pinned here so that the snapshots do not depend on the CLI of the branch
HELP = "usage: schedcp run [-h] --workloads WORKLOADS [--agent AGENT] [--model MODEL]"


@pytest.fixture
def cli_without_interface(monkeypatch):
    from tui import model

    monkeypatch.setattr(model, "run_help", lambda: HELP)


@pytest.fixture
def cli_with_interface(monkeypatch):
    from tui import model

    monkeypatch.setattr(model, "run_help", lambda: HELP + " [--interface {bash,mcp}]")


def test_launcher(snap_compare, jobs, cli_without_interface):
    assert snap_compare(app_for(jobs), press=["n"], terminal_size=SIZE)


def test_launcher_errors(snap_compare, jobs, cli_with_interface):
    async def fill(pilot):
        await pilot.press("n")
        await pilot.pause()
        pilot.app.screen.query_one("#attempts").value = "zero"
        await pilot.press("ctrl+s")
        await pilot.pause()
        pilot.app.clear_notifications()

    assert snap_compare(app_for(jobs), run_before=fill, terminal_size=SIZE)


def test_results(snap_compare, two_jobs):
    assert snap_compare(app_for(two_jobs), press=["r"], terminal_size=SIZE)


def test_compare(snap_compare, two_jobs):
    async def cmp(pilot):
        await pilot.press("r")
        await pilot.pause()
        table = pilot.app.screen.query_one("#results")
        await pilot.press("m")
        table.move_cursor(row=3)
        await pilot.press("m", "c")
        await pilot.pause()

    assert snap_compare(app_for(two_jobs), run_before=cmp, terminal_size=SIZE)


def test_help(snap_compare, jobs):
    async def open_(pilot):
        pilot.app.open_dashboard(JOB_ID)
        await pilot.pause()
        await pilot.press("question_mark")

    assert snap_compare(app_for(jobs), run_before=open_, terminal_size=SIZE)
