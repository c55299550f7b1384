"""`schedcp local-model serve`: the server's command line and the CLI's checks (the
server itself runs in tests/vm/test_any_model.py)."""

import sys
from pathlib import Path

from harness import local_model
from harness.cli import main


def test_server_command_line(tmp_path):
    cmd = local_model.server_cmd(tmp_path / "m.gguf", port=9999, threads=2)
    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    opt = {cmd[i]: cmd[i + 1] for i in range(3, len(cmd), 2)}
    assert opt == {"--model": str(tmp_path / "m.gguf"), "--host": "127.0.0.1", "--port": "9999",
                   "--model_alias": "gemma-3-270m", "--chat_format": "chatml-function-calling",
                   "--n_ctx": "8192", "--n_threads": "2"}


def test_serve_refuses_a_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(local_model, "available", lambda: "")
    assert main(["local-model", "serve", "--model", str(tmp_path / "nope.gguf")]) == 2
    assert "no such GGUF file" in capsys.readouterr().err


def test_run_checks_base_url_and_model(capsys):
    assert main(["run", "--workloads", "sqlite", "--agent", "openai"]) == 2
    assert "needs --model" in capsys.readouterr().err
    assert main(["run", "--workloads", "sqlite", "--agent", "linux-default", "--base-url", "http://x"]) == 2
    assert "--base-url is for agents" in capsys.readouterr().err
    assert main(["run", "--workloads", "sqlite", "--agent", "cli:nothing"]) == 2
    assert "cli:NAME" in capsys.readouterr().err
