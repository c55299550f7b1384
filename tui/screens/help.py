"""``?``: the key bindings of the screen below and of the app."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

ABOUT = ("schedcp-tui reads the jobs folder ($SCHEDCP_JOBS): jobs started here or with `schedcp run` "
         "are watched the same way, through jobs/<id>/events.jsonl.")


def bindings_of(obj) -> list[tuple[str, str]]:
    out = []
    for b in getattr(obj, "BINDINGS", []):
        if isinstance(b, tuple):
            b = Binding(*b)
        if b.description:
            key = b.key_display or {"escape": "esc", "question_mark": "?", "slash": "/"}.get(b.key, b.key)
            out.append((key, b.description))
    return out


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def __init__(self, below: Screen):
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        lines = [f"Keys: {type(self.below).__name__.removesuffix('Screen')}", ""]
        lines += [f"  {k:10} {d}" for k, d in bindings_of(self.below)]
        lines += ["", "Everywhere", ""]
        lines += [f"  {k:10} {d}" for k, d in bindings_of(self.app)]
        lines += ["  tab        next field / pane", "  mouse      click rows, headers (sort), buttons, tabs",
                  "", ABOUT, "", "esc / ? closes this help."]
        with VerticalScroll(classes="dialog"):
            yield Static("\n".join(lines), id="help-text")
