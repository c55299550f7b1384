"""The MCP server's tools match the shared tool table (harness/tools.py), over a real MCP
client session (the SDK's in-process transport and streamable HTTP): their arguments, and
their results as structured content (each tool's outputSchema) with a readable text."""

import asyncio
import json
import re

import pytest
from mcp import Client

from harness.agents.base import AgentContext, Trajectory
from harness.limits import BudgetTracker
from harness.mcp_server import HttpServer, build_server
from harness.models import Budget
from harness.fmt import by_key, key_number
from harness.tools import MCP_TOOLS, SPECS, TrialTools
from harness.workload import load_workload
from sandbox.base import ExecResult
from sandbox.scx.verify import Verdict


class FakeGuest:
    """Answers the commands of the scheduler and sysctl tools from a few dicts."""

    def __init__(self):
        self.sysctl = {"kernel.sched_autogroup_enabled": "1", "kernel.sched_cfs_bandwidth_slice_us": "5000"}

    def run(self, cmd, timeout=60.0, max_output=1 << 20):
        out, rc = "", 0
        if cmd == "ls /opt/schedcp/scx/bin":
            out = "scx_simple\nscx_central\nREADME\n"
        elif cmd.startswith("ls /opt/schedcp/custom"):
            out = "fifo\n"
        elif cmd.startswith("cat /sys/kernel/sched_ext/state"):
            out = "disabled\n"
        elif m := re.fullmatch(r"sysctl -n '?([^']+)'?", cmd):
            rc, out = (0, self.sysctl[m.group(1)] + "\n") if m.group(1) in self.sysctl else (255, "")
            return ExecResult(rc, out, "" if rc == 0 else f"sysctl: cannot stat {m.group(1)}", 0.01)
        elif m := re.fullmatch(r"sysctl -w '?([^=']+)=([^']*)'?", cmd):
            self.sysctl[m.group(1)] = m.group(2)
        elif cmd.startswith("sysctl -a"):
            out = "".join(f"{k} = {v}\n" for k, v in self.sysctl.items())
        return ExecResult(rc, out, "", 0.01)


def tools_for(tmp_path, sandbox=None, trial_run=lambda: {}, **kw):
    ctx = AgentContext(sandbox=sandbox, workload=load_workload("hackbench"), instruction="",
                       budget=BudgetTracker(Budget()), trajectory=Trajectory(tmp_path / "t.jsonl"),
                       files_dir=tmp_path / "files", trial_run=trial_run)
    return TrialTools(ctx, **kw)


def session(srv, calls):
    """[(tools, results)] of one client session: the listed tools, then each call's result."""

    async def go():
        async with Client(srv) as c:
            listed = (await c.list_tools()).tools
            return listed, [await c.call_tool(n, a) for n, a in calls]

    return asyncio.run(go())


def test_tool_list_and_schemas_match_the_table(tmp_path):
    listed, _ = session(build_server(tools_for(tmp_path)), [])
    listed = {t.name: t for t in listed}
    assert list(listed) == MCP_TOOLS
    for name, t in listed.items():
        assert t.description == SPECS[name]["description"]
        want = SPECS[name]["schema"]
        assert set(t.input_schema["properties"]) == set(want["properties"]), name
        assert set(t.input_schema.get("required", [])) == set(want["required"]), name
        # the result model's schema is the outputSchema
        out = SPECS[name]["result"].model_json_schema()
        assert t.output_schema["type"] == "object", name
        assert t.output_schema["properties"].keys() == out["properties"].keys(), name
        assert set(t.output_schema.get("required", [])) == set(out.get("required", [])), name


def test_every_tool_of_the_table_has_a_result_model():
    for name, spec in SPECS.items():
        assert spec["result"].model_json_schema()["type"] == "object", name
    # the verifier's verdict and its result model have the same fields
    verdict = Verdict("compile_error", "x", stage="compile", error="clang: error", timings_s={"build": 1.5})
    model = SPECS["create_and_verify_scheduler"]["result"]
    assert set(model.model_fields) == set(verdict.to_dict())
    model.model_validate(verdict.to_dict())


