"""A small OpenAI-compatible HTTP server for backend tests: real sockets, real HTTP, canned replies.

It stands in for a model server only where one cannot be used here: a real vLLM server cannot
be made to answer 429, 503, a given error body or a given token id on demand, and no vLLM runs in
this test environment. Everything on the client side (the ``openai`` client, its connection pool,
timeouts, a server going away) is real. The server runs its own event loop in a thread, so the
test's loop stays free and :meth:`StubOpenAIServer.stop` can be called from anywhere, including
from inside a running agent loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class StubReply:
    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def chat_reply(
    text: str | None = "Hello.",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    model: str = "stub-model",
    usage: tuple[int, int] = (10, 2),
    prompt_token_ids: list[int] | None = None,
    token_ids: list[int] | None = None,
    logprobs: list[float] | None = None,
) -> dict[str, Any]:
    """A chat-completions response body; token fields only when given (as vLLM sends them)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason,
        "logprobs": None,
    }
    if token_ids is not None:
        choice["token_ids"] = token_ids
    if logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []}
                for i, lp in enumerate(logprobs)
            ]
        }
    body: dict[str, Any] = {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }
    if prompt_token_ids is not None:
        body["prompt_token_ids"] = prompt_token_ids
    return body


def tool_call(name: str, arguments: str, call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def error_body(message: str, status: int) -> dict[str, Any]:
    """An error in the shape vLLM and OpenAI use."""
    return {"error": {"message": message, "type": "BadRequestError", "param": None, "code": status}}


class StubOpenAIServer:
    """Serves ``POST /v1/chat/completions``: queued replies first, then ``default``; and
    ``GET /v1/models`` (:attr:`served_models`).

    Every request's JSON body lands in :attr:`requests` and its headers in :attr:`headers`.
    """

    def __init__(self, default: StubReply | None = None) -> None:
        self.default = default or StubReply(chat_reply())
        self.served_models: list[str] = ["stub-model"]
        """What ``GET /v1/models`` lists."""
        self.owned_by = "stub"
        """Each listed model's ``owned_by`` (a vLLM server says ``vllm``)."""
        self.model_listings = 0
        """How many times ``GET /v1/models`` was asked."""
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._queue: deque[StubReply] = deque()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: StubReply) -> None:
        self._queue.extend(replies)

    def start(self) -> StubOpenAIServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection, then end the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _models(self, request: web.Request) -> web.Response:
        self.model_listings += 1
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": self.owned_by}
            for name in self.served_models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        reply = self._queue.popleft() if self._queue else self.default
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)
