"""End to end: the real `schedcp-tui` in tmux starts a smoke job from its launcher (keys
only), follows it on the dashboard until it ends, and the result read off the screen is
the one in the trial's result.json. Boots real VMs (marker `vm`)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import fmt
from tui import model

pytestmark = pytest.mark.vm

TUI = Path(sys.executable).with_name("schedcp-tui")
JOB = "tui-e2e-hackbench"
TRIAL = "hackbench__linux-default__a0"


class Tmux:
    def __init__(self, session: str):
        self.session = session

    def start(self, command: str, width=80, height=24) -> None:
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                        command], check=True)

    def keys(self, *keys: str, pause=0.3) -> None:
        for k in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.session, k], check=True)
            time.sleep(pause)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True,
                              text=True).stdout

    def wait_for(self, pattern: str, timeout: float, every: float = 1.0) -> re.Match:
        end = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.screen())
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError(f"{pattern!r} not on screen after {timeout:.0f}s:\n{self.screen()}")
            time.sleep(every)

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


def test_tui_starts_and_follows_a_smoke_job(tmp_path):
    assert shutil.which("tmux"), "tmux is needed for this test"
    assert TUI.is_file(), f"{TUI} missing: pip install -e . first"
    jobs = tmp_path / "jobs"
    tm = Tmux(f"schedcp-tui-e2e-{os.getpid()}")
    # `; sleep` keeps the pane (and a traceback) readable if the app dies
    tm.start(f"env SCHEDCP_JOBS={jobs} TERM=xterm-256color {TUI}; sleep 600")
    try:
        tm.wait_for(r"0 job\(s\) in", 60)
        tm.keys("n")
        tm.wait_for(r"hackbench\s+wall_s", 30)
        # the list starts on its first workload; category headings are skipped
        names = [i.name for _, infos in model.by_category(model.workload_infos()) for i in infos]
        tm.keys(*["Down"] * names.index("hackbench"), "Space")
        tm.wait_for(r"selected: hackbench\n", 10)
        fields = ["agent", "model"] + (["interface"] if model.cli_supports("--interface") else []) + [
            "size", "attempts", "parallel", "repeat"]
        tm.keys(*["Tab"] * len(fields), "2")  # repeat: focus selects the old value, typing replaces it
        tm.keys(*["Tab"] * 5)  # max steps, max wall s, max cost, SLO hint, job id
        tm.keys(*JOB)
        tm.keys("C-s")
        tm.wait_for(rf"{JOB}\s+linux-default", 60)
        cfg = json.loads((jobs / JOB / "job.json").read_text())["config"]
        assert (cfg["workloads"], cfg["agent"], cfg["repeat"]) == (["hackbench"], "linux-default", 2)

        tm.wait_for(r"1/1 finished\s+\(complete\)", 15 * 60, every=5)
        screen = tm.screen()
        row = re.search(r"hackbench a0\s+(done|failed)\s+\S+\s+[\d:]+\s+\d+\s+\S+\s+[\d.]+\s+(\S+)", screen)
        assert row, screen
        res = json.loads((jobs / JOB / TRIAL / "result.json").read_text())
        assert row.group(1) == res["status"] == "done"
        assert row.group(2) == f"{fmt.ratio(res['improvement']['ratio'])}x"

        tm.keys("d")  # trial detail: the same numbers, with the interval and SLO
        tm.wait_for(re.escape(TRIAL), 30)
        ci = res["improvement"]["ci95"]
        summary = tm.wait_for(rf"{TRIAL}\s+done\s+(\S+) \[(\S+), (\S+)\]", 10)
        assert summary.groups() == (f"{fmt.ratio(res['improvement']['ratio'])}x", fmt.ratio(ci[0]), fmt.ratio(ci[1]))
        tm.keys("C-q")
    except BaseException:
        log = jobs / ".tui" / f"{JOB}.log"
        if log.is_file():
            print("job process output:\n" + log.read_text()[-4000:])
        raise
    finally:
        tm.kill()