def test_the_monitor_output_fits_its_model():
    """The guest monitor's JSON (harness/telemetry.py's MONITOR prints it; here as it
    printed on a guest), with and without the latency histogram."""
    base = {"interval_s": 2.0, "cpu_util_pct": 97.5, "ctx_switches_per_s": 51234.5, "runqueue_len_mean": 3.12,
            "runq_wait_us_per_sched": 41.07, "loadavg": ["1.52", "0.61", "0.22"], "ncpu": 2,
            "top": ["    PID COMMAND         %CPU NLWP", "    812 hackbench       45.0    1"],
            "sched_ext": {"state": "enabled", "ops": "simple"}}
    lat = {"wakeup_lat_p50_us": 12, "wakeup_lat_p90_us": 80, "wakeup_lat_p99_us": 950, "wakeup_lat_max_us": 4100,
           "wakeup_lat_samples": 20133, "wakeup_lat_dropped": 0}
    none = {"wakeup_lat_p50_us": None, "wakeup_lat_p90_us": None, "wakeup_lat_p99_us": None,
            "wakeup_lat_max_us": None, "wakeup_lat_samples": 0, "wakeup_lat_dropped": 0}
    model = SPECS["system_monitor"]["result"]
    for out in (base | lat, base | none, base | {"wakeup_lat_error": "no scheduling-latency histogram: x"},
                base | lat | {"runqlat": "usecs : count"}):
        model.model_validate(out)


def test_results_are_structured_content_with_a_text_rendering(tmp_path):
    guest = FakeGuest()
    tools = tools_for(tmp_path, guest, trial_run=lambda: {"wall_s": 1.23456789, "ops_per_s": 123456.789})
    _, (ls, get, prefix, set_, status, run) = session(build_server(tools), [
        ("list_schedulers", {}),
        ("sysctl_get", {"name": "kernel.sched_autogroup_enabled"}),
        ("sysctl_get", {"name": "kernel."}),
        ("sysctl_set", {"name": "kernel.sched_autogroup_enabled", "value": "0"}),
        ("scheduler_status", {}),
        ("run_workload", {}),
    ])
    assert ls.structured_content == {
        "prebuilt": ["scx_central", "scx_simple"], "custom": ["fifo"],
        "hint": "prebuilt binaries in /opt/schedcp/scx/bin, sources in /opt/schedcp/scx/src"}
    assert get.structured_content == {"name": "kernel.sched_autogroup_enabled", "value": "1"}
    assert prefix.structured_content == {"values": {"kernel.sched_autogroup_enabled": "1",
                                                    "kernel.sched_cfs_bandwidth_slice_us": "5000"}}
    assert set_.structured_content == {"name": "kernel.sched_autogroup_enabled", "old": "1", "new": "0"}
    assert status.structured_content == {"state": "disabled", "ops": "", "loader_pid": None, "log_tail": ""}
    for r in (ls, get, prefix, set_, status):
        assert not r.is_error and json.loads(r.content[0].text) == r.structured_content
    # structured content keeps full precision; the text has a few significant digits
    assert run.structured_content == {"metrics": {"wall_s": 1.23456789, "ops_per_s": 123456.789}}
    assert json.loads(run.content[0].text) == {"metrics": {"wall_s": 1.235, "ops_per_s": 123457}}
    # the trajectory has what the agent read
    res = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [e["output"] for e in res if e["type"] == "tool_result"][-1] == run.content[0].text


def test_a_failing_tool_is_an_error_result_without_structured_content(tmp_path):
    tools = tools_for(tmp_path, FakeGuest(), trial_run=lambda: {"error": "hackbench: run 0 failed with exit 1"})
    _, (bad, missing, run) = session(build_server(tools), [
        ("sysctl_get", {"name": "Not A Name"}),
        ("sysctl_set", {"name": "kernel.nope", "value": "1"}),
        ("run_workload", {}),
    ])
    for r in (bad, missing, run):
        assert r.is_error and r.structured_content is None
    assert json.loads(bad.content[0].text) == {"error": "not a sysctl name: 'Not A Name'"}
    assert json.loads(missing.content[0].text) == {"error": "sysctl: cannot stat kernel.nope"}
    assert json.loads(run.content[0].text) == {"error": "hackbench: run 0 failed with exit 1"}
    res = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines() if '"tool_result"' in x]
    assert [e["is_error"] for e in res] == [True, True, True]


