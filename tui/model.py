"""What the TUI shows, as plain data: no Textual in here, so it is unit-tested without a UI.

- the launcher's choices (workloads by category with SLOs, agents, CLI options) and the
  validation of its form into a ``python -m harness.cli run ...`` command line;
- the jobs under ``$SCHEDCP_JOBS`` and their state;
- a job's live trial rows, built from ``result.json`` files and ``events.jsonl``
  (:class:`JobMonitor`), and incremental tails of ``trajectory.jsonl`` / ``console.log``;
- a trial's trajectory as readable steps, and their search;
- result rows across jobs, their filter/sort, a two-job comparison, report export.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import fmt
from harness.job import job_state, read_events, tail_jsonl, trial_ids  # noqa: F401  (tail_jsonl: used by screens as model.tail_jsonl)
from harness.models import JobConfig

CATEGORY_ORDER = ["cpu", "latency", "server", "data", "gpu"]
PHASES = ["queued", "reset", "setup", "agent", "measure", "stats", "done", "failed", "skipped"]
INTERFACES = ["bash", "mcp"]
SIZES = ["smoke", "full"]


# ---------------------------------------------------------------- launcher choices

@dataclass(frozen=True)
class WorkloadInfo:
    name: str
    category: str
    metric: str
    unit: str
    direction: str
    slo: str


def slo_text(spec) -> str:
    """``<= 0.9x baseline`` / ``>= 1000 ops/s``: the SLO in words, as the CLI prints it."""
    cmp = "<=" if spec.primary.direction == "lower" else ">="
    parts = []
    if spec.slo.relative is not None:
        parts.append(f"{cmp} {fmt.num(spec.slo.relative)}x baseline")
    if spec.slo.absolute is not None:
        parts.append(f"{cmp} {fmt.num(spec.slo.absolute)} {spec.primary_metric.unit}")
    return " and ".join(parts)


def workload_infos() -> list[WorkloadInfo]:
    from harness.workload import list_workloads

    return [WorkloadInfo(w.name, w.spec.category, w.spec.primary.metric, w.spec.primary_metric.unit,
                         w.spec.primary.direction, slo_text(w.spec)) for w in list_workloads()]


def by_category(infos: list[WorkloadInfo]) -> list[tuple[str, list[WorkloadInfo]]]:
    cats = sorted({i.category for i in infos},
                  key=lambda c: (CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else 99, c))
    return [(c, sorted((i for i in infos if i.category == c), key=lambda i: i.name)) for c in cats]


def agent_names() -> list[str]:
    from harness.agents import REGISTRY

    return list(REGISTRY)


def run_help() -> str:
    """The text of ``schedcp run --help`` (from the same parser, without a subprocess)."""
    from harness.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["run"].format_help()


def cli_supports(option: str, help_text: str | None = None) -> bool:
    return re.search(rf"(^|\s|\[){re.escape(option)}\b", help_text if help_text is not None else run_help()) is not None


# ---------------------------------------------------------------- launcher form

@dataclass
class LaunchForm:
    """The launcher's fields as typed (numbers are strings until validated)."""

    workloads: list[str] = field(default_factory=list)
    agent: str = "linux-default"
    model: str = ""
    interface: str = "bash"
    size: str = "smoke"
    attempts: str = "1"
    parallel: str = "1"
    repeat: str = "5"
    max_steps: str = ""
    max_wall_s: str = ""
    max_cost: str = ""
    slo_hint: bool = True
    job_id: str = ""


@dataclass
class Launch:
    job_id: str
    argv: list[str]


_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _num(errors: dict, name: str, text: str, kind, lo, hi=None, optional=False):
    text = text.strip()
    if not text:
        if optional:
            return None
        errors[name] = "required"
        return None
    try:
        v = kind(text)
    except ValueError:
        errors[name] = f"not {'a whole number' if kind is int else 'a number'}: {text!r}"
        return None
    if v < lo or (hi is not None and v > hi):
        errors[name] = f"must be {fmt.num(lo)}..{fmt.num(hi)}" if hi is not None else f"must be >= {fmt.num(lo)}"
        return None
    return v


