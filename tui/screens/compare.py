"""Two jobs side by side, per workload: best improvement of each and the SLO."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui import model


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, rows: list[model.ResultRow], job_a: str, job_b: str):
        super().__init__()
        self.job_a, self.job_b = job_a, job_b
        self.rows = model.compare_jobs(rows, job_a, job_b)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"A: {self.job_a}\nB: {self.job_b}", classes="bar2")
        t = DataTable(id="compare", cursor_type="row")
        t.add_columns(*model.COMPARE_COLUMNS)
        for r in self.rows:
            t.add_row(*r.cells(), key=r.workload)
        yield t
        yield Static("best-of-attempts improvement (x, > 1 is better); B-A > 0: B did better", classes="hint")
        yield Footer()