def test_goal_gate_and_declaration_over_http(tmp_path):
    tools = tools_for(tmp_path, require_goal=True)
    http = HttpServer(build_server(tools)).start()
    try:
        _, (r1, r2, r3) = session(http.url, [
            ("sysctl_set", {"name": "kernel.sched_autogroup_enabled", "value": "0"}),
            ("declare_goal", {"metric": "runtime", "direction": "lower", "rationale": "r"}),
            ("declare_goal", {"metric": "x", "direction": "higher"}),
        ])
    finally:
        http.stop()
    assert r1.is_error and r1.content[0].text.startswith("refused: call declare_goal")
    assert r2.structured_content == {"recorded": True}  # the agent is not told whether it was right
    assert r3.is_error and json.loads(r3.content[0].text) == {
        "error": "a goal was already declared",
        "declared": {"metric": "runtime", "direction": "lower", "rationale": "r"}}
    assert tools.goal["correct"] is True and tools.goal["declared"]["metric"] == "runtime"
    kinds = [json.loads(x)["type"] for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert kinds.count("tool_call") == 3 and kinds.count("tool_result") == 3 and "goal" in kinds


def test_finish_returns_the_measured_report_to_a_waiting_client(tmp_path):
    import threading

    tools = tools_for(tmp_path)
    tools.finish_hold, tools.finish_report = threading.Event(), {}
    report = {"workloads": [{"workload": "hackbench", "best": 1.2345678, "best_p": 0.0123456, "wall_s": 12.3456}]}

    def measured():  # what `schedcp mcp serve` does once the trial is measured
        tools.finished.wait(20)
        tools.finish_report["data"] = report
        tools.finish_hold.set()

    threading.Thread(target=measured, daemon=True).start()
    _, (r,) = session(build_server(tools), [("finish", {"summary": "done"})])
    assert r.structured_content == {"finished": True, "report": report}
    assert json.loads(r.content[0].text) == {
        "workloads": [{"workload": "hackbench", "best": 1.23, "best_p": 0.012, "wall_s": 12.346}]}


@pytest.mark.parametrize("key,x,want", [
    ("ratio", 2.8529999999999998, 2.85), ("best_ci95", 1.0049999, 1.0), ("p_value", 0.076522500475059, 0.077),
    ("best_p", 0.00012345, 0.00012), ("elapsed_s", 1.2345678, 1.235), ("wall_s", 1234.56789, 1234.568),
    ("query_s", 0.0123456, 0.01235),
    ("cpu_util_pct", 45.67891, 45.68), ("ctx_switches_per_s", 123456.78, 123457), ("x", 0.000123456, 0.0001235),
    ("x", -3.14159, -3.142), ("x", 0.0, 0.0)])
def testby_key(key, x, want):
    assert key_number(x, key) == want


def test_text_numbers_keep_integers_and_round_what_a_seconds_dict_holds():
    got = by_key({"timings_s": {"build": 1.23456, "load": 0.00041234}, "loadavg": ["0.52"], "ncpu": 4,
                         "ok": True, "ci95": [0.98765, 1.23456]})
    assert got == {"timings_s": {"build": 1.235, "load": 0.0004123}, "loadavg": ["0.52"], "ncpu": 4, "ok": True,
                   "ci95": [0.988, 1.23]}


def test_a_result_outside_its_model_is_logged_and_answered_not_raised(tmp_path):
    """A harness bug (a result that does not fit its schema) must not end the trial as the
    agent's error: the agent gets an error result, the trajectory a harness_error record."""
    tools = tools_for(tmp_path, trial_run=lambda: {"wall_s": "fast"})
    out = tools.call_result("run_workload")
    assert out.is_error and out.data is None and "did not fit its schema" in out.text
    recs = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert any(r["type"] == "harness_error" and "run_workload" in r["where"] and "metrics.wall_s" in r["error"]
               for r in recs)
    assert any(r["type"] == "tool_result" and r["is_error"] for r in recs)
