import subprocess

import pytest

from sandbox.relay import _Stream, ansi_c_quote


@pytest.mark.parametrize("text", ["true", "echo 'a b' \"c\"", "printf '%s\\n' $HOME\n\necho x\\y",
                                  "tab\there\x01\x7f", "ünïcödé ✓", "a'b'c\\", ""])
def test_ansi_c_quote_round_trips_through_real_bash(text):
    out = subprocess.run(["bash", "-c", f"x={ansi_c_quote(text)}; printf '%s' \"$x\""],
                         capture_output=True, check=True).stdout.decode()
    assert out == text


def test_stream_parses_split_sentinel_and_caps():
    s = _Stream(b"\nTOK E 7 ", cap=5)
    for chunk in (b"hello world", b"\nTO", b"K E 7 ", b"42", b"\n", b"late"):
        s.feed(chunk)
    assert s.done and s.end_line == b"42"
    assert bytes(s.kept) == b"hello" and s.dropped == 6
    assert s.text().endswith("[schedcp: output truncated, 6 bytes dropped]")


def test_stream_ignores_other_sequence_numbers():
    s = _Stream(b"\nTOK E 1 ", cap=100)
    s.feed(b"x\nTOK E 12 0\n")
    assert not s.done
    s.feed(b"\nTOK E 1 3\n")
    assert s.done and s.end_line == b"3"
