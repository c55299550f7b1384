"""The sandbox contract: what every VM backend offers the harness.

A failing command is a normal :class:`ExecResult`. Only infrastructure failures raise,
and each has its own exception so the harness can record the failure kind:

- :class:`SandboxUnavailable`: the backend cannot be used at all (libvirtd down, no image);
- :class:`BootTimeout`: the guest did not become reachable in time;
- :class:`GuestCrashed`: the guest panicked or died (a sandbox failure, not a command failure);
- :class:`RelayError`: the SSH link broke while the guest is still running;
- :class:`KernelPinMismatch`: the guest runs another kernel than the image recipe pins.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path


class SandboxError(Exception):
    """Base of all infrastructure failures of a sandbox."""


class SandboxUnavailable(SandboxError):
    pass


class BootTimeout(SandboxError):
    pass


class GuestCrashed(SandboxError):
    def __init__(self, message: str, console_tail: str = ""):
        super().__init__(message)
        self.console_tail = console_tail


class GuestUnresponsive(GuestCrashed):
    """The guest still runs but no longer answers (its CPUs hogged, a scheduler that
    starves sshd): a sandbox failure like a crash."""


class RelayError(SandboxError):
    pass


class KernelPinMismatch(SandboxError):
    pass


@dataclass
class ExecResult:
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def to_dict(self) -> dict:
        return {
            "returncode": self.returncode,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_s": round(self.duration_s, 6),
            "timed_out": self.timed_out,
            "truncated": self.truncated,
        }


DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_OUTPUT = 1 << 20


class Sandbox(abc.ABC):
    """One running guest. Use as a context manager: ``with backend.open(...) as sb``."""

    name: str

    @abc.abstractmethod
    def run(self, cmd: str, timeout: float = DEFAULT_TIMEOUT_S, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        """Run ``cmd`` with bash in the guest. A hung command is killed at ``timeout``."""

    @abc.abstractmethod
    def put_file(self, remote: str, data: bytes | str | Path, mode: int = 0o644) -> None: ...

    @abc.abstractmethod
    def get_file(self, remote: str) -> bytes: ...

    @abc.abstractmethod
    def check_alive(self) -> None:
        """Raise :class:`GuestCrashed` when the guest is dead or has panicked."""

    @abc.abstractmethod
    def console_tail(self, max_bytes: int = 4000) -> str: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Destroy the guest and everything it changed."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
