import shutil
from pathlib import Path

import pytest
import yaml

from images.build import BuildError, download_debs, preflight
from images.recipe import RECIPES_DIR, RecipeError, load_recipe


def _copy_recipe(tmp_path: Path, name="trixie-7.3-scx") -> Path:
    dst = tmp_path / name
    shutil.copytree(RECIPES_DIR / name, dst)
    return dst


def _edit(folder: Path, fn) -> None:
    p = folder / "recipe.yaml"
    data = yaml.safe_load(p.read_text())
    fn(data)
    p.write_text(yaml.safe_dump(data, sort_keys=False))


def test_default_recipe_valid_and_pins_kernel(monkeypatch):
    monkeypatch.delenv("SCHEDCP_IMAGE_PROFILE", raising=False)
    lr = load_recipe()
    assert lr.recipe.kernel.release == "7.3.4+deb13-cloud-amd64"
    assert all(len(d.sha256) == 64 for d in lr.recipe.kernel.debs)
    assert lr.recipe.packages == sorted(lr.recipe.packages)
    assert [s.name for s in lr.steps] == ["50-sched-ext-examples.sh", "60-kernel-build-tree.sh",
                                          "61-llvm-build-tree.sh", "62-python-packages.sh", "63-llama-cpp.sh"]


def test_profile_leaves_a_feature_out_under_its_own_key(monkeypatch):
    monkeypatch.delenv("SCHEDCP_IMAGE_PROFILE", raising=False)
    whole, ci = load_recipe(), load_recipe("trixie-7.3-scx@lite")
    assert whole.features == ["llama-cpp"] and ci.features == []
    assert "63-llama-cpp.sh" in [p.name for p in whole.steps]
    assert "63-llama-cpp.sh" not in [p.name for p in ci.steps]
    assert ci.key.startswith("trixie-7.3-scx-lite-") and ci.key != whole.key and ci.spec == "trixie-7.3-scx@lite"
    # the environment picks the profile when none is named; a recipe without it is built whole
    monkeypatch.setenv("SCHEDCP_IMAGE_PROFILE", "lite")
    assert load_recipe().key == ci.key
    assert load_recipe("ubuntu-6.15.11-mainline").profile is None
    with pytest.raises(RecipeError, match="no profile 'gpu'.*profiles: lite"):
        load_recipe("trixie-7.3-scx@gpu")


def test_profile_of_an_unknown_feature_and_feature_of_a_missing_step_are_refused(tmp_path):
    f = _copy_recipe(tmp_path)
    _edit(f, lambda d: d["profiles"]["lite"].update(without=["cuda"]))
    with pytest.raises(RecipeError, match="unknown features \\['cuda'\\]"):
        load_recipe(str(f))
    f = _copy_recipe(tmp_path / "b")
    _edit(f, lambda d: d["features"]["llama-cpp"].update(steps=["99-nothing.sh"]))
    with pytest.raises(RecipeError, match="feature 'llama-cpp' names steps that are not in.*99-nothing.sh"):
        load_recipe(str(f))


def test_cache_key_is_stable_and_follows_content(tmp_path):
    a = load_recipe(str(_copy_recipe(tmp_path)))
    key = a.key
    assert key == load_recipe(str(a.folder)).key == load_recipe().key
    (a.folder / "steps" / "50-sched-ext-examples.sh").write_text("#!/bin/sh\ntrue\n")
    b = load_recipe(str(a.folder)).key
    assert b != key and b.startswith("trixie-7.3-scx-")
    lib = a.folder / "steps" / "lib" / "pip-chroot.sh"  # shell the steps source counts too
    lib.write_text(lib.read_text() + "\n")
    assert load_recipe(str(a.folder)).key not in (key, b)


def test_missing_recipe_names_known_ones():
    with pytest.raises(RecipeError, match="no recipe 'nope'.*trixie-7.3-scx"):
        load_recipe("nope")