def validate(form: LaunchForm, *, workloads: list[str], agents: list[str], jobs_root: Path,
             help_text: str = "", python: str = sys.executable, now: str | None = None) -> Launch | dict[str, str]:
    """The form as a command line, or ``{field: message}`` for every field that is wrong."""
    errors: dict[str, str] = {}
    if not form.workloads:
        errors["workloads"] = "choose at least one workload"
    unknown = [w for w in form.workloads if w not in workloads]
    if unknown:
        errors["workloads"] = f"unknown workload(s): {', '.join(unknown)}"
    if form.agent not in agents:
        errors["agent"] = f"unknown agent {form.agent!r}"
    if form.interface not in INTERFACES:
        errors["interface"] = f"one of {', '.join(INTERFACES)}"
    if form.size not in SIZES:
        errors["size"] = f"one of {', '.join(SIZES)}"
    attempts = _num(errors, "attempts", form.attempts, int, 1, 100)
    parallel = _num(errors, "parallel", form.parallel, int, 1, 64)
    repeat = _num(errors, "repeat", form.repeat, int, 1, 1000)
    steps = _num(errors, "max_steps", form.max_steps, int, 1, optional=True)
    wall = _num(errors, "max_wall_s", form.max_wall_s, float, 1, optional=True)
    cost = _num(errors, "max_cost", form.max_cost, float, 0, optional=True)
    model = form.model.strip()
    if model and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/-]*", model):
        errors["model"] = "letters, digits and . _ : / - only"
    job_id = form.job_id.strip()
    if job_id:
        if not _JOB_ID.fullmatch(job_id):
            errors["job_id"] = "letters, digits and . _ - only (no spaces or slashes)"
        elif (jobs_root / job_id).exists():
            errors["job_id"] = f"{jobs_root / job_id} exists already"
    if errors:
        return errors
    if not job_id:
        stamp = now or time.strftime("%Y%m%d-%H%M%S")
        job_id = f"{stamp}-{form.agent}"
        k = 2
        while (jobs_root / job_id).exists():
            job_id, k = f"{stamp}-{form.agent}-{k}", k + 1
    argv = [python, "-m", "harness.cli", "run", "--workloads", ",".join(form.workloads), "--agent", form.agent,
            "--size", form.size, "--attempts", str(attempts), "--parallel", str(parallel), "--repeat", str(repeat)]
    if model:
        argv += ["--model", model]
    if cli_supports("--interface", help_text):
        argv += ["--interface", form.interface]
    if steps is not None:
        argv += ["--max-steps", str(steps)]
    if wall is not None:
        argv += ["--max-wall-s", f"{wall:g}"]
    if cost is not None:
        argv += ["--max-cost", f"{cost:g}"]
    if not form.slo_hint:
        argv.append("--no-slo-hint")
    argv += ["--display", "jsonl", "--job-id", job_id]
    return Launch(job_id, argv)


def resume_command(job_id: str, python: str = sys.executable) -> list[str]:
    """``schedcp jobs resume``: re-runs the trials of a job that have no result.json."""
    return [python, "-m", "harness.cli", "jobs", "resume", job_id, "--display", "jsonl"]


# ---------------------------------------------------------------- jobs

@dataclass
class JobInfo:
    id: str
    dir: Path
    agent: str
    workloads: list[str]
    created: str
    state: str
    config: JobConfig


def _read_json(p: Path):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def load_job_dir(d: Path) -> JobInfo | None:
    raw = _read_json(d / "job.json")
    if not raw:
        return None
    try:
        cfg = JobConfig.model_validate(raw["config"])
    except (KeyError, ValueError):
        return None
    return JobInfo(d.name, d, cfg.agent, cfg.workloads, str(raw.get("created", "")), live_state(d, cfg), cfg)


def live_state(d: Path, cfg: JobConfig) -> str:
    """``complete`` / ``k/n trials``, marked ``running`` or ``stopping`` while the events
    say the job has started and not ended."""
    st = job_state(d, cfg)
    evs, _ = read_events(d)
    starts = [i for i, e in enumerate(evs) if e.get("event") == "job_start"]
    ends = [i for i, e in enumerate(evs) if e.get("event") == "job_end"]
    if starts and (not ends or ends[-1] < starts[-1]):
        return ("stopping, " if (d / "STOP").exists() else "running, ") + st
    if ends and ends[-1] > (starts[-1] if starts else -1):
        last = evs[ends[-1]].get("state", "")
        if last.startswith("stopped"):
            return "stopped, " + st
    return st


