"""Small dialogs: how to stop a job, which report format to export."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui.model import REPORT_FORMATS


class StopModal(ModalScreen[str | None]):
    """Dismisses with ``"finish"`` (request_stop), ``"now"`` (terminate) or None."""

    BINDINGS = [
        Binding("f", "choose('finish')", "Finish running"),
        Binding("n", "choose('now')", "Stop now"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def __init__(self, job_id: str, can_stop_now: bool):
        super().__init__()
        self.job_id, self.can_stop_now = job_id, can_stop_now

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Stop job {self.job_id}?", classes="title")
            yield Static("f  Finish running trials: they are measured and recorded; no new trial starts.\n"
                         "n  Stop now: the job's processes are terminated; unfinished trials are run again "
                         "by `schedcp jobs resume`.\nRecorded trials are kept either way.")
            if not self.can_stop_now:
                yield Static("(Stop now is only for jobs started from this TUI and still running.)", classes="note")
            with Horizontal(classes="buttons"):
                yield Button("Finish running (f)", id="finish", variant="primary")
                yield Button("Stop now (n)", id="now", variant="error", disabled=not self.can_stop_now)
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        if choice == "now" and not self.can_stop_now:
            return
        self.dismiss(choice)


class ExportModal(ModalScreen[str | None]):
    """Dismisses with a report format or None."""

    BINDINGS = [Binding("escape", "choose(None)", "Cancel")] + [
        Binding(f[0], f"choose('{f}')", f) for f in REPORT_FORMATS]  # m, c, j

    def __init__(self, job_id: str):
        super().__init__()
        self.job_id = job_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Export the report of {self.job_id}", classes="title")
            yield Static("Written to the job folder as report.<format> (as `schedcp report --format`).")
            with Horizontal(classes="buttons"):
                for f in REPORT_FORMATS:
                    yield Button(f"{f} ({f[0]})", id=f"fmt-{f}")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(None if event.button.id == "cancel" else event.button.id.removeprefix("fmt-"))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
