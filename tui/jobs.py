"""Jobs the TUI starts: ``python -m harness.cli run ... --display jsonl --job-id ID`` as a
subprocess in its own session, so that the job writes the same folder and
``events.jsonl`` as batch mode, and the TUI only reads them.

Stopping: :func:`finish_running` writes the STOP file (running trials finish and are
recorded, no new one starts); :meth:`JobProcess.stop_now` terminates the process group
(SIGTERM, then SIGKILL) and :meth:`JobProcess.reclaim_vms` then destroys its VMs
(libvirt runs them outside the process group). Either way every ``result.json`` already written stays, and a
trial folder left without one is run again by ``schedcp jobs resume``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from harness.job import request_stop

LOG_DIR = ".tui"  # under the jobs dir: the subprocess's stdout/stderr, one file per job


class JobProcess:
    def __init__(self, job_id: str, proc: subprocess.Popen, log: Path, env: dict | None = None):
        self.job_id, self.proc, self.log, self.env = job_id, proc, log, env

    @classmethod
    def start(cls, argv: list[str], job_id: str, jobs_root: Path, cwd: Path | None = None) -> "JobProcess":
        (jobs_root / LOG_DIR).mkdir(parents=True, exist_ok=True)
        log = jobs_root / LOG_DIR / f"{job_id}.log"
        env = {**os.environ, "SCHEDCP_JOBS": str(jobs_root), "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=cwd, start_new_session=True)
        return cls(job_id, proc, log, env)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop_now(self, grace_s: float = 10.0) -> int:
        """Terminate the job's whole process group; returns its exit status."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        return self.proc.returncode


    def reclaim_vms(self) -> subprocess.Popen | None:
        """After :meth:`stop_now`: ``schedcp sandbox cleanup`` in the background, which
        destroys the VMs of run folders that no live process holds (the killed job's;
        never a running job's). Only for a ``harness.cli`` job; output goes to the log."""
        args = list(self.proc.args)
        if "harness.cli" not in args:
            return None
        with open(self.log, "ab") as out:
            return subprocess.Popen([args[0], "-m", "harness.cli", "sandbox", "cleanup"], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                    start_new_session=True)


def finish_running(job_dir: Path) -> None:
    """Running trials finish and are recorded; no new one starts."""
    request_stop(job_dir)
