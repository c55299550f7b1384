"""Trial detail: the whole trajectory (searchable), the baseline/tuned metrics with their
runs plotted, the SLO status, and the files the agent wrote (syntax-highlighted)."""

from __future__ import annotations

import json

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import (DataTable, Footer, Header, Input, OptionList, RichLog, Static, TabbedContent,
                             TabPane)

from harness import fmt
from tui import model
from tui.widgets.runs_plot import RunsPlot


def _unit(workload: str, metric: str) -> str:
    try:
        from harness.workload import load_workload

        return next(m.unit for m in load_workload(workload).spec.metrics if m.name == metric)
    except Exception:
        return ""


class TrialScreen(Screen):
    BINDINGS = [
        Binding("slash", "search", "Search", key_display="/"),
        Binding("t", "tab('trajectory')", "Trajectory"),
        Binding("m", "tab('metrics')", "Metrics"),
        Binding("f", "tab('files')", "Files"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, trial_dir):
        super().__init__()
        self.trial_dir = trial_dir
        self.result = model._read_json(trial_dir / "result.json") or {}
        recs, self.traj_offset = model.tail_jsonl(trial_dir / "trajectory.jsonl")
        self.steps = model.to_steps(recs)
        self.shown = list(self.steps)
        self.files = model.trial_files(trial_dir)
        self.file_shown: Syntax | None = None

    def summary(self) -> str:
        r = self.result
        if not r:
            return f"{self.trial_dir.name}: no result.json yet (running or interrupted)"
        imp = r.get("improvement") or {}
        ci = imp.get("ci95")
        slo = r.get("slo") or {}
        slo_s = "-" if "tuned_met" not in slo else ("met" if slo["tuned_met"] else "NOT met")
        slo_def = slo.get("slo") or {}
        slo_def_s = ", ".join(f"{k} {fmt.num(v)}" for k, v in slo_def.items() if v is not None)
        fail = "" if r.get("failure_kind", "none") == "none" else f"  {r['failure_kind']}"
        u = r.get("usage") or {}
        ci_s = f" {fmt.ci(ci)}" if ci else ""
        p_s = f" p={fmt.pvalue(imp['p_value'])}" if imp.get("p_value") is not None else ""
        line1 = (f"{r.get('trial_id', self.trial_dir.name)}  {r.get('status', '?')}{fail}  "
                 f"{model.fmt_ratio(imp.get('ratio'))}{ci_s}{p_s}")
        line2 = (f"SLO {slo_s} ({slo_def_s or 'n/a'})  steps {u.get('steps', 0)}  tokens "
                 f"{u.get('input_tokens', 0) + u.get('output_tokens', 0)}  ${model.fmt_cost(u.get('cost_usd', 0))}  "
                 f"{model.fmt_s((r.get('phases_s') or {}).get('total'))}")
        return line1 + "\n" + line2

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(self.summary()), id="summary", classes="bar2")
        with TabbedContent(id="tabs", initial="trajectory"):
            with TabPane("Trajectory", id="trajectory"):
                yield Input(placeholder="/ filter: words (all must match), kind:command", id="filter", compact=True)
                yield Static(id="count", classes="hint")
                yield RichLog(id="steps", wrap=True, markup=False, highlight=False, auto_scroll=False)
            with TabPane("Metrics", id="metrics"):
                with VerticalScroll():
                    yield from self.compose_metrics()
            with TabPane("Files", id="files"):
                yield from self.compose_files()
        yield Footer()

    def compose_metrics(self) -> ComposeResult:
        r = self.result
        summary = r.get("summary") or {}
        if not summary:
            yield Static("no measurements" + (f": {r.get('failure')}" if r.get("failure") else ""), classes="note")
            return
        t = DataTable(id="metric-table", cursor_type="row")
        t.add_columns("metric", "side", "median", "mean", "stdev", "cv", "min", "max", "n")
        for m, sides in summary.items():
            for side in ("baseline", "tuned"):
                s = sides[side]
                t.add_row(m, side, *(fmt.metric(s[k]) for k in ("median", "mean", "stdev")), fmt.percent(s["cv"]),
                          fmt.metric(s["min"]), fmt.metric(s["max"]), str(int(s["n"])))
        yield t
        pm = r.get("primary_metric", "")
        yield RunsPlot(pm, _unit(r.get("workload", ""), pm), [x[pm] for x in r.get("baseline_runs", []) if pm in x],
                       [x[pm] for x in r.get("tuned_runs", []) if pm in x], id="plot")
        g = r.get("goal")
        if isinstance(g, dict):
            verdict, declared = model.goal_cells(r)
            truth = g.get("truth") or {}
            yield Static(Text(f"goal inference: {verdict}; declared {declared or 'nothing'}"
                              + (f" at step {g['step']}" if g.get("step") is not None else "")
                              + f"; truth {truth.get('metric', '?')} {truth.get('direction', '?')}"), id="goal")
        tc = r.get("tuned_config") or {}
        if tc:
            yield Static("left in place: " + json.dumps(tc), classes="note")

    def compose_files(self) -> ComposeResult:
        if not self.files:
            yield Static("The agent wrote no files in this trial (host copies live in files/).", classes="note")
            return
        with Horizontal():
            yield OptionList(*[str(p) for p in self.files], id="file-list")
            with VerticalScroll(id="file-view"):
                yield Static(id="file-text")

    def on_mount(self) -> None:
        self.show_steps()
        if self.files:
            self.show_file(0)
        if not self.result:  # still running: follow its trajectory until result.json appears
            self.set_interval(self.app.poll_s, self.follow)

    def follow(self) -> None:
        recs, self.traj_offset = model.tail_jsonl(self.trial_dir / "trajectory.jsonl", self.traj_offset)
        new = model.to_steps(recs, len(self.steps))
        self.steps += new
        hits = model.search_steps(new, self.query_one("#filter", Input).value)
        self.shown += hits
        self.write_steps(hits)
        self.update_count()
        if not self.result:
            self.result = model._read_json(self.trial_dir / "result.json") or {}
            if self.result:
                self.query_one("#summary", Static).update(Text(self.summary()))

    def show_steps(self) -> None:
        self.query_one("#steps", RichLog).clear()
        self.write_steps(self.shown)
        self.query_one("#steps", RichLog).scroll_home(animate=False)
        self.update_count()

    def write_steps(self, steps: list[model.Step]) -> None:
        log = self.query_one("#steps", RichLog)
        for s in steps:
            log.write(Text(f"{s.index:3} {s.t:7.1f}s {s.title}", style="bold" if s.kind != "phase" else "bold cyan"))
            if s.body:
                log.write(Text(s.body if len(s.body) < 4000 else s.body[:4000] + "…", style="dim"))

    def update_count(self) -> None:
        self.query_one("#count", Static).update(f"{len(self.shown)} of {len(self.steps)} steps")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.shown = model.search_steps(self.steps, event.value)
            self.show_steps()

    def show_file(self, i: int) -> None:
        p = self.files[i]
        text = (self.trial_dir / "files" / p).read_text(errors="replace")
        lang = model.language_for(p, text) or "text"
        self.file_shown = Syntax(text, lang, line_numbers=True, word_wrap=False)
        self.query_one("#file-text", Static).update(self.file_shown)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_file(event.option_index)

    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "trajectory"
        self.query_one("#filter", Input).focus()

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_back(self) -> None:
        f = self.query_one("#filter", Input)
        if f.has_focus and f.value:
            f.value = ""
        else:
            self.app.pop_screen()
