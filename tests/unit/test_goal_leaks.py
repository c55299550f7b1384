"""Leak-free goal inference (RQ2, --no-slo-hint), without a VM: the guest's spec and
README name no metric; run_workload returns the program's output, not named metrics;
every change made before declare_goal is detected (harness/guest_state.py) and makes
the declaration not correct. The guest is a small fake that answers the harness's own
commands (the state read, the workload run) from a dict."""

import json
import re

import pytest

from harness import bench, guest_state
from harness.agents.base import AgentContext, Trajectory
from harness.limits import BudgetTracker
from harness.models import Budget
from harness.tools import TrialTools
from harness.workload import WorkloadError, list_workloads, load_workload
from sandbox.base import ExecResult


@pytest.mark.parametrize("wl", list_workloads(), ids=lambda w: w.name)
def test_guest_spec_and_readme_name_no_metric(wl):
    import yaml

    spec = yaml.safe_load(bench.goal_free_spec(wl))
    assert not set(bench.GOAL_KEYS) & set(spec), spec.keys()
    assert spec["run"] == wl.spec.run.model_dump()  # what it needs to run stays
    text = bench.goal_free_spec(wl) + bench.readme(wl, hide_goal=True)
    for m in wl.spec.metrics:
        for form in {m.name, m.name.replace("_", " ")}:
            assert not re.search(rf"(?<![a-z0-9_]){re.escape(form)}(?![a-z0-9_])", text, re.I), (m.name, form)
        assert m.regex not in text
    assert "figure of merit" not in text.lower()


class FakeGuest:
    """Answers the state read (guest_state.fingerprint_cmd), the workload run (bench.run_once),
    and a few agent commands: ``sysctl -w k=v``, ``touch PATH``, ``renice -n N -p PID``,
    ``start scx``."""

    def __init__(self, output="Running in process mode\nTime: 1.234\n"):
        self.sysctl = {"kernel.sched_autogroup_enabled": "1", "kernel.tainted": "0", "vm.swappiness": "60"}
        self.scx = {"state": "disabled", "ops": "", "enable_seq": "0"}
        self.procs = {"101": ["dropbear", "0", "TS", "-", "0-1"], "102": ["redis-server", "0", "TS", "-", "0-1"]}
        self.files: dict[str, int] = {}
        self.tick, self.marker = 0, None
        self.output = output
        self.cmds: list[str] = []

    def _now(self):
        self.tick += 1
        return self.tick

    def run(self, cmd, timeout=60.0, max_output=1 << 20):
        self.cmds.append(cmd)
        if "echo @@sysctl" in cmd:
            if guest_state.MARKER in cmd.split("echo @@sysctl")[0]:
                self.marker = self._now()
            return ExecResult(0, self._state(), "", 0.5)
        if "schedcp_wall_s" in cmd:  # bench.run_once: the application writes its own output file
            self.files["/opt/schedcp/workloads/hackbench/out.db"] = self._now()
            self.files["/root/.cache/app/x"] = self._now()
            return ExecResult(0, self.output + "schedcp_wall_s=1.300000\n", "", 1.4)
        if m := re.fullmatch(r"sysctl -w (\S+)=(\S+)", cmd):
            self.sysctl[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"touch (\S+)", cmd):
            self.files[m.group(1)] = self._now()
        elif m := re.fullmatch(r"renice -n (\S+) -p (\d+)", cmd):
            self.procs[m.group(2)][1] = m.group(1)
        elif cmd == "start scx":
            self.scx = {"state": "enabled", "ops": "simple", "enable_seq": "1"}
        return ExecResult(0, "", "", 0.01)

    def _state(self):
        out = ["@@sysctl", *(f"{k} = {v}" for k, v in self.sysctl.items()), "@@scx",
               *(f"{k}={v}" for k, v in self.scx.items()), "@@procs",
               *(f"{p} {ni} {cls} {rt} {comm}" for p, (comm, ni, cls, rt, _) in self.procs.items()), "@@affinity",
               *(f"/proc/{p}/status:Cpus_allowed_list:\t{v[4]}" for p, v in self.procs.items()), "@@files"]
        if self.marker is not None:
            out += [f"{t}.0 {p}" for p, t in self.files.items() if t > self.marker]
        return "\n".join(out + ["@@end", ""])

    def put_file(self, path, content, mode=0o644):
        self.files[path] = self._now()


