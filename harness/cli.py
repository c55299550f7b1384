"""`schedcp`: the command-line front end.

Verbs (more arrive with the harness issues):
  schedcp image build [RECIPE] [--force]     build a guest image (cached by recipe content)
  schedcp image list [--json]                built images, kernel, hashes
  schedcp sandbox info                       accelerator, libvirt/QEMU versions
  schedcp sandbox shell [--recipe R]         interactive shell in a fresh VM
  schedcp sandbox exec [--timeout S] -- CMD  run one command in a fresh VM
  schedcp sandbox cleanup                    remove VMs and files of killed runs
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
    return p


def main(argv: list[str] | None = None) -> int:
    from images.build import BuildError
    from images.recipe import RecipeError
    from sandbox.base import SandboxError

    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except (RecipeError, BuildError, SandboxError) as e:
        return _err(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
