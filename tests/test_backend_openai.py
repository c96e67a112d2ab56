"""OpenAIBackend over real HTTP: the real ``openai`` client against a local OpenAI-compatible
server (``openai_stub``), asserting on the exact JSON the server received and the exact fields
the backend returned.

The server is a stub because no vLLM server runs in this test environment and because these tests
need replies on demand (given token ids, given tool calls); the client, the sockets and the agent
loop are real.
"""

from __future__ import annotations

import json

import pytest
from openai_stub import StubOpenAIServer, StubReply, chat_reply, tool_call

from agentkit.agent import Agent
from agentkit.backend import BackendError
from agentkit.backends import OpenAIBackend, OpenAIConfig, RetryPolicy
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import get_tool
from agentkit.tools.native import RAW_ARGUMENTS_KEY
from agentkit.types import ExitStatus, Message, SamplingParams, ToolCall, ToolSpec

SUBMIT = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
FAST = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02)
SPEC = ToolSpec(
    name="bash",
    description="Run a command.",
    parameters={"type": "object", "properties": {"command": {"type": "string"}}},
)


@pytest.fixture
def stub():
    server = StubOpenAIServer().start()
    yield server
    server.stop()


def backend_for(stub: StubOpenAIServer, **config) -> OpenAIBackend:
    return OpenAIBackend(OpenAIConfig(model="m", base_url=stub.url, retry=FAST, **config))


async def test_plain_reply(stub):
    stub.enqueue(StubReply(chat_reply("Hi there.", model="served-m", usage=(12, 3))))
    async with backend_for(stub) as backend:
        completion = await backend.complete([Message(role="user", content="Hello")], [])
    assert completion.text == "Hi there."
    assert completion.tool_calls == []
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 3)
    assert completion.model == "served-m"
    assert completion.cost == 0.0
    assert completion.prompt_token_ids is None and completion.logprobs is None
    # No tools given: no "tools" key at all (some servers reject an empty list).
    assert stub.requests == [{"model": "m", "messages": [{"role": "user", "content": "Hello"}]}]


async def test_tool_call_round_trip_is_serialised_as_the_api_expects(stub):
    stub.enqueue(
        StubReply(
            chat_reply(
                None,
                tool_calls=[tool_call("bash", '{"command": "ls -a"}', "call_1")],
                finish_reason="tool_calls",
            )
        )
    )
    backend = backend_for(stub)
    history = [Message(role="system", content="Be brief."), Message(role="user", content="Go")]
    completion = await backend.complete(history, [SPEC])
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == [
        ToolCall(name="bash", arguments={"command": "ls -a"}, id="call_1")
    ]
    history += [
        Message(role="assistant", content="", tool_calls=completion.tool_calls),
        Message(role="tool", content="a\nb", tool_call_id="call_1"),
    ]
    await backend.complete(history, [SPEC])
    await backend.aclose()
    assert stub.requests[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "ls -a"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a\nb"},
    ]
    assert stub.requests[1]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run a command.",
                "parameters": SPEC.parameters,
            },
        }
    ]


async def test_malformed_arguments_become_a_format_error_and_go_back_verbatim(stub):
    broken = '{"command": "ls'
    stub.enqueue(StubReply(chat_reply("I will list.", tool_calls=[tool_call("bash", broken, "c")])))
    backend = backend_for(stub)
    completion = await backend.complete([Message(role="user", content="Go")], [SPEC])
    assert completion.tool_calls[0].arguments == {RAW_ARGUMENTS_KEY: broken}
    history = [Message(role="assistant", content="I will list.", tool_calls=completion.tool_calls)]
    await backend.complete(history, [SPEC])
    await backend.aclose()
    sent = stub.requests[1]["messages"][0]
    assert sent["content"] == "I will list."
    assert sent["tool_calls"][0]["function"]["arguments"] == broken


async def test_token_ids_and_logprobs_are_kept_exactly(stub):
    logprobs = [-0.12345678901234567, -3.0000000000000004, -1e-09]
    stub.enqueue(
        StubReply(
            chat_reply(
                "abc", prompt_token_ids=[1, 50256, 7], token_ids=[11, 0, 1023], logprobs=logprobs
            )
        )
    )
    async with backend_for(stub, request_token_ids=True) as backend:
        completion = await backend.complete([Message(role="user", content="x")], [])
    assert completion.prompt_token_ids == [1, 50256, 7]
    assert completion.completion_token_ids == [11, 0, 1023]
    assert completion.logprobs == logprobs
    assert stub.requests[0]["logprobs"] is True
    assert stub.requests[0]["return_token_ids"] is True


async def test_missing_token_ids_when_asked_is_a_clear_error(stub):
    async with backend_for(stub, request_token_ids=True) as backend:
        with pytest.raises(BackendError) as caught:
            await backend.complete([Message(role="user", content="x")], [])
    message = str(caught.value)
    assert "prompt_token_ids" in message and "choices[0].token_ids" in message
    assert "not vLLM" in message and "too old" in message


async def test_auto_asks_a_vllm_server_for_token_ids_once(stub):
    """``request_token_ids: auto`` (the ``openai:MODEL@URL`` short form): the server's model list
    says it is vLLM, so every call asks for token ids, and the list is asked for once."""
    stub.owned_by = "vllm"
    reply = chat_reply("abc", prompt_token_ids=[1, 2], token_ids=[3], logprobs=[-0.5])
    stub.enqueue(StubReply(reply), StubReply(reply))
    async with backend_for(stub, request_token_ids="auto") as backend:
        for _ in range(2):
            completion = await backend.complete([Message(role="user", content="x")], [])
            assert completion.prompt_token_ids == [1, 2] and completion.logprobs == [-0.5]
        assert backend.token_ids and backend.describe()["request_token_ids"] == "auto"
    assert stub.model_listings == 1
    assert all(sent["return_token_ids"] is True for sent in stub.requests)


