"""Shared by the TUI tests: the recorded job fixture, copied where a test may change it."""

import shutil
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample-jobs"
JOB_ID = "20261129-093302-scx-search"


def copy_sample(dest: Path) -> Path:
    """The sample jobs folder under ``dest``; returns the jobs root."""
    root = dest / "jobs"
    shutil.copytree(SAMPLE, root)
    return root


def job_without_events(root: Path) -> Path:
    """The sample job as it is while running: the config, and no trial recorded yet."""
    d = root / JOB_ID
    for p in d.iterdir():
        if p.is_dir():
            shutil.rmtree(p)
    (d / "events.jsonl").unlink()
    return d
