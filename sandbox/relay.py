"""The host-to-guest relay: one SSH connection and one persistent bash channel per guest.

Each command is sent to the persistent shell as one line (the command as a bash $'...'
word, so no here-document and no fork) and evaluated there; end-sentinel lines on
stdout and stderr carrying a per-connection random token frame its output and exit
status. That costs about one network round trip instead of a new SSH session per
command. Like a terminal, the shell keeps its working directory and variables between
commands. A command that outlives its timeout is killed, with every process it started
and the shell running it, through a second short-lived channel, and a fresh shell
replaces it (the result says ``timed_out`` and ``shell_restarted``); background jobs of
earlier commands are spared. The same happens when a command exits the shell itself.
Output past ``max_output`` is dropped and marked; a command that floods far past the
cap is killed.

Nothing here knows about libvirt: the relay talks to ``host:port`` with a key pair.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
import select
import socket
import stat
import time
from pathlib import Path
from typing import Callable

import paramiko

from .base import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT_S, ExecResult, RelayError

# paramiko logs failed connection attempts (normal while a guest boots) as errors.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# Kill a command once it has produced this many times its output cap (and at least
# FLOOD_MIN_BYTES): a large finite output is drained, an endless one is stopped.
FLOOD_FACTOR = 8
FLOOD_MIN_BYTES = 32 << 20
# Cipher preference: AES-GCM (one AEAD pass per packet, cheaper for the guest under TCG)
# when the guest's server offers it, else AES-CTR.
_CIPHERS = ("aes128-gcm@openssh.com", "aes128-ctr", "aes256-gcm@openssh.com", "aes256-ctr")


class _Transport(paramiko.Transport):
    _preferred_ciphers = _CIPHERS

# The end sentinels come first, so the host has its answer before the shell records
# the last pid the guest allocated (for the killer below, in a file named after the
# shell's pid): that read and write overlap the host's turn-around instead of adding to
# every command's round trip. ``builtin echo`` and no ``printf`` format: the cheapest
# framing measured (benchmarks/relay.py). ``$?`` in _R is the status of the command's eval;
# ``eval --`` so that a command starting with "-" is a command, not an option of eval;
# ``>|`` so that a command's ``set -o noclobber`` does not stop the bookkeeping.
_LASTPID_FILE = "/run/.schedcp-relay-lastpid."  # + the relay shell's pid; read by _KILLER
_PRELUDE = r"""
export LC_ALL=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/schedcp/scx/bin
cd /root
_lpf=LASTPID_FILE$$
_R() {
  builtin echo "
$__t E $_n $?"; builtin echo "
$__t E $_n -" >&2
  read -r _lp </proc/sys/kernel/ns_last_pid; builtin echo "$_lp" >|"$_lpf"
}
read -r _lp </proc/sys/kernel/ns_last_pid; builtin echo "$_lp" >|"$_lpf"
read -r _rel </proc/sys/kernel/osrelease
printf '%s READY %s %s %s\n' "$__t" "$$" "$_lp" "$_rel"
""".replace("LASTPID_FILE", _LASTPID_FILE)

# Run on timeout, through a separate exec channel: kill the relay shell (so the rest of
# the timed-out command line never runs; a new shell replaces it) and every process of
# its session whose pid is above the last pid allocated when the previous command ended
# (the relay shell keeps it in /run/.schedcp-relay-lastpid.<shell pid>; LASTPID, from
# the shell's start, stands in when that file is missing), i.e. what the timed-out
# command started.
# Background jobs of earlier commands, and anything that left the session with setsid,
# are spared. (A pid wrap-around during one command is not handled.)
_KILLER = r"""python3 - <<'PY'
import os, signal
shell = int(os.environ["SHELLPID"]); last = int(os.environ["LASTPID"])
lpf = f"LASTPID_FILE{shell}"
try:
    last = int(open(lpf).read())
    os.unlink(lpf)
except (OSError, ValueError):
    pass