def list_jobs(root: Path) -> list[JobInfo]:
    if not root.is_dir():
        return []
    out = [load_job_dir(p) for p in sorted(root.iterdir()) if p.is_dir()]
    return [j for j in out if j is not None]


# ---------------------------------------------------------------- live trial rows

@dataclass
class TrialRow:
    trial: str
    workload: str
    attempt: int
    direction: str = "lower"
    total_runs: int = 12
    phase: str = "queued"
    started: float | None = None
    ended: float | None = None
    elapsed_s: float | None = None  # from result.json when there are no events
    measured: int = 0
    baseline: list[float] = field(default_factory=list)
    tuned: list[float] = field(default_factory=list)
    ratio: float | None = None
    ci95: list[float] | None = None
    failure_kind: str = "none"
    steps: int = 0
    tokens: int = 0
    cost_usd: float | None = 0.0  # None: the model has no price (unknown, never zero)
    last: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "failed", "skipped")

    def progress(self) -> float:
        p = {"queued": 0.0, "reset": 0.05, "setup": 0.1, "agent": 0.2, "stats": 0.97}.get(self.phase)
        if self.finished:
            return 1.0
        if self.phase == "measure":
            return 0.3 + 0.65 * min(1.0, self.measured / max(1, self.total_runs))
        return p if p is not None else 0.0

    def elapsed(self, now: float | None = None) -> float | None:
        if self.started is not None:
            end = self.ended if self.ended is not None else (now if now is not None else time.time())
            return max(0.0, end - self.started)
        return self.elapsed_s

    def improvement(self) -> tuple[float | None, bool]:
        """The recorded ratio, or (while measuring) the estimate from the runs so far;
        the flag says whether it is an estimate."""
        if self.ratio is not None:
            return self.ratio, False
        if self.baseline and self.tuned:
            b, t = statistics.median(self.baseline), statistics.median(self.tuned)
            if b > 0 and t > 0:
                return (b / t if self.direction == "lower" else t / b), True
        return None, False


def bar(frac: float, width: int = 10) -> str:
    n = round(max(0.0, min(1.0, frac)) * width)
    return "█" * n + "░" * (width - n)


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}"


def fmt_ratio(r: float | None, estimate: bool = False) -> str:
    return "-" if r is None else f"{'~' if estimate else ''}{fmt.ratio(r)}x"


def fmt_tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def row_cells(r: TrialRow, now: float | None = None) -> tuple[str, ...]:
    imp, est = r.improvement()
    return (r.trial, r.phase, bar(r.progress()), fmt_s(r.elapsed(now)), str(r.steps), fmt_tokens(r.tokens),
            fmt_cost(r.cost_usd), fmt_ratio(imp, est))


ROW_COLUMNS = ("trial", "phase", "progress", "time", "steps", "tokens", "$", "improv.")


def _direction(workload: str) -> str:
    try:
        from harness.workload import load_workload

        return load_workload(workload).spec.primary.direction
    except Exception:  # a workload renamed since the job ran: ratio estimates assume lower
        return "lower"


def _total_runs(workload: str, repeat: int | None, size: str) -> int:
    """Runs a trial's measure phase makes: per round and side, the warm-up and the measured run."""
    try:
        from harness.workload import load_workload

        spec = load_workload(workload).spec
        rounds = repeat if repeat is not None else spec.repetitions[size]
        return 2 * rounds * (1 + spec.warmup_runs)
    except Exception:
        return 2 * (1 + (repeat or 5))


