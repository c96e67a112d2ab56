"""agentkit against a real vLLM server.

One server for the whole session (the ``vllm_server`` fixture in conftest.py) serves the tiny
local chat model after its short tool-call fine-tune, with the hermes tool-call parser on. What is
shown here, and what is not:

- token ids: the server's prompt ids are exactly what ``AutoTokenizer.apply_chat_template`` gives
  for the same messages and tools, its completion ids decode to the completion's text and come
  with one finite logprob each — the properties training relies on;
- native tool calls: the fine-tuned model really writes ``<tool_call>`` blocks and the server's
  parser turns them into tool calls that reach agentkit as :class:`ToolCall`;
- text call formats (xml, bash_block): a tiny model does not write them by itself, so the reply is
  forced with the server's regex-constrained decoding. That shows the server's generated tokens,
  its text and agentkit's parser agree, and that the reply round-trips through the server's
  tokenization as history — not that a model chooses these formats;
- the agent loop: a few real steps of the ``mini`` scaffold (native calls) in a local git repo,
  with token ids recorded per step, each prompt extending the previous prompt and reply; and a server killed in the middle of a run (a second,
  short-lived server) ends the run as ``backend_error`` with the finished steps on disk.
"""

from __future__ import annotations

import math
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import Agent
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.backends.openai_format import message_to_openai, tool_to_openai
from agentkit.backends.retry import RetryPolicy
from agentkit.backends.vllm_server import VLLMConfig, VLLMServer
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import get_format, get_tool
from agentkit.types import (
    Completion,
    ExitStatus,
    Message,
    SamplingParams,
    ToolCall,
    ToolSpec,
    Trajectory,
)

pytestmark = pytest.mark.vllm

GREEDY = SamplingParams(temperature=0.0, max_tokens=48)
BASH = get_tool("bash")
CHAT = [
    Message(role="system", content="You are a helpful assistant."),
    Message(role="user", content="What files are in this repository?"),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_tool_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tool_model))


@pytest.fixture
async def backend(vllm_server: VLLMServer) -> AsyncIterator[OpenAIBackend]:
    async with OpenAIBackend(token_config(vllm_server)) as client:
        yield client


def token_config(server: VLLMServer, **fields: Any) -> OpenAIConfig:
    return OpenAIConfig(
        model=server.model_name, base_url=server.base_url, request_token_ids=True, **fields
    )


def template_ids(tokenizer: Any, messages: list[Message], tools: list[ToolSpec]) -> list[int]:
    """The prompt as the model's own tokenizer renders it, from the messages as sent on the wire."""
    encoded = tokenizer.apply_chat_template(
        [message_to_openai(m) for m in messages],
        tools=[tool_to_openai(t) for t in tools] or None,
        add_generation_prompt=True,
        tokenize=True,
    )
    ids = encoded if isinstance(encoded, list) else encoded["input_ids"]
    return [int(i) for i in ids]


def assert_token_data(completion: Completion) -> None:
    ids, logprobs = completion.completion_token_ids, completion.logprobs
    assert completion.prompt_token_ids and ids and logprobs is not None
    assert len(logprobs) == len(ids)
    assert all(math.isfinite(lp) and lp <= 0.0 for lp in logprobs)


async def test_prompt_token_ids_equal_the_chat_template(backend, tokenizer) -> None:
    """Fresh and multi-turn prompts (a native call and its answer in the history) alike."""
    tools = [BASH.spec()]
    first = await backend.complete(CHAT, tools, GREEDY)
    assert first.prompt_token_ids == template_ids(tokenizer, CHAT, tools)

    call = ToolCall(name="bash", arguments={"command": "ls"}, id="call-1")
    history = [
        *CHAT,
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", content="README.md\nsrc", tool_call_id="call-1"),
    ]
    second = await backend.complete(history, tools, GREEDY)
    assert second.prompt_token_ids == template_ids(tokenizer, history, tools)
    assert second.usage.prompt_tokens == len(second.prompt_token_ids)


