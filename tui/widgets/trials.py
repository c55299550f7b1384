"""The dashboard's trial table: one row per trial, cells from :func:`tui.model.row_cells`."""

from __future__ import annotations

from textual.widgets import DataTable

from tui.model import ROW_COLUMNS, TrialRow, row_cells


class TrialTable(DataTable):
    DEFAULT_CSS = "TrialTable { height: auto; max-height: 9; }"

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for c in ROW_COLUMNS:
            self.add_column(c, key=c)

    def show(self, rows: list[TrialRow], now: float | None = None) -> None:
        """Add new rows, update changed cells (the cursor stays where it is)."""
        for r in rows:
            cells = row_cells(r, now)
            cells = (f"{r.workload} a{r.attempt}",) + cells[1:]
            if r.trial not in self.rows:
                self.add_row(*cells, key=r.trial)
                continue
            for col, val in zip(ROW_COLUMNS, cells):
                if self.get_cell(r.trial, col) != val:
                    self.update_cell(r.trial, col, val, update_width=True)

    @property
    def selected_trial(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
