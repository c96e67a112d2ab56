"""The in-process transformers backend against the real tiny model (built locally, loaded with
``from_pretrained``): exact prompt ids, logprobs that a trainer can recompute, sampling controls,
limits, native tool calls and a real agent run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit.backend import BackendError, ContextExceeded
from agentkit.backends.hf_chat import parse_tool_call_blocks, template_messages, tool_dicts
from agentkit.backends.tiny_model import build_tiny_chat_model
from agentkit.backends.transformers_backend import TransformersBackend, TransformersConfig
from agentkit.tools import get_tool
from agentkit.tools.native import RAW_ARGUMENTS_KEY
from agentkit.types import Message, SamplingParams, ToolCall, ToolSpec

BASH = get_tool("bash").spec()
ASK = [Message(role="user", content="What files are in this repository?")]


@pytest.fixture(scope="session")
def taught_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The same place as tests/test_tiny_model.py: whichever runs first builds, the other reuses.
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return build_tiny_chat_model(root / "taught", teach_tool_calls=True)


@pytest.fixture(scope="session")
def plain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.getbasetemp() / "tiny-models" / "plain")


@pytest.fixture(scope="module")
def taught(taught_dir: Path) -> TransformersBackend:
    backend = TransformersBackend(TransformersConfig(path=str(taught_dir), device="cpu"))
    backend.load()
    return backend


@pytest.fixture(scope="module")
def plain(plain_dir: Path) -> TransformersBackend:
    return TransformersBackend(TransformersConfig(path=str(plain_dir), device="cpu"))


def recomputed_logprobs(backend: TransformersBackend, prompt: list[int], reply: list[int]) -> Any:
    """One forward pass over prompt + reply, as a trainer would do it."""
    import torch

    device = backend.model.device
    ids = torch.tensor([prompt + reply], device=device)
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0].float()
    scores = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return scores.gather(1, torch.tensor(reply, device=device)[:, None])[:, 0].cpu()


def test_module_import_is_cheap() -> None:
    code = (
        "import sys\n"
        "from agentkit.backends.transformers_backend import TransformersBackend, "
        "TransformersConfig\n"
        "TransformersBackend(TransformersConfig(path='nowhere'))\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_prompt_ids_are_the_chat_template_exactly(taught: TransformersBackend) -> None:
    history = [
        Message(role="system", content="You fix bugs."),
        *ASK,
        Message(
            role="assistant",
            content="Looking.",
            tool_calls=[ToolCall(name="bash", arguments={"command": "ls"}, id="c1")],
        ),
        Message(role="tool", content="README.md\nsrc", tool_call_id="c1"),
    ]
    completion = await taught.complete(history, [BASH], SamplingParams(max_tokens=4))
    expected = taught.tokenizer.apply_chat_template(
        template_messages(history), tools=tool_dicts([BASH]), add_generation_prompt=True
    )
    expected = expected if isinstance(expected, list) else expected["input_ids"]
    assert completion.prompt_token_ids == list(expected)
    rendered = taught.tokenizer.decode(completion.prompt_token_ids)
    assert rendered.endswith("<|im_start|>assistant\n")
    assert '<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>' in rendered
    assert completion.usage.prompt_tokens == len(expected)
    assert completion.cost == 0
    assert completion.model == taught.config.path


async def test_logprobs_match_a_forward_pass(taught: TransformersBackend) -> None:
    for params in (None, SamplingParams(temperature=0.8, top_k=50, top_p=0.9, seed=1)):
        completion = await taught.complete(ASK, [BASH], params)
        ids, logprobs = completion.completion_token_ids, completion.logprobs
        assert ids and logprobs and completion.prompt_token_ids
        assert len(logprobs) == len(ids) == completion.usage.completion_tokens
        assert all(math.isfinite(x) and x <= 0 for x in logprobs)
        again = recomputed_logprobs(taught, completion.prompt_token_ids, ids)
        assert again.tolist() == pytest.approx(logprobs, abs=1e-4)
        assert ids[-1] == taught.tokenizer.convert_tokens_to_ids("<|im_end|>")


async def test_greedy_is_deterministic(plain: TransformersBackend) -> None:
    first = await plain.complete(ASK, [], SamplingParams(max_tokens=12))
    second = await plain.complete(ASK, [], SamplingParams(temperature=0, max_tokens=12))
    assert first.completion_token_ids == second.completion_token_ids
    assert first.logprobs == pytest.approx(second.logprobs)


async def test_seeded_sampling_is_reproducible(plain: TransformersBackend) -> None:
    def params(seed: int) -> SamplingParams:
        return SamplingParams(temperature=1.0, seed=seed, max_tokens=16)

    a = await plain.complete(ASK, [], params(7))
    b = await plain.complete(ASK, [], params(7))
    c = await plain.complete(ASK, [], params(8))
    assert a.completion_token_ids == b.completion_token_ids
    assert a.completion_token_ids != c.completion_token_ids  # a random model is near uniform
    top1 = await plain.complete(ASK, [], SamplingParams(temperature=1.0, top_k=1, max_tokens=8))
    greedy = await plain.complete(ASK, [], SamplingParams(max_tokens=8))
    assert top1.completion_token_ids == greedy.completion_token_ids


async def test_stop_strings_cut_text_and_tokens(taught: TransformersBackend) -> None:
    full = await taught.complete(ASK, [BASH])
    assert full.completion_token_ids is not None
    full_text = taught.tokenizer.decode(full.completion_token_ids, skip_special_tokens=True)
    assert full_text.startswith('<tool_call>{"name": "bash", "arguments"')
    stop = '"arguments"'
    cut = await taught.complete(ASK, [BASH], SamplingParams(stop=[stop, "never appears"]))
    assert cut.finish_reason == "stop"
    assert cut.tool_calls == []  # an unterminated block stays text
    assert cut.text == full_text[: full_text.index(stop)]
    ids = cut.completion_token_ids
    assert ids is not None
    assert ids == full.completion_token_ids[: len(ids)]
    assert stop in taught.tokenizer.decode(ids)
    assert stop not in taught.tokenizer.decode(ids[:-1])  # cut at the token that completed it
    assert full.logprobs is not None
    assert cut.logprobs == pytest.approx(full.logprobs[: len(ids)])


async def test_max_tokens_and_context_limits(taught_dir: Path, taught: TransformersBackend) -> None:
    short = await taught.complete(ASK, [], SamplingParams(max_tokens=3))
    assert short.finish_reason == "length"
    assert len(short.completion_token_ids or []) == 3

    prompt_len = len(taught.prompt_ids(ASK, []))
    tight = TransformersBackend(
        TransformersConfig(path=str(taught_dir), device="cpu", max_context_tokens=prompt_len + 2)
    )
    clipped = await tight.complete(ASK, [])
    assert clipped.finish_reason == "length"
    assert len(clipped.completion_token_ids or []) == 2

    small = TransformersBackend(
        TransformersConfig(path=str(taught_dir), device="cpu", max_context_tokens=prompt_len)
    )
    with pytest.raises(ContextExceeded, match=f"{prompt_len} tokens"):
        await small.complete(ASK, [])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (SamplingParams(n=2), "n=2"),
        (SamplingParams(temperature=-1), "temperature"),
        (SamplingParams(top_p=0), "top_p"),
        (SamplingParams(max_tokens=0), "max_tokens"),
    ],
)
async def test_refused_params(
    plain: TransformersBackend, params: SamplingParams, match: str
) -> None:
    with pytest.raises(BackendError, match=match):
        await plain.complete(ASK, [], params)


async def test_unloadable_path_is_a_backend_error(tmp_path: Path) -> None:
    backend = TransformersBackend(TransformersConfig(path=str(tmp_path / "missing")))
    with pytest.raises(BackendError, match="Cannot load"):
        await backend.complete(ASK, [])


async def test_native_tool_call_is_parsed(taught: TransformersBackend) -> None:
    completion = await taught.complete(ASK, [BASH])
    assert completion.finish_reason == "tool_calls"
    assert completion.text == ""
    [call] = completion.tool_calls
    assert call.name == "bash"
    assert isinstance(call.arguments["command"], str)
    assert call.id and call.id.startswith("call_")
    assert taught.describe()["resolved_device"] == "cpu"


def test_tool_call_block_parsing() -> None:
    text, calls = parse_tool_call_blocks(
        'Plan.\n<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>'
    )
    assert text == "Plan."
    assert [(c.name, c.arguments) for c in calls] == [("bash", {"command": "ls"})]

    _, [nested] = parse_tool_call_blocks(
        '<tool_call>{"name": "bash", "arguments": "{\\"command\\": \\"pwd\\"}"}</tool_call>'
    )
    assert nested.arguments == {"command": "pwd"}

    _, [broken] = parse_tool_call_blocks(
        '<tool_call>{"name": "bash", "arguments": {oops}</tool_call>'
    )
    assert broken.name == "bash"
    assert broken.arguments == {RAW_ARGUMENTS_KEY: "{oops"}

    nameless = '<tool_call>{"arguments": {}}</tool_call>'
    assert parse_tool_call_blocks(nameless) == (nameless, [])
    unterminated = '<tool_call>{"name": "bash", "argu'
    assert parse_tool_call_blocks(unterminated) == (unterminated, [])


def test_malformed_arguments_render_as_written() -> None:
    call = ToolCall(name="bash", arguments={RAW_ARGUMENTS_KEY: "{oops"}, id="c")
    [message] = template_messages([Message(role="assistant", content="", tool_calls=[call])])
    assert message["tool_calls"][0]["function"]["arguments"] == "{oops"
    spec = ToolSpec(name="t", description="d", parameters={"type": "object"})
    assert tool_dicts([spec])[0]["function"]["name"] == "t"


@pytest.mark.slow
async def test_agent_loop_runs_with_the_taught_model(
    taught: TransformersBackend, tmp_path: Path
) -> None:
    from agentkit.agent import Agent
    from agentkit.runtime import LocalRuntime
    from agentkit.scaffolds import load_scaffold
    from agentkit.tasks import Task

    config = load_scaffold("mini").model_copy(update={"call_format": "native"})
    config.limits = config.limits.model_copy(update={"max_steps": 3})
    async with LocalRuntime() as runtime:
        setup = await runtime.run(
            "git init -q . && git config user.email a@b.c && git config user.name t && "
            "echo hi > README.md && git add -A && git commit -qm base && git rev-parse HEAD"
        )
        assert setup.exit_code == 0, setup.output
        task = Task(
            instance_id="tiny-1",
            problem_statement="List the files.",
            base_commit=setup.output.strip().splitlines()[-1],
        )
        agent = Agent(config, taught, runtime, [get_tool("bash")])
        trajectory = await agent.run(task)
    assert len(trajectory.steps) == 3, trajectory.exit_message
    assert trajectory.backend["type"] == "hf"
    for step in trajectory.steps:
        assert step.format_error is None
        assert step.action is not None and step.action.name == "bash"
        assert step.observation is not None and step.observation.exit_code == 0
        completion = step.completion
        assert completion.prompt_token_ids and completion.completion_token_ids
        assert len(completion.logprobs or []) == len(completion.completion_token_ids)
        # The recorded input, rendered again, is exactly the prompt the model was given.
        model_input = trajectory.model_input(step)
        assert taught.prompt_ids(model_input, [BASH]) == completion.prompt_token_ids
    # Step 2's prompt extends step 1's prompt and reply token for token.
    first, second = trajectory.steps[0].completion, trajectory.steps[1].completion
    assert first.prompt_token_ids is not None and first.completion_token_ids is not None
    prefix = first.prompt_token_ids + first.completion_token_ids
    assert second.prompt_token_ids is not None
    assert second.prompt_token_ids[: len(prefix)] == prefix


@pytest.mark.skipif(
    not __import__("importlib").util.find_spec("torch")
    or not __import__("torch").cuda.is_available(),
    reason="no CUDA device",
)
async def test_runs_on_gpu(taught_dir: Path) -> None:
    backend = TransformersBackend(TransformersConfig(path=str(taught_dir), device="cuda"))
    completion = await backend.complete(ASK, [BASH], SamplingParams(temperature=0.7, seed=3))
    assert completion.tool_calls and completion.logprobs
    again = await backend.complete(ASK, [BASH], SamplingParams(temperature=0.7, seed=3))
    assert again.completion_token_ids == completion.completion_token_ids
    recomputed = recomputed_logprobs(
        backend, completion.prompt_token_ids or [], again.completion_token_ids or []
    )
    assert recomputed.tolist() == pytest.approx(completion.logprobs, abs=1e-3)
