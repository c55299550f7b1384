"""`schedcp`: the command-line front end.

Verbs (more arrive with the harness issues):
  schedcp image build [RECIPE] [--force]     build a guest image (cached by recipe content)
  schedcp image list [--json]                built images, kernel, hashes
  schedcp sandbox info                       accelerator, libvirt/QEMU versions
  schedcp sandbox shell [--recipe R]         interactive shell in a fresh VM
  schedcp sandbox exec [--timeout S] -- CMD  run one command in a fresh VM
  schedcp sandbox cleanup                    remove VMs and files of killed runs
  schedcp workloads list [--json]            the workload suite
  schedcp workloads show NAME                one workload's spec
  schedcp workloads run NAME [--size smoke|full] [--repeat N] [--json]
                                             run it in a fresh sandbox, print runs + summary
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys


def _err(msg: str) -> int:
    print(f"schedcp: error: {msg}", file=sys.stderr)
    return 2


def cmd_image_build(a) -> int:
    from images.build import build

    img = build(a.recipe, force=a.force)
    s = img.summary()
    print(f"{s['key']}  kernel {s['kernel']}  base sha256 {s['base_sha256'][:16]}  {s['size_mib']} MiB")
    return 0


def cmd_image_list(a) -> int:
    from images.store import images_dir, list_images

    imgs = [i.summary() for i in list_images()]
    if a.json:
        print(json.dumps(imgs, indent=2))
        return 0
    if not imgs:
        print(f"no images built under {images_dir()} (run `schedcp image build`)")
        return 0
    print(f"{'KEY':40} {'KERNEL':28} {'BASE SHA256':18} {'VMLINUZ SHA256':18} {'MiB':>6}  BUILT")
    for s in imgs:
        print(f"{s['key']:40} {s['kernel']:28} {s['base_sha256'][:16]:18} {s['vmlinuz_sha256'][:16]:18} "
              f"{s['size_mib']:>6}  {s['built_at']}")
    return 0


def cmd_sandbox_info(a) -> int:
    from sandbox.libvirt import prereqs

    prereqs.connect()
    info = {"accel": prereqs.detect_accel(), **prereqs.host_tools(), "uri": prereqs.LIBVIRT_URI}
    print(json.dumps(info, indent=2))
    return 0


def _backend(a):
    from sandbox.factory import backend_for
    from sandbox.libvirt.backend import VMShape

    return backend_for(a.recipe, VMShape(vcpus=a.vcpus, memory_mib=a.memory),
                       log=lambda m: print(m, file=sys.stderr))


def cmd_sandbox_exec(a) -> int:
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        return _err("nothing to run: schedcp sandbox exec -- CMD")
    with _backend(a).open(job="exec") as sb:
        r = sb.run(" ".join(cmd) if len(cmd) > 1 else cmd[0], timeout=a.timeout)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        if r.timed_out:
            print(f"schedcp: command timed out after {a.timeout}s and was killed", file=sys.stderr)
        return r.returncode if 0 <= r.returncode < 256 else 1


def cmd_sandbox_shell(a) -> int:
    be = _backend(a)
    with be.open(job="shell") as sb:
        print(f"schedcp: {sb.name} (kernel {be.image.lock.kernel_release}, {be.accel}); "
              "everything you change is discarded on exit", file=sys.stderr)
        ssh = ["ssh", "-q", "-t", "-p", str(sb.port), "-i", str(be.image.client_key),
               "-o", f"UserKnownHostsFile={be.image.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]
        if not sys.stdin.isatty():
            ssh.remove("-t")
        return subprocess.call(ssh)


def cmd_sandbox_cleanup(a) -> int:
    from sandbox.libvirt.backend import cleanup_stale

    removed = cleanup_stale()
    print("\n".join(removed) if removed else "nothing to clean up")
    return 0


def _slo_text(spec) -> str:
    rel = spec.slo.relative
    parts = []
    if rel is not None:
        parts.append(f"{'<=' if spec.primary.direction == 'lower' else '>='} {rel:g}x baseline")
    if spec.slo.absolute is not None:
        parts.append(f"{'<=' if spec.primary.direction == 'lower' else '>='} {spec.slo.absolute:g} "
                     f"{spec.primary_metric.unit}")
    return " and ".join(parts)


def cmd_workloads_list(a) -> int:
    from harness.workload import list_workloads

    wls = list_workloads()
    if a.json:
        print(json.dumps([{
            "name": w.name, "category": w.spec.category, "primary_metric": w.spec.primary.metric,
            "unit": w.spec.primary_metric.unit, "direction": w.spec.primary.direction,
            "slo": w.spec.slo.model_dump(), "slo_text": _slo_text(w.spec),
            "sizes": w.spec.run.model_dump(), "repetitions": w.spec.repetitions,
            "requirements": w.spec.requirements.model_dump(),
        } for w in wls], indent=2))
        return 0
    print(f"{'NAME':16} {'CATEGORY':9} {'PRIMARY METRIC':22} {'BETTER':7} {'SLO':32} {'REQUIRES'}")
    for w in wls:
        s = w.spec
        req = f"{s.requirements.min_vcpus} vCPU, {s.requirements.memory_mib} MiB" + (", GPU" if s.requirements.gpu else "")
        print(f"{w.name:16} {s.category:9} {s.primary.metric + ' (' + s.primary_metric.unit + ')':22} "
              f"{s.primary.direction:7} {_slo_text(s):32} {req}")
    return 0


def cmd_workloads_show(a) -> int:
    from harness.workload import load_workload

    w = load_workload(a.name)
    print(f"# {w.folder}/workload.yaml")
    print((w.folder / "workload.yaml").read_text().rstrip())
    print(f"# files uploaded to {w.spec.guest_dir()}: " + ", ".join(str(f.relative_to(w.folder)) for f in w.files()))
    return 0


def cmd_workloads_run(a) -> int:
    from harness.bench import run_workload
    from harness.workload import load_workload

    wl = load_workload(a.name)

    def show(r) -> None:
        if not a.json:
            vals = "  ".join(f"{k}={v:.6g}" for k, v in r.metrics.items())
            print(f"run {r.index}{' (warm-up, dropped)' if r.warmup else ''}: {vals}", flush=True)

    with _backend(a).open(job="workload", trial=wl.name) as sb:
        res = run_workload(sb, wl, a.size, repeat=a.repeat, on_run=show)
    if a.json:
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    print(f"{'METRIC':22} {'MEDIAN':>12} {'MEAN':>12} {'STDEV':>10} {'CV':>7}  N")
    for m, st in res.summary().items():
        unit = next(x.unit for x in wl.spec.metrics if x.name == m)
        print(f"{m + ' (' + unit + ')':22} {st['median']:12.6g} {st['mean']:12.6g} {st['stdev']:10.4g} "
              f"{100 * st['cv']:6.2f}%  {st['n']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="schedcp", description="schedcp-bench: agentic OS optimization benchmark")
    sub = p.add_subparsers(dest="group", required=True)

    img = sub.add_parser("image", help="guest images").add_subparsers(dest="verb", required=True)
    b = img.add_parser("build", help="build a recipe (default: trixie-7.3-scx)")
    b.add_argument("recipe", nargs="?")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(fn=cmd_image_build)
    ls = img.add_parser("list", help="list built images")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=cmd_image_list)

    sbx = sub.add_parser("sandbox", help="throw-away VMs").add_subparsers(dest="verb", required=True)
    for name, fn, hlp in (("shell", cmd_sandbox_shell, "interactive shell in a fresh VM"),
                          ("exec", cmd_sandbox_exec, "run one command in a fresh VM")):
        sp = sbx.add_parser(name, help=hlp)
        sp.add_argument("--recipe", default=None)
        sp.add_argument("--vcpus", type=int, default=2)
        sp.add_argument("--memory", type=int, default=4096, help="MiB")
        if name == "exec":
            sp.add_argument("--timeout", type=float, default=600.0)
            sp.add_argument("cmd", nargs=argparse.REMAINDER)
        sp.set_defaults(fn=fn)
    sbx.add_parser("info", help="accelerator and versions").set_defaults(fn=cmd_sandbox_info)
    sbx.add_parser("cleanup", help="remove leftovers of killed runs").set_defaults(fn=cmd_sandbox_cleanup)

    wl = sub.add_parser("workloads", help="the workload suite").add_subparsers(dest="verb", required=True)
    wls = wl.add_parser("list", help="name, category, primary metric, SLO, requirements")
    wls.add_argument("--json", action="store_true")
    wls.set_defaults(fn=cmd_workloads_list)
    wsh = wl.add_parser("show", help="one workload's spec and files")
    wsh.add_argument("name")
    wsh.set_defaults(fn=cmd_workloads_show)
    wr = wl.add_parser("run", help="run a workload in a fresh sandbox")
    wr.add_argument("name")
    wr.add_argument("--size", choices=["smoke", "full"], default="smoke")
    wr.add_argument("--repeat", type=int, default=None, help="measured runs (after the warm-up)")
    wr.add_argument("--json", action="store_true")
    wr.add_argument("--recipe", default=None)
    wr.add_argument("--vcpus", type=int, default=2)
    wr.add_argument("--memory", type=int, default=4096, help="MiB")
    wr.set_defaults(fn=cmd_workloads_run)
    return p


def main(argv: list[str] | None = None) -> int:
    from harness.workload import WorkloadError
    from images.build import BuildError
    from images.recipe import RecipeError
    from sandbox.base import SandboxError

    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except (RecipeError, BuildError, SandboxError, WorkloadError) as e:
        return _err(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
