"""The machine manifest and the comparison of a job against a reference folder."""

import json
import subprocess
from pathlib import Path

from harness import manifest, report
from harness.job import job_results

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample-jobs" / "20261129-093302-scx-search"

M = {"cpu_model": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "cores": 2, "memory_gib": 24, "accel": "tcg",
     "host_kernel": "6.1.0", "qemu": "10.0.2", "libvirt": "11.3.0", "image": "trixie-7.3-scx-46646ad9364bbb1c",
     "image_lock_sha256": "ab" * 32, "guest_kernel": "7.3.4+deb13-cloud-amd64", "vcpus": 2, "memory_mib": 4096,
     "commit": "0123456789abcdef", "dirty": True, "python": "3.11.2", "packages": {}}


def test_profile_name_and_header():
    assert manifest.profile_name(M) == "tcg-2c-24g-intel-xeon-platinum-8481c"
    h = manifest.header(M)
    assert "2 cores" in h and "tcg" in h and "7.3.4" in h and "schedcp 0123456 (dirty tree)" in h
    assert "not recorded" in manifest.header(None)


def test_differences_name_the_profile_fields_only():
    other = {**M, "accel": "kvm", "commit": "ffff", "packages": {"numpy": "2"}}
    assert manifest.differences(M, other) == ["accel: tcg != kvm"]
    assert manifest.differences(M, dict(M)) == []


def test_machine_manifest_of_this_host_has_every_profile_field():
    class Lock:
        kernel_release = "7.3.4"

    class Image:
        key, lock, folder = "img", Lock(), Path("/nonexistent")

    class Backend:
        image, accel = Image(), "tcg"

    m = manifest.machine_manifest(Backend())
    assert set(manifest.PROFILE_KEYS) <= set(m) and m["cores"] >= 1 and m["accel"] == "tcg"
    assert len(m["commit"]) == 40 and isinstance(m["dirty"], bool) and m["packages"]["numpy"]


def test_tree_dirty_ignores_the_results_folder_only(tmp_path):
    def git(*a):
        subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "report.md").write_text("a")
    (tmp_path / "code.py").write_text("x = 1")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    assert manifest.tree_dirty(tmp_path) is False
    (tmp_path / "results" / "report.md").write_text("b")  # the run's own output
    (tmp_path / "notes.txt").write_text("untracked")
    assert manifest.tree_dirty(tmp_path) is False
    (tmp_path / "code.py").write_text("x = 2")  # code changed: dirty
    assert manifest.tree_dirty(tmp_path) is True


def _reference(tmp_path, man):
    ref = tmp_path / "results" / manifest.profile_name(M)
    ref.mkdir(parents=True)
    rows = report.rows(job_results(SAMPLE))
    (ref / "report.json").write_text(json.dumps({"agents": {"scx-search": {"workloads": rows}}}))
    if man is not None:
        (ref / "manifest.json").write_text(json.dumps(man))
    return report.load_reference(ref)


def test_against_same_profile_side_by_side(tmp_path):
    out = report.against(job_results(SAMPLE), M, _reference(tmp_path, M))
    assert "warning" not in out
    lines = [x for x in out.splitlines() if x.startswith("| ") and not x.startswith("| workload")]
    assert {x.split(" | ")[0].strip("| ") for x in lines} == {"gzip", "hackbench", "sqlite"}


def test_against_warns_when_profiles_differ_or_are_missing(tmp_path):
    out = report.against(job_results(SAMPLE), {**M, "cores": 16}, _reference(tmp_path, M))
    assert out.splitlines()[0].startswith("warning: the job's machine profile differs") and "cores: 16 != 2" in out
    out = report.against(job_results(SAMPLE), None, _reference(tmp_path / "b", M))
    assert "a machine profile is missing" in out
    data = json.loads(report.against(job_results(SAMPLE), M, _reference(tmp_path / "c", None), "json"))
    assert data["warnings"] and len(data["rows"]) == 3
