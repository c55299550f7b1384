"""A small local HTTP server that speaks the Anthropic Messages API and plays a script.

Each POST /v1/messages takes the next entry of the script: a dict is returned as the
Message JSON (status 200), an int is returned as that HTTP error status, bytes are
returned as a raw 200 body (garbage JSON), and ``("sleep", s)`` answers nothing for
``s`` seconds (a timeout), then a 500. Every request
(headers and body) is recorded, so tests can check what the SDK sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tool_use(*calls: tuple[str, dict], text: str = "", in_tokens: int = 1200, out_tokens: int = 80) -> dict:
    content = [{"type": "text", "text": text}] if text else []
    for i, (name, args) in enumerate(calls):
        content.append({"type": "tool_use", "id": f"toolu_{name}_{i}_{id(args) % 10000}", "name": name, "input": args})
    return {"id": "msg_test", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": content, "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens}}


class FakeAnthropic:
    def __init__(self, script: list):
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                item = outer.script.pop(0) if outer.script else 500
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
