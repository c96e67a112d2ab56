"""The RL driver end to end on the CPU: toy repair tasks in real git repositories graded by their
real tests, the tiny tool-calling model served by a real vLLM server with the RL routes on,
rollouts through the harness, policy steps, and verified full-weight syncs, in both modes.

Whether reward rises is not asserted here (two steps of a random model); what is checked is that
every part runs together: versions advance with each sync and are recorded on the rollouts,
staleness stays within its bound, and the metrics are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.backends.vllm_server import VLLMServer
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.training.rl_driver import RLConfig, train_rl
from agentkit.training.rl_shaping import ShapingConfig
from agentkit.training.rollouts import PolicyEndpoint
from agentkit.training.toy_tasks import ToyTaskConfig, build_toy_tasks
from agentkit.training.weight_sync import FullSyncConfig, FullWeightSync

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture
def model_dir(tiny_tool_model: Path) -> Path:
    return tiny_tool_model


@pytest.fixture
def server(rl_vllm_server: VLLMServer) -> VLLMServer:
    return rl_vllm_server


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Task]:
    return build_toy_tasks(tmp_path_factory.mktemp("toy"), ToyTaskConfig(count=2))


def _config(model_dir: Path, out: Path, mode: str) -> RLConfig:
    scaffold = load_scaffold("mini")
    scaffold.call_format = "native"  # type: ignore[attr-defined]
    scaffold.limits = scaffold.limits.model_copy(  # type: ignore[attr-defined]
        update={"max_steps": 1, "max_context_tokens": 1800, "command_timeout_s": 30}
    )
    scaffold.sampling = scaffold.sampling.model_copy(update={"max_tokens": 48, "temperature": 1.0})
    return RLConfig.model_validate(
        {
            "model_path": str(model_dir),
            "output_dir": str(out),
            "scaffold": scaffold,
            "steps": 2,
            "tasks_per_step": 2,
            "group_size": 2,
            "mode": mode,
            "learning_rate": 1e-3,
            # A random model rarely solves a task: keep all-zero groups, and the runs the step
            # limit ended, so that every step really updates and syncs.
            "shaping": ShapingConfig(drop_zero_advantage_groups=False, compact="keep"),
        }
    )


async def publish_base(sync: FullWeightSync, model_dir: Path) -> int:
    """Sync the model's own weights in (the shared server may hold another test's); the version."""
    import torch

    from agentkit.training.modeling import load_causal_lm

    base = load_causal_lm(
        model_dir, dtype=torch.float32, device=torch.device("cpu"), attn_implementation="sdpa"
    )
    return (await sync.sync(base)).version


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_rl_steps_update_sync_and_record_versions(
    server: VLLMServer, model_dir: Path, tasks: list[Task], tmp_path: Path, mode: str
) -> None:
    config = _config(model_dir, tmp_path / "rl", mode)
    endpoint = PolicyEndpoint(base_url=server.base_url, model=server.model_name)
    sync_config = FullSyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(tmp_path / "weights")
    )
    async with FullWeightSync(sync_config) as sync:
        endpoint.version = first = await publish_base(sync, model_dir)
        result = await train_rl(tasks, config, endpoint, sync)

    assert [r.step for r in result.records] == [1, 2]
    assert all(r.updated and r.rollouts == 4 and r.failures == 0 for r in result.records)
    assert [r.policy_version for r in result.records] == [first + 1, first + 2]
    assert result.final_version == endpoint.version == first + 2
    staleness = [r.staleness_max for r in result.records]
    if mode == "sync":
        assert staleness == [0, 0]
    else:  # the second batch was sampled while the first step trained
        assert staleness[1] <= 1 and all(r.dropped_stale == 0 for r in result.records)
    rollouts = tmp_path / "rl" / "rollouts"
    versions = set()
    for path in rollouts.glob("step-*/**/trajectory.json"):
        trajectory = json.loads(path.read_text())
        versions |= {step["policy_version"] for step in trajectory["steps"]}
    assert versions and versions <= {first, first + 1}
    lines = (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert (tmp_path / "rl" / "reward.png").stat().st_size > 0


async def test_an_interrupted_run_resumes_from_its_checkpoint(
    server: VLLMServer, model_dir: Path, tasks: list[Task], tmp_path: Path
) -> None:
    """Two steps, then the same run extended to three with ``resume``: the first two records
    are kept, the weights and optimizer come back from the checkpoint, and the server is given
    the checkpoint's weights before the third step samples."""

    from agentkit.training.checkpoints import CheckpointError, list_checkpoints

    out = tmp_path / "rl"
    config = _config(model_dir, out, "sync").model_copy(update={"keep_checkpoints": 1})
    endpoint = PolicyEndpoint(base_url=server.base_url, model=server.model_name)
    sync_config = FullSyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(tmp_path / "weights")
    )
    async with FullWeightSync(sync_config) as sync:
        endpoint.version = await publish_base(sync, model_dir)
        first = await train_rl(tasks, config, endpoint, sync)
    assert [r.step for r in first.records] == [1, 2] and first.resumed_from_step is None
    [(step, checkpoint)] = list_checkpoints(out)  # keep_checkpoints=1 pruned step 1
    assert step == 2 and (checkpoint / "rl.json").is_file()
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        await train_rl(tasks, config, endpoint, sync)

    # A new process: a fresh sync object and an endpoint that knows nothing of the first run.
    longer = config.model_copy(update={"steps": 3})
    endpoint = PolicyEndpoint(base_url=server.base_url, model=server.model_name)
    async with FullWeightSync(sync_config) as sync:
        seen: list[int] = []
        again = await train_rl(
            tasks, longer, endpoint, sync, resume=True, on_step=lambda r: seen.append(r.step)
        )
        restored = sync.history[0]
    assert again.resumed_from_step == 2 and seen == [3]
    assert [r.step for r in again.records] == [1, 2, 3]
    assert again.records[:2] == first.records
    # The checkpoint's weights were published under a version no earlier sync had written.
    assert restored.version > first.final_version
    assert again.final_version == restored.version + 1
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert [s for s, _ in list_checkpoints(out)] == [3]

    with pytest.raises(CheckpointError, match="settings changed"):
        other = longer.model_copy(update={"learning_rate": 5e-4})
        await train_rl(tasks, other, endpoint, sync, resume=True)


