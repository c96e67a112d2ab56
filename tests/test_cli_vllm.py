"""``agentkit run`` with a real model: the tiny model served by the session's real vLLM server,
on a bundled task, in a local sandbox, graded for real. The model is random and barely trained, so
the run is not expected to resolve anything; what is checked is that every part works together
and that the trajectory carries what training needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.backends.vllm_server import VLLMServer
from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.tasks import load_tasks
from agentkit.types import Trajectory

pytestmark = pytest.mark.vllm


def test_a_real_model_run_is_recorded_and_graded(vllm_server: VLLMServer, tmp_path: Path) -> None:
    dataset = build_examples(tmp_path / "examples")
    task_id = load_tasks(dataset)[0].instance_id
    backend = tmp_path / "backend.yaml"
    backend.write_text(
        f"type: openai\nmodel: {vllm_server.model_name}\nbase_url: {vllm_server.base_url}\n"
        "request_token_ids: true\n"
    )
    scaffold = tmp_path / "scaffold.yaml"
    scaffold.write_text(_short_mini_scaffold())
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--dataset",
            str(dataset),
            "--task",
            task_id,
            "--runtime",
            "local",
            "--scaffold",
            str(scaffold),
            "--backend",
            str(backend),
            "--run-id",
            "tiny",
            "--output",
            str(tmp_path / "runs"),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "tiny" / task_id
    trajectory = Trajectory.load(out / "trajectory.json")
    assert trajectory.backend["type"] == "openai" and trajectory.steps
    for step in trajectory.steps:
        completion = step.completion
        assert completion.prompt_token_ids and completion.completion_token_ids
        assert len(completion.logprobs or []) == len(completion.completion_token_ids)
    report = json.loads((out / "report.json").read_text())[task_id]
    assert report["resolved"] is False and "tests_status" in report
    assert trajectory.reward == 0.0


def _short_mini_scaffold() -> str:
    """The bundled mini scaffold with native tool calls and a short leash (the tiny model's
    context is 2048 tokens)."""
    from agentkit.scaffolds import load_scaffold

    config = load_scaffold("mini")
    config.call_format = "native"
    config.limits = config.limits.model_copy(
        update={"max_steps": 3, "max_context_tokens": 1500, "command_timeout_s": 30}
    )
    config.sampling = config.sampling.model_copy(update={"max_tokens": 64, "temperature": 0.0})
    return config.to_yaml()


@pytest.mark.parametrize("scaffold_name", ["swe-agent", "codeact", "code-nav"])
def test_every_bundled_scaffold_runs_with_a_real_model(
    vllm_server: VLLMServer, tmp_path: Path, scaffold_name: str
) -> None:
    """Each bundled scaffold, as shipped (its tools, prompts and call format), against the real
    server: the run ends with an exit status the harness records and grades, never a crash.
    The tiny model's 2048-token context is smaller than some scaffolds' tool descriptions; then
    the run must end as ``context_exceeded`` with the model's steps (if any) recorded."""
    from agentkit.scaffolds import load_scaffold

    dataset = build_examples(tmp_path / "examples")
    task_id = load_tasks(dataset)[0].instance_id
    backend = tmp_path / "backend.yaml"
    backend.write_text(
        f"type: openai\nmodel: {vllm_server.model_name}\nbase_url: {vllm_server.base_url}\n"
        "request_token_ids: true\n"
    )
    config = load_scaffold(scaffold_name)
    config.limits = config.limits.model_copy(
        update={"max_steps": 2, "max_context_tokens": 1800, "command_timeout_s": 30}
    )
    config.sampling = config.sampling.model_copy(update={"max_tokens": 48, "temperature": 0.0})
    scaffold = tmp_path / "scaffold.yaml"
    scaffold.write_text(config.to_yaml())
    result = CliRunner().invoke(
        app,
        ["run", "--dataset", str(dataset), "--task", task_id, "--runtime", "local",
         "--scaffold", str(scaffold), "--backend", str(backend), "--run-id", "tiny",
         "--output", str(tmp_path / "runs")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "tiny" / task_id
    trajectory = Trajectory.load(out / "trajectory.json")
    assert trajectory.exit_status in {
        "step_limit",
        "format_errors",
        "context_exceeded",
        "submitted",
    }
    assert trajectory.exit_message
    for step in trajectory.steps:
        assert step.completion.completion_token_ids, step
    assert (out / "report.json").exists() or trajectory.submission is None