class JobMonitor:
    """A job's trials as rows: first from the ``result.json`` files, then kept up to date
    by the events appended to ``events.jsonl`` (call :meth:`poll`). Works for a job
    started by the TUI or headless elsewhere, and for old jobs without events."""

    def __init__(self, job_dir: Path):
        self.dir = job_dir
        self.offset = 0
        self.rows: dict[str, TrialRow] = {}
        self.config: JobConfig | None = None
        self.running = False
        self.end_state = ""
        self.messages: list[str] = []  # job-level lines (created, skipped, ended)

    @property
    def id(self) -> str:
        return self.dir.name

    def _load(self) -> bool:
        if self.config is not None:
            return True
        info = load_job_dir(self.dir)
        if info is None:
            return False
        self.config = info.config
        for tid, wl, k in trial_ids(info.config):
            row = TrialRow(tid, wl, k, direction=_direction(wl), total_runs=_total_runs(wl, info.config.repeat, info.config.size))
            self._from_result(row)
            if row.phase == "queued" and (self.dir / tid).is_dir():
                row.phase = "interrupted"
            self.rows[tid] = row
        return True

    def _from_result(self, row: TrialRow) -> None:
        raw = _read_json(self.dir / row.trial / "result.json")
        if not raw:
            return
        row.phase = raw.get("status", "done")
        row.failure_kind = raw.get("failure_kind", "none")
        imp = raw.get("improvement") or {}
        row.ratio, row.ci95 = imp.get("ratio"), imp.get("ci95")
        u = raw.get("usage") or {}
        row.steps = int(u.get("steps", 0))
        row.tokens = int(u.get("input_tokens", 0)) + int(u.get("output_tokens", 0))
        row.cost_usd = _cost(u.get("cost_usd", 0.0))
        row.elapsed_s = (raw.get("phases_s") or {}).get("total")
        pm = raw.get("primary_metric", "")
        row.baseline = [r[pm] for r in raw.get("baseline_runs", []) if pm in r]
        row.tuned = [r[pm] for r in raw.get("tuned_runs", []) if pm in r]
        row.measured = row.total_runs
        if row.failure_kind != "none":
            row.last = (raw.get("failure") or "")[:200]

    def poll(self) -> list[dict]:
        """Apply the events appended since the last call; returns them."""
        if not self._load():
            return []
        evs, self.offset = read_events(self.dir, self.offset)
        for e in evs:
            self.apply(e)
        return evs

    def apply(self, e: dict) -> None:
        kind, ts = e.get("event"), e.get("ts")
        row = self.rows.get(e.get("trial", ""))
        if kind == "job_start":
            self.running, self.end_state = True, ""
            self.messages.append(f"job started: {e.get('to_run')} of {e.get('trials')} trials to run")
        elif kind == "job_end":
            self.running, self.end_state = False, str(e.get("state", ""))
            self.messages.append(f"job ended: {self.end_state}")
        elif row is None:
            return
        elif kind == "trial_skip":
            if e.get("reason") != "already recorded":
                row.phase = "skipped"
                row.last = str(e.get("reason", ""))
        elif kind == "trial_start":
            fresh = TrialRow(row.trial, row.workload, row.attempt, row.direction, row.total_runs)
            self.rows[row.trial] = fresh
            fresh.phase, fresh.started = "reset", ts
            if e.get("attempt", 1) > 1:  # a Ray job's trial retried after its worker was lost
                fresh.last = f"attempt {e['attempt']} on {e.get('host')} {e.get('node', '')}".rstrip()
        elif kind == "trial_error":  # a Ray job's trial that could not run anywhere (not recorded)
            row.phase, row.last = "failed", str(e.get("error", ""))
        elif kind == "phase":
            row.phase = str(e.get("phase"))
            if row.started is None:
                row.started = ts
        elif kind == "agent":
            row.last = str(e.get("text", ""))
            for k in ("steps", "tokens"):
                if k in e:
                    setattr(row, k, int(e[k]))
            if "cost_usd" in e:
                row.cost_usd = _cost(e["cost_usd"])
        elif kind == "measure":
            row.measured += 1
            if not e.get("warmup"):
                (row.baseline if e.get("role") == "baseline" else row.tuned).append(float(e["value"]))
        elif kind == "trial_end":
            row.ended = ts
            started = row.started
            self._from_result(row)
            row.phase = str(e.get("status", row.phase))
            row.started, row.ended = started, ts
            if e.get("ratio") is not None:
                row.ratio = float(e["ratio"])

    def progress(self) -> float:
        return sum(r.progress() for r in self.rows.values()) / max(1, len(self.rows))


def _cost(v) -> float | None:
    return None if v is None else float(v)


def fmt_cost(v: float | None) -> str:
    return fmt.usd(v, none="?")


# ---------------------------------------------------------------- tails

