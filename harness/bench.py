"""Running a workload in a sandbox: install its folder, set it up once, run it N times.

The harness, not the agent, runs these. Each run's stdout+stderr is parsed into the
spec's metrics; ``schedcp_wall_s=<seconds>`` (measured in the guest with bash's
``$EPOCHREALTIME``, so the relay's overhead is not in it) is appended for specs that use
wall time. Warm-up runs are executed and reported but flagged, and left out of summaries.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sandbox.base import Sandbox

from .stats import summarize_runs
from .workload import (GUEST_ROOT, LIB_DIR, Size, Workload, WorkloadError, goal_free_description, parse_metrics,
                       tree_files)


@dataclass
class RunResult:
    index: int
    warmup: bool
    metrics: dict[str, float]
    duration_s: float
    output_tail: str = ""


@dataclass
class WorkloadRuns:
    workload: str
    size: Size
    runs: list[RunResult] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        return summarize_runs([r.metrics for r in self.runs if not r.warmup])

    def to_dict(self) -> dict:
        return {
            "workload": self.workload,
            "size": self.size,
            "runs": [{"index": r.index, "warmup": r.warmup, "metrics": r.metrics, "duration_s": round(r.duration_s, 3)}
                     for r in self.runs],
            "summary": self.summary(),
        }


def readme(wl: Workload, hide_goal: bool = False) -> str:
    s = wl.spec
    desc = goal_free_description(s.description) if hide_goal else s.description.strip()
    return (
        f"# {s.name}\n\n{desc}\n\n"
        f"- program: {s.program.name} ({s.program.package}, version {s.program.version})\n"
        + (f"- stands in for: {s.program.substitutes}\n" if s.program.substitutes else "")
        + f"- this folder: {s.guest_dir()} (config files, scripts and the spec, workload.yaml)\n"
        + "- set-up commands (already run once in this VM):\n"
        + "".join(f"    {c}\n" for c in s.setup)
        + f"- run command (smoke size): {s.run.smoke}\n- run command (full size): {s.run.full}\n"
    )


def _upload_tree(sb: Sandbox, folder: Path, dest: str) -> None:
    files = tree_files(folder)
    dirs = sorted({f.parent.relative_to(folder).as_posix() for f in files})
    r = sb.run("mkdir -p " + " ".join(shlex.quote(f"{dest}/{d}") for d in dirs) + " /var/log/schedcp", timeout=30)
    if not r.success:
        raise WorkloadError(f"cannot create {dest} in the guest: {r.stderr.strip()}")
    for f in files:
        rel = f.relative_to(folder).as_posix()
        sb.put_file(f"{dest}/{rel}", f.read_bytes(), mode=0o755 if f.stat().st_mode & 0o111 else 0o644)


# what a goal-inference trial (--no-slo-hint) must not see of the spec: the goal itself,
# and the list of named metrics (7 workloads have one: it would hand the answer over)
GOAL_KEYS = ("primary", "slo", "goal", "noise", "metrics")


def goal_free_spec(wl: Workload) -> str:
    """The workload.yaml a goal-inference trial's guest gets: without :data:`GOAL_KEYS`,
    with the goal-free description."""
    import yaml

    spec = yaml.safe_load((wl.folder / "workload.yaml").read_text())
    for k in GOAL_KEYS:
        spec.pop(k, None)
    spec["description"] = goal_free_description(spec.get("description", ""))
    return yaml.safe_dump(spec, sort_keys=False)


def install(sb: Sandbox, wl: Workload, hide_goal: bool = False) -> None:
    """Upload the workload folder to its fixed guest path, plus a README for operators,
    and the helpers shared by workloads (``workloads/_lib``) beside it. With ``hide_goal``
    the uploaded ``workload.yaml`` has no metric list, primary metric, SLO, goal or noise
    note, and the README states no goal."""
    _upload_tree(sb, wl.folder, wl.spec.guest_dir())
    if hide_goal:
        sb.put_file(f"{wl.spec.guest_dir()}/workload.yaml", goal_free_spec(wl))
    if LIB_DIR.is_dir():
        _upload_tree(sb, LIB_DIR, f"{GUEST_ROOT}/_lib")
    sb.put_file(f"{wl.spec.guest_dir()}/README.md", readme(wl, hide_goal))


def setup(sb: Sandbox, wl: Workload, size: Size = "smoke", hide_goal: bool = False) -> None:
    install(sb, wl, hide_goal=hide_goal)
    for step in wl.spec.setup:
        r = sb.run(f"cd {shlex.quote(wl.spec.guest_dir())} && {step}", timeout=wl.spec.timeout_s.full)
        if not r.success:
            why = "timed out" if r.timed_out else f"exit {r.returncode}"
            tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
            raise WorkloadError(f"{wl.name}: set-up step failed ({why}): {step!r}: {tail}")


_WALL_LINE = re.compile(r"^schedcp_wall_s=([0-9.]+)\s*$", re.M)


def _run(sb: Sandbox, wl: Workload, size: Size):
    """The spec's run command in the workload folder, timed in the guest: (ExecResult,
    stdout+stderr, timeout)."""
    spec = wl.spec
    cmd = getattr(spec.run, size)
    timeout = getattr(spec.timeout_s, size)
    wrapped = (
        f"cd {shlex.quote(spec.guest_dir())} && {{ _ws=$EPOCHREALTIME; ( {cmd} ) 2>&1; _wrc=$?; _we=$EPOCHREALTIME; "
        "echo \"schedcp_wall_s=$(awk \"BEGIN{printf \\\"%.6f\\\", $_we - $_ws}\")\"; exit $_wrc; }"
    )
    r = sb.run(f"bash -c {shlex.quote(wrapped)}", timeout=timeout, max_output=4 << 20)
    return r, r.stdout + r.stderr, timeout


def run_once(sb: Sandbox, wl: Workload, size: Size, index: int = 0, warmup: bool = False) -> RunResult:
    r, out, timeout = _run(sb, wl, size)
    if r.timed_out:
        raise WorkloadError(f"{wl.name}: run {index} timed out after {timeout:.0f}s and was killed")
    if r.returncode != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise WorkloadError(f"{wl.name}: run {index} failed with exit {r.returncode}: {tail}")
    return RunResult(index, warmup, parse_metrics(wl.spec, out), r.duration_s, "\n".join(out.splitlines()[-5:]))


def run_output(sb: Sandbox, wl: Workload, size: Size, max_chars: int = 6000) -> dict:
    """One run as an operator sees it, for an agent that was not told the goal: exit code,
    elapsed seconds and what the program printed (its last ``max_chars`` characters), no
    named metrics."""
    r, out, timeout = _run(sb, wl, size)
    wall = _WALL_LINE.findall(out)
    text = _WALL_LINE.sub("", out).rstrip()
    res = {"exit_code": r.returncode, "elapsed_s": float(wall[-1]) if wall else round(r.duration_s, 3),
           "output": text[-max_chars:]}
    if len(text) > max_chars:
        res["output_truncated"] = True
    if r.timed_out:
        res["error"] = f"the run timed out after {timeout:.0f}s and was killed"
    elif r.returncode != 0:
        res["error"] = "the run failed"
    return res


def run_workload(sb: Sandbox, wl: Workload, size: Size = "smoke", repeat: int | None = None,
                 warmup: int | None = None, on_run: Callable[[RunResult], None] | None = None,
                 do_setup: bool = True) -> WorkloadRuns:
    if do_setup:
        setup(sb, wl, size)
    repeat = wl.spec.repetitions[size] if repeat is None else repeat
    warmup = wl.spec.warmup_runs if warmup is None else warmup
    res = WorkloadRuns(wl.name, size)
    for i in range(warmup + repeat):
        rr = run_once(sb, wl, size, i, warmup=i < warmup)
        res.runs.append(rr)
        if on_run:
            on_run(rr)
    return res


__all__ = ["RunResult", "WorkloadRuns", "install", "setup", "run_once", "run_output", "run_workload", "GUEST_ROOT"]