def tools_for(tmp_path, guest, slo_hint=False):
    wl = load_workload("hackbench")

    def trial_run():  # as harness/trial.py's
        try:
            return bench.run_once(guest, wl, "smoke").metrics
        except WorkloadError as e:
            return {"error": str(e)}

    ctx = AgentContext(sandbox=guest, workload=wl, instruction="", budget=BudgetTracker(Budget()),
                       trajectory=Trajectory(tmp_path / "t.jsonl"), files_dir=tmp_path / "files",
                       trial_run=trial_run, trial_run_output=lambda: bench.run_output(guest, wl, "smoke"),
                       slo_hint=slo_hint)
    return TrialTools(ctx, require_goal=not slo_hint, count_steps=True)


def reads(guest):
    return sum("echo @@sysctl" in c for c in guest.cmds)


def test_observing_then_declaring_is_correct(tmp_path):
    g = FakeGuest()
    t = tools_for(tmp_path, g)
    out = json.loads(t.call("run_workload"))
    # what the program printed and its elapsed time; not the harness's named metrics
    assert out == {"exit_code": 0, "elapsed_s": 1.3, "output": "Running in process mode\nTime: 1.234"}
    assert "wall_s" not in json.dumps(out)
    t.call("bash", {"command": "cat /proc/schedstat"})
    assert json.loads(t.call("declare_goal", {"metric": "completion time", "direction": "lower"})) == {"recorded": True}
    assert reads(g) == 4  # before the first call, after each of the two calls, right before the declaration
    goal = t.goal
    assert goal["correct"] is True and goal["reason"] == "" and goal["changes_before_declare"] == []
    assert goal["first_change_step"] is None and goal["changes_watched"] is True and goal["watch_errors"] == []
    # after the declaration the guest is no longer read
    t.call("bash", {"command": "sysctl -w vm.swappiness=10"})
    assert reads(g) == 4 and t.goal["changes_before_declare"] == []


def test_a_change_through_bash_before_declaring_is_recorded_and_not_correct(tmp_path):
    g = FakeGuest()
    t = tools_for(tmp_path, g)
    t.call("bash", {"command": "cat /proc/sys/kernel/sched_autogroup_enabled"})
    t.call("bash", {"command": "sysctl -w kernel.sched_autogroup_enabled=0"})
    t.call("bash", {"command": "touch /etc/sysctl.d/99-tune.conf"})
    t.call("bash", {"command": "renice -n -5 -p 102"})
    t.call("bash", {"command": "start scx"})
    t.call("run_workload")  # its own files (in its folder, caches) are not changes
    g.sysctl["kernel.tainted"] = "16384"  # the kernel's own doing (a soft lockup): not a change
    t.call("declare_goal", {"metric": "wall_s", "direction": "lower"})
    goal = t.goal
    assert goal["metric_ok"] and goal["direction_ok"] and goal["correct"] is False
    assert [c["what"] for c in goal["changes_before_declare"]] == [
        "sysctl kernel.sched_autogroup_enabled: 1 -> 0", "file /etc/sysctl.d/99-tune.conf",
        "process 102 (redis-server) nice/policy/rtprio/cpus: 0 TS - cpus=0-1 -> -5 TS - cpus=0-1",
        "sched_ext enabled ops=simple (was disabled)"]
    first = goal["changes_before_declare"][0]
    assert first == {"step": 2, "tool_call": 2, "tool": "bash", "what": "sysctl kernel.sched_autogroup_enabled: 1 -> 0"}
    assert goal["first_change_step"] == 2 and goal["changes_before_declare_count"] == 4
    assert goal["reason"].startswith("changed the guest before declaring: sysctl kernel.sched_autogroup_enabled")
    ev = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert sum(1 for e in ev if e["type"] == "goal_watch" and e["changes"]) == 4


