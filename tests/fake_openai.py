"""A small local HTTP server that speaks OpenAI's Chat Completions API and plays a script.

Each POST /v1/chat/completions takes the next entry of the script: a dict is returned as
the ChatCompletion JSON (status 200), an int as that HTTP error status. Every request
(headers and body) is recorded. :func:`tool_calls` builds a reply; a call's arguments may
be a dict (sent as JSON text) or a str sent verbatim (to script malformed calls).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tool_calls(*calls: tuple[str, dict | str], text: str | None = None, in_tokens: int = 900,
               out_tokens: int = 60, model: str = "test-model") -> dict:
    tcs = [{"id": f"call_{i}_{name}", "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
           for i, (name, args) in enumerate(calls)]
    msg = {"role": "assistant", "content": text}
    if tcs:
        msg["tool_calls"] = tcs
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if tcs else "stop"}],
            "usage": {"prompt_tokens": in_tokens, "completion_tokens": out_tokens,
                      "total_tokens": in_tokens + out_tokens}}


class FakeOpenAI:
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
                if isinstance(item, int):
                    payload = json.dumps({"error": {"message": "scripted", "type": "rate_limit_error"
                                                    if item == 429 else "server_error", "code": None}})
                    self.send_response(item)
                else:
                    payload = json.dumps(item)
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
