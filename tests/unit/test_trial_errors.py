"""An exception of the harness itself inside a trial is its own failure kind, with the
traceback kept in the trial folder (jobs resume re-runs such trials)."""

from types import SimpleNamespace

from harness.models import TrialConfig
from harness.trial import run_trial


class _Backend:
    """Just enough of a backend for a trial to reach its first VM; opening one fails with
    a bug of the harness (not a sandbox error)."""

    image = SimpleNamespace(key="img-test", lock=SimpleNamespace(profile="", features=[]))
    shape = SimpleNamespace(gpus=(), vcpus=2, memory_mib=4096)

    def open(self, **kw):
        raise KeyError("a harness bug")


def test_unexpected_exception_is_harness_error_with_traceback(tmp_path):
    cfg = TrialConfig(trial_id="sqlite__linux-default__a0", workload="sqlite", agent="linux-default")
    res = run_trial(cfg, tmp_path / "t", _Backend())
    assert res.status == "failed" and res.failure_kind == "harness_error"
    assert "KeyError" in res.failure
    tb = (tmp_path / "t" / "traceback.txt").read_text()
    assert "Traceback" in tb and "a harness bug" in tb
    assert (tmp_path / "t" / "result.json").is_file()
