"""How one trajectory record reads as one line of text, for every display (plain output,
the TUI's live log): the trial emits records, displays render them with :func:`step_text`."""

from __future__ import annotations

import json

from . import fmt


def step_text(rec: dict) -> str | None:
    """The line for ``rec``, or None for records that displays do not show."""
    kind = rec["type"]
    if kind == "message" and rec.get("role") != "assistant":
        return rec.get("text", "")
    if kind == "tool_call":
        return f"{rec['name']} {json.dumps(rec.get('input'))[:120]}"
    if kind == "trial_run":
        m = rec.get("metrics")
        if m:
            return "trial run " + fmt.metrics(m)
        if "exit_code" in rec:  # the goal hidden: no metrics, the program's exit and time
            return f"trial run exit {rec['exit_code']} in {fmt.seconds(rec.get('duration_s'))} s" + (
                f" ({rec['error']})" if rec.get("error") else "")
        return f"trial run {rec.get('error')}"
    if kind == "goal":
        return f"declared goal {rec['declared']['metric']} ({rec['declared']['direction']})"
    if kind == "candidate":  # the classic tuners (harness/agents/tuners.py)
        return (f"candidate {rec['label']}: {fmt.metric(rec['score'], none='no score')}"
                + (f" ({'; '.join(rec['errors'])})" if rec["errors"] else ""))
    if kind == "mcp_ready":
        return f"MCP server ready: {rec['url']}"
    if kind == "malformed_tool_call":
        return f"malformed tool call {rec.get('name')!r}: {rec.get('reason')}"
    if kind in ("api_error", "limit", "failure"):
        return f"{kind} " + json.dumps(fmt.rounded({k: v for k, v in rec.items() if k not in ("t", "type")}))
    return None