def test_editing_an_installed_workload_file_is_a_change(tmp_path):
    g = FakeGuest()
    t = tools_for(tmp_path, g)
    t.call("bash", {"command": "touch /opt/schedcp/workloads/hackbench/scratch.txt"})  # a new file there: output
    t.call("bash", {"command": "touch /opt/schedcp/workloads/hackbench/workload.yaml"})
    t.call("declare_goal", {"metric": "wall_s", "direction": "lower"})
    whats = [c["what"] for c in t.goal["changes_before_declare"]]
    assert whats == ["file /opt/schedcp/workloads/hackbench/workload.yaml"]


def test_a_catch_all_declaration_is_not_correct(tmp_path):
    t = tools_for(tmp_path, FakeGuest())
    t.call("declare_goal", {"metric": "wall time or throughput or p99 latency", "direction": "lower"})
    assert t.goal["correct"] is False and t.goal["catch_all"] is True and t.goal["metric_ok"] is False
    assert t.goal["reason"].startswith("a list of alternatives") and t.goal["changes_before_declare"] == []


def test_tuning_tools_are_still_refused_before_declaring(tmp_path):
    g = FakeGuest()
    t = tools_for(tmp_path, g)
    assert t.call("sysctl_set", {"name": "vm.swappiness", "value": "1"}).startswith("refused: call declare_goal")
    assert g.sysctl["vm.swappiness"] == "60"


def test_run_workload_without_goal_hides_metrics_also_when_it_fails(tmp_path):
    t = tools_for(tmp_path, FakeGuest(output="segfault somewhere\n"))
    out = json.loads(t.call("run_workload"))
    # the harness cannot read a result from it, and the agent is not told so (that would
    # tell it what the harness looks for): it gets the output as it is
    assert "error" not in out and out["exit_code"] == 0
    assert out["output"] == "segfault somewhere" and "wall_s" not in json.dumps(out) and "Time" not in json.dumps(out)


def test_run_workload_with_the_hint_returns_metrics(tmp_path):
    g = FakeGuest()
    t = tools_for(tmp_path, g, slo_hint=True)
    r = t.call_result("run_workload")
    assert r.data == {"metrics": {"wall_s": 1.234}} and json.loads(r.text) == r.data and not r.is_error
    t.call("bash", {"command": "sysctl -w vm.swappiness=10"})
    assert reads(g) == 0  # nothing watched when the goal was given


def test_fingerprint_changes_known_answers():
    F = guest_state.Fingerprint
    a = F(knobs={"kernel.x": "1", "/sys/kernel/debug/sched/base_slice_ns": "3000000", "kernel.tainted": "0"},
          scx={"state": "disabled", "ops": "", "enable_seq": "0"}, procs={"5": ("nginx", "0 TS - cpus=0-1")})
    b = F(knobs={"kernel.x": "1", "/sys/kernel/debug/sched/base_slice_ns": "1000000", "kernel.tainted": "512"},
          scx={"state": "disabled", "ops": "", "enable_seq": "1"}, procs={"5": ("nginx", "0 TS - cpus=1"),
                                                                         "6": ("bash", "0 TS - cpus=0-1")},
          files={"/etc/x": "12.5"})
    assert a.changes(b) == [
        "debugfs /sys/kernel/debug/sched/base_slice_ns: 3000000 -> 1000000",
        "sched_ext: a scheduler was enabled and is gone again (enable_seq 0 -> 1)",
        "process 5 (nginx) nice/policy/rtprio/cpus: 0 TS - cpus=0-1 -> 0 TS - cpus=1",
        "file /etc/x"]
    assert a.changes(a) == []


@pytest.mark.parametrize("path,ignored", [
    ("/etc/sysctl.d/99-x.conf", False),
    ("/root/tune.sh", False),
    ("/opt/schedcp/workloads/hackbench/workload.yaml", False),  # installed by the harness: changing it counts
    ("/opt/schedcp/workloads/hackbench/out.db", True),  # the application's output
    ("/root/.cache/pip/x", True),
    ("/usr/local/lib/python3/dist-packages/__pycache__/m.cpython-313.pyc", True),
    ("/root/perf.data", True),
])
def test_ignored_paths(path, ignored):
    installed = frozenset({"/opt/schedcp/workloads/hackbench/workload.yaml"})
    assert guest_state.ignored(path, installed) is ignored
