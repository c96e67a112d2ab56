"""The litellm backend over real HTTP.

No model provider is reachable from the test machines, so these tests talk to a small
OpenAI-compatible stub server started in a thread (a stand-in, named as such: the subject is the
backend's request building, error mapping, retries and cost accounting through litellm's real
``openai/`` provider and HTTP stack, not the model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentkit.backend import BackendError, ContextExceeded
from agentkit.backends.litellm_backend import (
    LiteLLMBackend,
    LiteLLMConfig,
    _import_litellm,
    message_to_litellm,
)
from agentkit.history import CacheMarkers, KeepLastObservations
from agentkit.types import Message, SamplingParams, ToolCall, ToolSpec

KEY_ENV = "AGENTKIT_TEST_LITELLM_KEY"
BASH = ToolSpec(
    name="bash",
    description="Run a command.",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}},
)
HELLO = [Message(role="user", content="hi")]


class StubServer:
    """Answers each POST with the next scripted ``(status, json body)`` and records requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the test output is the report."""

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                stub.requests.append(json.loads(self.rfile.read(length)))
                status, payload = (
                    stub.script.pop(0)
                    if stub.script
                    else (500, {"error": {"message": "the stub has no scripted answer left"}})
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0.25")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(
    content: str | None = "hello",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str = "stop",
    choice: dict[str, Any] | None = None,
    top: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **(choice or {})}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
    }
    body.update(top or {})
    return body


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


@pytest.fixture()
def waits() -> list[float]:
    return []


@pytest.fixture()
def backend(
    stub: StubServer, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> LiteLLMBackend:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    stub.script.clear()
    stub.requests.clear()

    async def record(seconds: float) -> None:
        waits.append(seconds)

    config = LiteLLMConfig(
        model="openai/gpt-4o-mini", api_base=stub.url, api_key_env=KEY_ENV, max_retries=2
    )
    return LiteLLMBackend(config, sleep=record)


def test_importing_backends_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "import agentkit.backends\n"
        "from agentkit.backends.litellm_backend import LiteLLMBackend, LiteLLMConfig\n"
        "LiteLLMBackend(LiteLLMConfig(model='openai/gpt-4o-mini'))\n"
        "print('litellm' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


async def test_plain_reply_with_cost(backend: LiteLLMBackend, stub: StubServer) -> None:
    stub.script.append((200, reply("hello there")))
    completion = await backend.complete(HELLO, [], SamplingParams(temperature=0.2, max_tokens=9))
    assert completion.text == "hello there"
    assert completion.finish_reason == "stop"
    assert completion.usage.prompt_tokens == 1000
    assert completion.usage.completion_tokens == 200
    assert completion.tool_calls == []
    # gpt-4o-mini is in litellm's bundled price list: a known, positive price.
    import litellm

    expected = sum(
        litellm.cost_per_token(
            model="openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=200
        )
    )
    assert completion.cost == pytest.approx(expected)
    assert completion.cost > 0
    assert backend.total_cost == pytest.approx(expected)
    request = stub.requests[-1]
    assert request["model"] == "gpt-4o-mini"
    assert request["messages"] == [{"role": "user", "content": "hi"}]
    assert request["temperature"] == 0.2
    assert request["max_tokens"] == 9
    assert backend.describe()["total_cost"] == pytest.approx(expected)
    assert "sk-test" not in json.dumps(backend.describe())

    stub.script.append((200, reply("again")))
    await backend.complete(HELLO, [])
    assert backend.total_cost == pytest.approx(2 * expected)


async def test_tool_call_round_trip(backend: LiteLLMBackend, stub: StubServer) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "bash", "arguments": '{"command": "ls"}'},
    }
    stub.script.append((200, reply(None, tool_calls=[call], finish="tool_calls")))
    completion = await backend.complete(HELLO, [BASH])
    assert completion.finish_reason == "tool_calls"
    assert [(c.name, c.arguments, c.id) for c in completion.tool_calls] == [
        ("bash", {"command": "ls"}, "call_1")
    ]
    assert stub.requests[-1]["tools"][0]["function"]["name"] == "bash"

    # The call and its result go back in the OpenAI shape on the next turn.
    history = [
        *HELLO,
        Message(role="assistant", content="", tool_calls=completion.tool_calls),
        Message(role="tool", content="README.md", tool_call_id="call_1"),
    ]
    stub.script.append((200, reply("done")))
    await backend.complete(history, [BASH])
    sent = stub.requests[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "bash",
        "arguments": '{"command": "ls"}',
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "README.md"}


async def test_malformed_tool_arguments_are_kept_for_a_format_error(
    backend: LiteLLMBackend, stub: StubServer
) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "bash", "arguments": "{oops"}}
    stub.script.append((200, reply(None, tool_calls=[call], finish="tool_calls")))
    completion = await backend.complete(HELLO, [BASH])
    assert completion.tool_calls[0].arguments == {"__raw_arguments__": "{oops"}


async def test_rate_limit_is_retried(
    backend: LiteLLMBackend, stub: StubServer, waits: list[float]
) -> None:
    stub.script += [
        (429, {"error": {"message": "slow down", "type": "rate_limit"}}),
        (200, reply()),
    ]
    completion = await backend.complete(HELLO, [])
    assert completion.text == "hello"
    assert len(stub.requests) == 2
    assert waits == [pytest.approx(0.25)]  # the server's Retry-After


async def test_persistent_server_error_becomes_backend_error(
    backend: LiteLLMBackend, stub: StubServer, waits: list[float]
) -> None:
    stub.script += [(500, {"error": {"message": "engine crashed"}})] * 3
    with pytest.raises(BackendError) as info:
        await backend.complete(HELLO, [])
    assert not isinstance(info.value, ContextExceeded)
    message = str(info.value)
    assert "after 3 attempts" in message
    assert "engine crashed" in message
    assert "HTTP 500" in message
    assert len(stub.requests) == 3
    assert len(waits) == 2


async def test_context_overflow_is_context_exceeded(
    backend: LiteLLMBackend, stub: StubServer
) -> None:
    error = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 9000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    stub.script.append((400, error))
    with pytest.raises(ContextExceeded, match="maximum context length"):
        await backend.complete(HELLO, [])
    assert len(stub.requests) == 1  # never retried


async def test_vllm_token_ids_are_kept(backend: LiteLLMBackend, stub: StubServer) -> None:
    logprobs = {
        "content": [
            {"token": t, "logprob": lp, "bytes": None, "top_logprobs": []}
            for t, lp in (("a", -0.5), ("b", -1.5))
        ]
    }
    body = reply("ab", choice={"token_ids": [11, 12], "logprobs": logprobs})
    body["prompt_token_ids"] = [1, 2, 3]
    stub.script.append((200, body))
    completion = await backend.complete(HELLO, [])
    assert completion.completion_token_ids == [11, 12]
    assert completion.prompt_token_ids == [1, 2, 3]
    assert completion.logprobs == [-0.5, -1.5]


async def test_unknown_model_costs_zero_with_a_note(stub: StubServer) -> None:
    os.environ.setdefault(KEY_ENV, "sk-test")
    backend = LiteLLMBackend(
        LiteLLMConfig(
            model="openai/agentkit-unpriced-model", api_base=stub.url, api_key_env=KEY_ENV
        )
    )
    stub.script.append((200, reply()))
    completion = await backend.complete(HELLO, [])
    assert completion.cost == 0
    assert "no price" in backend.describe()["cost_note"]

    priced = LiteLLMBackend(
        LiteLLMConfig(
            model="openai/agentkit-unpriced-model",
            api_base=stub.url,
            api_key_env=KEY_ENV,
            input_price_per_million_tokens=1.0,
            output_price_per_million_tokens=2.0,
        )
    )
    stub.script.append((200, reply()))
    completion = await priced.complete(HELLO, [])
    assert completion.cost == pytest.approx(1000 * 1e-6 + 200 * 2e-6)


async def test_refused_params_and_missing_key(
    backend: LiteLLMBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BackendError, match="n=2"):
        await backend.complete(HELLO, [], SamplingParams(n=2))
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BackendError, match=KEY_ENV):
        await backend.complete(HELLO, [])


def test_config_round_trips() -> None:
    config = LiteLLMConfig(model="anthropic/claude-sonnet-4-5", max_retries=1)
    assert LiteLLMConfig.model_validate_json(config.model_dump_json()) == config
    assert config.retry_policy().max_attempts == 2
    with pytest.raises(ValueError):
        LiteLLMConfig.model_validate({"model": "x", "api_key": "sk-secret"})


async def test_local_openai_server_needs_no_key(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = LiteLLMBackend(LiteLLMConfig(model="openai/local-model", api_base=stub.url))
    stub.script.append((200, reply("from a local server")))
    completion = await backend.complete(HELLO, [])
    assert completion.text == "from a local server"


# -- prompt-cache marks (the cache_markers history processor) -----------------------------------


def _marked_conversation() -> list[Message]:
    """A native-calls conversation as the agent would send it with ``last_n_observations`` then
    ``cache_markers`` (the system prompt and the last two user/tool messages marked)."""
    call = ToolCall(name="bash", arguments={"command": "ls"}, id="c1")
    history = [
        Message(role="system", content="You fix bugs."),
        Message(role="user", content="Fix the bug."),
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", content="a\nb", tool_call_id="c1"),
        Message(role="assistant", content="", tool_calls=[call.model_copy(update={"id": "c2"})]),
        Message(role="tool", content="README.md", tool_call_id="c2"),
    ]
    elided = KeepLastObservations(n=1).apply(history, [3, 5], {})
    return CacheMarkers().apply(elided, [3, 5], {})


def test_cache_marks_become_content_blocks_in_the_request() -> None:
    backend = LiteLLMBackend(LiteLLMConfig(model="anthropic/claude-sonnet-4-5"))
    sent = backend.build_request(_marked_conversation(), [BASH], None)["messages"]
    mark = {"type": "ephemeral"}
    assert sent[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You fix bugs.", "cache_control": mark}],
    }
    assert sent[1] == {"role": "user", "content": "Fix the bug."}  # the task: third-last
    assert sent[3]["content"][0]["cache_control"] == mark  # the elided observation
    assert sent[3]["content"][0]["text"].startswith("[Older output elided")
    assert sent[5] == {
        "role": "tool",
        "tool_call_id": "c2",
        "content": [{"type": "text", "text": "README.md", "cache_control": mark}],
    }
    # Exactly three marks (system + the last two), none on the assistant turns.
    marks = [i for i, m in enumerate(sent) if isinstance(m["content"], list)]
    assert marks == [0, 3, 5]
    assert all("cache_control" not in m for m in sent)
    # A marked message without text carries the mark on the message itself.
    bare = Message(role="assistant", content="", tool_calls=[ToolCall(name="bash", id="c3")])
    out = message_to_litellm(bare.model_copy(update={"cache_control": True}))
    assert out["cache_control"] == mark and out["content"] is None


def test_litellm_passes_the_marks_to_anthropic() -> None:
    """litellm's own Anthropic request transformation (no network) keeps every mark: on the
    system block, inside the tool result and on the user text."""
    backend = LiteLLMBackend(LiteLLMConfig(model="anthropic/claude-sonnet-4-5"))
    messages = backend.build_request(_marked_conversation(), [BASH], None)["messages"]
    litellm = _import_litellm()
    body = litellm.AnthropicConfig().transform_request(
        model="claude-sonnet-4-5",
        messages=messages,
        optional_params={"max_tokens": 16},
        litellm_params={},
        headers={},
    )
    mark = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "You fix bugs.", "cache_control": mark}]
    found = json.dumps(body["messages"]).count('"cache_control"')
    assert found == 2
    last = body["messages"][-1]["content"][-1]
    assert last["type"] == "tool_result" and last["content"][0]["cache_control"] == mark


async def test_a_marked_conversation_reaches_an_openai_compatible_server(
    backend: LiteLLMBackend, stub: StubServer
) -> None:
    """Through litellm's openai provider and a custom ``api_base`` the marked blocks go out as
    built (litellm keeps marks for endpoints that may understand them) and the reply comes back."""
    stub.script.append((200, reply("ok")))
    conversation = _marked_conversation()
    completion = await backend.complete(conversation, [BASH])
    assert completion.text == "ok"
    sent = stub.requests[-1]["messages"]
    built = backend.build_request(conversation, [BASH], None)["messages"]
    assert [sent[i] for i in (0, 1, 3, 5)] == [built[i] for i in (0, 1, 3, 5)]
