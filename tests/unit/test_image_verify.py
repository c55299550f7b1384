"""A corrupted image is detected by hash (images/store.py Image.verify)."""

import hashlib
import json

import pytest

from images.store import Image

pytestmark = pytest.mark.fault


def make_image(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    files = {"base.qcow2": b"\0" * (1 << 20) + b"rootfs", "vmlinuz": b"kernel", "initrd.img": b"initrd"}
    for n, data in files.items():
        (d / n).write_bytes(data)
    lock = {"key": "k", "recipe": "r", "kernel_release": "7.3.4", "kernel_version": "v", "cmdline": "", "boot_initrd": True,
            "digests": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}, "packages": {}, "manifest": {},
            "built_at": "", "build_seconds": 0, "tools": {}}
    (d / "image.lock.json").write_text(json.dumps(lock))
    return Image(d)


def test_intact_image_verifies_and_stamps_the_base(tmp_path):
    im = make_image(tmp_path)
    assert im.verify() == []
    assert (im.folder / ".verified").is_file()


def test_corrupted_kernel_is_always_detected(tmp_path):
    im = make_image(tmp_path)
    im.verify()
    (im.folder / "vmlinuz").write_bytes(b"kernel!")
    assert im.verify() == ["vmlinuz"]


def test_corrupted_base_detected_when_changed_or_full(tmp_path):
    im = make_image(tmp_path)
    im.verify()
    with open(im.folder / "base.qcow2", "r+b") as f:  # flip a byte, size unchanged
        f.seek(100)
        f.write(b"\1")
    assert im.verify() == ["base.qcow2"]  # mtime changed since the stamp: re-hashed
    assert im.verify(full=True) == ["base.qcow2"]


def test_missing_artefact_detected(tmp_path):
    im = make_image(tmp_path)
    (im.folder / "initrd.img").unlink()
    assert im.verify() == ["initrd.img"]
