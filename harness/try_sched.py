"""``schedcp try``: test an untrusted sched_ext scheduler in a fresh sandbox.

Compile, load and stress it (:mod:`sandbox.scx.verify`); if it survives and a workload
is named, run the workload under the kernel's default scheduler (D) and under it (S) in
one guest, rounds in balanced blocks (DS SD SD DS ..., seeded, recorded as ``order``),
each measured run right after the same unmeasured warm-up run(s) in its configuration,
and compare with the same statistics and verdict rules as a trial (harness/scoring.py).
Both sides run in the same VM instance, so the instance's own speed cancels out. Every failure comes back as an outcome with the compiler's,
verifier's or kernel's words: compile error, verifier rejection, load failure, ejection
by the sched_ext watchdog (with the kernel's reason), guest hang or panic.
"""

from __future__ import annotations

import time
from typing import Callable

from sandbox.base import GuestCrashed, SandboxError
from sandbox.guest import SchedulerError, sched_ext_dmesg, sched_ext_state, start_binary, stop_scheduler
from sandbox.scx import verify as scx_verify

from . import bench, fmt, scoring
from .stats import paired_compare, summarize_runs
from .workload import WorkloadError, load_workload


def try_scheduler(backend, source: str, name: str, workload: str | None = None, size: str = "smoke",
                  repeat: int = 5, warmup: int = 1, log: Callable[[str], None] = lambda s: None) -> dict:
    wl = load_workload(workload) if workload else None
    out: dict = {"scheduler": name, "workload": workload, "size": size}
    t0 = time.monotonic()
    with backend.open(job="try", trial=name) as sb:
        if wl:
            log(f"setting up {wl.name}")
            bench.setup(sb, wl, size)
        log("building, loading and stressing the scheduler")
        v = scx_verify.verify(sb, source, name=name, keep_loaded=False)
        out["verdict"] = v.to_dict()
        out["outcome"] = v.outcome
        log(f"verdict: {v.outcome}" + (f" ({v.kernel_reason})" if v.kernel_reason else ""))
        if not v.ok or wl is None:
            out["wall_s"] = round(time.monotonic() - t0, 2)
            return out
        binary = f"{scx_verify.CUSTOM_DIR}/{name}/{name}"
        runs: dict[str, list[dict]] = {"default": [], "scheduler": []}
        seed = int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "big")
        order = [o.replace("B", "D").replace("T", "S") for o in scoring.balanced_order(repeat, seed)]
        out["order"], out["order_seed"] = order, seed
        try:
            for i, pair in enumerate(order):
                for side in pair:
                    role = "scheduler" if side == "S" else "default"
                    if role == "scheduler":
                        start_binary(sb, binary)
                    for w in range(warmup + 1):
                        r = bench.run_once(sb, wl, size, index=i, warmup=w < warmup)
                        log(f"{role:9} run {i}{' (warm-up)' if w < warmup else ''}: "
                            f"{fmt.metric(r.metrics[wl.spec.primary.metric])}")
                    if role == "scheduler":
                        st = sched_ext_state(sb)
                        if not st.enabled:
                            dm = sched_ext_dmesg(sb, lines=5, sep="\n")
                            out.update(outcome="ejected", ejected_during="workload", dmesg=dm)
                            log(f"ejected while the workload ran: {dm.splitlines()[-1] if dm else st.state}")
                            return out
                        stop_scheduler(sb)
                    runs[role].append(r.metrics)
        except GuestCrashed as e:
            out.update(outcome="guest_crashed", error=str(e))
            return out
        except SchedulerError as e:  # it loaded once, then failed to load again
            out.update(outcome="load_failed", error=str(e))
            return out
        except SandboxError as e:
            out.update(outcome="guest_unresponsive", error=f"{type(e).__name__}: {e}")
            return out
        except WorkloadError as e:
            out.update(outcome="workload_failed", error=str(e))
            return out
        pm = wl.spec.primary.metric
        out["primary_metric"], out["direction"] = pm, wl.spec.primary.direction
        out["summary"] = {"default": summarize_runs(runs["default"]), "scheduler": summarize_runs(runs["scheduler"])}
        out["improvement"] = paired_compare([r[pm] for r in runs["default"]], [r[pm] for r in runs["scheduler"]],
                                            wl.spec.primary.direction)
        imp = out["improvement"]
        out["score"] = scoring.verdict(imp["ratio"], imp["ci95"], imp["n"])
    out["wall_s"] = round(time.monotonic() - t0, 2)
    return out


def format_result(out: dict) -> list[str]:
    """The improvement and verdict lines of a ``schedcp try`` result, for people."""
    imp = out.get("improvement")
    if not imp or imp.get("ratio") is None:
        return []
    ci = imp.get("ci95")
    sc = out.get("score") or {}
    p = imp.get("p_value")
    lines = [f"{out['primary_metric']} ({out['direction']} is better): improvement {fmt.ratio(imp['ratio'])}x "
             + (f"[95% CI {fmt.ratio(ci[0])}, {fmt.ratio(ci[1])}]" if ci else "(no interval)")
             + (f", paired t-test p={fmt.pvalue(p)}" if p is not None else "")
             + f", {imp['n']} rounds in order {' '.join(out.get('order', []))}",
             f"verdict: {scoring.describe(sc)} (noise floor {fmt.percent(sc.get('noise_floor', scoring.NOISE_FLOOR))}: {sc.get('rule', '')})"]
    return lines
