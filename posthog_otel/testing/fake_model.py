"""A loopback stand-in for an OpenAI-compatible model API, for tests and examples.

It answers the routes the ``openai`` client calls, with deterministic content and token counts:

* ``POST /v1/chat/completions``: a reply echoing the last user message (``"You said: ..."``),
  or, when the request offers ``tools`` and the last message is from the user, a call of the
  first tool with ``{"city": "Paris"}``. ``"stream": true`` answers as server-sent events, one
  chunk per word, with a final usage chunk when ``stream_options.include_usage`` is set.
* ``POST /v1/embeddings``: one 4-dimension vector per input.
* ``POST /v1/messages``: Anthropic's Messages API, the same replies (a ``tool_use`` block when
  ``tools`` are offered and the last message is from the user; server-sent events when
  ``"stream": true``); point the ``anthropic`` client at :attr:`FakeModelServer.root_url`.
* A model named ``fail-429`` or ``fail-500`` gets that status with an error body in the route's
  API's shape.

Usage: prompt tokens = words in all messages, completion tokens = words in the reply, and
``prompt_tokens_details.cached_tokens`` = 2 (so cache-read counts can be checked). Every
request body is kept in :attr:`FakeModelServer.requests`. It binds 127.0.0.1 only.

    with FakeModelServer() as model:
        client = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeModelServer", "reply_for"]

CACHED_TOKENS = 2
TOOL_ARGUMENTS = '{"city":"Paris"}'


def _words(text: Any) -> int:
    return len(str(text).split()) if text else 0


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def reply_for(messages: list[dict[str, Any]]) -> str:
    """The reply text the server gives to ``messages``."""
    last = next((m for m in reversed(messages) if m.get("role") in ("user", "tool")), None)
    return f"You said: {_text(last.get('content')) if last else ''}".strip()


def _usage(messages: list[dict[str, Any]], reply: str) -> dict[str, Any]:
    prompt = sum(_words(_text(m.get("content"))) for m in messages)
    completion = _words(reply) or 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
    }


class FakeModelServer:
    """See the module docstring. ``base_url`` ends in ``/v1``."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "invalid JSON", "type": "invalid"}})
                    return
                with server._lock:
                    server.requests.append(body)
                model = str(body.get("model", ""))
                anthropic = self.path.rstrip("/").endswith("/messages")
                if model.startswith("fail-"):
                    status = int(model[5:]) if model[5:].isdigit() else 500
                    error = {"message": f"fake failure {status}", "type": "fake", "code": status}
                    if anthropic:
                        error = {"type": "api_error", "message": f"fake failure {status}"}
                        self._json(status, {"type": "error", "error": error})
                    else:
                        self._json(status, {"error": error})
                elif anthropic:
                    self._messages(body)
                elif self.path.rstrip("/").endswith("/chat/completions"):
                    self._chat(body)
                elif self.path.rstrip("/").endswith("/embeddings"):
                    self._embeddings(body)
                else:
                    self._json(404, {"error": {"message": "no such route", "type": "fake"}})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chat(self, body: dict[str, Any]) -> None:
                messages = body.get("messages") or []
                model = body.get("model", "")
                tools = body.get("tools") or []
                wants_tool = bool(tools) and bool(messages) and messages[-1].get("role") == "user"
                reply = "" if wants_tool else reply_for(messages)
                usage = _usage(messages, reply)
                message: dict[str, Any] = {"role": "assistant", "content": reply or None}
                finish = "stop"
                if wants_tool:
                    name = tools[0].get("function", {}).get("name", "tool")
                    message["tool_calls"] = [
                        {
                            "id": "call_fake_1",
                            "type": "function",
                            "function": {"name": name, "arguments": TOOL_ARGUMENTS},
                        }
                    ]
                    finish = "tool_calls"
                base = {"id": "chatcmpl-fake", "created": 1_700_000_000, "model": model}
                if not body.get("stream"):
                    choice = {"index": 0, "message": message, "finish_reason": finish}
                    self._json(
                        200,
                        {**base, "object": "chat.completion", "choices": [choice], "usage": usage},
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = {**base, "object": "chat.completion.chunk"}
                words = reply.split(" ") if reply else []
                for index, word in enumerate(words):
                    delta: dict[str, Any] = {"content": word if index == 0 else " " + word}
                    if index == 0:
                        delta["role"] = "assistant"
                    self._event({**chunk, "choices": [{"index": 0, "delta": delta}]})
                if wants_tool:
                    delta = {
                        "role": "assistant",
                        "tool_calls": [{"index": 0, **message["tool_calls"][0]}],
                    }
                    self._event({**chunk, "choices": [{"index": 0, "delta": delta}]})
                self._event(
                    {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
                )
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._event({**chunk, "choices": [], "usage": usage})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            def _messages(self, body: dict[str, Any]) -> None:
                """Anthropic's Messages API."""
                messages = list(body.get("messages") or [])
                system = body.get("system")
                counted = ([{"content": system}] if system else []) + messages
                tools = body.get("tools") or []
                wants_tool = bool(tools) and bool(messages) and messages[-1].get("role") == "user"
                reply = "" if wants_tool else reply_for(messages)
                counts = _usage(counted, reply)
                usage = {
                    "input_tokens": counts["prompt_tokens"],
                    "output_tokens": counts["completion_tokens"],
                    "cache_read_input_tokens": CACHED_TOKENS,
                    "cache_creation_input_tokens": 0,
                }
                if wants_tool:
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": "toolu_fake_1",
                        "name": tools[0].get("name", "tool"),
                        "input": json.loads(TOOL_ARGUMENTS),
                    }
                else:
                    block = {"type": "text", "text": reply}
                stop = "tool_use" if wants_tool else "end_turn"
                message = {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", ""),
                    "content": [block],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
                if not body.get("stream"):
                    self._json(200, message)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                start = {**message, "content": [], "stop_reason": None}
                start["usage"] = {**usage, "output_tokens": 0}
                self._named("message_start", {"type": "message_start", "message": start})
                empty = {**block, "text": ""} if not wants_tool else {**block, "input": {}}
                self._named(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": empty},
                )
                if wants_tool:
                    deltas = [{"type": "input_json_delta", "partial_json": TOOL_ARGUMENTS}]
                else:
                    words = reply.split(" ")
                    deltas = [
                        {"type": "text_delta", "text": w if i == 0 else " " + w}
                        for i, w in enumerate(words)
                    ]
                for delta in deltas:
                    self._named(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                self._named("content_block_stop", {"type": "content_block_stop", "index": 0})
                self._named(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": usage["output_tokens"]},
                    },
                )
                self._named("message_stop", {"type": "message_stop"})
                self.close_connection = True

            def _named(self, name: str, payload: dict[str, Any]) -> None:
                self.wfile.write(f"event: {name}\n".encode())
                self._event(payload)

            def _embeddings(self, body: dict[str, Any]) -> None:
                inputs = body.get("input")
                items = inputs if isinstance(inputs, list) else [inputs]
                data = [
                    {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, 0.4]}
                    for i in range(len(items))
                ]
                tokens = sum(_words(item) for item in items)
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": body.get("model", ""),
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def root_url(self) -> str:
        """The server's root, for clients that add ``/v1`` themselves (``anthropic``)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeModelServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # python -m posthog_otel.testing.fake_model [port]
    import sys
    import time

    fake = FakeModelServer(int(sys.argv[1]) if len(sys.argv) > 1 else 8011).start()
    print(f"fake model API at {fake.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
