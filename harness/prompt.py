"""The instruction an agent gets: the machine, the workload, and (unless --no-slo-hint)
its SLO. Nothing in it comes from the host except these facts."""

from __future__ import annotations

from .workload import Workload, goal_free_description


def instruction(wl: Workload, kernel: str, vcpus: int, memory_mib: int, slo_hint: bool, budget) -> str:
    s = wl.spec
    lines = [
        "You are tuning a Linux machine for one application. You act as root inside a throw-away VM "
        f"({vcpus} vCPUs, {memory_mib} MiB RAM, kernel {kernel} with sched_ext and BTF).",
        "",
        "Tools in the VM: sysctl, bpftool, clang-22 and libbpf (to write sched_ext schedulers), BCC tools "
        "(/usr/sbin/*-bpfcc), perf. Prebuilt sched_ext example schedulers: /opt/schedcp/scx/bin/scx_* "
        "(sources and headers for your own: /opt/schedcp/scx/src). Start a scheduler detached, e.g. "
        "`setsid -f /opt/schedcp/scx/bin/scx_simple >/var/log/scx.log 2>&1`; check "
        "/sys/kernel/sched_ext/state and /sys/kernel/sched_ext/root/ops. There is no network.",
        "",
        f"The application: {s.description.strip() if slo_hint else goal_free_description(s.description)}",
        f"Its files (config, scripts, spec, README): {s.guest_dir()}. It is already set up.",
        f"It is run as: cd {s.guest_dir()} && {s.run.smoke}",
        "",
    ]
    if slo_hint:
        m = s.primary_metric
        rel = s.slo.relative
        goal = f"{'lower' if s.primary.direction == 'lower' else 'higher'} {m.name} ({m.unit})"
        lines.append(f"Goal: {goal}." + (f" SLO: at {'most' if s.primary.direction == 'lower' else 'least'} "
                                           f"{rel:g}x the default configuration's value." if rel else ""))
    else:
        lines.append("No goal is given: find out from the application what matters for it (its files, logs, "
                     "output, how it runs), then call declare_goal(metric, direction, rationale) with ONE metric "
                     "as the application reports it and ONE direction (a list of alternatives counts as wrong), "
                     "before you change anything. Observe freely until then, but every change made before "
                     "declare_goal (sysctls, schedulers, files, process priorities) is recorded and makes the "
                     "declaration count as wrong. run_workload returns what the application printed. Then "
                     "optimize the goal you declared.")
    lines += [
        "",
        "Leave your best configuration in place when you finish: the harness then measures the "
        "application itself, against an untouched copy of this VM. A scheduler that the kernel ejects "
        "counts as not in place.",
        f"Budget: at most {budget.steps} steps and {budget.wall_s:.0f} s of wall time.",
    ]
    return "\n".join(lines)
