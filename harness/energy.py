"""Energy the harness can measure, each figure named with its source.

- CPU: the host's RAPL package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``,
  summed over packages, wrap-around handled with ``max_energy_range_uj``). Whole-host
  energy: it includes every process on the host (other trials' VMs too), not only the
  trial's VM. Source name :data:`CPU_SOURCE`.
- GPU: NVML's total-energy counter (:mod:`harness.gpu`) of the GPUs the trial's VMs have
  (passed through: read in the guest, **unverified**). A host GPU the workload does not
  use is not counted. Source name :data:`harness.gpu.ENERGY_COUNTER`.

:class:`EnergyMeter` gives the energy since :meth:`EnergyMeter.start`; the agent phase's
figures go into ``usage`` and the ``--max-energy-j`` budget (:mod:`harness.limits`) is
checked against their sum. Where no source exists the budget is refused at job start
(:func:`budget_refusal`), never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

POWERCAP = Path("/sys/class/powercap")
CPU_SOURCE = "rapl_package"  # host RAPL package domains, summed

Reader = Callable[[], "float | None"]


class Rapl:
    """Cumulative host package energy in J since the first read; wrap-around handled."""

    def __init__(self, root: Path | None = None):
        root = POWERCAP if root is None else Path(root)
        # the package domains (intel-rapl:0, intel-rapl:1...), not their subzones (intel-rapl:0:0)
        self.zones = [z for z in sorted(Path(root).glob("intel-rapl:*")) if z.name.count(":") == 1]
        self.last: dict[Path, int] = {}
        self.total_uj = 0
        self.reason = self._probe(root)

    def _probe(self, root: Path) -> str | None:
        if not self.zones:
            return f"RAPL not available on this host (no {Path(root) / 'intel-rapl:*'})"
        try:
            for z in self.zones:
                int((z / "energy_uj").read_text())
        except (OSError, ValueError) as e:
            return f"RAPL not readable on this host ({getattr(e, 'filename', '') or ''}: {getattr(e, 'strerror', '') or e})"
        return None

    def read(self) -> float | None:
        try:
            for z in self.zones:
                v = int((z / "energy_uj").read_text())
                prev = self.last.get(z)
                if prev is not None:
                    d = v - prev
                    if d < 0:  # the counter wrapped
                        try:
                            d += int((z / "max_energy_range_uj").read_text())
                        except (OSError, ValueError):
                            return None
                    self.total_uj += d
                self.last[z] = v
        except (OSError, ValueError):
            return None
        return self.total_uj / 1e6


class EnergyMeter:
    """Energy since :meth:`start`: ``cpu`` and ``gpu`` are each a reader (cumulative J, or
    None when a read fails) or the reason string why there is none."""

    def __init__(self, cpu: Reader | str, gpu: Reader | str):
        self.cpu, self.gpu = cpu, gpu
        self.base: dict[str, float | None] = {}

    @classmethod
    def for_trial(cls, sandbox=None, gpus: int = 0) -> "EnergyMeter":
        return cls(rapl_reader(), gpu_reader(sandbox, gpus))

    @property
    def sources(self) -> dict[str, str]:
        from .gpu import ENERGY_COUNTER

        return {k: s for k, r, s in (("cpu", self.cpu, CPU_SOURCE), ("gpu", self.gpu, ENERGY_COUNTER))
                if not isinstance(r, str)}

    @property
    def notes(self) -> dict[str, str]:
        return {k: r for k, r in (("cpu", self.cpu), ("gpu", self.gpu)) if isinstance(r, str)}

    def _now(self) -> dict[str, float | None]:
        return {k: (None if isinstance(r, str) else r()) for k, r in (("cpu", self.cpu), ("gpu", self.gpu))}

    def start(self) -> None:
        self.base = self._now()

    def read(self) -> dict[str, float | None]:
        """J since start, per source (None: no source, or a read failed)."""
        now = self._now()
        return {k: (None if now[k] is None or self.base.get(k) is None else round(now[k] - self.base[k], 3))
                for k in now}

    @staticmethod
    def total(used: dict[str, float | None]) -> float | None:
        vals = [v for v in used.values() if v is not None]
        return round(sum(vals), 3) if vals else None


def rapl_reader(root: Path | None = None) -> Reader | str:
    r = Rapl(root)
    return r.reason or r.read


def gpu_reader(sandbox=None, gpus: int = 0) -> Reader | str:
    """The trial's GPU energy: NVML in the guest when its VMs have GPUs passed through."""
    if gpus < 1 or sandbox is None:
        return "no GPU passed through to the trial's VMs (a host GPU the workload does not use is not counted)"
    from .gpu import guest_energy_reader

    return guest_energy_reader(sandbox)


def budget_refusal(gpus: int = 0, root: Path | None = None) -> str | None:
    """Why an energy budget cannot be enforced for trials on this host with ``gpus``
    passed-through GPUs (None: it can). Checked at job start, before anything is written."""
    cpu = Rapl(root).reason
    if cpu is None:
        return None
    # a passed-through GPU's counter would be read by NVML inside the guest, which the image
    # cannot do yet (no NVIDIA driver, no pynvml): not a source to enforce a budget with
    gpu = ("no GPU passed through to the trials' VMs, so no NVML energy counter either" if gpus < 1 else
           "NVML energy inside a guest is not available yet (the image has no NVIDIA driver or pynvml)")
    return f"--max-energy-j cannot be enforced here: {cpu}, and {gpu}"
