"""``agentkit train rl --config``: settings from a file, errors in one line, and a real run on
toy tasks against the session's RL vLLM server, interrupted after one step and resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agentkit.cli import app

runner = CliRunner()


def write_config(path: Path, **fields: object) -> Path:
    settings: dict[str, object] = {
        "model_path": "model",
        "output_dir": "out",
        "toy_tasks": {"count": 2, "seed": 3},
        "scaffold": "mini",
        "steps": 1,
        "tasks_per_step": 2,
        "group_size": 2,
    }
    settings.update(fields)
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dataset": "tasks.jsonl"}, "give exactly one of 'dataset' and 'toy_tasks'"),
        ({"group_size": 1}, "group_size"),
        ({"learning_rat": 1e-5}, "learning_rat"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path: Path, fields: dict, message: str) -> None:
    config = write_config(tmp_path / "rl.yaml", **fields)
    result = runner.invoke(app, ["train", "rl", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_relative_paths_are_read_from_the_config_files_folder(tmp_path: Path) -> None:
    from agentkit.cli.train_cmd import train_rl_command
    from agentkit.errors import UserFacingError

    (tmp_path / "conf").mkdir()
    config = write_config(tmp_path / "conf" / "rl.yaml", toy_tasks=None, dataset="missing.jsonl")
    with pytest.raises(UserFacingError, match=str(tmp_path / "conf" / "missing.jsonl")):
        train_rl_command(config, {}, resume=False)


@pytest.mark.vllm
@pytest.mark.slow
async def test_a_run_from_the_command_line_resumes_after_its_last_step(
    rl_vllm_server, tiny_tool_model: Path, tmp_path: Path
) -> None:
    import asyncio

    import torch

    from agentkit.training.modeling import load_causal_lm
    from agentkit.training.weight_sync import FullSyncConfig, FullWeightSync

    # The shared server may hold an earlier test's weights: start from the model's own.
    restore = FullSyncConfig(
        base_url=rl_vllm_server.base_url, model_dir=str(tiny_tool_model),
        output_dir=str(tmp_path / "restore"),
    )  # fmt: skip
    async with FullWeightSync(restore) as sync:
        await sync.sync(
            load_causal_lm(
                tiny_tool_model, dtype=torch.float32, device=torch.device("cpu"),
                attn_implementation="sdpa",
            )
        )  # fmt: skip
    scaffold = {
        "extends": "mini", "call_format": "native",
        "limits": {"max_steps": 1, "max_context_tokens": 1800, "command_timeout_s": 30},
        "sampling": {"max_tokens": 48, "temperature": 1.0},
    }  # fmt: skip
    (tmp_path / "scaffold.yaml").write_text(yaml.safe_dump(scaffold), encoding="utf-8")
    config = write_config(
        tmp_path / "rl.yaml", model_path=str(tiny_tool_model), scaffold="scaffold.yaml",
        mode="sync", learning_rate=1e-3,
        shaping={"drop_zero_advantage_groups": False, "compact": "keep"},
        server={"base_url": rl_vllm_server.base_url},
    )  # fmt: skip
    argv = ["train", "rl", "--config", str(config)]
    first = await asyncio.to_thread(runner.invoke, app, argv)
    assert first.exit_code == 0, first.output
    assert "step 1/1: version" in first.output
    out = tmp_path / "out"
    assert str(out) in first.output and (out / "reward.png").is_file()

    again = await asyncio.to_thread(runner.invoke, app, [*argv, "--steps", "2", "--resume"])
    assert again.exit_code == 0, again.output
    assert "step 2/2" in again.output and "step 1/" not in again.output
    assert "Resumed after step 1." in again.output
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]

    refused = await asyncio.to_thread(runner.invoke, app, argv)
    assert refused.exit_code == 2 and "already holds checkpoints" in refused.output
