"""Launcher: the job's settings as a form; validated by :func:`tui.model.validate`, errors
shown next to their field; Start runs ``python -m harness.cli run ...`` in the background
and opens its dashboard."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui import model
from tui.jobs import JobProcess

NUMBER_FIELDS = [  # (field, label, default, placeholder)
    ("attempts", "attempts", "1", ""),
    ("parallel", "parallel", "1", ""),
    ("repeat", "repeat", "5", "measured runs per side"),
    ("max_steps", "max steps", "", "default 40"),
    ("max_wall_s", "max wall s", "", "default 1800"),
    ("max_cost", "max cost $", "", "default 5"),
]


def _row(label: str, widget, name: str):
    return [Horizontal(Label(label, classes="flabel"), widget, classes="frow"),
            Static("", id=f"err-{name}", classes="error")]


class LauncherScreen(Screen):
    BINDINGS = [
        Binding("ctrl+s", "start", "Start job"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        self.infos = model.workload_infos()
        self.help_text = model.run_help()
        self.has_interface = model.cli_supports("--interface", self.help_text)
        yield Header()
        with VerticalScroll(id="form", can_focus=False):
            yield Label("Workloads (space toggles; SLO of the primary metric)", classes="section")
            items: list = []
            for cat, infos in model.by_category(self.infos):
                items.append(Selection(f"── {cat} ──", f"@{cat}", disabled=True))
                for i in infos:
                    items.append(Selection(f"{i.name:15} {i.metric} ({i.direction}) SLO {i.slo}", i.name))
            yield SelectionList(*items, id="workloads", compact=True)
            yield Static("selected: none", id="selected", classes="note")
            yield Static("", id="err-workloads", classes="error")
            agents = model.agent_names()
            yield from _row("agent", Select([(a, a) for a in agents], value="linux-default" if "linux-default"
                                            in agents else agents[0], allow_blank=False, id="agent", compact=True), "agent")
            yield from _row("model", Input(placeholder="claude: default claude-sonnet-4-5", id="model", compact=True), "model")
            yield from _row("interface", Select([(i, i) for i in model.INTERFACES], value="bash", allow_blank=False,
                                                id="interface", disabled=not self.has_interface, compact=True), "interface")
            if not self.has_interface:
                yield Static("this `schedcp run` has no --interface option yet: agents use their default tools",
                             id="interface-note", classes="note")
            yield from _row("size", Select([(s, s) for s in model.SIZES], value="smoke", allow_blank=False,
                                           id="size", compact=True), "size")
            for name, label, default, ph in NUMBER_FIELDS:
                yield from _row(label, Input(default, placeholder=ph, id=name, compact=True), name)
            yield Horizontal(Label("SLO hint", classes="flabel"),
                             Checkbox("tell the agent the SLO", True, id="slo_hint", compact=True), classes="frow")
            yield from _row("job id", Input(placeholder="default: <time>-<agent>", id="job_id", compact=True), "job_id")
            yield Static("", id="command", classes="note")
            yield Button("Start (ctrl+s)", id="start", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#workloads", SelectionList).focus()

    def form(self) -> model.LaunchForm:
        v = lambda i: self.query_one(f"#{i}", Input).value  # noqa: E731
        return model.LaunchForm(
            workloads=[w for w in self.query_one("#workloads", SelectionList).selected if not w.startswith("@")],
            agent=str(self.query_one("#agent", Select).value), model=v("model"),
            interface=str(self.query_one("#interface", Select).value), size=str(self.query_one("#size", Select).value),
            attempts=v("attempts"), parallel=v("parallel"), repeat=v("repeat"), max_steps=v("max_steps"),
            max_wall_s=v("max_wall_s"), max_cost=v("max_cost"), slo_hint=self.query_one("#slo_hint", Checkbox).value,
            job_id=v("job_id"))

    def check(self) -> model.Launch | dict[str, str]:
        res = model.validate(self.form(), workloads=[i.name for i in self.infos], agents=model.agent_names(),
                             jobs_root=self.app.jobs_root, help_text=self.help_text, python=self.app.python)
        errors = res if isinstance(res, dict) else {}
        for err in self.query(".error"):
            name = err.id.removeprefix("err-")
            err.update(errors.get(name, ""))
            err.set_class(name in errors, "shown")
        return res

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        chosen = [w for w in event.selection_list.selected if not w.startswith("@")]
        self.query_one("#selected", Static).update("selected: " + (", ".join(chosen) or "none"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()

    def action_start(self) -> None:
        res = self.check()
        if isinstance(res, dict):
            first = next(iter(res))
            self.notify(f"{len(res)} field(s) to fix: {first}: {res[first]}", severity="error")
            target = self.query(f"#{first}")
            if target:
                target.first().focus()
            return
        self.query_one("#command", Static).update(" ".join(res.argv[1:]))
        proc = JobProcess.start(res.argv, res.job_id, self.app.jobs_root)
        self.app.processes[res.job_id] = proc
        self.app.pop_screen()
        self.app.open_dashboard(res.job_id)
