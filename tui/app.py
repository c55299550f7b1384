"""`schedcp-tui`: the Textual front end. Until the TUI issue lands it shows the images
and sandbox facts (a real, working screen, not a mock-up of the future one)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Static


class SchedcpApp(App):
    TITLE = "schedcp-bench"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Built guest images (schedcp image list). Jobs and live trials arrive with the harness.")
        yield DataTable(id="images")
        yield Footer()

    def on_mount(self) -> None:
        from images.store import list_images

        t = self.query_one(DataTable)
        t.add_columns("image", "kernel", "base sha256", "MiB")
        for s in (i.summary() for i in list_images()):
            t.add_row(s["key"], s["kernel"], s["base_sha256"][:16], str(s["size_mib"]))


def make_app() -> SchedcpApp:
    return SchedcpApp()


def main() -> None:
    make_app().run()
