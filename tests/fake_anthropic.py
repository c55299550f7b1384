"""A small local HTTP server that speaks the Anthropic Messages API and plays a script.

Each POST /v1/messages takes the next entry of the script: a dict is returned as the
Message JSON (status 200; as server-sent events when the request asks to stream, as
Claude Code does), an int is returned as that HTTP error status, bytes are returned as a
raw 200 body (garbage JSON), and ``("sleep", s)`` answers nothing for ``s`` seconds (a
timeout), then a 500. Every request (headers and body) is recorded, so tests can check
what the SDK sent. ``side(body) -> bool`` marks requests that are not the agent's turns
(a CLI's housekeeping calls): they get a short text reply and do not consume the script.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


_ids = itertools.count(1)


def tool_use(*calls: tuple[str, dict], text: str = "", in_tokens: int = 1200, out_tokens: int = 80) -> dict:
    content = [{"type": "text", "text": text}] if text else []
    for i, (name, args) in enumerate(calls):
        content.append({"type": "tool_use", "id": f"toolu_{name}_{i}_{id(args) % 10000}", "name": name, "input": args})
    return {"id": f"msg_{next(_ids)}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": content, "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens}}


def text_reply(text: str = "ok") -> dict:
    return {"id": "msg_side", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 2}}


def sse(msg: dict) -> bytes:
    """The Message as the streaming API sends it."""
    out = []

    def ev(kind, data):
        out.append(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n")

    start = dict(msg, content=[], stop_reason=None, usage={"input_tokens": msg["usage"]["input_tokens"],
                                                          "output_tokens": 0})
    ev("message_start", {"message": start})
    for i, b in enumerate(msg["content"]):
        if b["type"] == "text":
            ev("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})
            ev("content_block_delta", {"index": i, "delta": {"type": "text_delta", "text": b["text"]}})
        else:
            ev("content_block_start", {"index": i, "content_block": {"type": "tool_use", "id": b["id"],
                                                                     "name": b["name"], "input": {}}})
            ev("content_block_delta", {"index": i, "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(b["input"])}})
        ev("content_block_stop", {"index": i})
    ev("message_delta", {"delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                         "usage": {"output_tokens": msg["usage"]["output_tokens"]}})
    ev("message_stop", {})
    return "".join(out).encode()


class FakeAnthropic:
    def __init__(self, script: list, side=None):
        self.script = list(script)
        self.side = side
        self.requests: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if not self.path.split("?")[0].endswith("/messages"):  # count_tokens and the like
                    item = {"input_tokens": 100}
                elif outer.side is not None and outer.side(body):
                    item = text_reply()
                else:
                    item = outer.script.pop(0) if outer.script else 500
                if isinstance(item, dict) and body.get("stream") and "content" in item:
                    payload = sse(item)
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if isinstance(item, tuple) and item[0] == "sleep":
                    time.sleep(item[1])
                    item = 500
                if isinstance(item, bytes):
                    payload = item.decode()
                    self.send_response(200)
                elif isinstance(item, int):
                    payload = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "scripted"}})
                    self.send_response(item)
                else:
                    payload = json.dumps(item)
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