async def test_completion_ids_decode_to_the_text_with_a_logprob_each(backend, tokenizer) -> None:
    completion = await backend.complete(CHAT, [], GREEDY)
    assert_token_data(completion)
    assert completion.completion_token_ids is not None
    assert tokenizer.decode(completion.completion_token_ids, skip_special_tokens=True) == (
        completion.text
    )
    assert completion.usage.completion_tokens == len(completion.completion_token_ids)


async def test_greedy_replies_are_deterministic(backend) -> None:
    first = await backend.complete(CHAT, [BASH.spec()], GREEDY)
    second = await backend.complete(CHAT, [BASH.spec()], GREEDY)
    assert first.completion_token_ids == second.completion_token_ids
    assert (first.text, first.tool_calls and first.tool_calls[0].arguments) == (
        second.text,
        second.tool_calls and second.tool_calls[0].arguments,
    )


async def test_native_tool_calls_come_back_as_tool_calls(backend, tokenizer) -> None:
    """The taught model writes a ``<tool_call>`` block; the server parses it; the ids carry it."""
    completion = await backend.complete(CHAT, [BASH.spec()], GREEDY)
    assert completion.finish_reason == "tool_calls"
    assert len(completion.tool_calls) == 1
    call = completion.tool_calls[0]
    assert call.name == "bash" and call.id
    assert isinstance(call.arguments.get("command"), str) and call.arguments["command"]
    action = get_format("native").parse(completion, [BASH])
    assert action.call.arguments == call.arguments
    # What the model generated is the block the parser read, token for token.
    assert_token_data(completion)
    assert completion.completion_token_ids is not None
    raw = tokenizer.decode(completion.completion_token_ids, skip_special_tokens=True)
    assert raw.startswith("<tool_call>") and raw.endswith("</tool_call>")
    assert call.arguments["command"] in raw


@pytest.mark.parametrize("call_format", ["xml", "bash_block"])
async def test_text_call_formats_through_the_server(
    vllm_server: VLLMServer, tokenizer: Any, call_format: str
) -> None:
    """Regex-constrained decoding makes the server generate the reply the format renders for a
    call; the parser reads it back from the server's text, the ids decode to that text, and the
    reply kept as history is tokenized by the server as the chat template says."""
    fmt = get_format(call_format)
    call = ToolCall(name="bash", arguments={"command": "grep -rn 'def main' src/"})
    wanted = fmt.render(call, [BASH], thought="Looking for the entry point.").text
    forced = token_config(
        vllm_server, extra_body={"structured_outputs": {"regex": re.escape(wanted)}}
    )
    async with OpenAIBackend(forced) as client:
        completion = await client.complete(CHAT, [], GREEDY.model_copy(update={"max_tokens": 96}))
    assert completion.text == wanted
    assert fmt.parse(completion, [BASH]).call.arguments == call.arguments
    assert_token_data(completion)
    assert completion.completion_token_ids is not None
    assert tokenizer.decode(completion.completion_token_ids, skip_special_tokens=True) == wanted

    history = [
        *CHAT,
        fmt.assistant_message(completion),
        Message(
            role="user", content="<returncode>0</returncode>\n<output>\nsrc/app.py:3\n</output>"
        ),
    ]
    async with OpenAIBackend(token_config(vllm_server)) as client:
        follow_up = await client.complete(history, [], GREEDY)
    assert follow_up.prompt_token_ids == template_ids(tokenizer, history, [])


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[tuple[LocalRuntime, Task]]:
    async with LocalRuntime(tmp_path / "repo") as runtime:
        result = await runtime.run(
            "git init -q . && git config user.email a@b.c && git config user.name t && "
            "printf '# demo\\n' > README.md && git add -A && git commit -qm base && "
            "git rev-parse HEAD"
        )
        assert result.exit_code == 0, result.output
        base = result.output.strip().splitlines()[-1]
        yield runtime, Task(instance_id="demo-1", problem_statement="Fix it.", base_commit=base)