sid = int(open(f"/proc/{shell}/stat").read().rsplit(")", 1)[1].split()[3])
os.kill(shell, signal.SIGKILL)
for d in os.listdir("/proc"):
    if not d.isdigit() or int(d) in (sid, shell, os.getpid()) or int(d) <= last:
        continue
    try:
        f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(f[3]) == sid:
        try:
            os.kill(int(d), signal.SIGKILL)
        except OSError:
            pass
PY""".replace("LASTPID_FILE", _LASTPID_FILE)


def ansi_c_quote(text: str) -> str:
    """Quote ``text`` as a bash $'...' word (no here-document, no fork)."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "\n":
            out.append("\\n")
        elif o < 32 or o == 127:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


class _Stream:
    """Collects one stream of one command up to its end sentinel line."""

    def __init__(self, end_prefix: bytes, cap: int):
        self.end_prefix, self.cap = end_prefix, cap
        self.done = False
        self.kept = bytearray()
        self.dropped = 0
        self.window = bytearray()  # unparsed bytes (may hold a partial sentinel)
        self.end_line = b""

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.window += data
        j = self.window.find(self.end_prefix)
        if j >= 0:
            k = self.window.find(b"\n", j + len(self.end_prefix))
            if k < 0:
                return  # wait for the rest of the end line
            self.end_line = bytes(self.window[j + len(self.end_prefix) : k])
            self._keep(self.window[:j])
            self.done = True
            self.window.clear()
            return
        safe = max(0, len(self.window) - len(self.end_prefix))
        self._keep(self.window[:safe])
        del self.window[:safe]

    def flush(self) -> None:
        """The stream ended without its sentinel (the shell exited): keep what is left."""
        if not self.done:
            self._keep(self.window)
            self.window.clear()

    def _keep(self, data: bytes) -> None:
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        s = self.kept.decode("utf-8", errors="replace")
        if self.dropped:
            s += f"\n[schedcp: output truncated, {self.dropped} bytes dropped]"
        return s


