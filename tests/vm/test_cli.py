import subprocess
import sys


def schedcp(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_sandbox_exec_passes_output_and_exit_code(backend):
    r = schedcp("sandbox", "exec", "--", "uname -r; cat /sys/kernel/sched_ext/state; exit 5")
    assert r.returncode == 5, r.stderr
    assert r.stdout.splitlines() == [backend.image.lock.kernel_release, "disabled"]


def test_image_list_shows_the_built_image(backend):
    r = schedcp("image", "list")
    assert r.returncode == 0
    assert backend.image.key in r.stdout and backend.image.lock.kernel_release in r.stdout


def test_shell_is_interactive(backend):
    r = subprocess.run([sys.executable, "-m", "harness.cli", "sandbox", "shell"], input="uname -r\nexit 0\n",
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert backend.image.lock.kernel_release in r.stdout


def test_sandbox_info_says_how_sandboxes_run(backend):
    import json

    r = schedcp("sandbox", "info")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["accel"] == backend.accel
    assert info["saved_state_format"] == "sparse"  # make setup installs libvirt >= 11.2
    assert info["guest_ram"] == ("memfd" if backend.accel == "tcg" else "anonymous")


def test_broken_recipe_is_one_line_error(tmp_path):
    (tmp_path / "recipe.yaml").write_text("name: x\n")
    r = schedcp("image", "build", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith("schedcp: error: ") and "field distribution: Field required" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