def native_agent(backend: OpenAIBackend, runtime: LocalRuntime, steps: int, **kwargs: Any) -> Agent:
    config = load_scaffold("mini").model_copy(update={"call_format": "native", "sampling": GREEDY})
    config.limits = config.limits.model_copy(update={"max_steps": steps, "command_timeout_s": 30})
    return Agent(config, backend, runtime, [BASH], **kwargs)


async def test_the_agent_loop_records_token_ids_for_every_step(backend, repo, tmp_path) -> None:
    runtime, task = repo
    path = tmp_path / "run.json"
    trajectory = await native_agent(backend, runtime, 3, trajectory_path=path).run(task)
    assert trajectory.exit_status is ExitStatus.STEP_LIMIT, trajectory.exit_message
    assert len(trajectory.steps) == 3
    assert any(step.action is not None and step.observation for step in trajectory.steps)
    for step in trajectory.steps:
        assert_token_data(step.completion)
    # Each prompt extends the previous prompt and reply token for token, so training can merge
    # the steps into one sequence without re-tokenizing what the model wrote.
    for before, after in zip(trajectory.steps, trajectory.steps[1:], strict=False):
        seen = [
            *(before.completion.prompt_token_ids or []),
            *(before.completion.completion_token_ids or []),
        ]
        assert (after.completion.prompt_token_ids or [])[: len(seen)] == seen
    saved = Trajectory.load(path)
    assert [s.completion.completion_token_ids for s in saved.steps] == [
        s.completion.completion_token_ids for s in trajectory.steps
    ]


async def test_a_server_killed_mid_run_ends_the_loop_with_a_backend_error(
    tiny_tool_model: Path, repo, tmp_path: Path
) -> None:
    """A second, short-lived server (never the shared one) is killed after the first step."""
    runtime, task = repo
    server = VLLMServer(
        VLLMConfig(model_path=str(tiny_tool_model), log_path=str(tmp_path / "server.log"))
    )
    await server.start()
    try:
        pgid = server.pid
        assert pgid is not None

        def kill_after_first_step(step: object) -> None:
            os.killpg(pgid, signal.SIGKILL)

        quick = RetryPolicy(max_attempts=2, initial_delay_s=0.1, max_delay_s=0.2)
        path = tmp_path / "run.json"
        async with OpenAIBackend(token_config(server, retry=quick)) as client:
            agent = native_agent(
                client, runtime, 5, trajectory_path=path, on_step=kill_after_first_step
            )
            trajectory = await agent.run(task)
    finally:
        await server.stop()
    assert trajectory.exit_status is ExitStatus.BACKEND_ERROR
    assert server.base_url.removesuffix("/v1") in trajectory.exit_message
    saved = Trajectory.load(path)
    assert saved.exit_status is ExitStatus.BACKEND_ERROR
    assert len(saved.steps) == 1
    assert_token_data(saved.steps[0].completion)


async def test_an_error_turn_for_a_call_without_an_id_is_accepted_by_the_server(backend) -> None:
    """A backend of a user's returns a nameless call with no id: the loop gives the call an id,
    and the assistant turn plus the error turn that answers it (both built by the native format)
    are a conversation the real server accepts."""
    from agentkit.tools.errors import ToolCallError
    from agentkit.tools.native import with_call_ids

    native = get_format("native")
    reply = with_call_ids(Completion(tool_calls=[ToolCall(name="", arguments={}, id=None)]))
    with pytest.raises(ToolCallError) as error:
        native.parse(reply, [BASH])
    answers = native.error_messages(reply, error.value)
    (call,) = reply.tool_calls
    assert call.id and [m.tool_call_id for m in answers] == [call.id]
    history = [*CHAT, native.assistant_message(reply), *answers]
    completion = await backend.complete(history, [BASH.spec()], GREEDY)
    assert completion.prompt_token_ids
