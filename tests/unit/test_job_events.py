"""The job event file: what a headless job writes, another process (the TUI) reads."""

import json

from harness.job import EVENTS_FILE, EventLog, read_events, request_stop, STOP_FILE


def test_event_log_appends_and_forwards(tmp_path):
    seen = []
    log = EventLog(tmp_path / EVENTS_FILE, lambda k, d: seen.append((k, d)))
    log("phase", {"trial": "t1", "phase": "baseline"})
    log("trial_end", {"trial": "t1", "status": "done"})
    assert [k for k, _ in seen] == ["phase", "trial_end"]
    lines = [json.loads(x) for x in (tmp_path / EVENTS_FILE).read_text().splitlines()]
    assert [x["event"] for x in lines] == ["phase", "trial_end"]
    assert lines[0]["trial"] == "t1" and lines[0]["ts"] > 0


def test_read_events_is_incremental_and_skips_partial_line(tmp_path):
    p = tmp_path / EVENTS_FILE
    p.write_text(json.dumps({"event": "a"}) + "\n" + '{"event": "b"')  # b is half-written
    evs, off = read_events(tmp_path)
    assert [e["event"] for e in evs] == ["a"]
    with open(p, "a") as f:
        f.write(', "x": 1}\n')
    evs, off2 = read_events(tmp_path, off)
    assert evs == [{"event": "b", "x": 1}] and off2 == p.stat().st_size
    assert read_events(tmp_path, off2) == ([], off2)


def test_read_events_missing_file(tmp_path):
    assert read_events(tmp_path, 0) == ([], 0)


def test_request_stop_writes_marker(tmp_path):
    request_stop(tmp_path)
    assert (tmp_path / STOP_FILE).is_file()
