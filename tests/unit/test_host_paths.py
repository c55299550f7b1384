"""Agent-chosen file names never reach outside the trial folder on the host."""

import pytest

from harness.agents.base import host_copy_path


@pytest.mark.parametrize("p", ["/etc/x.conf", "/root/sched/a.bpf.c", "rel/name.txt", "/opt/schedcp/custom/src/s.bpf.c"])
def test_allowed(tmp_path, p):
    got = host_copy_path(tmp_path / "files", p)
    assert (tmp_path / "files").resolve() in got.parents


@pytest.mark.parametrize("p", ["/../../../tmp/pwn", "../x", "/a/../../b", "/a/b/..", "", "/a\0b"])
def test_refused(tmp_path, p):
    with pytest.raises(ValueError, match="refused path"):
        host_copy_path(tmp_path / "files", p)


def test_symlinked_escape_refused(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "link").symlink_to("/tmp")
    with pytest.raises(ValueError, match="outside"):
        host_copy_path(files, "/link/evil")
