"""Jobs the TUI starts: ``python -m harness.cli run ... --display jsonl --job-id ID`` as a
subprocess in its own session, so that the job writes the same folder and
``events.jsonl`` as batch mode, and the TUI only reads them.

Stopping: :func:`finish_running` writes the STOP file (running trials finish and are
recorded, no new one starts); :meth:`JobProcess.stop_now` terminates the process group
(SIGTERM, then SIGKILL). Either way every ``result.json`` already written stays, and a
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
    def __init__(self, job_id: str, proc: subprocess.Popen, log: Path):
        self.job_id, self.proc, self.log = job_id, proc, log

    @classmethod
    def start(cls, argv: list[str], job_id: str, jobs_root: Path, cwd: Path | None = None) -> "JobProcess":
        (jobs_root / LOG_DIR).mkdir(parents=True, exist_ok=True)
        log = jobs_root / LOG_DIR / f"{job_id}.log"
        env = {**os.environ, "SCHEDCP_JOBS": str(jobs_root), "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=cwd, start_new_session=True)
        return cls(job_id, proc, log)

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


def finish_running(job_dir: Path) -> None:
    """Running trials finish and are recorded; no new one starts."""
    request_stop(job_dir)
