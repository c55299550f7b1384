"""The tools an agent acts through, in one place for every interface.

``TrialTools`` runs each tool on the trial's sandbox (everything happens in the guest),
logs the call and its result to the trajectory, and enforces the rules: with
``--no-slo-hint`` tuning tools are refused until ``declare_goal`` was called (RQ2), and
``finish`` ends the episode.

Goal inference (``--no-slo-hint``, ``require_goal``) is kept leak-free: the agent may
observe freely, but until it declares its goal the guest's state is read before its
first tool call and after each call (:mod:`harness.guest_state`: sysctls, debugfs and
sysfs knobs, sched_ext, processes' nice/policy/affinity, files written outside scratch
places), and every change is recorded with the step and tool that made it; a declaration
counts as correct only when nothing changed before it. ``run_workload`` then returns
what the program printed and its elapsed time, not the workload's named metrics.

The ``bash`` interface of the ``claude`` agent offers :data:`BASH_TOOLS`; the MCP
server (``harness/mcp_server.py``) offers :data:`MCP_TOOLS`.
Tool descriptions, argument schemas and result models live in :data:`SPECS`, shared by
both: a tool returns a result its model validates (the MCP server's structured content and
outputSchema), and the agent reads the same text of it on either interface
(:func:`result_text`: compact JSON, numbers to a few significant digits).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from sandbox.base import GuestCrashed, SandboxError
from sandbox.guest import (SCX_BIN, SchedulerError, list_schedulers, sched_ext_state, scheduler_log,
                           start_scheduler, stop_scheduler)
from sandbox.scx import verify as scx_verify
from sandbox.scx.verify import OUTCOMES

from . import goal as goal_mod
from . import fmt, gpu, guest_state, telemetry
from .agents.base import AgentContext
from .limits import LimitExceeded

_S = {"type": "string"}
_N = {"type": "number"}


def _obj(props: dict, required: tuple = ()) -> dict:
    return {"type": "object", "properties": props, "required": list(required)}


# -- results: one model per tool ---------------------------------------------------------------
# What each tool returns, for every interface. The MCP server publishes a model's JSON
# schema as the tool's outputSchema and sends the result as structured content (full
# precision); the agent reads the text of :func:`result_text`, the same result as compact
# JSON with a few significant digits, on either interface. A tool's own failure (refused,
# bad input, a guest error) is an error result instead (:class:`ToolFailed`): text only.


class BashResult(BaseModel):
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool = Field(description="the output was cut to the last 64 KiB")


class WriteFileResult(BaseModel):
    wrote: str = Field(description="the guest path written")


class RunWorkloadResult(BaseModel):
    """With the goal given: the workload's named metrics. Without it: the program's own
    run (exit code, elapsed seconds, what it printed)."""

    metrics: dict[str, float] | None = Field(None, description="the workload's metrics, by name")
    exit_code: int | None = None
    elapsed_s: float | None = None
    output: str | None = Field(None, description="what the program printed (its last 6000 characters)")
    output_truncated: bool | None = None
    error: str | None = Field(None, description="the run timed out or failed")


class ListSchedulersResult(BaseModel):
    prebuilt: list[str]
    custom: list[str] = Field(description="schedulers built with create_and_verify_scheduler")
    hint: str


class SchedulerStateResult(BaseModel):
    state: str = Field(description="sched_ext state: enabled, disabled, enabling, disabling")
    ops: str = Field(description="the attached scheduler's ops name ('' when none)")


class StopSchedulerResult(BaseModel):
    state: str


class SchedulerStatusResult(SchedulerStateResult):
    loader_pid: str | None
    log_tail: str


class VerifyResult(BaseModel):
    """How building, loading and stress-testing the scheduler went (sandbox.scx.verify's
    Verdict); ok: the outcome is ok."""

    outcome: Literal[OUTCOMES]
    name: str
    stage: str
    error: str = Field(description="the compiler's, verifier's, loader's or kernel's text, verbatim")
    ops: str
    state: str
    kernel_reason: str
    dmesg: str
    loaded: bool = Field(description="left attached")
    timings_s: dict[str, float]
    ok: bool


class SysctlGetResult(BaseModel):
    """One sysctl (name, value) or, for a prefix ending in '.', values (name to value)."""

    name: str | None = None
    value: str | None = None
    values: dict[str, str] | None = None


class SysctlSetResult(BaseModel):
    name: str
    old: str
    new: str


class SystemMonitorResult(BaseModel):
    """What the VM did over the interval (harness/telemetry.py defines each field);
    wakeup_lat_*: scheduling latency of wakeups in microseconds."""

    interval_s: float
    cpu_util_pct: float
    ctx_switches_per_s: float
    runqueue_len_mean: float
    runq_wait_us_per_sched: float
    loadavg: list[str]
    ncpu: int | None
    wakeup_lat_p50_us: int | None = None
    wakeup_lat_p90_us: int | None = None
    wakeup_lat_p99_us: int | None = None
    wakeup_lat_max_us: int | None = None
    wakeup_lat_samples: int | None = None
    wakeup_lat_dropped: int | None = None
    wakeup_lat_error: str | None = None
    top: list[str] | None = Field(None, description="ps lines of the busiest processes")
    sched_ext: SchedulerStateResult
    runqlat: str | None = Field(None, description="BCC runqlat's histogram (latency_histogram=true)")
    gpu: dict[str, Any] | None = Field(None, description="GPU telemetry over the interval (harness/gpu.py), "
                                       "or {note: why there is none}")


class DeclareGoalResult(BaseModel):
    recorded: bool


class FinishResult(BaseModel):
    finished: bool
    report: dict[str, Any] | None = Field(None, description="the trial's measured result (`schedcp report` JSON), "
                                          "for a stdio client of `schedcp mcp serve`")


class ToolFailed(Exception):
    """A tool's own failure, for the agent to read: an error result whose text is
    ``{"error": message, **details}``."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = {"error": message, **details}


