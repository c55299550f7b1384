"""`schedcp-tui`: launch benchmark jobs, watch them live, read trials and compare results.

The TUI never runs trials itself: it starts ``python -m harness.cli run ... --display
jsonl`` as a subprocess (see :mod:`tui.jobs`) and reads what every job writes under
``$SCHEDCP_JOBS`` (``job.json``, ``events.jsonl``, trial folders), so a job started
headless elsewhere is watched the same way. What it shows is computed in
:mod:`tui.model`; the screens only lay it out.
"""

from __future__ import annotations

import sys
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from tui.jobs import JobProcess
from tui.screens.home import HomeScreen


class SchedcpApp(App):
    TITLE = "schedcp-bench"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]

    def __init__(self, jobs_root: Path | None = None, python: str = sys.executable, poll_s: float = 0.5,
                 job: str | None = None):
        super().__init__()
        self.initial_job = job  # open this job's dashboard at start
        from harness.job import jobs_dir

        self.jobs_root = Path(jobs_root) if jobs_root is not None else jobs_dir()
        self.python = python  # the interpreter that runs `-m harness.cli run` for launched jobs
        self.poll_s = poll_s  # how often live screens re-read job folders
        self.processes: dict[str, JobProcess] = {}  # jobs this TUI started

    def get_default_screen(self) -> HomeScreen:
        return HomeScreen()

    def on_mount(self) -> None:
        if self.initial_job:
            self.open_dashboard(self.initial_job)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def open_dashboard(self, job_id: str) -> None:
        from tui.screens.dashboard import DashboardScreen

        self.push_screen(DashboardScreen(self.jobs_root / job_id, self.processes.get(job_id)))

    def open_trial(self, trial_dir: Path) -> None:
        from tui.screens.trial import TrialScreen

        self.push_screen(TrialScreen(trial_dir))

    def open_results(self) -> None:
        from tui.screens.results import ResultsScreen

        self.push_screen(ResultsScreen())

    def open_launcher(self) -> None:
        from tui.screens.launcher import LauncherScreen

        self.push_screen(LauncherScreen())


def make_app(jobs_root: Path | None = None, **kw) -> SchedcpApp:
    return SchedcpApp(jobs_root, **kw)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(prog="schedcp-tui", description="schedcp-bench terminal UI")
    p.add_argument("--jobs", type=Path, default=None, help="jobs folder (default: $SCHEDCP_JOBS or ./jobs)")
    p.add_argument("job", nargs="?", help="open this job's dashboard")
    a = p.parse_args()
    make_app(a.jobs, job=a.job).run()
