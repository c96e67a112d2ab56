"""Token-in-token-out against a real vLLM server.

The shared server (conftest.py's ``vllm_server``) serves the tiny model taught to call a ``bash``
tool. A few real agent steps record the server's own prompt and completion ids; turned into
training sequences from those recorded ids, they must equal what the chat template path builds
from the same conversation — same ids, same masks, one merged sequence — and
``check_token_agreement`` must find no drift. That is the property that lets a trainer use
either path on trajectories from this model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import Agent
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.backends.vllm_server import VLLMServer
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import get_tool
from agentkit.training.sequences import check_token_agreement, trajectory_samples
from agentkit.types import SamplingParams

pytestmark = pytest.mark.vllm

GREEDY = SamplingParams(temperature=0.0, max_tokens=48)


async def test_recorded_ids_equal_the_template_path(
    vllm_server: VLLMServer, tiny_tool_model: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(str(tiny_tool_model))
    config = load_scaffold("mini").model_copy(update={"call_format": "native", "sampling": GREEDY})
    config.limits = config.limits.model_copy(update={"max_steps": 3, "command_timeout_s": 30})
    backend_config = OpenAIConfig(
        model=vllm_server.model_name, base_url=vllm_server.base_url, request_token_ids=True
    )
    async with LocalRuntime(tmp_path / "repo") as runtime:
        setup = await runtime.run(
            "git init -q . && git config user.email a@b.c && git config user.name t && "
            "printf '# demo\\n' > README.md && git add -A && git commit -qm base && "
            "git rev-parse HEAD"
        )
        assert setup.exit_code == 0, setup.output
        task = Task(
            instance_id="demo-1",
            problem_statement="Fix it.",
            base_commit=setup.output.strip().splitlines()[-1],
        )
        async with OpenAIBackend(backend_config) as backend:
            trajectory = await Agent(config, backend, runtime, [get_tool("bash")]).run(task)

    steps = trajectory.steps
    assert len(steps) >= 2, trajectory.exit_message
    assert steps[0].completion.tool_calls and steps[0].observation is not None
    assert all(step.completion.completion_token_ids for step in steps)
    assert trajectory.tools, "native calling records the tool specs sent"

    recorded = trajectory_samples(trajectory, tokenizer, trajectory_id="vllm-run")
    templated = trajectory_samples(
        trajectory, tokenizer, trajectory_id="vllm-run", use_recorded=False
    )
    assert [s.source for s in recorded] == ["recorded"]
    assert [s.source for s in templated] == ["template"]
    assert recorded[0].steps == [step.index for step in steps]
    assert recorded[0].input_ids == templated[0].input_ids
    assert recorded[0].loss_mask == templated[0].loss_mask
    # Same ids, so the server's logprobs align with both.
    assert recorded[0].logprobs is not None and recorded[0].logprobs == templated[0].logprobs
    trained = sum(len(step.completion.completion_token_ids or []) for step in steps)
    assert recorded[0].trained_tokens == trained

    agreement = check_token_agreement(trajectory, tokenizer)
    assert agreement.agrees, agreement.report()
    assert agreement.checked == len(steps)
