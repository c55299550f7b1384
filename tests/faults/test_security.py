"""What isolates what (SECURITY.md): guests from each other, VM resource caps, and
the host from anything the agent produces."""

import json
import re

import pytest

from harness.agents.base import AgentContext, Trajectory
from harness.limits import BudgetTracker
from harness.models import Budget
from harness.workload import load_workload


def test_guest_cannot_reach_another_guest(backend):
    with backend.open(job="faults", trial="sec-a") as a, backend.open(job="faults", trial="sec-b") as b:
        b.run("setsid -f python3 -m http.server 8000 --bind 0.0.0.0 >/dev/null 2>&1; for i in $(seq 120); do "
              "(echo > /dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.5; done", timeout=90)
        port_b = b.relay.port  # B's SSH, forwarded on the host's 127.0.0.1
        probe = ("timeout 5 bash -c 'echo > /dev/tcp/{h}/{p}' 2>&1 && echo OPEN || echo CLOSED")
        for host, port in (("10.0.2.2", port_b), ("10.0.2.15", 8000), ("10.0.2.2", 8000)):
            r = a.run(probe.format(h=host, p=port), timeout=30)
            assert r.stdout.strip().endswith("CLOSED"), (host, port, r)
        # B's server is up (reachable from inside B): the refusals above are isolation
        assert b.run(probe.format(h="127.0.0.1", p=8000), timeout=30).stdout.strip().endswith("OPEN")


def test_vm_resources_are_capped(backend):
    with backend.open(job="faults", trial="caps") as sb:
        assert int(sb.run("nproc").stdout) == backend.shape.vcpus
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", sb.run("cat /proc/meminfo").stdout).group(1))
        assert mem_kb <= backend.shape.memory_mib * 1024
        disk = int(sb.run("cat /sys/block/vda/size").stdout) * 512
        assert disk <= 16 << 30
        xml = (sb.run_dir / "domain.xml").read_text()
        assert int(re.search(r"<vcpu[^>]*>(\d+)</vcpu>", xml).group(1)) == backend.shape.vcpus
        assert "restrict=on" in xml


def test_agent_file_names_cannot_escape_the_trial_folder(sb, tmp_path):
    ctx = AgentContext(sandbox=sb, workload=load_workload("sqlite"), instruction="", budget=BudgetTracker(Budget()),
                       trajectory=Trajectory(tmp_path / "t.jsonl"), files_dir=tmp_path / "trial" / "files")
    with pytest.raises(ValueError, match="refused path"):
        ctx.write_file("/../../../../tmp/schedcp-escape", "pwned")
    assert not (tmp_path / "tmp").exists() and not list(tmp_path.glob("**/schedcp-escape"))
    ctx.write_file("/root/sched.bpf.c", "int x;")
    local = tmp_path / "trial" / "files" / "root" / "sched.bpf.c"
    assert local.read_text() == "int x;" and not local.stat().st_mode & 0o111  # a copy, never executable
    assert sb.run("cat /root/sched.bpf.c").stdout == "int x;"
    assert [json.loads(x)["type"] for x in (tmp_path / "t.jsonl").read_text().splitlines()] == ["write_file"]