async def test_a_lora_run_serves_each_version_under_its_adapter_name(
    server: VLLMServer, model_dir: Path, tasks: list[Task], tmp_path: Path
) -> None:
    """LoRA over frozen weights: each step's adapter is loaded under ``driver-vN``, the next
    rollouts ask for that name (their steps carry version N), and checkpoints hold the adapter."""
    from agentkit.training.checkpoints import list_checkpoints
    from agentkit.training.sft_config import LoRAConfig
    from agentkit.training.weight_sync import LoRASyncConfig, LoRAWeightSync

    restore = FullSyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(tmp_path / "base")
    )
    async with FullWeightSync(restore) as sync:  # adapters apply to the served base weights
        await publish_base(sync, model_dir)
    out = tmp_path / "rl"
    config = _config(model_dir, out, "sync").model_copy(
        update={"lora": LoRAConfig(rank=8, alpha=16), "learning_rate": 1e-2}
    )
    endpoint = PolicyEndpoint(base_url=server.base_url, model=server.model_name)
    lora = LoRASyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(tmp_path / "adapters"),
        max_lora_rank=8, keep_versions=2, adapter_prefix="driver",
    )  # fmt: skip
    async with LoRAWeightSync(lora) as sync:
        try:
            result = await train_rl(tasks, config, endpoint, sync)
            assert sync.loaded == ["driver-v1", "driver-v2"]
        finally:  # the server is shared: free its adapter slots and names for later tests
            await sync.unload_all()
        assert sync.loaded == []
    async with FullWeightSync(restore) as full:
        with pytest.raises(ValueError, match="a LoRA adapter needs a 'lora' sync"):
            await train_rl(tasks, config, endpoint, full)
    assert [r.policy_version for r in result.records] == [1, 2]
    assert all(r.updated for r in result.records)
    assert endpoint.model == "driver-v2" and result.final_version == 2
    versions = set()
    for path in (out / "rollouts" / "step-00001").glob("**/trajectory.json"):
        trajectory = json.loads(path.read_text())
        versions |= {step["policy_version"] for step in trajectory["steps"]}
    assert versions == {1}  # the second step's rollouts came from the first adapter
    [(_, checkpoint)] = list_checkpoints(out)[-1:]
    assert (checkpoint / "adapter_config.json").is_file()
    assert not (checkpoint / "model.safetensors").exists()  # the adapter only
