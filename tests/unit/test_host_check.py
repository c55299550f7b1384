"""`schedcp host check` on recorded sysfs trees (tests/fixtures/sysfs/<case>/), and for real here."""

import json
import os
import shutil
from pathlib import Path

import pytest

from harness import host_check
from harness.cli import main

TREES = Path(__file__).parent.parent / "fixtures" / "sysfs"


def _check(case: str, root: Path | None = None, **override):
    root = root or TREES / case
    rec = {**host_check.load_recorded(TREES / case), **override}
    return host_check.check(root, rec)


def test_this_host_no_gpu_no_iommu_tcg():
    r = _check("this-host")
    d = r.to_dict()
    assert d["accel"]["kind"] == "tcg" and "vmx/svm" in d["accel"]["why"]
    assert d["gpus"] == [] and d["iommu"] == {"groups": 0, "units": [], "on": False, "cmdline": [], "group_members": {}}
    assert d["passthrough"]["possible"] is False and d["passthrough"]["why"] == "no GPU on this host's PCI bus"
    assert isinstance(d["nvml"], str) and "NVML not usable" in d["nvml"]
    assert d["ready_for_vms"] and not d["problems"]
    text = host_check.render(r)
    assert "TCG" in text and "GPUs (PCI)    none" in text and "ready for VMs (under TCG: slow)" in text


def test_gpu_host_with_iommu_and_vfio_can_pass_through():
    r = _check("gpu-vfio")
    assert r.accel == "kvm" and r.iommu["on"] and r.iommu["groups"] == 5
    assert r.iommu["cmdline"] == ["intel_iommu=on", "iommu=pt"]
    assert r.gpus == [{"address": "0000:41:00.0", "vendor": "NVIDIA", "device": "0x2330", "class": "0x030200",
                       "driver": "vfio-pci", "iommu_group": "30"}]  # the audio function is not a GPU
    assert r.iommu["group_members"] == {"30": ["0000:41:00.0", "0000:41:00.1"]}
    assert r.passthrough == {"possible": True, "devices": ["0000:41:00.0"], "todo": "",
                             "why": "1 GPU(s) free for VFIO with the IOMMU on and KVM usable"}
    assert "passthrough   possible" in host_check.render(r)


def test_h200_microvm_gpu_with_nvidia_driver_and_no_iommu():
    r = _check("h200-microvm")
    assert [g["driver"] for g in r.gpus] == ["nvidia"] and r.gpus[0]["iommu_group"] is None
    assert r.nvml[0]["name"] == "NVIDIA H200" and r.nvml[0]["power_limit_range_w"] == [200.0, 700.0]
    pt = r.passthrough
    assert not pt["possible"] and "no IOMMU groups" in pt["why"]
    # a VM itself (cpuinfo says hypervisor): the one thing to do is not a kernel option
    assert "itself a virtual machine" in pt["todo"] and "scripts/gpu-check.sh" in pt["todo"]
    assert "QEMU not found" in " ".join(r.problems)
    text = host_check.render(r)
    assert "GPU (NVML)    0: NVIDIA H200" in text and "NOT READY for VMs" in text


def test_bare_metal_without_iommu_is_told_the_kernel_option(tmp_path):
    root = tmp_path / "t"
    shutil.copytree(TREES / "h200-microvm", root, symlinks=True)
    cpu = root / "proc" / "cpuinfo"
    cpu.write_text(cpu.read_text().replace(" hypervisor", ""))
    pt = _check("h200-microvm", root).passthrough
    assert "amd_iommu=on iommu=pt" in pt["todo"] and "reboot" in pt["todo"]  # an AMD CPU in that tree


def _rebind(root: Path, addr: str, driver: str) -> None:
    link = root / "sys/bus/pci/devices" / addr / "driver"
    link.unlink()
    os.symlink(f"../../../bus/pci/drivers/{driver}", link)


def test_gpu_bound_to_nvidia_is_told_to_detach_it(tmp_path):
    root = tmp_path / "t"
    shutil.copytree(TREES / "gpu-vfio", root, symlinks=True)
    _rebind(root, "0000:41:00.0", "nvidia")
    pt = _check("gpu-vfio", root).passthrough
    assert not pt["possible"] and "bound to the nvidia driver" in pt["why"]
    assert "virsh nodedev-detach pci_0000_41_00_0" in pt["todo"]


def test_a_group_shared_with_a_host_device_blocks(tmp_path):
    root = tmp_path / "t"
    shutil.copytree(TREES / "gpu-vfio", root, symlinks=True)
    # the NIC joins the GPU's group (no ACS between them)
    os.symlink("../../../../bus/pci/devices/0000:02:00.0", root / "sys/kernel/iommu_groups/30/devices/0000:02:00.0")
    pt = _check("gpu-vfio", root).passthrough
    assert not pt["possible"] and "0000:02:00.0 (igb)" in pt["why"] and "own IOMMU group" in pt["todo"]


def test_no_kvm_or_no_vfio_module_blocks_with_its_own_todo(tmp_path):
    assert "KVM" in _check("gpu-vfio", accel="tcg").passthrough["why"]
    root = tmp_path / "t"
    shutil.copytree(TREES / "gpu-vfio", root, symlinks=True)
    shutil.rmtree(root / "sys/module/vfio_pci")
    shutil.rmtree(root / "sys/bus/pci/drivers/vfio-pci")
    assert _check("gpu-vfio", root).passthrough["todo"] == "`modprobe vfio-pci`"


def test_cli_json_on_a_recorded_tree(capsys):
    assert main(["host", "check", "--json", "--root", str(TREES / "h200-microvm")]) == 1  # not ready for VMs
    d = json.loads(capsys.readouterr().out)
    assert d["gpus"][0]["address"] == "0000:00:03.0" and d["passthrough"]["possible"] is False
    assert main(["host", "check", "--root", str(TREES / "missing")]) == 2


def test_for_real_here_says_no_gpu_and_tcg(capsys):
    """This host (the project's CI/dev machines): no GPU, no NVML, TCG. Reads sysfs and the
    libvirt/QEMU versions; starts no VM."""
    if Path("/sys/bus/pci/drivers/nvidia").exists():
        pytest.skip("a host with an NVIDIA driver")
    main(["host", "check", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert d["gpus"] == [] and isinstance(d["nvml"], str) and d["nvml"]
    flags = Path("/proc/cpuinfo").read_text()
    if " vmx" not in flags and " svm" not in flags:
        assert d["accel"]["kind"] == "tcg" and "vmx/svm" in d["accel"]["why"]
    assert "free_gib" in d["disk"] or "error" in d["disk"]
