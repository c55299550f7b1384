import xml.etree.ElementTree as ET

import pytest

from sandbox.libvirt.domain import QEMU_NS, DomainSpec, PciAddress, build_xml


def spec(**kw):
    base = dict(name="schedcp-x", uuid="6f1c1d4e-0000-4000-8000-000000000001", kernel="/img/vmlinuz",
                initrd="/img/initrd.img", cmdline="root=/dev/vda panic=-1", disk="/run/x/overlay.qcow2",
                console_log="/run/x/console.log", ssh_port=40022, vcpus=2, memory_mib=4096,
                qemu_uid=64055, qemu_gid=108)
    base.update(kw)
    return DomainSpec(**base)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def test_tcg_domain():
    d = parse(build_xml(spec(accel="tcg")))
    assert d.get("type") == "qemu"
    assert d.find("cpu").get("mode") == "maximum"
    assert d.findtext("vcpu") == "2" and d.findtext("memory") == "4096"
    assert d.find("memory").get("unit") == "MiB"
    assert d.findtext("os/kernel") == "/img/vmlinuz" and d.findtext("os/initrd") == "/img/initrd.img"
    assert "panic=-1" in d.findtext("os/cmdline")
    for ev in ("on_reboot", "on_crash", "on_poweroff"):
        assert d.findtext(ev) == "destroy"
    assert d.find("devices/serial/source").get("path") == "/run/x/console.log"
    assert d.find("devices/disk/source").get("file") == "/run/x/overlay.qcow2"
    assert d.find("seclabel/label").text == "+64055:+108"
    assert d.find("devices/hostdev") is None


def test_memfd_guest_ram():
    d = parse(build_xml(spec(accel="tcg", memory_backing="memfd")))
    assert d.find("memoryBacking/source").get("type") == "memfd"
    assert d.find("memoryBacking/access").get("mode") == "shared"  # private would copy on write to anonymous RAM
    assert parse(build_xml(spec(accel="kvm"))).find("memoryBacking") is None


def test_kvm_domain_uses_host_cpu():
    d = parse(build_xml(spec(accel="kvm")))
    assert d.get("type") == "kvm"
    assert d.find("cpu").get("mode") == "host-passthrough"


def test_network_is_restricted_with_one_loopback_forward():
    d = parse(build_xml(spec()))
    args = [a.get("value") for a in d.find(f"{{{QEMU_NS}}}commandline")]
    netdev = args[args.index("-netdev") + 1]
    assert "restrict=on" in netdev.split(",")
    assert netdev.count("hostfwd=") == 1
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev
    assert d.find("devices/interface") is None  # no libvirt-managed NIC that could bypass it


def test_gpu_passthrough_hostdev():
    d = parse(build_xml(spec(gpus=[PciAddress.parse("0000:41:00.0"), PciAddress.parse("41:00.1")])))
    hds = d.findall("devices/hostdev")
    assert len(hds) == 2
    assert all(h.get("type") == "pci" and h.get("managed") == "yes" for h in hds)
    a = hds[1].find("source/address")
    assert (a.get("domain"), a.get("bus"), a.get("slot"), a.get("function")) == ("0x0000", "0x41", "0x00", "0x1")


def test_bad_pci_address():
    with pytest.raises(ValueError, match="not a PCI address"):
        PciAddress.parse("gpu0")


def test_metadata_carries_job_and_trial():
    d = parse(build_xml(spec(metadata={"job": "j1", "trial": "t3"})))
    el = list(d.find("metadata"))[0]
    assert el.get("job") == "j1" and el.get("trial") == "t3"
