"""Live dashboard of one job: a row per trial (phase, progress, time, steps, tokens, cost,
improvement so far), the selected trial's agent transcript as it grows, and its guest
console. Everything is re-read from the job folder every ``app.poll_s`` seconds."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, ProgressBar, Static

from tui import model
from tui.jobs import JobProcess, finish_running
from tui.screens.modals import StopModal
from tui.widgets.trials import TrialTable


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("enter", "detail", "Trial detail", show=False),
        Binding("d", "detail", "Trial detail"),
        Binding("s", "stop", "Stop job"),
        Binding("u", "resume", "Resume"),
        Binding("r", "results", "Results"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, job_dir, process: JobProcess | None = None, clock=time.time):
        super().__init__()
        self.job_dir, self.process, self.clock = job_dir, process, clock
        self.monitor = model.JobMonitor(job_dir)
        self.traj_trial: str | None = None
        self.traj_offset = 0
        self.traj_count = 0
        self.console_text = None
        self.reclaim = None  # the `sandbox cleanup` process after a stop-now
        self.process_log_shown = False
        self.resume_confirm = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="jobline", classes="bar")
        yield ProgressBar(total=100, show_eta=False, id="overall")
        yield TrialTable(id="trials")
        yield Static(id="last", classes="last")
        with Horizontal(id="panes"):
            yield Log(id="transcript", classes="pane")
            yield Log(id="console", classes="pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#transcript").border_title = "agent transcript"
        self.query_one("#console").border_title = "guest console"
        self.refresh_data()
        self.set_interval(self.app.poll_s, self.refresh_data)

    def refresh_data(self) -> None:
        m = self.monitor
        m.poll()
        rows = list(m.rows.values())
        table = self.query_one(TrialTable)
        table.show(rows, self.clock())
        self.query_one("#overall", ProgressBar).update(progress=round(100 * m.progress()))
        done = sum(r.finished for r in rows)
        if m.config is None:
            state = "waiting for the job folder"
            if self.process is not None and not self.process.running:
                state = f"job process exited ({self.process.returncode}) before creating it"
        elif m.running and self.process is not None and not self.process.running:
            state = f"job process exited ({self.process.returncode})"
        elif m.running:
            state = "stopping" if (self.job_dir / "STOP").exists() else "running"
        else:
            state = m.end_state or model.live_state(self.job_dir, m.config)
        agent = m.config.agent if m.config else ""
        self.query_one("#jobline", Static).update(Text(f"{m.id}  {agent}  {done}/{len(rows)} finished  ({state})"))
        self.update_selected(table.selected_trial)

    def update_selected(self, trial: str | None) -> None:
        self.update_transcript(trial)
        self.update_console(trial)
        row = self.monitor.rows.get(trial or "")
        self.query_one("#last", Static).update(Text(f"{trial}: {row.last}" if row and row.last else ""))

    def update_transcript(self, trial: str | None) -> None:
        log = self.query_one("#transcript", Log)
        if trial != self.traj_trial:
            log.clear()
            self.traj_trial, self.traj_offset, self.traj_count = trial, 0, 0
            log.border_title = f"agent transcript: {trial}" if trial else "agent transcript"
        if trial is None:
            if self.process is not None and not self.process.running and not self.process_log_shown:
                self.process_log_shown = True  # the job died before its folder: say why
                log.border_title = "job process output"
                log.write_lines(model.tail_text(self.process.log, 20).splitlines())
            return
        path = self.job_dir / trial / "trajectory.jsonl"
        if model.rewritten(path, self.traj_offset):
            log.clear()
            self.traj_offset, self.traj_count = 0, 0
        recs, self.traj_offset = model.tail_jsonl(path, self.traj_offset)
        for s in model.to_steps(recs, self.traj_count):
            log.write_line(f"{s.t:7.1f} {s.title}")
            if s.kind in ("command", "tool_result") and s.body:
                log.write_lines("        " + x for x in s.body.splitlines()[:8])
        self.traj_count += len(recs)

    def update_console(self, trial: str | None) -> None:
        path = model.console_path(self.job_dir / trial) if trial else None
        text = model.tail_text(path, 200) if path else ""
        if not text and trial:
            text = "(no console.log yet)"
        if text != self.console_text:
            self.console_text = text
            log = self.query_one("#console", Log)
            log.clear()
            log.write_lines(text.splitlines())

    def on_data_table_row_highlighted(self, event) -> None:
        self.update_selected(self.query_one(TrialTable).selected_trial)

    def on_data_table_row_selected(self, event) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        if (t := self.query_one(TrialTable).selected_trial) is not None:
            self.app.open_trial(self.job_dir / t)

    def action_results(self) -> None:
        self.app.open_results()

    def action_resume(self) -> None:
        m = self.monitor
        if self.process is not None and self.process.running:
            self.notify("the job is running")
            return
        if m.running and self.process is None and not self.resume_confirm:
            # started elsewhere: its events say running, but a killed job says the same
            self.resume_confirm = True
            self.notify("the events say this job is running (started elsewhere?); if it was killed, "
                        "press u again to resume it", severity="warning")
            return
        if m.config is None or all(r.phase in ("done", "failed", "skipped") for r in m.rows.values()):
            self.notify("nothing to resume: every trial is recorded")
            return
        self.process = JobProcess.start(model.resume_command(m.id, self.app.python), m.id, self.app.jobs_root)
        self.app.processes[m.id] = self.process
        self.process_log_shown = False
        self.notify(f"resuming {m.id}: trials without result.json run again")

    def action_stop(self) -> None:
        can_now = self.process is not None and self.process.running
        self.app.push_screen(StopModal(self.monitor.id, can_now), self.stop_chosen)

    def stop_chosen(self, choice: str | None) -> None:
        if choice == "finish":
            finish_running(self.job_dir)
            self.notify("stop requested: running trials finish and are recorded; no new one starts")
        elif choice == "now" and self.process is not None:
            rc = self.process.stop_now()
            self.reclaim = self.process.reclaim_vms()
            self.notify(f"job process stopped (exit {rc}); its VMs are being removed; "
                        f"`schedcp jobs resume {self.monitor.id}` re-runs unfinished trials")
        self.refresh_data()
