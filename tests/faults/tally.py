"""The fault suite's tally: each test marked ``fault`` injects one fault; it survived when
the test passed (the harness did exactly what the test expects); ``lost_results``
counts recorded results that a fault destroyed or changed (checked by :class:`Guard`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Tally:
    injected: int = 0
    survived: int = 0
    lost_results: int = 0


TALLY = Tally()


class Guard:
    """Snapshot recorded result files; :meth:`lost` says how many vanished or changed."""

    def __init__(self) -> None:
        self.saved: dict[Path, bytes] = {}

    def record(self, *paths: Path) -> None:
        for p in paths:
            self.saved[p] = p.read_bytes()

    def lost(self) -> int:
        n = sum(1 for p, b in self.saved.items() if not p.is_file() or p.read_bytes() != b)
        TALLY.lost_results += n
        return n
