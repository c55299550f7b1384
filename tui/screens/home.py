"""Home: the jobs under the jobs folder with their state; leads to launcher, dashboard, results."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.model import list_jobs


class HomeScreen(Screen):
    BINDINGS = [
        Binding("n", "launch", "New job"),
        Binding("enter", "open", "Dashboard", show=False),
        Binding("o", "open", "Open"),
        Binding("r", "results", "Results"),
        Binding("g", "reload", "Reload"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="where", classes="bar")
        yield DataTable(id="jobs", cursor_type="row")
        yield Static("n: new job   enter: open dashboard   r: results across jobs   ?: help",
                     id="hint", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#jobs", DataTable)
        for c in ("job", "agent", "workloads", "state"):
            t.add_column(c, key=c)
        self.reload()
        self.set_interval(max(2.0, self.app.poll_s * 4), self.reload)

    def reload(self) -> None:
        t = self.query_one("#jobs", DataTable)
        jobs = list_jobs(self.app.jobs_root)
        self.query_one("#where", Static).update(Text(f"{len(jobs)} job(s) in {self.app.jobs_root}"))
        ids = {j.id for j in jobs}
        for key in [k for k in t.rows if k.value not in ids]:  # removed from the folder
            t.remove_row(key)
        for j in jobs:
            cells = (j.id, j.agent, ",".join(j.workloads), j.state)
            if j.id in t.rows:
                if t.get_cell(j.id, "state") != j.state:
                    t.update_cell(j.id, "state", j.state)
            else:
                t.add_row(*cells, key=j.id)

    def on_screen_resume(self) -> None:
        self.reload()

    @property
    def selected_job(self) -> str | None:
        t = self.query_one("#jobs", DataTable)
        if not t.row_count:
            return None
        return t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_dashboard(event.row_key.value)

    def action_open(self) -> None:
        if (j := self.selected_job) is not None:
            self.app.open_dashboard(j)

    def action_launch(self) -> None:
        self.app.open_launcher()

    def action_results(self) -> None:
        self.app.open_results()

    def action_reload(self) -> None:
        self.reload()