@dataclasses.dataclass(frozen=True)
class ToolOutcome:
    text: str  # what the agent reads, whatever the interface
    data: dict | None  # the structured result (validated by its model); None for an error
    is_error: bool = False


# per tool: ``description`` and ``schema`` (its arguments, a JSON schema), ``result`` (the
# model of what it returns) and optionally ``text`` (the agent's text of a result, when not
# :func:`_readable_json` of it)
SPECS: dict[str, dict] = {
    "bash": {"description": "Run a bash command as root in the VM. Returns exit code, stdout, stderr. Commands are "
             "killed at `timeout` seconds (default 120). Start long-running processes with setsid -f.",
             "schema": _obj({"command": _S, "timeout": _N}, ("command",)), "result": BashResult},
    "write_file": {"description": "Write a text file in the VM (e.g. a scheduler's .bpf.c source).",
                   "schema": _obj({"path": _S, "content": _S}, ("path", "content")), "result": WriteFileResult,
                   "text": lambda d: f"wrote {d['wrote']}"},
    "run_workload": {"description": "Run the application's benchmark once with the current configuration, as the "
                     "harness runs it, and return its result: its metrics when you were given the goal, else what "
                     "the program printed and its elapsed time.", "schema": _obj({}), "result": RunWorkloadResult},
    "list_schedulers": {"description": "The prebuilt sched_ext schedulers (the kernel's tools/sched_ext examples) "
                        "and the ones you built with create_and_verify_scheduler.", "schema": _obj({}),
                        "result": ListSchedulersResult},
    "start_scheduler": {"description": "Start a scheduler by name (from list_schedulers) with optional command-line "
                        "arguments; waits until sched_ext reports it enabled. Stops the current one first.",
                        "schema": _obj({"name": _S, "args": _S}, ("name",)), "result": SchedulerStateResult},
    "stop_scheduler": {"description": "Stop the attached sched_ext scheduler (back to the kernel's default, EEVDF).",
                       "schema": _obj({}), "result": StopSchedulerResult},
    "scheduler_status": {"description": "sched_ext state, the attached scheduler's ops name, and the tail of its log.",
                         "schema": _obj({}), "result": SchedulerStatusResult},
    "create_and_verify_scheduler": {
        "description": "Compile a sched_ext scheduler from BPF C source in the VM (clang-22, libbpf, the image's "
        "vmlinux.h; write it like /opt/schedcp/scx/src/scx_simple.bpf.c: SCX_OPS_DEFINE(<x>_ops, ...) and "
        "UEI_DEFINE(uei) recorded in ops.exit), load it with a generated loader, check that sched_ext is "
        "enabled with its ops, run a short CPU stress under it, and unload it on any failure. Returns the "
        "outcome (ok, invalid_source, compile_error, verifier_rejected, load_failed, ejected, ...) with the "
        "compiler's, verifier's or kernel's message verbatim. On ok it stays attached unless keep_loaded=false.",
        "schema": _obj({"name": _S, "source": _S, "keep_loaded": {"type": "boolean"}}, ("name", "source")),
        "result": VerifyResult},
    "sysctl_get": {"description": "Read a sysctl (e.g. kernel.sched_autogroup_enabled) or all matching a prefix "
                   "ending in '.' (e.g. 'kernel.sched_').", "schema": _obj({"name": _S}, ("name",)),
                   "result": SysctlGetResult},
    "sysctl_set": {"description": "Set a sysctl (sysctl -w name=value); returns the old and new value.",
                   "schema": _obj({"name": _S, "value": _S}, ("name", "value")), "result": SysctlSetResult},
    "system_monitor": {"description": "Observe the VM for `seconds` (default 2): CPU use, run-queue length, "
                       "context switches per second, mean run-queue wait per scheduling (from /proc/schedstat), "
                       "wakeup scheduling-latency percentiles p50/p90/p99/max in us (an in-kernel histogram), "
                       "the busiest processes, and GPU utilisation, peak memory, power, energy, SM clock and "
                       "throttle reasons when the VM has a GPU (else why not); with latency_histogram=true also "
                       "BCC runqlat's histogram.",
                       "schema": _obj({"seconds": _N, "latency_histogram": {"type": "boolean"}}),
                       "result": SystemMonitorResult},
    "declare_goal": {"description": "State the optimization goal you inferred before you tune anything: the metric "
                     "(as the application reports it), the direction (lower or higher is better) and why.",
                     "schema": _obj({"metric": _S, "direction": {"type": "string", "enum": ["lower", "higher"]},
                                     "rationale": _S}, ("metric", "direction")), "result": DeclareGoalResult},
    "finish": {"description": "Stop: the current configuration is your final answer.",
               "schema": _obj({"summary": _S}), "result": FinishResult,
               "text": lambda d: _readable_json(d["report"]) if d.get("report") is not None else "finished"},
}