async def test_auto_does_not_ask_other_servers_for_token_ids(stub):
    async with backend_for(stub, request_token_ids="auto") as backend:
        completion = await backend.complete([Message(role="user", content="x")], [])
        assert not backend.token_ids
    assert completion.prompt_token_ids is None
    assert "return_token_ids" not in stub.requests[0] and "logprobs" not in stub.requests[0]


async def test_auto_goes_on_without_token_ids_when_a_vllm_server_sends_none(stub):
    """Asked for by ``auto`` rather than by the user, missing token ids are not an error: the
    call keeps its reply, and later calls stop asking."""
    stub.owned_by = "vllm"
    async with backend_for(stub, request_token_ids="auto") as backend:
        first = await backend.complete([Message(role="user", content="x")], [])
        second = await backend.complete([Message(role="user", content="x")], [])
    assert first.text == second.text == "Hello." and first.prompt_token_ids is None
    assert stub.requests[0]["return_token_ids"] is True
    assert "return_token_ids" not in stub.requests[1]


async def test_sampling_params_map_to_standard_fields(stub):
    params = SamplingParams(temperature=0.3, top_p=0.9, max_tokens=64, stop=["</x>"], seed=7)
    async with backend_for(stub) as backend:
        await backend.complete([Message(role="user", content="x")], [], params)
    sent = stub.requests[0]
    assert {k: sent[k] for k in ("temperature", "top_p", "max_tokens", "stop", "seed")} == {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["</x>"],
        "seed": 7,
    }
    assert "top_k" not in sent and "n" not in sent


async def test_top_k_goes_to_vllm_in_token_id_mode_with_extra_body(stub):
    stub.enqueue(StubReply(chat_reply("a", prompt_token_ids=[1], token_ids=[2], logprobs=[-1.0])))
    config = {"request_token_ids": True, "extra_body": {"chat_template_kwargs": {"x": 1}}}
    async with backend_for(stub, **config) as backend:
        await backend.complete([Message(role="user", content="x")], [], SamplingParams(top_k=5))
    sent = stub.requests[0]
    assert sent["top_k"] == 5 and sent["chat_template_kwargs"] == {"x": 1}


def test_unsupported_sampling_params_are_refused_before_any_request():
    backend = OpenAIBackend(OpenAIConfig(model="m"))
    message = [Message(role="user", content="x")]
    with pytest.raises(BackendError, match="top_k is not supported by the OpenAI API"):
        backend.build_request(message, [], SamplingParams(top_k=40))
    with pytest.raises(BackendError, match="n=2 is not supported"):
        backend.build_request(message, [], SamplingParams(n=2))


async def test_finish_reason_usage_and_cost(stub):
    stub.enqueue(StubReply(chat_reply("cut", finish_reason="length", usage=(2000, 500))))
    config = {"input_price_per_million_tokens": 500.0, "output_price_per_million_tokens": 2000.0}
    async with backend_for(stub, **config) as backend:
        completion = await backend.complete([Message(role="user", content="x")], [])
    assert completion.finish_reason == "length"
    assert completion.cost == pytest.approx(2.0)


async def test_api_key_comes_from_the_environment_and_never_appears_in_describe(stub, monkeypatch):
    monkeypatch.setenv("AGENTKIT_TEST_KEY", "sk-very-secret")
    async with backend_for(stub, api_key_env="AGENTKIT_TEST_KEY") as backend:
        await backend.complete([Message(role="user", content="x")], [])
        description = json.dumps(backend.describe())
    assert stub.headers[0]["Authorization"] == "Bearer sk-very-secret"
    assert "sk-very-secret" not in description
    assert json.loads(description)["model"] == "m"


async def test_missing_key_is_fine_for_local_servers(stub, monkeypatch):
    monkeypatch.delenv("AGENTKIT_TEST_KEY", raising=False)
    async with backend_for(stub, api_key_env="AGENTKIT_TEST_KEY") as backend:
        await backend.complete([Message(role="user", content="x")], [])
    assert stub.headers[0]["Authorization"] == "Bearer EMPTY"


async def test_native_tool_calls_through_the_agent_loop(stub, tmp_path):
    """The whole loop with native function calling: the second request carries the first call
    and its observation exactly as the API expects, and the run submits."""
    config = load_scaffold("mini").model_copy(update={"call_format": "native"})
    stub.enqueue(
        StubReply(chat_reply("Look.", tool_calls=[tool_call("bash", '{"command": "pwd"}', "c1")])),
        StubReply(
            chat_reply(
                None,
                tool_calls=[tool_call("bash", json.dumps({"command": f"echo {SUBMIT}"}), "c2")],
            )
        ),
    )
    async with LocalRuntime() as runtime, backend_for(stub) as backend:
        await runtime.run(
            "git init -q . && git -c user.email=a@b.c -c user.name=t commit -q --allow-empty -m base"
        )
        agent = Agent(config, backend, runtime, [get_tool("bash")])
        trajectory = await agent.run(Task(instance_id="t", problem_statement="Do it."))
    assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
    second = stub.requests[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["tool_calls"][0]["function"] == {
        "name": "bash",
        "arguments": '{"command": "pwd"}',
    }
    assert second["messages"][3]["tool_call_id"] == "c1"
    assert runtime.workdir in second["messages"][3]["content"]
    assert second["tools"][0]["function"]["name"] == "bash"
    assert trajectory.steps[0].completion.tool_calls[0].id == "c1"