def test_broken_yaml(tmp_path):
    f = _copy_recipe(tmp_path)
    (f / "recipe.yaml").write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(str(f))


def test_missing_field_names_the_field(tmp_path):
    f = _copy_recipe(tmp_path)
    _edit(f, lambda d: d["kernel"].pop("release"))
    with pytest.raises(RecipeError, match=r"field kernel\.release: Field required"):
        load_recipe(str(f))


def test_unknown_field_is_refused(tmp_path):
    f = _copy_recipe(tmp_path)
    _edit(f, lambda d: d.update(kernal="typo"))
    with pytest.raises(RecipeError, match="field kernal: Extra inputs are not permitted"):
        load_recipe(str(f))


def test_unsorted_packages_refused(tmp_path):
    f = _copy_recipe(tmp_path)
    _edit(f, lambda d: d["packages"].reverse())
    with pytest.raises(RecipeError, match="packages must be sorted"):
        load_recipe(str(f))


def test_ubuntu_recipe_fails_early_without_pins():
    lr = load_recipe("ubuntu-6.15.11-mainline")
    with pytest.raises(BuildError, match="no sha256 pin .*kernel.ubuntu.com"):
        preflight(lr)


@pytest.mark.fault
def test_kernel_hash_mismatch_is_refused(tmp_path):
    # A real download (linux-base's tiny deb from the Debian mirror) with a wrong pin.
    f = _copy_recipe(tmp_path)

    def wrong(d):
        d["kernel"]["debs"] = [deb for deb in d["kernel"]["debs"] if "/linux-base-" in deb["url"]]
        d["kernel"]["debs"][0]["sha256"] = "0" * 64

    _edit(f, wrong)
    lr = load_recipe(str(f))
    with pytest.raises(BuildError, match="sha256 mismatch for linux-base-.*refusing to build"):
        download_debs(lr, tmp_path / "debs", log=lambda m: None)


@pytest.mark.fault
def test_unreachable_kernel_url_is_one_clear_line(tmp_path):
    f = _copy_recipe(tmp_path)
    _edit(f, lambda d: d["kernel"].update(debs=[{"url": "http://127.0.0.1:9/k.deb", "sha256": "1" * 64}]))
    with pytest.raises(BuildError, match=r"cannot download http://127.0.0.1:9/k.deb: .*needs that host"):
        download_debs(load_recipe(str(f)), tmp_path / "debs", log=lambda m: None)


def test_a_second_build_of_the_same_image_waits_and_uses_the_first(tmp_path, monkeypatch):
    """Two processes wanting the same missing image: the second waits for the first's
    lock and takes its result instead of building (and replacing) it again."""
    import fcntl
    import json
    import threading
    import time

    from images.build import build

    monkeypatch.setenv("SCHEDCP_HOME", str(tmp_path))
    lr = load_recipe()
    images = tmp_path / "images"
    images.mkdir()
    holder = open(images / f".{lr.key}.lock", "a+")
    fcntl.flock(holder, fcntl.LOCK_EX)  # "another process" is building
    holder.write("4242\n")
    holder.flush()

    def finish_other_build():
        time.sleep(0.5)
        (images / lr.key).mkdir()
        (images / lr.key / "image.lock.json").write_text(json.dumps({
            "key": lr.key, "recipe": lr.name, "kernel_release": "r", "kernel_version": "v", "cmdline": "",
            "boot_initrd": True, "digests": {}, "packages": {}, "manifest": {}, "built_at": "now",
            "build_seconds": 1.0, "tools": {}}))
        fcntl.flock(holder, fcntl.LOCK_UN)

    threading.Thread(target=finish_other_build).start()
    said: list[str] = []
    img = build(lr, log=said.append)
    holder.close()
    assert img.key == lr.key
    assert "being built by another process (pid 4242): waiting" in said[0] and "built meanwhile" in said[1]