BASH_TOOLS = ["bash", "write_file", "run_workload", "finish"]
MCP_TOOLS = ["list_schedulers", "start_scheduler", "stop_scheduler", "scheduler_status", "create_and_verify_scheduler",
             "sysctl_get", "sysctl_set", "system_monitor", "run_workload", "declare_goal", "finish"]
# refused until a goal is declared when the agent was not told the goal
TUNING = {"write_file", "start_scheduler", "create_and_verify_scheduler", "sysctl_set"}
_SYSCTL = re.compile(r"[a-z0-9_][a-z0-9_.\-/]*")
MAX_CHANGES = 100  # changes recorded before a declaration (the count is kept beyond)

# -- the text of a result ----------------------------------------------------------------------
# Numbers rounded by their key (harness/fmt.py's by_key); structured content keeps full precision.
def _readable_json(data) -> str:
    """``data`` as compact JSON with readable numbers: what the agent reads of a result."""
    return json.dumps(fmt.by_key(data), default=str)


def result_text(name: str, data: dict) -> str:
    """The text of tool ``name``'s result ``data``, for the agent and text-only clients."""
    text = SPECS[name].get("text")
    return text(data) if text else _readable_json(data)


class TrialTools:
    def __init__(self, ctx: AgentContext, require_goal: bool = False, count_steps: bool = False):
        """``count_steps``: each call is a step of the budget (for clients whose model calls
        the harness cannot see); when the budget runs out the call is refused, ``finished``
        is set and :attr:`limit` holds the reason."""
        self.ctx, self.require_goal, self.count_steps = ctx, require_goal, count_steps
        self.limit: LimitExceeded | None = None
        # stdio clients end the session (and kill the server) right after finish, so there
        # finish waits until the harness has measured and returns the trial's result
        self.finish_hold: threading.Event | None = None
        self.finish_report: dict = {}
        self.goal: dict | None = None
        self.finished = threading.Event()
        self.calls = 0
        self.malformed = 0  # calls with arguments the tool cannot take (missing, unknown, wrong type)
        self._lock = threading.Lock()  # one guest action at a time, whatever the interface
        # goal inference: what changed in the guest before the goal was declared (see the
        # module's docstring); the state is read only while no goal is declared
        self.changes_before_declare: list[dict] = []
        self.changes_count = 0
        self.watch_errors: list[str] = []
        self._watch = require_goal and ctx.sandbox is not None
        self._state: guest_state.Fingerprint | None = None
        self._workload_files = _installed_files(ctx) if self._watch else frozenset()

    # -- dispatch --------------------------------------------------------------------
    def call(self, name: str, args: dict | None = None, call_id: str = "") -> str:
        """Run tool ``name`` and return the text of its result (:meth:`call_result`)."""
        return self.call_result(name, args, call_id).text

    def call_result(self, name: str, args: dict | None = None, call_id: str = "") -> ToolOutcome:
        """Run tool ``name``: its result (validated by its model in :data:`SPECS`) and that
        result's text, or an error result for the agent to read (refused, bad input, a
        guest error; text only). A dead guest or an exhausted budget raise, so the trial
        ends with the right failure kind."""
        args = dict(args or {})
        with self._lock:
            if self.count_steps:
                try:
                    self.ctx.budget.check()
                except LimitExceeded as e:
                    self.limit = e
                    self.finished.set()
                    self.ctx.trajectory.log("limit", kind=e.kind, message=str(e))
                    return ToolOutcome(f"refused: {e}; the episode is over", None, is_error=True)
                self.ctx.budget.add_step()
            watching = self._watch and self.goal is None
            if watching and self._state is None:  # the guest as it was before the first call
                self._observe("", first=True)
            elif watching and name == "declare_goal":  # anything since the last read (a background job)
                self._observe("(between tool calls)")
            self.calls += 1
            self.ctx.trajectory.log("tool_call", id=call_id, name=name, input=args)
            t = time.monotonic()
            try:
                out = self._dispatch(name, args)  # a result dict, or the text of an error
            except (LimitExceeded, GuestCrashed):
                raise
            except ToolFailed as e:
                out = json.dumps(e.details, default=str)
            except (KeyError, TypeError, ValueError) as e:
                self.malformed += 1
                out = f"bad tool input for {name}: {e}"
            except (SchedulerError, SandboxError) as e:
                out = f"error: {e}"
            if not isinstance(out, str):
                try:
                    SPECS[name]["result"].model_validate(out)
                except ValidationError as e:  # a bug of the harness, not the agent's: logged, answered
                    self.ctx.trajectory.log("harness_error", where=f"result of {name}", error=str(e)[:2000])
                    out = f"harness error: the result of {name} did not fit its schema (recorded for the harness)"
            if isinstance(out, str):
                res = ToolOutcome(out, None, is_error=True)
            else:
                res = ToolOutcome(result_text(name, out), out)
            self.ctx.trajectory.log("tool_result", id=call_id, name=name, output=res.text[:20000],
                                    is_error=res.is_error, duration_s=round(time.monotonic() - t, 4))
            if watching and name not in ("declare_goal", "finish"):
                # what this call changed; a run of the application writes its own files
                self._observe(name, absorb_files=name == "run_workload")
            return res

    # -- goal inference: changes before the declaration --------------------------------
    def _observe(self, tool: str, first: bool = False, absorb_files: bool = False) -> None:
        """Read the guest's state and record what changed since the last read (``tool``:
        the call it is attributed to). A read that fails is noted, not fatal; a dead
        guest raises as for any tool."""
        t = time.monotonic()
        try:
            fp = guest_state.read_fingerprint(self.ctx.sandbox, first=first or self._state is None,
                                              workload_files=self._workload_files)
        except GuestCrashed:
            raise
        except (SandboxError, RuntimeError) as e:
            self.watch_errors.append(f"{tool or 'start'}: {e}"[:500])
            self.ctx.trajectory.log("goal_watch_error", tool=tool, error=str(e)[:2000])
            return
        prev, self._state = self._state, fp
        if prev is None:
            self.ctx.trajectory.log("goal_watch", tool=tool, changes=[], duration_s=round(time.monotonic() - t, 3))
            return
        if absorb_files:
            prev = dataclasses.replace(prev, files={**prev.files, **fp.files})
        found = prev.changes(fp)
        step = self.ctx.budget.usage.steps
        for what in found:
            self.changes_count += 1
            if len(self.changes_before_declare) < MAX_CHANGES:
                self.changes_before_declare.append({"step": step, "tool_call": self.calls, "tool": tool,
                                                    "what": what})
        self.ctx.trajectory.log("goal_watch", tool=tool, changes=found, duration_s=round(time.monotonic() - t, 3))

    def _dispatch(self, name: str, a: dict):
        if name not in SPECS:
            self.malformed += 1
            return f"unknown tool {name!r}"
        if self.require_goal and self.goal is None and name in TUNING:
            return (f"refused: call declare_goal(metric, direction, rationale) before {name}; you were not told "
                    "the goal, so state the one you inferred first")
        return getattr(self, "t_" + name)(**a)

    # -- tools -----------------------------------------------------------------------
    def t_bash(self, command: str, timeout: float = 120) -> dict:
        r = self.ctx.run(str(command), timeout=float(timeout))
        return {k: r[k] for k in ("returncode", "stdout", "stderr", "timed_out", "truncated")}

    def t_write_file(self, path: str, content: str) -> dict:
        self.ctx.write_file(str(path), str(content))
        return {"wrote": str(path)}

    def t_run_workload(self) -> dict:
        if self.require_goal:  # the goal is hidden: the program's own output, not the harness's named metrics
            return self.ctx.trial_run_output()
        m = self.ctx.trial_run()
        if "error" in m:
            raise ToolFailed(m["error"])
        return {"metrics": m}

    def t_list_schedulers(self) -> dict:
        sb = self.ctx.sandbox
        custom = sb.run(f"ls {scx_verify.CUSTOM_DIR} 2>/dev/null", timeout=30).stdout.split()
        return {"prebuilt": list_schedulers(sb), "custom": custom,
                "hint": f"prebuilt binaries in {SCX_BIN}, sources in /opt/schedcp/scx/src"}

    def t_start_scheduler(self, name: str, args: str = "") -> dict:
        sb = self.ctx.sandbox
        if sched_ext_state(sb).state != "disabled":
            stop_scheduler(sb)
        if name in sb.run(f"ls {scx_verify.CUSTOM_DIR} 2>/dev/null", timeout=30).stdout.split():
            from sandbox.guest import start_binary

            st = start_binary(sb, f"{scx_verify.CUSTOM_DIR}/{name}/{name}", args)
        else:
            st = start_scheduler(sb, name, args)
        return {"state": st.state, "ops": st.ops}

    def t_stop_scheduler(self) -> dict:
        st = stop_scheduler(self.ctx.sandbox)
        return {"state": st.state}

    def t_scheduler_status(self) -> dict:
        sb = self.ctx.sandbox
        st = sched_ext_state(sb)
        pid = sb.run("cat /run/schedcp/scheduler.pid 2>/dev/null", timeout=30).stdout.strip()
        log = ""
        if pid:
            comm = sb.run(f"cat /proc/{pid}/comm 2>/dev/null", timeout=30).stdout.strip()
            if comm:
                log = sb.run(f"tail -n 10 {scheduler_log(comm)} 2>/dev/null", timeout=30).stdout
        return {"state": st.state, "ops": st.ops, "loader_pid": pid or None, "log_tail": log}

    def t_create_and_verify_scheduler(self, name: str, source: str, keep_loaded: bool = True) -> dict:
        self.ctx.write_file(f"{scx_verify.CUSTOM_DIR}/src/{name}.bpf.c", str(source), log=False)
        v = scx_verify.verify(self.ctx.sandbox, str(source), name=str(name), keep_loaded=bool(keep_loaded))
        return v.to_dict()

    def t_sysctl_get(self, name: str) -> dict:
        if not _SYSCTL.fullmatch(name):
            raise ToolFailed(f"not a sysctl name: {name!r}")
        if name.endswith("."):
            r = self.ctx.sandbox.run(f"sysctl -a 2>/dev/null | grep -F {shlex.quote(name)} | head -n 200", timeout=30)
            return {"values": dict(l.split(" = ", 1) for l in r.stdout.splitlines() if " = " in l)}
        r = self.ctx.sandbox.run(f"sysctl -n {shlex.quote(name)}", timeout=30)
        if not r.success:
            raise ToolFailed(r.stderr.strip())
        return {"name": name, "value": r.stdout.strip()}

    def t_sysctl_set(self, name: str, value: str) -> dict:
        if not _SYSCTL.fullmatch(name) or name.endswith("."):
            raise ToolFailed(f"not a sysctl name: {name!r}")
        sb = self.ctx.sandbox
        old = sb.run(f"sysctl -n {shlex.quote(name)}", timeout=30)
        if not old.success:
            raise ToolFailed(old.stderr.strip())
        r = sb.run(f"sysctl -w {shlex.quote(f'{name}={value}')}", timeout=30)
        self.ctx.trajectory.log("command", cmd=f"sysctl -w {name}={value}", **r.to_dict())
        if not r.success:
            raise ToolFailed(r.stderr.strip(), old=old.stdout.strip())
        new = sb.run(f"sysctl -n {shlex.quote(name)}", timeout=30).stdout.strip()
        return {"name": name, "old": old.stdout.strip(), "new": new}

    def t_system_monitor(self, seconds: float = 2.0, latency_histogram: bool = False) -> dict:
        s = max(0.5, min(float(seconds), 30.0))
        sb = self.ctx.sandbox
        # NVML in the guest over the same interval, when the VM has GPUs passed through (unverified)
        has_gpu = bool(getattr(getattr(getattr(sb, "backend", None), "shape", None), "gpus", ()))
        sampler = gpu.GuestSampler(sb).start() if has_gpu else None
        try:
            out = telemetry.monitor(sb, s)
        except telemetry.TelemetryError as e:
            raise ToolFailed(str(e)) from None
        finally:
            g = sampler.stop() if sampler is not None else {"note": "no GPU passed through to this VM"}
        out["gpu"] = g
        st = sched_ext_state(sb)
        out["sched_ext"] = {"state": st.state, "ops": st.ops}
        if latency_histogram:
            h = sb.run("timeout 90 runqlat-bpfcc 2 1 2>&1", timeout=120)
            out["runqlat"] = h.stdout[-4000:] if h.success else f"BCC runqlat unavailable: {h.stdout[-500:]}"
        return out

    def t_declare_goal(self, metric: str, direction: str, rationale: str = "") -> dict:
        if self.goal is not None:
            raise ToolFailed("a goal was already declared", declared=self.goal["declared"])
        spec = self.ctx.workload.spec
        sc = goal_mod.score(str(metric), str(direction), spec.goal, [m.name for m in spec.metrics])
        changes = list(self.changes_before_declare)
        reason = sc["reason"]
        if changes:
            more = f" (and {self.changes_count - 1} more)" if self.changes_count > 1 else ""
            why = f"changed the guest before declaring: {changes[0]['what']}{more}"
            reason = f"{reason}; {why}" if reason else why
        self.goal = {"declared": {"metric": metric, "direction": direction, "rationale": rationale},
                     "step": self.ctx.budget.usage.steps, "tool_call": self.calls,
                     "metric_ok": sc["metric_ok"], "direction_ok": sc["direction_ok"], "catch_all": sc["catch_all"],
                     "changes_before_declare": changes, "changes_before_declare_count": self.changes_count,
                     "first_change_step": changes[0]["step"] if changes else None,
                     "changes_watched": self._watch, "watch_errors": list(self.watch_errors),
                     "correct": sc["correct"] and not changes, "reason": reason,
                     "truth": sc["truth"]}
        self.ctx.trajectory.log("goal", **self.goal)
        return {"recorded": True}  # the agent is not told whether it was right

    def t_finish(self, summary: str = "") -> dict:
        self.finished.set()
        if self.finish_hold is not None:
            self.finish_hold.wait(timeout=4 * 3600)
            return {"finished": True, "report": self.finish_report.get("data")}
        return {"finished": True}


def _installed_files(ctx: AgentContext) -> frozenset[str]:
    """The guest paths of the files the harness installed for the workload (bench.install):
    changing one of them is a change; anything else in the workloads' folder is output."""
    from .workload import GUEST_ROOT, LIB_DIR, tree_files

    wl = ctx.workload
    d = wl.spec.guest_dir()
    out = {f"{d}/{p.relative_to(wl.folder).as_posix()}" for p in tree_files(wl.folder)}
    out |= {f"{d}/README.md", f"{d}/workload.yaml"}
    if LIB_DIR.is_dir():
        out |= {f"{GUEST_ROOT}/_lib/{p.relative_to(LIB_DIR).as_posix()}" for p in tree_files(LIB_DIR)}
    return frozenset(out)


def tool_defs(names: list[str]) -> list[dict]:
    """Anthropic-style tool definitions for ``names``."""
    return [{"name": n, "description": SPECS[n]["description"], "input_schema": SPECS[n]["schema"]} for n in names]
