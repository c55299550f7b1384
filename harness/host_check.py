"""`schedcp host check`: is this host ready, and what is the one thing to do if not.

It reports the accelerator (KVM or QEMU TCG, from :func:`sandbox.libvirt.prereqs.accel_detail`),
the IOMMU and its groups (``/sys/kernel/iommu_groups``), the GPUs on the PCI bus (display
class ``0x03xxxx`` of a GPU vendor) and what NVML says of them, the driver each GPU is bound
to (``vfio-pci`` is what passthrough needs; libvirt's managed ``<hostdev>`` rebinds a free
device at VM start), whether GPU passthrough can work here and, if not, the one thing to do;
the libvirt and QEMU versions and libvirtd's reachability; the free disk where images live.

Everything read from sysfs and procfs goes through :class:`Facts`, whose ``root`` a test points
at a recorded tree (``tests/fixtures/sysfs/<case>/``). What a tree cannot hold (the
accelerator, versions, NVML's answer, free disk) comes from a ``recorded.json`` beside it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

GPU_VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel"}
# drivers under which a device is free for passthrough (vfio-pci; pci-stub holds it unused)
PASSTHROUGH_DRIVERS = ("vfio-pci", "pci-stub")
MIN_FREE_GIB = 20  # an image (about 3 GiB) with saved states of a few trials' VMs


@dataclass
class PciDevice:
    address: str
    cls: str  # 0xCCSSPP
    vendor: str
    device: str
    driver: str | None
    iommu_group: str | None

    @property
    def vendor_name(self) -> str:
        return GPU_VENDORS.get(self.vendor, self.vendor)

    @property
    def is_bridge(self) -> bool:
        return self.cls.startswith("0x06")


@dataclass
class Facts:
    """What the check reads from the filesystem under ``root`` ("/" on a real host)."""

    root: Path = Path("/")

    def _p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _read(self, path: str) -> str | None:
        try:
            return self._p(path).read_text().strip()
        except OSError:
            return None

    def _link(self, path: Path) -> str | None:
        try:
            return os.path.basename(os.readlink(path))
        except OSError:
            return None

    def pci_devices(self) -> list[PciDevice]:
        base = self._p("/sys/bus/pci/devices")
        out = []
        for d in sorted(base.iterdir()) if base.is_dir() else []:
            out.append(PciDevice(d.name, (self._read(f"/sys/bus/pci/devices/{d.name}/class") or "").lower(),
                                 (self._read(f"/sys/bus/pci/devices/{d.name}/vendor") or "").lower(),
                                 (self._read(f"/sys/bus/pci/devices/{d.name}/device") or "").lower(),
                                 self._link(d / "driver"), self._link(d / "iommu_group")))
        return out

    def iommu_groups(self) -> dict[str, list[str]]:
        base = self._p("/sys/kernel/iommu_groups")
        if not base.is_dir():
            return {}
        groups = {}
        for g in base.iterdir():
            devs = g / "devices"
            groups[g.name] = sorted(x.name for x in devs.iterdir()) if devs.is_dir() else []
        return dict(sorted(groups.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0]))

    def iommu_units(self) -> list[str]:
        base = self._p("/sys/class/iommu")
        return sorted(x.name for x in base.iterdir()) if base.is_dir() else []

    def cmdline(self) -> str:
        return self._read("/proc/cmdline") or ""

    def is_vm(self) -> bool:
        return " hypervisor" in (self._read("/proc/cpuinfo") or "")

    def vfio_loaded(self) -> bool:
        return self._p("/sys/bus/pci/drivers/vfio-pci").is_dir() or self._p("/sys/module/vfio_pci").is_dir()


@dataclass
class Report:
    accel: str
    accel_reason: str
    libvirt: str
    qemu: str
    libvirtd: str
    iommu: dict
    gpus: list[dict]
    nvml: list[dict] | str
    passthrough: dict
    disk: dict
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"accel": {"kind": self.accel, "why": self.accel_reason},
                "libvirt": self.libvirt, "qemu": self.qemu, "libvirtd": self.libvirtd,
                "iommu": self.iommu, "gpus": self.gpus, "nvml": self.nvml, "passthrough": self.passthrough,
                "disk": self.disk, "ready_for_vms": not self.problems, "problems": self.problems}


def _gpus(devs: list[PciDevice]) -> list[PciDevice]:
    return [d for d in devs if d.cls.startswith("0x03") and d.vendor in GPU_VENDORS]


def _enable_iommu_hint(facts: Facts, devs: list[PciDevice]) -> str:
    if facts.is_vm():
        return ("this host is itself a virtual machine without a virtual IOMMU: GPU passthrough needs a bare-metal "
                "host (or a VM given a vIOMMU); here run the GPU checks natively instead (scripts/gpu-check.sh)")
    amd = any(d.vendor == "0x1022" for d in devs) or "AuthenticAMD" in (facts._read("/proc/cpuinfo") or "")
    opt = "amd_iommu=on iommu=pt" if amd else "intel_iommu=on iommu=pt"
    return (f"turn the IOMMU on: enable {'AMD-Vi' if amd else 'VT-d'} in the firmware, add `{opt}` to the "
            "kernel command line, and reboot")


def passthrough(facts: Facts, devs: list[PciDevice], accel: str) -> dict:
    """Can a GPU be passed through to the trials' VMs here? ``{"possible", "why", "todo",
    "devices"}``: ``todo`` is the one thing to do (empty when possible or when there is no GPU)."""
    gpus = _gpus(devs)
    groups = facts.iommu_groups()
    by_addr = {d.address: d for d in devs}
    if not gpus:
        return {"possible": False, "why": "no GPU on this host's PCI bus", "devices": [],
                "todo": "nothing, unless you want GPU workloads: use a host with a GPU (vllm needs one; pytorch, "
                        "faiss and llama-cpp run their CPU path without)"}
    if not groups:
        return {"possible": False, "devices": [],
                "why": "no IOMMU groups (/sys/kernel/iommu_groups is empty): VFIO cannot isolate the GPU",
                "todo": _enable_iommu_hint(facts, devs)}
    ready, blockers = [], []
    for g in gpus:
        members = groups.get(g.iommu_group or "", [])
        others = [by_addr[m] for m in members if m in by_addr and m != g.address and not by_addr[m].is_bridge]
        busy = [o for o in others if o.driver not in PASSTHROUGH_DRIVERS and o.driver is not None
                and not (o.address.rsplit(".", 1)[0] == g.address.rsplit(".", 1)[0])]  # a GPU's own functions follow it
        if busy:
            blockers.append((f"IOMMU group {g.iommu_group} of {g.address} also holds "
                             f"{', '.join(f'{o.address} ({o.driver})' for o in busy)}, which the host uses",
                             "put the GPU in a PCIe slot with its own IOMMU group (or pass the whole group through)"))
        elif g.driver in PASSTHROUGH_DRIVERS or g.driver is None:
            ready.append(g)
        else:
            slot = "pci_" + g.address.replace(":", "_").replace(".", "_")
            blockers.append((f"{g.address} is bound to the {g.driver} driver, not vfio-pci",
                             f"stop what uses it, then `virsh nodedev-detach {slot}` (binds it to vfio-pci; "
                             "libvirt's managed hostdev does this at VM start only when nothing holds the device)"))
    if not ready:
        return {"possible": False, "devices": [], "why": blockers[0][0], "todo": blockers[0][1]}
    if not facts.vfio_loaded():
        return {"possible": False, "devices": [g.address for g in ready], "why": "the vfio-pci driver is not loaded",
                "todo": "`modprobe vfio-pci`"}
    if accel != "kvm":
        return {"possible": False, "devices": [g.address for g in ready],
                "why": "KVM is not usable here: a passed-through GPU under QEMU TCG is not supported by schedcp",
                "todo": "use a host whose CPU exposes VT-x/AMD-V to this kernel (KVM)"}
    return {"possible": True, "devices": [g.address for g in ready],
            "why": f"{len(ready)} GPU(s) free for VFIO with the IOMMU on and KVM usable", "todo": ""}


def _disk(path: Path) -> dict:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        u = shutil.disk_usage(p)
    except OSError as e:
        return {"path": str(path), "error": str(e)}
    return {"path": str(path), "measured_at": str(p), "free_gib": round(u.free / 2**30, 1),
            "total_gib": round(u.total / 2**30, 1)}


def live_facts() -> dict:
    """The facts that are not files under the root, read on this host now."""
    from images.store import images_dir
    from sandbox.libvirt import prereqs

    from . import gpu

    accel, why = prereqs.accel_detail()
    tools = prereqs.host_tools()
    try:
        conn = prereqs.connect()
        try:
            v = conn.getLibVersion()
            libvirtd = f"reachable at {prereqs.LIBVIRT_URI} (daemon {prereqs.version_text(v)})"
        finally:
            conn.close()
    except Exception as e:  # SandboxUnavailable, with the command that starts it
        libvirtd = f"not reachable: {e}"
    return {"accel": accel, "accel_reason": why, "libvirt": tools.get("libvirt", ""), "qemu": tools.get("qemu", ""),
            "libvirtd": libvirtd, "nvml": gpu.devices(), "disk": _disk(images_dir())}


def check(root: Path = Path("/"), recorded: dict | None = None) -> Report:
    """The report for the tree under ``root``; ``recorded``: the non-file facts (see
    :func:`live_facts`), read live when None."""
    facts = Facts(Path(root))
    live = recorded if recorded is not None else live_facts()
    devs = facts.pci_devices()
    groups = facts.iommu_groups()
    cmd = facts.cmdline()
    iommu = {"groups": len(groups), "units": facts.iommu_units(),
             "on": bool(groups),
             "cmdline": [w for w in cmd.split() if "iommu" in w],
             "group_members": {g: m for g, m in groups.items()
                               if any(d.iommu_group == g for d in _gpus(devs))}}
    gpus = [{"address": d.address, "vendor": d.vendor_name, "device": d.device, "class": d.cls,
             "driver": d.driver, "iommu_group": d.iommu_group} for d in _gpus(devs)]
    pt = passthrough(facts, devs, live["accel"])
    problems = []
    if not live.get("qemu"):
        problems.append("QEMU not found: run `make setup` (installs qemu-system-x86)")
    if not str(live.get("libvirtd", "")).startswith("reachable"):
        problems.append(f"libvirtd {live.get('libvirtd', 'unknown')}")
    disk = live.get("disk", {})
    if disk.get("free_gib") is not None and disk["free_gib"] < MIN_FREE_GIB:
        problems.append(f"only {disk['free_gib']} GiB free at {disk['measured_at']} (images and saved VM states "
                        f"want {MIN_FREE_GIB} GiB or more)")
    return Report(live["accel"], live.get("accel_reason", ""), live.get("libvirt", ""), live.get("qemu", ""),
                  live.get("libvirtd", ""), iommu, gpus, live.get("nvml", "not asked"), pt, disk, problems)


def load_recorded(root: Path) -> dict | None:
    p = Path(root) / "recorded.json"
    return json.loads(p.read_text()) if p.is_file() else None


def render(r: Report) -> str:
    lines = []
    tcg = r.accel != "kvm"
    lines.append(f"accelerator   {r.accel.upper()}" + (" (QEMU emulation: slow, timings are not a real machine's)"
                                                      if tcg else "") + f": {r.accel_reason}")
    lines.append(f"libvirt       {r.libvirt or 'not found'} (library); libvirtd {r.libvirtd}")
    lines.append(f"QEMU          {r.qemu or 'not found'}")
    d = r.disk
    if "free_gib" in d:
        where = d["path"] + (f" (not made yet: measured at {d['measured_at']})" if d["measured_at"] != d["path"] else "")
        lines.append(f"disk          {d['free_gib']} GiB free of {d['total_gib']} GiB where images live: {where}")
    else:
        lines.append(f"disk          {d.get('path')}: {d.get('error', 'unknown')}")
    io = r.iommu
    lines.append("IOMMU         " + (f"on, {io['groups']} groups" if io["on"] else "off (no IOMMU groups)")
                 + (f"; kernel command line: {' '.join(io['cmdline'])}" if io["cmdline"] else ""))
    if not r.gpus:
        lines.append("GPUs (PCI)    none")
    for g in r.gpus:
        lines.append(f"GPU (PCI)     {g['address']} {g['vendor']} {g['device']} driver {g['driver'] or 'none'}, "
                     f"IOMMU group {g['iommu_group'] or 'none'}"
                     + (f" ({', '.join(io['group_members'].get(g['iommu_group'], []))})"
                        if g["iommu_group"] else ""))
    if isinstance(r.nvml, str):
        lines.append(f"GPUs (NVML)   {r.nvml}")
    else:
        for n in r.nvml:
            lines.append(f"GPU (NVML)    {n.get('index')}: {n.get('name', '?')} {n.get('pci_bus_id', '')} driver "
                         f"{n.get('driver', '?')}, {n.get('memory_total_mib', '?')} MiB"
                         + (f", power limit {n['power_limit_w']:g} W" if n.get("power_limit_w") else "")
                         + ("" if n.get("energy_counter") else ", no energy counter"))
    pt = r.passthrough
    lines.append(f"passthrough   {'possible' if pt['possible'] else 'not possible'}: {pt['why']}")
    if pt["todo"]:
        lines.append(f"  to do:      {pt['todo']}")
    lines.append("")
    if r.problems:
        lines.append("NOT READY for VMs:")
        lines += [f"  - {p}" for p in r.problems]
    else:
        lines.append("ready for VMs" + (" (under TCG: slow)" if tcg else "")
                     + ("; GPU workloads: " + ("in VMs (passthrough)" if pt["possible"] else
                                              "vllm is refused, the others run their CPU path")))
    return "\n".join(lines)