class Relay:
    """A persistent SSH relay to one guest. Not thread-safe: one command at a time."""

    def __init__(self, host: str, port: int, key_path: Path, known_hosts: Path | None = None, user: str = "root"):
        self.host, self.port, self.user = host, port, user
        self.key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
        self.known_hosts = known_hosts
        self.client: paramiko.SSHClient | None = None
        self.chan: paramiko.Channel | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._token = ""
        self._seq = 0
        self._shell_pid = 0
        self.guest_release = ""
        self._last_pid = 0  # last pid allocated in the guest when the shell started
        self.kill_failed = False

    # -- connection -----------------------------------------------------------------
    def connect(self, timeout: float = 10.0, on_start: str | Callable[[], str] = "") -> None:
        """Connect and start the persistent shell. ``on_start`` is shell code run once in
        it before it reports ready (no extra round trip); :attr:`guest_release` is the
        guest's ``uname -r`` read at that moment."""
        client = paramiko.SSHClient()
        if self.known_hosts and self.known_hosts.is_file():
            # The image's known_hosts pins the guest host key for any local port.
            line = self.known_hosts.read_text().split()
            hk = paramiko.Ed25519Key(data=base64.b64decode(line[2]))
            client.get_host_keys().add(f"[{self.host}]:{self.port}", line[1], hk)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            self.host, port=self.port, username=self.user, pkey=self.key, timeout=timeout,
            banner_timeout=timeout, auth_timeout=timeout, allow_agent=False, look_for_keys=False,
            transport_factory=_Transport,
        )
        client.get_transport().set_keepalive(5)
        self.client = client
        self._open_shell(on_start)

    def _open_shell(self, on_start: str | Callable[[], str] = "") -> None:
        t = self._transport()
        chan = t.open_session(timeout=10)
        chan.settimeout(None)
        # The shell reads its commands from fd 3 (the channel); fd 0 is /dev/null, so a
        # command that reads stdin gets EOF instead of eating the protocol stream, and
        # no per-command redirection is needed.
        chan.exec_command("exec 3<&0 </dev/null; exec bash --noprofile --norc /dev/fd/3")
        self._token = "__SCHEDCP_" + secrets.token_hex(8)
        start = on_start() if callable(on_start) else on_start
        chan.sendall((f"__t={self._token}\n{start}\n" + _PRELUDE).encode())
        ready = f"{self._token} READY ".encode()
        buf = b""
        deadline = time.monotonic() + 15
        while ready not in buf or not buf.endswith(b"\n"):
            if time.monotonic() > deadline or chan.exit_status_ready():
                chan.close()
                raise RelayError("guest shell did not start")
            select.select([chan], [], [], 0.5)
            if chan.recv_ready():
                buf += chan.recv(4096)
        fields = buf[buf.index(ready) + len(ready):].split()
        self._shell_pid = int(fields[0])
        self._last_pid = int(fields[1])
        self.guest_release = fields[2].decode() if len(fields) > 2 else ""
        self.chan = chan

    def _transport(self) -> paramiko.Transport:
        t = self.client.get_transport() if self.client else None
        if t is None or not t.is_active():
            raise RelayError(f"SSH link to {self.host}:{self.port} is down")
        return t

    def _link_down(self, wait: float = 0.0) -> bool:
        """True when the SSH transport is gone (given ``wait`` s to notice: a channel closes
        a moment before its transport reports the broken socket)."""
        deadline = time.monotonic() + wait
        while True:
            t = self.client.get_transport() if self.client else None
            if t is None or not t.is_active():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        t = self.client.get_transport() if self.client else None
        return bool(t and t.is_active() and self.chan and not self.chan.closed)

    def close(self) -> None:
        for obj in (self._sftp, self.chan, self.client):
            try:
                if obj is not None:
                    obj.close()
            except Exception:
                pass
        self._sftp = self.chan = self.client = None

    # -- commands --------------------------------------------------------------------
    def exec_once(self, cmd: str, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
        """One SSH exec channel per command: the slow path, for kills and comparisons."""
        deadline = time.monotonic() + timeout
        chan = self._transport().open_session(timeout=timeout)
        chan.settimeout(timeout)
        try:
            chan.exec_command(cmd)
            out, err = io.BytesIO(), io.BytesIO()
            while True:
                if chan.recv_ready():
                    out.write(chan.recv(65536))
                elif chan.recv_stderr_ready():
                    err.write(chan.recv_stderr(65536))
                elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:  # a guest that accepted the channel but never answers
                        raise socket.timeout()
                    select.select([chan], [], [], min(left, 1.0))
            return chan.recv_exit_status(), out.getvalue(), err.getvalue()
        except socket.timeout:
            raise RelayError(f"exec of {cmd!r} timed out after {timeout}s") from None
        finally:
            chan.close()

    def run(self, cmd: str, timeout: float = DEFAULT_TIMEOUT_S, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        """Run ``cmd`` in the persistent guest shell (cwd and variables persist, as in a
        terminal). Returns when it ends, or kills it at ``timeout`` (``timed_out=True``)."""
        if not self.alive:
            self._reopen_shell()
        self.kill_failed = False
        self._seq += 1
        seq, tok, chan = self._seq, self._token, self.chan
        out = _Stream(f"\n{tok} E {seq} ".encode(), max_output)
        err = _Stream(f"\n{tok} E {seq} ".encode(), max_output)
        t0 = time.monotonic()
        deadline = t0 + timeout
        timed_out = flooded = restarted = False
        try:
            while chan.recv_ready():  # stale output of earlier background jobs
                chan.recv(1 << 16)
            while chan.recv_stderr_ready():
                chan.recv_stderr(1 << 16)
            # Short on purpose: bash reads a pipe one byte per read(2), slow under TCG.
            chan.sendall(f"_n={seq};eval -- {ansi_c_quote(cmd)};_R\n".encode())
            while not (out.done and err.done):
                got = False
                if chan.recv_ready():
                    data = chan.recv(1 << 16)
                    if data:
                        out.feed(data)
                        got = True
                if chan.recv_stderr_ready():
                    err.feed(chan.recv_stderr(1 << 16))
                    got = True
                if got:
                    if not flooded and out.dropped + err.dropped > max(FLOOD_FACTOR * max_output, FLOOD_MIN_BYTES):
                        flooded = True
                        self._kill_command()
                    continue
                if chan.exit_status_ready() or chan.closed:
                    # paramiko marks a channel of a dead transport as exited with -1
                    rc = chan.recv_exit_status() if chan.exit_status_ready() else -1
                    if rc == -1 and self._link_down(wait=1.0):
                        raise RelayError("SSH link broke during the command")
                    # The command ended the shell itself (exit, exec, set -e ...).
                    while chan.recv_ready():
                        out.feed(chan.recv(1 << 16))
                    while chan.recv_stderr_ready():
                        err.feed(chan.recv_stderr(1 << 16))
                    out.flush()
                    err.flush()
                    self._reopen_shell()
                    return self._result(out, err, 124 if timed_out else rc, t0, timed_out,
                                        {"shell_restarted": True, "killed_for_output": flooded})
                now = time.monotonic()
                if now >= deadline:
                    if not timed_out:
                        timed_out = True
                        self._kill_command()
                        deadline = now + 3.0
                    else:
                        # A builtin loop of the shell itself: kill the shell, start a new one.
                        self._kill_shell()
                        restarted = True
                        break
                select.select([chan], [], [], min(0.25, max(0.0, deadline - now)))
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise RelayError(f"SSH link broke during command: {e}") from None
        end = out.end_line.decode(errors="replace").split()
        rc = int(end[0]) if end and end[0].lstrip("-").isdigit() else -1
        meta = {k: True for k, v in (("shell_restarted", restarted), ("killed_for_output", flooded),
                                     ("kill_failed", self.kill_failed)) if v}
        return self._result(out, err, 124 if timed_out else rc, t0, timed_out, meta)

    @staticmethod
    def _result(out: _Stream, err: _Stream, rc: int, t0: float, timed_out: bool, meta: dict) -> ExecResult:
        return ExecResult(
            returncode=rc, stdout=out.text(), stderr=err.text(), duration_s=time.monotonic() - t0,
            timed_out=timed_out, truncated=bool(out.dropped or err.dropped),
            meta={k: v for k, v in meta.items() if v},
        )

    def _kill_command(self) -> None:
        try:
            self.exec_once(f"SHELLPID={self._shell_pid} LASTPID={self._last_pid} " + _KILLER, timeout=20)
        except (RelayError, paramiko.SSHException, OSError):
            self.kill_failed = True  # the guest did not even answer the killer

    def _kill_shell(self) -> None:
        try:
            self.exec_once(f"kill -KILL {self._shell_pid}", timeout=10)
        except (RelayError, paramiko.SSHException, OSError):
            pass
        self._reopen_shell()

    def reconnect(self, timeout: float = 10.0) -> None:
        """A new SSH connection and shell after the link broke (the guest still runs)."""
        self.close()
        self.connect(timeout=timeout)

    def _reopen_shell(self) -> None:
        t = self.client.get_transport() if self.client else None
        if t is None or not t.is_active():
            self.reconnect()
            return
        if self.chan is not None:
            try:
                self.chan.close()
            except Exception:
                pass
            self.chan = None
        self._open_shell()

    # -- files -----------------------------------------------------------------------
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def put(self, remote: str, data: bytes, mode: int = 0o644) -> None:
        try:
            with self.sftp().open(remote, "wb") as f:
                f.set_pipelined(True)
                f.write(data)
            self.sftp().chmod(remote, mode)
        except (OSError, paramiko.SSHException) as e:
            raise RelayError(f"put {remote}: {e}") from None

    def get(self, remote: str) -> bytes:
        try:
            st = self.sftp().stat(remote)
            if stat.S_ISDIR(st.st_mode or 0):
                raise IsADirectoryError(remote)
            with self.sftp().open(remote, "rb") as f:
                f.prefetch()
                return f.read()
        except FileNotFoundError:
            raise
        except IOError as e:
            if getattr(e, "errno", None) == 2:
                raise FileNotFoundError(remote) from None
            raise RelayError(f"get {remote}: {e}") from None
