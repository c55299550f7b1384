"""The libvirt domain XML of a sandbox, built in code from one small spec.

- ``<domain type='kvm'>`` with host-passthrough where KVM works, else ``type='qemu'``
  (TCG) with ``<cpu mode='maximum'>``;
- direct kernel boot, ``panic=-1`` on the command line plus ``on_reboot/on_crash=destroy``
  and a pvpanic device, so a guest panic ends the domain instead of hanging it;
- under TCG, guest RAM is a shared memfd (``memory_backing="memfd"``): shmem gets no
  transparent huge pages (``shmem_enabled`` is ``never`` by default), so loading a saved
  state does not zero and compact a 2 MiB page for each scattered guest page (restore
  to SSH-ready measured 1.45 -> 1.05 s, interleaved). KVM keeps anonymous RAM, where
  huge pages back the guest's page tables;
- the serial console goes to a file (``console.log``);
- root disk on virtio-blk (QEMU's NVMe device cannot be migrated, so it cannot be
  saved and restored); the kernel boots with the image's initrd, which loads virtio_blk;
- a user-mode NIC with ``restrict=on`` and a single ``127.0.0.1:PORT -> guest:22``
  forward, added through ``<qemu:commandline>`` because libvirt 9.0 cannot express
  ``restrict=on`` (an explicit PCI address keeps it clear of libvirt's devices);
- QEMU runs as the unprivileged ``libvirt-qemu`` user (static DAC label);
- optional VFIO ``<hostdev>`` entries for GPU passthrough.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
SCHEDCP_NS = "https://github.com/schedcp-bench/sandbox/1"
ET.register_namespace("qemu", QEMU_NS)
ET.register_namespace("schedcp", SCHEDCP_NS)

_PCI = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")


@dataclass
class PciAddress:
    domain: int
    bus: int
    slot: int
    function: int

    @classmethod
    def parse(cls, text: str) -> "PciAddress":
        m = _PCI.match(text.strip())
        if not m:
            raise ValueError(f"not a PCI address: {text!r} (expected e.g. 0000:01:00.0)")
        d, b, s, f = m.groups()
        return cls(int(d or "0", 16), int(b, 16), int(s, 16), int(f))

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function}"


@dataclass
class DomainSpec:
    name: str
    uuid: str
    kernel: str
    cmdline: str
    disk: str
    console_log: str
    ssh_port: int
    vcpus: int = 2
    memory_mib: int = 4096
    accel: str = "tcg"
    initrd: str | None = None
    memory_backing: str = "anonymous"  # or "memfd": a shared memfd
    qemu_uid: int = 0
    qemu_gid: int = 0
    gpus: list[PciAddress] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    emulator: str = "/usr/bin/qemu-system-x86_64"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def build_xml(spec: DomainSpec) -> str:
    dom = ET.Element("domain", {"type": "kvm" if spec.accel == "kvm" else "qemu"})
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.uuid)
    md = _sub(dom, "metadata")
    ET.SubElement(md, f"{{{SCHEDCP_NS}}}sandbox", {k: str(v) for k, v in sorted(spec.metadata.items())})
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    if spec.memory_backing != "anonymous":
        mb = _sub(dom, "memoryBacking")
        _sub(mb, "source", type=spec.memory_backing)
        _sub(mb, "access", mode="shared")
    _sub(dom, "vcpu", str(spec.vcpus), placement="static")
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="q35")
    _sub(os_, "kernel", spec.kernel)
    if spec.initrd:
        _sub(os_, "initrd", spec.initrd)
    _sub(os_, "cmdline", spec.cmdline)
    feats = _sub(dom, "features")
    _sub(feats, "acpi")
    if spec.accel == "kvm":
        _sub(dom, "cpu", mode="host-passthrough", check="none", migratable="on")
    else:
        _sub(dom, "cpu", mode="maximum", check="none")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "destroy")
    _sub(dom, "on_crash", "destroy")
    dev = _sub(dom, "devices")
    _sub(dev, "emulator", spec.emulator)
    disk = _sub(dev, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2", discard="unmap")
    _sub(disk, "source", file=spec.disk)
    _sub(disk, "target", dev="vda", bus="virtio")
    serial = _sub(dev, "serial", type="file")
    _sub(serial, "source", path=spec.console_log, append="on")
    _sub(serial, "target", port="0")
    _sub(dev, "controller", type="usb", model="none")
    _sub(dev, "memballoon", model="none")
    _sub(dev, "panic", model="isa")
    for gpu in spec.gpus:
        hd = _sub(dev, "hostdev", mode="subsystem", type="pci", managed="yes")
        src = _sub(hd, "source")
        _sub(src, "address", domain=f"0x{gpu.domain:04x}", bus=f"0x{gpu.bus:02x}",
             slot=f"0x{gpu.slot:02x}", function=f"0x{gpu.function:x}")
    sec = _sub(dom, "seclabel", type="static", model="dac", relabel="no")
    _sub(sec, "label", f"+{spec.qemu_uid}:+{spec.qemu_gid}")
    cl = ET.SubElement(dom, f"{{{QEMU_NS}}}commandline")
    for arg in qemu_args(spec):
        ET.SubElement(cl, f"{{{QEMU_NS}}}arg", {"value": arg})
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def qemu_args(spec: DomainSpec) -> list[str]:
    return [
        "-netdev", f"user,id=schedcp-net,restrict=on,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
        "-device", "virtio-net-pci,netdev=schedcp-net,bus=pcie.0,addr=0x10",
    ]
