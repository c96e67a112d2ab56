"""A whole RL run from one config: the tasks, a vLLM server that takes weight syncs, the sync,
and :func:`~agentkit.training.rl_driver.train_rl`. What ``agentkit train rl --config`` runs.

The server is started here (from ``model_path``, with the flags a sync needs; see
:func:`~agentkit.training.weight_sync.rl_server_config`) and always stopped, unless
``server.base_url`` names one already running with those flags. Weights are synced in full
(every version is a complete ``from_pretrained`` folder under ``output_dir/weights``, the newest
``keep_versions`` kept), or, with ``lora``, as an adapter per version loaded under its own name
(the server then allows adapters of that rank, as many as a rollout may still sample from). Resuming restarts nothing by hand: the server starts from the base
weights and the driver publishes the checkpoint's weights before the first step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentkit.tasks import Task
from agentkit.training.rl_driver import RLConfig, RLResult, RLStepRecord, train_rl
from agentkit.training.toy_tasks import ToyTaskConfig

if TYPE_CHECKING:
    from agentkit.training.weight_sync import WeightSyncConfig

__all__ = ["RLRunConfig", "RLServerSettings", "load_rl_tasks", "run_rl"]


class RLServerSettings(BaseModel):
    """The policy's vLLM server: started for the run, or one already running."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    """An OpenAI-compatible root (``http://HOST:PORT/v1``) of a server started with
    ``rl_server_config``'s flags; ``None`` starts one from ``model_path``."""
    model: str | None = None
    """The served name at ``base_url`` (default: what its ``/v1/models`` lists first)."""
    max_model_len: int = Field(default=2048, ge=16)
    startup_timeout_s: float = Field(default=600.0, gt=0)
    extra_args: list[str] = Field(default_factory=list)
    """More ``vllm serve`` arguments for a started server."""


class RLRunConfig(RLConfig):
    """:class:`RLConfig` plus where the tasks and the server come from."""

    dataset: str | None = None
    """A SWE-bench-format dataset (file or folder); or leave it out and give ``toy_tasks``."""
    task_ids: list[str] = Field(default_factory=list)
    """Train on these tasks of ``dataset`` only (default: all)."""
    toy_tasks: ToyTaskConfig | None = None
    """Generate toy repair tasks (under ``output_dir/toy``) instead of reading a dataset."""
    server: RLServerSettings = Field(default_factory=RLServerSettings)
    keep_versions: int | None = Field(2, ge=1)
    """Synced weight versions kept on disk under ``output_dir/weights``."""

    @field_validator("scaffold", mode="before")
    @classmethod
    def _scaffold_by_name(cls, value: object) -> object:
        """A bundled scaffold's name or a scaffold file's path, as ``--scaffold`` takes."""
        if isinstance(value, str):
            from agentkit.scaffolds import load_scaffold

            return load_scaffold(value)
        return value

    @model_validator(mode="after")
    def _one_task_source(self) -> RLRunConfig:
        if (self.dataset is None) == (self.toy_tasks is None):
            raise ValueError("give exactly one of 'dataset' and 'toy_tasks'")
        return self


def load_rl_tasks(config: RLRunConfig) -> list[Task]:
    """The run's tasks: the dataset's (narrowed to ``task_ids``) or freshly built toy tasks
    (the same ones every time: they are a function of their config)."""
    if config.toy_tasks is not None:
        from agentkit.training.toy_tasks import build_toy_tasks

        return build_toy_tasks(Path(config.output_dir) / "toy", config.toy_tasks)
    from agentkit.evals.datasets import load_dataset, select_tasks

    assert config.dataset is not None
    return select_tasks(load_dataset(config.dataset), ids=config.task_ids)


async def run_rl(
    config: RLRunConfig,
    *,
    resume: bool = False,
    on_step: Callable[[RLStepRecord], None] | None = None,
    on_server: Callable[[str], None] | None = None,
) -> RLResult:
    """Run ``config`` end to end; ``on_server`` hears where the policy is served once it is up."""
    from agentkit.backends.vllm_server import VLLMServer
    from agentkit.training.rollouts import PolicyEndpoint
    from agentkit.training.weight_sync import make_weight_sync, rl_server_config

    tasks = load_rl_tasks(config)
    output = Path(config.output_dir)
    server: VLLMServer | None = None
    if config.server.base_url is None:
        output.mkdir(parents=True, exist_ok=True)
        lora = {}
        if config.lora is not None:  # adapters of every version rollouts may still sample from
            lora = {"max_lora_rank": config.lora.rank, "max_loras": _versions_kept(config)}
        server = VLLMServer(
            rl_server_config(
                config.model_path, max_model_len=config.server.max_model_len,
                startup_timeout_s=config.server.startup_timeout_s,
                extra_args=config.server.extra_args, log_path=str(output / "vllm.log"), **lora,
            )
        )  # fmt: skip
    try:
        if server is not None:
            await server.start()
            base_url, model = server.base_url, server.model_name
        else:
            assert config.server.base_url is not None
            base_url = config.server.base_url
            model = config.server.model or await _served_model(base_url)
        if on_server is not None:
            on_server(f"{model} at {base_url}")
        endpoint = PolicyEndpoint(base_url=base_url, model=model)
        async with make_weight_sync(_sync_config(config, base_url, model)) as sync:
            return await train_rl(tasks, config, endpoint, sync, resume=resume, on_step=on_step)
    finally:
        if server is not None:
            await server.stop()


def _versions_kept(config: RLRunConfig) -> int:
    """Weight versions kept: at least every version a rollout may still be sampling from."""
    stale = config.max_staleness + 1 if config.mode == "async" else 1
    return max(config.keep_versions or 1, stale)


def _sync_config(config: RLRunConfig, base_url: str, model: str) -> WeightSyncConfig:
    """A full sync, or a LoRA one (adapters named ``policy-vN``) when the run trains LoRA."""
    from agentkit.training.weight_sync import FullSyncConfig, LoRASyncConfig

    common = {
        "base_url": base_url, "model_dir": config.model_path,
        "output_dir": str(Path(config.output_dir) / "weights"),
    }  # fmt: skip
    if config.lora is not None:
        return LoRASyncConfig(
            **common, keep_versions=_versions_kept(config), max_lora_rank=config.lora.rank
        )
    return FullSyncConfig(**common, keep_versions=config.keep_versions, served_model_name=model)


async def _served_model(base_url: str) -> str:
    """The first model a running server lists."""
    import httpx2

    from agentkit.backend import BackendError

    url = base_url.rstrip("/") + "/models"
    try:
        async with httpx2.AsyncClient(timeout=30) as client:
            response = await client.get(url)
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
    except (httpx2.HTTPError, KeyError, IndexError, ValueError) as exc:
        raise BackendError(f"could not list the models served at {url}: {exc}") from exc
