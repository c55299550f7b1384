"""A trial as one ATIF trajectory (the Agent Trajectory Interchange Format of Harbor,
RFC 0001; :data:`ATIF_VERSION`), from its ``trajectory.jsonl`` and ``result.json``.

Plain dicts that follow the schema: Harbor is not needed to export (the tests validate
the output with Harbor's own models and validator). The steps, for every agent kind:

- the instruction: one ``user`` step;
- LLM agents (``claude``, ``openai``): one ``agent`` step per model reply (its text,
  ``thinking`` as ``reasoning_content``, its tool calls, one observation result per call
  holding the text the model got back, and per-step ``metrics``: tokens from the API's
  usage, cost from ``harness/prices.yaml``; a malformed call is answered by its error, the
  reason the harness recorded); a harness reminder (a nudge) is a ``user`` step;
- CLI agents (``cli:NAME``): one ``agent`` step per model reply of the CLI's own
  transcript (the ``cli_event`` records; one message id is one step, whatever the number
  of events it came in), observations from the CLI's tool results (what the model saw),
  each joined to the harness's record of that call; per-step tokens are what the stream
  reports (Claude Code gives output tokens only in its session totals, so the per-step
  ``completion_tokens`` are left out where it reports 0);
- external MCP clients: one ``agent`` step per tool call (the client's model is not seen);
- tuners and baselines (``scx-search``, ``optuna``, ``bandit``, ``random``,
  ``linux-default``, ``replay``): deterministic ``agent`` steps (``llm_call_count`` 0, no
  metrics): the commands and trial runs since the previous step become its tool calls
  (``bash``, ``run_workload``, ``write_file``), and the tuner's note (``candidate ...``,
  ``keeping ...``) its message;
- API errors, budget limits, notes and failures: ``system`` steps.

A tool call's guest commands, file writes and trial runs are kept in its observation
result's ``extra.events``. ``final_metrics`` come from ``result.json`` (what the budget
counted); ``extra`` holds the trial's id, job, workload, verdict, ratio, CI, failure kind
and the rest of the outcome. Step timestamps need the job's ``events.jsonl`` (when the
trial started); without it steps carry only ``extra.t_s``, seconds since the trial began.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
from pathlib import Path

from .limits import price
from .steps import step_text
from .trial import read_result

ATIF_VERSION = "ATIF-v1.7"
ATIF_FILE = "trajectory.atif.json"  # beside trajectory.jsonl in the trial folder
_ACTIONS = {"command", "write_file", "trial_run"}  # guest actions: a tool call's, or a tuner's own
_SYSTEM = {"api_error", "limit", "note", "failure", "skipped", "mcp_ready", "traceback"}
NOTES = ("Exported by schedcp-bench from the trial's trajectory.jsonl and result.json. final_metrics.total_steps "
         "counts the steps here (user, system and agent); the harness's step budget (model calls, or a tuner's "
         "candidates) is final_metrics.extra.budget_steps. Tool schemas in agent.tool_definitions are those of "
         "the exporting version of the harness.")


def _version() -> str:
    try:
        return importlib.metadata.version("schedcp-bench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _records(path: Path) -> list[dict]:
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "type" in rec:
                out.append(rec)
    return out


def _start_ts(trial_dir: Path, trial_id: str) -> float | None:
    """When the trial started (its last ``trial_start`` in the job's events.jsonl)."""
    ts = None
    for line in _read_lines(trial_dir.parent / "events.jsonl"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and ev.get("event") == "trial_start" and ev.get("trial") == trial_id:
            ts = ev.get("ts")
    return ts


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _text(content) -> str:
    """Text of a tool result's content: a string, or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return json.dumps(content, default=str)


def _tool_defs(names: list[str], prefix: str = "") -> list[dict]:
    """OpenAI function-calling definitions (what ATIF asks for) of the tools ``names``."""
    from .tools import SPECS

    out = []
    for n in names:
        spec = SPECS.get(n[len(prefix):] if prefix and n.startswith(prefix) else n)
        if spec is not None:
            out.append({"type": "function", "function": {"name": n, "description": spec["description"],
                                                         "parameters": spec["schema"]}})
    return out


class _Converter:
    def __init__(self, agent: str, model: str | None, start_ts: float | None):
        self.agent, self.model, self.start_ts = agent, model, start_ts
        self.steps: list[dict] = []
        self.results: dict[int, list[dict]] = {}  # step index -> its observation results, in call order
        self.calls: dict[str, dict] = {}  # tool call id -> its observation result
        self.open: dict | None = None  # the result of the call the harness is running
        self.pending: list[tuple[dict, str, float | None]] = []  # a tuner's actions since its last step
        self.cli_msgs: dict[str, int] = {}  # a CLI's message id -> step index
        self.cli_unmatched: list[tuple[str, str]] = []  # (tool name without prefix, call id) not yet run
        self.cli_prefix = ""
        self.tool_names: list[str] = []
        self.agent_extra: dict = {}
        self.root_extra: dict = {}
        self.phase = ""
        self.n = 0
        self.kind = ("cli" if agent.startswith("cli:") else "chat" if agent in ("claude", "openai")
                     else "external" if agent == "external" else "tuner")

    # -- building blocks ---------------------------------------------------------------------
    def _step(self, source: str, message: str, t: float | None, **fields) -> int:
        step = {"source": source, "message": message}
        if self.start_ts is not None and t is not None:
            step["timestamp"] = (dt.datetime.fromtimestamp(self.start_ts + t, dt.timezone.utc)
                                 .isoformat(timespec="milliseconds"))
        step.update({k: v for k, v in fields.items() if v is not None})
        step.setdefault("extra", {})
        if t is not None:
            step["extra"]["t_s"] = t
        self.steps.append(step)
        return len(self.steps) - 1

    def _call(self, i: int, call_id: str, name: str, args) -> dict:
        step = self.steps[i]
        call = {"tool_call_id": call_id, "function_name": name,
                "arguments": args if isinstance(args, dict) else {"_raw": args}}
        step.setdefault("tool_calls", []).append(call)
        res = {"source_call_id": call_id, "extra": {}}
        self.results.setdefault(i, []).append(res)
        self.calls[call_id] = res
        return res

    def _new_id(self) -> str:
        self.n += 1
        return f"call_{self.n}"

    def _flush(self, message: str, t: float | None, extra: dict | None = None) -> None:
        """A tuner's step: its actions since the last one, and its note."""
        if not self.pending and not message:
            return
        if t is None:
            t = self.pending[-1][2] if self.pending else None
        i = self._step("agent", message, t, llm_call_count=0)
        for call, content, _ in self.pending:
            self._call(i, call["id"], call["name"], call["args"])["content"] = content
        self.steps[i]["extra"].update(extra or {})
        self.pending = []

    # -- records -------------------------------------------------------------------------------
    def feed(self, rec: dict) -> None:
        kind, t = rec["type"], rec.get("t")
        data = {k: v for k, v in rec.items() if k not in ("t", "type")}
        if kind == "phase":
            if self.phase == "agent":
                self._flush("", None)
            self.phase = rec.get("phase", "")
        elif kind == "instruction":
            self._step("user", rec.get("text", ""), t)
        elif kind == "interface":
            self.tool_names = list(rec.get("tools") or [])
            self.agent_extra["interface"] = {k: v for k, v in data.items() if k not in ("tools", "argv")}
            if rec.get("kind") == "cli":
                self.cli_prefix = _common_prefix(self.tool_names)
        elif kind == "message" and rec.get("role") == "assistant":
            self._assistant(rec, t)
        elif kind == "message":
            role, text = rec.get("role"), rec.get("text", "")
            if role == "agent" and self.kind == "tuner":
                self._flush(text, t)
                return
            self._flush("", None)
            if role == "harness" and self.phase == "agent" and self.kind == "chat":
                self._step("user", text, t, extra={"from": "harness"})  # a nudge: the model gets it as a user turn
            else:
                self._step("system", text, t, extra={"role": role})
        elif kind == "candidate":  # the classic tuners
            self._flush(step_text(rec) or "", t, {"candidate": {k: v for k, v in data.items() if k != "metrics"}})
        elif kind == "bandit" and self.steps:
            self.steps[-1].setdefault("extra", {})["bandit"] = data
        elif kind == "tuner_summary":
            self.root_extra["tuner_summary"] = data
        elif kind == "tool_call":
            self._tool_call(rec, t)
        elif kind == "tool_result":
            if self.open is not None:
                if self.kind == "cli":
                    self.open["extra"]["harness_output"] = rec.get("output")
                else:
                    self.open["content"] = rec.get("output", "")
                self.open["extra"]["duration_s"] = rec.get("duration_s")
                self.open = None
        elif kind == "malformed_tool_call":
            res = self.calls.get(rec.get("id") or "")
            if res is not None:
                res["content"] = f"error: malformed tool call ({rec.get('reason')})"
                res["extra"]["malformed"] = rec.get("reason")
        elif kind in _ACTIONS or kind in ("goal", "goal_watch", "goal_watch_error"):
            if self.open is not None:
                self.open["extra"].setdefault("events", []).append(rec)
            elif kind in _ACTIONS and self.phase == "agent":
                self._action(kind, data, t)
        elif kind == "cli_event":
            self._cli_event(rec.get("event"), t)
        elif kind in ("cli_exit", "host_files", "cli_output"):
            self.root_extra.setdefault("cli", {})[kind] = data
        elif kind in _SYSTEM:
            self._flush("", None)
            text = ("traceback:\n" + rec.get("text", "") if kind == "traceback"
                    else rec.get("text") if kind == "note" else step_text(rec))
            self._step("system", text or f"{kind} {json.dumps(data, default=str)}", t, extra={"record": data})

    def _assistant(self, rec: dict, t: float | None) -> None:
        blocks = rec.get("content") or []
        texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
        thinking = [b.get("thinking", "") for b in blocks if b.get("type") == "thinking"]
        u = rec.get("usage") or {}
        tin, tout = int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0)
        p = price(self.model)
        metrics = {"prompt_tokens": tin, "completion_tokens": tout,
                   "cost_usd": None if p is None else (tin * p["input"] + tout * p["output"]) / 1e6}
        i = self._step("agent", "\n\n".join(texts), t, model_name=self.model, llm_call_count=1,
                       reasoning_content="\n\n".join(thinking) or None,
                       metrics={k: v for k, v in metrics.items() if v is not None},
                       extra={"stop_reason": rec.get("stop_reason")})
        for b in blocks:
            if b.get("type") == "tool_use":
                self._call(i, b.get("id") or self._new_id(), b.get("name", ""), b.get("input"))

    def _tool_call(self, rec: dict, t: float | None) -> None:
        cid, name = rec.get("id") or "", rec.get("name", "")
        if cid and cid in self.calls:
            self.open = self.calls[cid]
        elif self.kind == "cli":  # the harness does not know the CLI's call id: the next call of that tool
            match = next((c for c in self.cli_unmatched if c[0] == name), None)
            if match is not None:
                self.cli_unmatched.remove(match)
                self.open = self.calls[match[1]]
            else:
                self.open = None
        else:  # an external MCP client: each call is a step of its own
            i = self._step("agent", "", t)
            self.open = self._call(i, cid if cid and cid not in self.calls else self._new_id(), name, rec.get("input"))
        if self.open is not None:
            self.open["extra"]["tool"] = name

    def _action(self, kind: str, data: dict, t: float | None) -> None:
        """A guest action of a tuner (not inside a tool call): a tool call of its next step."""
        if kind == "command":
            call = {"name": "bash", "args": {"command": data.get("cmd", "")}}
            content = json.dumps({k: v for k, v in data.items() if k != "cmd"}, default=str)
        elif kind == "write_file":
            call = {"name": "write_file", "args": {"path": data.get("path", "")}}
            content = f"wrote {data.get('path')} ({data.get('bytes')} bytes)"
        else:
            call = {"name": "run_workload", "args": {}}
            content = json.dumps(data, default=str)
        call["id"] = self._new_id()
        self.pending.append((call, content, t))

    def _cli_event(self, ev, t: float | None) -> None:
        if not isinstance(ev, dict):
            return
        kind = ev.get("type")
        if kind == "system" and ev.get("subtype") == "init":
            self.agent_extra["cli_session"] = {k: ev.get(k) for k in ("session_id", "model", "claude_code_version",
                                                                      "permissionMode", "tools", "mcp_servers")
                                               if k in ev}
        elif kind == "assistant":
            msg = ev.get("message") or {}
            mid = msg.get("id") or f"anon-{len(self.cli_msgs)}"
            i = self.cli_msgs.get(mid)
            if i is None:
                u = msg.get("usage") or {}
                cached = int(u.get("cache_read_input_tokens") or 0)
                prompt = int(u.get("input_tokens") or 0) + cached + int(u.get("cache_creation_input_tokens") or 0)
                out = int(u.get("output_tokens") or 0)
                metrics = {"prompt_tokens": prompt, "cached_tokens": cached}
                if out:  # Claude Code's events carry the first usage: output tokens only in the totals
                    metrics["completion_tokens"] = out
                i = self.cli_msgs[mid] = self._step("agent", "", t, model_name=msg.get("model") or self.model,
                                                    llm_call_count=1, metrics=metrics,
                                                    extra={"message_id": mid})
            step = self.steps[i]
            for b in msg.get("content") or []:
                if b.get("type") == "text" and b.get("text"):
                    step["message"] = (step["message"] + "\n\n" + b["text"]).strip()
                elif b.get("type") == "thinking" and b.get("thinking"):
                    step["reasoning_content"] = ((step.get("reasoning_content") or "") + "\n\n" + b["thinking"]).strip()
                elif b.get("type") == "tool_use":
                    cid = b.get("id") or self._new_id()
                    self._call(i, cid, b.get("name", ""), b.get("input"))
                    name = b.get("name", "")
                    if self.cli_prefix and name.startswith(self.cli_prefix):
                        self.cli_unmatched.append((name[len(self.cli_prefix):], cid))
        elif kind == "user":
            content = (ev.get("message") or {}).get("content")
            if isinstance(content, str):
                self._step("user", content, t)
                return
            for b in content or []:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    res = self.calls.get(b.get("tool_use_id") or "")
                    if res is not None:
                        res["content"] = _text(b.get("content"))
                        if b.get("is_error"):
                            res["extra"]["is_error"] = True
        elif kind == "result":
            self.root_extra.setdefault("cli", {})["result"] = {
                k: ev.get(k) for k in ("subtype", "is_error", "num_turns", "duration_ms", "duration_api_ms",
                                       "total_cost_usd", "usage", "stop_reason") if k in ev}

    def finish(self) -> list[dict]:
        self._flush("", None)
        for i, results in self.results.items():
            for r in results:
                if not r["extra"]:
                    del r["extra"]
            self.steps[i]["observation"] = {"results": results}
        for n, step in enumerate(self.steps, 1):
            step["step_id"] = n
            if not step.get("extra"):
                step.pop("extra", None)
        return [{"step_id": s.pop("step_id"), **s} for s in self.steps]


def _common_prefix(names: list[str]) -> str:
    """The prefix a CLI gives the MCP tools (``mcp__schedcp__``), from their names."""
    if not names:
        return ""
    p = names[0]
    for n in names[1:]:
        while not n.startswith(p):
            p = p[:-1]
    return p[: p.rfind("__") + 2] if "__" in p else ""


def trial_trajectory(trial_dir: Path) -> dict:
    """The ATIF trajectory of the trial in ``trial_dir`` (a plain dict). Raises
    FileNotFoundError when the folder has no readable ``result.json``."""
    res = read_result(trial_dir)
    if res is None:
        raise FileNotFoundError(f"{trial_dir}: no readable result.json (the trial has not finished)")
    try:
        cfg = json.loads((trial_dir / "config.json").read_text())
    except (OSError, ValueError):
        cfg = {}
    conv = _Converter(res.agent, res.model, _start_ts(trial_dir, res.trial_id))
    for rec in _records(trial_dir / "trajectory.jsonl"):
        conv.feed(rec)
    steps = conv.finish()
    if not steps:  # ATIF needs one step: a trial that ended before its agent started says why
        steps = [{"step_id": 1, "source": "system", "message": res.failure or f"trial {res.status}"}]
    used = sorted({c["function_name"] for s in steps for c in s.get("tool_calls", [])})
    defs = _tool_defs(conv.tool_names or used, conv.cli_prefix)
    session = conv.agent_extra.get("cli_session") or {}
    agent = {"name": res.agent, "version": session.get("claude_code_version") or _version(),
             "model_name": res.model, "tool_definitions": defs or None,
             "extra": {"harness": "schedcp-bench", "harness_version": _version(), "backend": res.backend,
                       "interface": res.interface, **conv.agent_extra}}
    u = res.usage
    final = {"total_prompt_tokens": u.input_tokens, "total_completion_tokens": u.output_tokens,
             "total_cost_usd": u.cost_usd, "total_steps": len(steps),
             "extra": {"budget_steps": u.steps, "wall_s": u.wall_s, "guest_cpu_s": u.guest_cpu_s,
                       "host_cpu_s": u.host_cpu_s, "energy_j": u.energy_j, "tool_calls": res.tool_calls,
                       "malformed_tool_calls": res.malformed_tool_calls, "limit_hit": res.limit_hit,
                       "budget": cfg.get("budget")}}
    imp = res.improvement or {}
    extra = {"trial_id": res.trial_id, "job_id": cfg.get("job_id") or trial_dir.parent.name,
             "workload": res.workload, "attempt": res.attempt, "size": cfg.get("size"),
             "status": res.status, "failure_kind": res.failure_kind, "failure": res.failure,
             "verdict": res.verdict, "ratio": imp.get("ratio"), "ci95": imp.get("ci95"), "p_value": imp.get("p_value"),
             "improvement": imp, "verdict_detail": res.verdict_detail, "slo": res.slo,
             "primary_metric": res.primary_metric, "direction": res.direction,
             "baseline_runs": res.baseline_runs, "tuned_runs": res.tuned_runs,
             "tuned_config": res.tuned_config, "scheduler_in_place": res.scheduler_in_place,
             "files_written": res.files_written, "goal": res.goal, "slo_hint": res.slo_hint,
             "kernel_release": res.kernel_release, "image": res.image, "phases_s": res.phases_s,
             "host_cores": res.host_cores, "result_schema_version": res.schema_version, **conv.root_extra}
    return {"schema_version": ATIF_VERSION, "session_id": f"{extra['job_id']}/{res.trial_id}",
            "agent": {k: v for k, v in agent.items() if v is not None}, "steps": steps, "notes": NOTES,
            "final_metrics": {k: v for k, v in final.items() if v is not None}, "extra": extra}


def write_trial(trial_dir: Path, out_dir: Path | None = None) -> Path:
    """Write the trial's ATIF trajectory: ``trial_dir/trajectory.atif.json``, or
    ``out_dir/<trial_id>.atif.json``; returns the path."""
    traj = trial_trajectory(trial_dir)
    path = trial_dir / ATIF_FILE if out_dir is None else out_dir / f"{traj['extra']['trial_id']}.atif.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(traj, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
