"""Prices: one naming across backends (the old names still load, converted, with a warning), and
a cost limit that can never trigger because every call costs 0 is said once, not kept silent."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agentkit import backend as backend_module
from agentkit.agent import Agent
from agentkit.backend import CostLimitWarning, has_prices, warn_if_cost_limit_never_triggers
from agentkit.backends import ScriptedBackend
from agentkit.backends.litellm_backend import LiteLLMBackend, LiteLLMConfig
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.backends.registry import (
    VLLMBackend,
    build_backend,
    dump_backend_config,
    load_backend_config,
    parse_backend_spec,
)
from agentkit.backends.transformers_backend import TransformersConfig
from agentkit.backends.vllm_server import VLLMConfig
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import get_tool
from agentkit.types import Usage

NEW = ("input_price_per_million_tokens", "output_price_per_million_tokens")


@pytest.fixture(autouse=True)
def _no_warning_given_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: no cost-limit warning given yet."""
    monkeypatch.setattr(backend_module, "_COST_WARNINGS_GIVEN", set())


@pytest.mark.parametrize("config_class", [OpenAIConfig, LiteLLMConfig])
def test_every_priced_backend_uses_the_same_names(config_class: type) -> None:
    config = config_class(
        model="m", input_price_per_million_tokens=2.5, output_price_per_million_tokens=10
    )
    assert (config.input_price_per_million_tokens, config.output_price_per_million_tokens) == (
        2.5,
        10,
    )
    assert {name for name in config_class.model_fields if "price" in name or "cost" in name} == set(
        NEW
    )


@pytest.mark.parametrize(
    "kind, old, factor",
    [
        ("openai", ("cost_per_1k_input_tokens", "cost_per_1k_output_tokens"), 1_000),
        ("litellm", ("cost_per_input_token", "cost_per_output_token"), 1_000_000),
    ],
)
def test_the_old_names_still_load_from_yaml_converted(
    kind: str, old: tuple[str, str], factor: int, tmp_path: Path
) -> None:
    path = tmp_path / "backend.yaml"
    prices = (0.0025, 0.01) if factor == 1_000 else (2.5e-06, 1e-05)
    path.write_text(f"type: {kind}\nmodel: m\n{old[0]}: {prices[0]}\n{old[1]}: {prices[1]}\n")
    with pytest.warns(FutureWarning) as caught:
        config = load_backend_config(path)
    assert [str(w.message).split(" (")[0] for w in caught] == [
        f"The {kind} backend's '{old[0]}' is deprecated: use '{NEW[0]}'",
        f"The {kind} backend's '{old[1]}' is deprecated: use '{NEW[1]}'",
    ]
    assert config.input_price_per_million_tokens == 2.5  # type: ignore[union-attr]
    assert config.output_price_per_million_tokens == 10.0  # type: ignore[union-attr]
    dumped = dump_backend_config(config)
    assert NEW[0] in dumped and old[0] not in dumped  # written back under the new names


def test_an_old_name_with_its_new_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="not both"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        OpenAIConfig(model="m", cost_per_1k_input_tokens=1, input_price_per_million_tokens=1000)  # type: ignore[call-arg]


async def test_both_backends_charge_the_same_for_the_same_prices() -> None:
    usage = Usage(prompt_tokens=2_000_000, completion_tokens=500_000)
    prices = {"input_price_per_million_tokens": 1.5, "output_price_per_million_tokens": 6.0}
    lite = LiteLLMBackend(LiteLLMConfig(model="unknown/m", **prices))
    assert lite.cost(usage) == pytest.approx(2 * 1.5 + 0.5 * 6.0)
    assert lite.has_prices and OpenAIBackend(OpenAIConfig(model="m", **prices)).has_prices


def test_which_backends_have_prices() -> None:
    assert has_prices(build_backend(OpenAIConfig(model="m"))) is False
    assert has_prices(build_backend(parse_backend_spec("openai:m@http://127.0.0.1:9/v1"))) is False
    assert has_prices(build_backend(VLLMConfig(model_path="/models/tiny"))) is False
    assert has_prices(build_backend(TransformersConfig(path="/models/tiny"))) is False
    assert has_prices(ScriptedBackend(["x"])) is None  # says nothing: never warned about


class _Unpriced(ScriptedBackend):
    has_prices = False

    def describe(self) -> dict[str, Any]:
        return {"type": "openai"}


def _ls_then_submit() -> list[str]:
    fence = "```bash\n{}\n```"
    return [fence.format("ls"), fence.format("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")]


async def test_a_cost_limit_with_zero_prices_warns_once_per_run_of_many_tasks() -> None:
    config = load_scaffold("mini")
    assert config.limits.max_cost  # type: ignore[attr-defined]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # not Python's dedup: the function's own
        for n in range(2):
            async with LocalRuntime() as runtime:
                await runtime.run("git init -q .")
                agent = Agent(config, _Unpriced(_ls_then_submit()), runtime, [get_tool("bash")])  # type: ignore[arg-type]
                trajectory = await agent.run(Task(instance_id=f"t{n}", problem_statement="x"))
            assert trajectory.exit_status == "submitted"
    [warning] = [w for w in caught if issubclass(w.category, CostLimitWarning)]
    message = str(warning.message)
    assert message.startswith("The cost limit (max_cost: 3 dollars) can never trigger")
    assert "openai backend" in message and "input_price_per_million_tokens" in message


@pytest.mark.parametrize(
    "max_cost, backend",
    [
        (None, _Unpriced([])),  # no limit
        (3.0, ScriptedBackend([])),  # a backend that does not say
        (3.0, OpenAIBackend(OpenAIConfig(model="m", input_price_per_million_tokens=1.0))),
    ],
)
def test_no_warning_when_the_limit_can_trigger_or_is_unset(max_cost: Any, backend: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_cost_limit_never_triggers(max_cost, backend) is False


def test_a_local_model_is_named_as_such() -> None:
    with pytest.warns(CostLimitWarning, match=r"the vllm backend .* \(a local model\)"):
        assert warn_if_cost_limit_never_triggers(1.5, VLLMBackend(VLLMConfig(model_path="/m")))
