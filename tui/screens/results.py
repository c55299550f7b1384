"""Results across jobs: one row per trial; filter (``/``), sort (``s`` on the cursor's
column or a click on its header), mark two jobs to compare (``m``, then ``c``), export a
job's report (``e``)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from tui import model
from tui.screens.modals import ExportModal


class ResultsScreen(Screen):
    BINDINGS = [
        Binding("slash", "search", "Filter", key_display="/"),
        Binding("s", "sort", "Sort"),
        Binding("m", "mark", "Mark job"),
        Binding("c", "compare", "Compare"),
        Binding("e", "export", "Export"),
        Binding("enter", "detail", "Trial", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self):
        super().__init__()
        self.all_rows: list[model.ResultRow] = []
        self.shown: list[model.ResultRow] = []
        self.sort_col: str | None = None
        self.descending = False
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ filter: words or workload:, agent:, job:, failure:, slo:met|no", id="filter", compact=True)
        yield DataTable(id="results", cursor_type="cell", fixed_columns=1)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#results", DataTable)
        for c in model.RESULT_COLUMNS:
            t.add_column(c, key=c)
        self.reload()
        t.focus()

    def reload(self) -> None:
        self.all_rows = model.result_rows(model.list_jobs(self.app.jobs_root))
        self.apply()

    def apply(self) -> None:
        rows = model.filter_rows(self.all_rows, self.query_one("#filter", Input).value)
        if self.sort_col:
            rows = model.sort_rows(rows, self.sort_col, self.descending)
        self.shown = rows
        t = self.query_one("#results", DataTable)
        t.clear()
        for i, r in enumerate(rows):
            t.add_row(*r.cells(), key=f"{r.job}/{r.trial}")
        self.update_status()

    def update_status(self, extra: str = "") -> None:
        srt = f"  sorted by {self.sort_col} {'desc' if self.descending else 'asc'}" if self.sort_col else ""
        mk = f"  marked: {', '.join(self.marked)}" if self.marked else ""
        self.query_one("#status", Static).update(
            Text(f"{len(self.shown)} of {len(self.all_rows)} trials{srt}{mk}" + (f"\n{extra}" if extra else "")))

    def current(self) -> model.ResultRow | None:
        t = self.query_one("#results", DataTable)
        if not self.shown or not t.row_count:
            return None
        return self.shown[min(t.cursor_row, len(self.shown) - 1)]

    def on_input_changed(self, event: Input.Changed) -> None:
        self.apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#results", DataTable).focus()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_detail()  # enter (or a click on the selected cell) opens the trial

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    def sort_by(self, col: str) -> None:
        self.descending = (not self.descending) if self.sort_col == col else col in ("improv.", "steps", "tokens", "$")
        self.sort_col = col
        self.apply()

    def action_sort(self) -> None:
        t = self.query_one("#results", DataTable)
        self.sort_by(model.RESULT_COLUMNS[t.cursor_column])

    def action_search(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_mark(self) -> None:
        r = self.current()
        if r is None:
            return
        if r.job in self.marked:
            self.marked.remove(r.job)
        else:
            self.marked = (self.marked + [r.job])[-2:]
        self.update_status()

    def action_compare(self) -> None:
        from tui.screens.compare import CompareScreen

        if len(self.marked) != 2:
            self.update_status("mark two jobs with m to compare them")
            return
        self.app.push_screen(CompareScreen(self.all_rows, *self.marked))

    def action_export(self) -> None:
        r = self.current()
        if r is None:
            return
        self.app.push_screen(ExportModal(r.job), lambda fmt, job=r.job: self.export(job, fmt))

    def export(self, job: str, fmt: str | None) -> None:
        if fmt is None:
            return
        p = model.export_report(self.app.jobs_root / job, fmt)
        self.update_status(f"wrote {p}")
        self.notify(f"report written: {p}")

    def action_detail(self) -> None:
        r = self.current()
        if r is not None:
            self.app.open_trial(self.app.jobs_root / r.job / r.trial)

    def action_back(self) -> None:
        f = self.query_one("#filter", Input)
        if f.has_focus:
            self.query_one("#results", DataTable).focus()
        else:
            self.app.pop_screen()