def rewritten(path: Path, offset: int) -> bool:
    """The file is shorter than what was read of it: it was recreated (a trial that
    ``schedcp jobs resume`` runs again starts a new folder)."""
    try:
        return path.stat().st_size < offset
    except OSError:
        return False


def console_path(trial_dir: Path) -> Path | None:
    """The trial's guest console: its saved copy once the VM closed, else the live file
    the running trial announces in ``live.json``."""
    saved = trial_dir / "console.log"
    if saved.is_file():
        return saved
    try:
        live = Path(json.loads((trial_dir / "live.json").read_text())["console"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return live if live.is_file() else None


def tail_text(path: Path, lines: int = 200, max_bytes: int = 256 << 10) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- trajectory steps

@dataclass
class Step:
    index: int
    t: float
    kind: str
    title: str
    body: str = ""

    def text(self) -> str:
        return f"{self.title}\n{self.body}"


def _short(v, n: int = 200) -> str:
    s = v if isinstance(v, str) else json.dumps(fmt.rounded(v), default=str)
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def to_step(i: int, rec: dict) -> Step:
    kind = str(rec.get("type", "?"))
    t = float(rec.get("t", 0.0))
    if kind == "phase":
        return Step(i, t, kind, f"phase {rec.get('phase')}")
    if kind == "instruction":
        return Step(i, t, kind, "instruction", str(rec.get("text", "")))
    if kind == "message":
        if "content" in rec:
            parts = []
            for b in rec.get("content") or []:
                if b.get("type") == "text":
                    parts.append(b.get("text", ""))
                elif b.get("type") == "tool_use":
                    parts.append(f"[tool_use {b.get('name')}] {json.dumps(b.get('input'), default=str)}")
            body = "\n".join(parts)
        else:
            body = str(rec.get("text", ""))
        title = f"{rec.get('role', '?')}: {_short(body, 100)}"
        return Step(i, t, kind, title, body)
    if kind == "tool_call":
        return Step(i, t, kind, f"call {rec.get('name')} {_short(rec.get('input'), 100)}",
                    json.dumps(rec.get("input"), indent=2, default=str))
    if kind == "tool_result":
        return Step(i, t, kind, f"result {_short(rec.get('output', ''), 100)}", str(rec.get("output", "")))
    if kind == "command":
        body = str(rec.get("stdout", ""))
        if rec.get("stderr"):
            body += ("\n" if body else "") + "[stderr] " + str(rec["stderr"])
        flags = " timed out" if rec.get("timed_out") else ""
        return Step(i, t, kind, f"$ {rec.get('cmd')}  (rc {rec.get('returncode')}, "
                                f"{fmt.seconds(float(rec.get('duration_s', 0)))}s{flags})", body)
    if kind in ("trial_run", "measure"):
        what = rec.get("metrics") if rec.get("metrics") is not None else rec.get("error")
        rnd = rec.get("round", rec.get("index"))  # trials write "round"; older trajectories "index"
        who = f"{rec.get('role')} #{rnd}{' warm-up' if rec.get('warmup') else ''} " if kind == "measure" else ""
        dur = f" ({fmt.seconds(float(rec['duration_s']))}s)" if "duration_s" in rec else ""
        return Step(i, t, kind, f"{kind} {who}{_short(what, 100)}{dur}")
    if kind == "write_file":
        return Step(i, t, kind, f"write {rec.get('path')} ({rec.get('bytes')} bytes)")
    rest = {k: v for k, v in rec.items() if k not in ("t", "type")}
    return Step(i, t, kind, f"{kind} {_short(rest, 100)}", json.dumps(fmt.rounded(rest), indent=2, default=str))


def to_steps(records: list[dict], start: int = 0) -> list[Step]:
    return [to_step(start + i, r) for i, r in enumerate(records)]


def search_steps(steps: list[Step], query: str) -> list[Step]:
    """Steps whose title or body holds every word of ``query`` (case-insensitive);
    ``kind:command`` keeps one kind of step."""
    words = query.lower().split()
    kinds = [w[5:] for w in words if w.startswith("kind:")]
    words = [w for w in words if not w.startswith("kind:")]
    out = []
    for s in steps:
        if kinds and s.kind not in kinds:
            continue
        hay = s.text().lower()
        if all(w in hay for w in words):
            out.append(s)
    return out


def trial_files(trial_dir: Path) -> list[Path]:
    """Files the agent wrote (host copies under ``files/``), relative to it."""
    root = trial_dir / "files"
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


_LANGS = {".py": "python", ".c": "c", ".h": "c", ".bpf": "c", ".sh": "bash", ".json": "json", ".yaml": "yaml",
          ".yml": "yaml", ".toml": "toml", ".md": "markdown", ".conf": "bash", ".rs": "rust"}


def language_for(path: Path, text: str = "") -> str | None:
    if path.suffix in _LANGS:
        return _LANGS[path.suffix]
    if text.startswith("#!") and ("sh" in text.splitlines()[0]):
        return "bash"
    if "sysctl" in path.parts or path.name.endswith(".sysctl"):
        return "bash"
    return None


# ---------------------------------------------------------------- results across jobs

@dataclass
class ResultRow:
    job: str
    trial: str
    workload: str
    agent: str
    model: str
    attempt: int
    status: str
    improvement: float | None
    ci95: tuple[float, float] | None
    slo_met: bool | None
    steps: int
    tokens: int
    cost_usd: float | None
    failure_kind: str
    goal: str = ""  # RQ2 goal inference verdict, when result.json has one
    declared: str = ""  # the goal the agent declared
    interface: str = ""
    verdict: str = ""  # harness/scoring.py: improved / regressed / no_change / inconclusive

    def cells(self) -> tuple[str, ...]:
        ci = fmt.ci(self.ci95, sep="-")
        slo = "-" if self.slo_met is None else ("met" if self.slo_met else "no")
        return (self.workload, fmt_ratio(self.improvement), ci, VERDICT_CELL.get(self.verdict, self.verdict or "-"),
                slo, str(self.steps), fmt_tokens(self.tokens),
                fmt_cost(self.cost_usd), "-" if self.failure_kind == "none" else self.failure_kind, self.goal or "-",
                self.declared or "-", self.agent, self.interface or "-", self.model or "-", self.job)


# the workload first and the long job id last, so that an 80-column terminal shows the numbers
# short forms of harness/scoring.py's verdicts for an 80-column table
VERDICT_CELL = {"improved": "better", "regressed": "worse", "no_change": "same", "inconclusive": "unsure"}
RESULT_COLUMNS = ("workload", "improv.", "CI95", "verdict", "SLO", "steps", "tokens", "$", "failure", "goal", "declared",
                  "agent", "iface", "model", "job")
SORT_KEYS = {"job": "job", "workload": "workload", "agent": "agent", "model": "model", "improv.": "improvement",
             "CI95": "ci95", "verdict": "verdict", "SLO": "slo_met", "steps": "steps", "tokens": "tokens", "$": "cost_usd",
             "failure": "failure_kind", "goal": "goal", "declared": "declared", "iface": "interface"}


def goal_cells(raw: dict) -> tuple[str, str]:
    """RQ2 goal inference of a trial run without the SLO hint: ``result.json``'s ``goal``
    (``declared`` {metric, direction} or None, ``correct``, ``metric_ok``,
    ``direction_ok``) as (verdict, declared); ``("", "")`` when there is none."""
    g = raw.get("goal")
    if not isinstance(g, dict):
        return "", ""
    d = g.get("declared")
    if not isinstance(d, dict):
        return "none", ""
    if g.get("correct"):
        verdict = "ok"
    else:
        wrong = [w for w, k in (("metric", "metric_ok"), ("dir", "direction_ok")) if not g.get(k)]
        verdict = "wrong " + "+".join(wrong) if wrong else "wrong"
    return verdict, _short(f"{d.get('metric', '?')} {d.get('direction', '?')}", 24)


def _slo_met(slo: dict) -> bool | None:
    """True / False for an SLO verdict of met / not_met (harness/scoring.py); None when it
    is inconclusive or absent. Results written before verdicts existed have tuned_met."""
    if "verdict" in slo:
        return {"met": True, "not_met": False}.get(slo["verdict"])
    return slo.get("tuned_met") if "tuned_met" in slo else None


def result_rows(jobs: list[JobInfo]) -> list[ResultRow]:
    out = []
    for j in jobs:
        for t in sorted(p for p in j.dir.iterdir() if p.is_dir()):
            raw = _read_json(t / "result.json")
            if not isinstance(raw, dict):
                continue
            imp = raw.get("improvement") or {}
            ci = imp.get("ci95")
            u = raw.get("usage") or {}
            slo = raw.get("slo") or {}
            goal, declared = goal_cells(raw)
            out.append(ResultRow(
                job=j.id, trial=raw.get("trial_id", t.name), workload=raw.get("workload", ""),
                agent=raw.get("agent", ""), model=raw.get("model") or "", attempt=int(raw.get("attempt", 0)),
                status=raw.get("status", ""), improvement=imp.get("ratio"),
                ci95=(float(ci[0]), float(ci[1])) if ci else None,
                slo_met=_slo_met(slo),
                steps=int(u.get("steps", 0)), tokens=int(u.get("input_tokens", 0)) + int(u.get("output_tokens", 0)),
                cost_usd=_cost(u.get("cost_usd", 0.0)), failure_kind=raw.get("failure_kind", "none"),
                goal=goal, declared=declared, interface=raw.get("interface", ""),
                verdict=raw.get("verdict", "")))
    return out


def filter_rows(rows: list[ResultRow], query: str) -> list[ResultRow]:
    """Every word must match: ``field:value`` (job, workload, agent, model, status, failure,
    goal, iface, slo=met/no/-) or a substring of job/workload/agent/model/failure kind."""
    out = list(rows)
    for w in query.lower().split():
        key, sep, val = w.partition(":")
        if sep and key in ("job", "workload", "agent", "model", "status", "failure", "goal", "iface", "slo"):
            def ok(r, key=key, val=val):
                if key == "slo":
                    return ("-" if r.slo_met is None else "met" if r.slo_met else "no") == val
                attr = {"failure": "failure_kind", "iface": "interface"}.get(key, key)
                return val in str(getattr(r, attr) or "").lower()
        else:
            def ok(r, w=w):
                return any(w in str(x).lower() for x in (r.job, r.workload, r.agent, r.model, r.failure_kind))
        out = [r for r in out if ok(r)]
    return out


def sort_rows(rows: list[ResultRow], column: str, descending: bool = False) -> list[ResultRow]:
    """Sorted by a column (name as shown); empty values go last either way."""
    attr = SORT_KEYS.get(column, column)
    have = [r for r in rows if getattr(r, attr) is not None]
    none = [r for r in rows if getattr(r, attr) is None]
    return sorted(have, key=lambda r: getattr(r, attr), reverse=descending) + none


@dataclass
class CompareRow:
    workload: str
    a: float | None
    b: float | None
    a_slo: bool | None
    b_slo: bool | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    def cells(self) -> tuple[str, ...]:
        d = self.delta
        slo = lambda v: "-" if v is None else ("met" if v else "no")  # noqa: E731
        return (self.workload, fmt_ratio(self.a), slo(self.a_slo), fmt_ratio(self.b), slo(self.b_slo),
                fmt.signed(d))


COMPARE_COLUMNS = ("workload", "A best", "A SLO", "B best", "B SLO", "B-A")


def compare_jobs(rows: list[ResultRow], job_a: str, job_b: str) -> list[CompareRow]:
    """Per workload of either job: the best improvement of each job (best of its attempts)."""
    def best(job: str, wl: str) -> ResultRow | None:
        rs = [r for r in rows if r.job == job and r.workload == wl and r.improvement is not None]
        return max(rs, key=lambda r: r.improvement) if rs else None

    wls = sorted({r.workload for r in rows if r.job in (job_a, job_b)})
    out = []
    for wl in wls:
        a, b = best(job_a, wl), best(job_b, wl)
        out.append(CompareRow(wl, a.improvement if a else None, b.improvement if b else None,
                              a.slo_met if a else None, b.slo_met if b else None))
    return out


REPORT_FORMATS = ("md", "csv", "json")


def export_report(job_dir: Path, fmt: str) -> Path:
    """``schedcp report``'s table of a job, written to ``<job>/report.<fmt>``."""
    from harness.job import job_results
    from harness.report import render

    if fmt not in REPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(REPORT_FORMATS)}")
    p = job_dir / f"report.{fmt}"
    with open(p, "w", newline="") as f:  # csv rows end in \r\n, as the csv module writes them
        f.write(render(job_results(job_dir), fmt) + "\n")
    return p
