"""The RL loop: rollouts from a vLLM-served policy, advantages, one policy step, a weight sync.

Each step takes ``tasks_per_step`` tasks, runs ``group_size`` graded attempts of each through the
harness (:func:`~agentkit.training.rollouts.collect_rollouts`), turns them into advantage-weighted
samples (shaping, compact filter, group advantages, zero-advantage groups dropped), takes one
optimizer step (:func:`~agentkit.training.rl_step.rl_step`) and publishes the new weights to the
server (:class:`~agentkit.training.weight_sync.WeightSync`, verified after every sync).

``mode="sync"`` does these one after another. ``mode="async"`` keeps one collection running while
the trainer works on the previous one: rollouts then come from weights up to ``max_staleness``
versions old (each step records the version that sampled it), the importance ratio against the
recorded rollout log-probs corrects for it (truncated, see :mod:`.rl_loss`), and rollouts staler
than the bound are dropped. A failed attempt leaves its group (it is counted, never fatal); a step
whose groups all have zero advantage makes no update and no sync.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.jobs import RuntimeKind
from agentkit.scaffolding import ScaffoldSpec
from agentkit.tasks import Task
from agentkit.training.advantages import AdvantageConfig, assign_advantages
from agentkit.training.metrics import dump_json
from agentkit.training.rl_checkpoints import (
    find_rl_checkpoint,
    load_rl_checkpoint,
    resume_settings,
    save_rl_checkpoint,
    tasks_fingerprint,
)
from agentkit.training.rl_loss import PolicyLossConfig
from agentkit.training.rl_shaping import (
    ShapingConfig,
    compact_filter,
    drop_zero_advantage_groups,
    shape_rewards,
)
from agentkit.training.rollouts import PolicyEndpoint, RolloutBatch, collect_rollouts
from agentkit.training.sft_config import LoRAConfig

if TYPE_CHECKING:
    from agentkit.training.weight_sync import WeightSync

__all__ = ["RLConfig", "RLResult", "RLStepRecord", "train_rl"]


class RLConfig(BaseModel):
    """One RL run on a served policy (the server and its weight sync are given to
    :func:`train_rl`; the model here is the trainer's copy of the same weights)."""

    model_config = ConfigDict(extra="forbid")

    model_path: str
    """The ``from_pretrained`` folder the server started from (the trainer loads it too)."""
    output_dir: str
    scaffold: ScaffoldSpec
    steps: int = Field(10, ge=1)
    tasks_per_step: int = Field(4, ge=1)
    group_size: int = Field(4, ge=2)
    mode: Literal["sync", "async"] = "async"
    max_staleness: int = Field(4, ge=0)
    """Async mode: rollouts sampled by weights more than this many versions older than the
    trainer's are dropped."""
    runtime: RuntimeKind = "local"
    workers: int = Field(2, ge=1)
    learning_rate: float = Field(1e-5, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    updates_per_batch: int = Field(1, ge=1)
    """Optimizer steps on each step's rollouts (PPO epochs; TRL's ``num_iterations``). π_old is
    fixed before the first, so from the second on the clip bounds how far a token's probability
    moves; one policy version (and one weight sync) per step either way."""
    micro_batch_size: int = Field(4, ge=1)
    advantage: AdvantageConfig = Field(default_factory=AdvantageConfig)
    loss: PolicyLossConfig = Field(default_factory=PolicyLossConfig)
    shaping: ShapingConfig = Field(default_factory=ShapingConfig)
    seed: int = 0
    device: str = "auto"
    lora: LoRAConfig | None = None
    """Train a LoRA adapter over frozen weights (synced with a ``lora`` weight sync: each version
    served under its own adapter name) instead of every weight (a ``full`` sync)."""
    save_every: int = Field(1, ge=0)
    """Steps between checkpoints (``output_dir/checkpoints/``, for ``resume``); 0: none."""
    keep_checkpoints: int | None = Field(2, ge=1)
    """Newest checkpoints kept; ``None`` keeps all."""


class RLStepRecord(BaseModel):
    """What one step did; one line of ``metrics.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    step: int
    policy_version: int
    """The trainer's version after this step (unchanged when the step made no update)."""
    rollouts: int
    failures: int
    solve_rate: float
    mean_reward: float
    staleness_max: int
    dropped_stale: int
    trained_samples: int
    trained_tokens: int
    updated: bool
    loss: float | None = None
    grad_norm: float | None = None
    clip_fraction: float | None = None
    rollout_s: float
    """Time the trainer waited for this step's rollouts (in async mode, only what the
    collection running beside the previous step did not cover)."""
    collect_s: float = 0.0
    """The collection's own wall time, from its start (in async mode, beside the previous
    step's training) to its last graded attempt."""
    phase_s: dict[str, float] = Field(default_factory=dict)
    """Seconds per harness phase summed over the step's attempts (``sandbox``, ``agent`` — the
    model's generation and the tools' commands —, ``grading``)."""
    completion_tokens: int = 0
    """Tokens the policy generated for this step's rollouts."""
    train_s: float
    sync_s: float
    elapsed_s: float


class RLResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[RLStepRecord]
    """Every step of the run, those of earlier sessions of a resumed run included."""
    final_version: int
    output_dir: Path
    resumed_from_step: int | None = None


async def train_rl(
    tasks: Sequence[Task],
    config: RLConfig,
    endpoint: PolicyEndpoint,
    sync: WeightSync,
    *,
    resume: bool = False,
    on_step: Callable[[RLStepRecord], None] | None = None,
) -> RLResult:
    """Train the policy served at ``endpoint`` on ``tasks``; ``sync`` publishes each update to
    that server (and ``endpoint.version``/``endpoint.model`` follow it).

    ``resume=True`` continues from the newest checkpoint in ``config.output_dir`` (or starts
    when there is none): its weights are published to the server first. Without it, an output
    folder that holds checkpoints is refused. ``on_step`` sees each step's record as it ends."""
    import torch

    from agentkit.training.checkpoints import CheckpointError, latest_checkpoint, restore_rng
    from agentkit.training.modeling import trainable_parameters

    if not tasks:
        raise ValueError("no tasks to train on")
    if (config.lora is not None) != (sync.kind == "lora"):
        raise ValueError(
            f"RLConfig.lora is {'set' if config.lora else 'unset'} but the weight sync is "
            f"{sync.kind!r}: a LoRA adapter needs a 'lora' sync, full weights a 'full' one"
        )
    output = Path(config.output_dir).expanduser().resolve()
    settings, fingerprint = resume_settings(config), tasks_fingerprint(tasks)
    checkpoint = find_rl_checkpoint(output, settings, fingerprint) if resume else None
    if not resume and latest_checkpoint(output) is not None:
        raise CheckpointError(
            f"{output} already holds checkpoints; resume to continue that run, or choose "
            "another output directory"
        )
    if checkpoint is None and not resume and (output / "rollouts").exists():
        raise CheckpointError(
            f"{output} holds the rollouts of an earlier run, which this one would take for its "
            "own; resume that run, or choose another output directory"
        )
    output.mkdir(parents=True, exist_ok=True)
    dump_json(config.model_dump(mode="json"), output / "rl_config.json")
    torch.manual_seed(config.seed)
    model = _policy_model(config, checkpoint.path if checkpoint else None)
    optimizer = torch.optim.AdamW(
        trainable_parameters(model), lr=config.learning_rate, weight_decay=0.0
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    pad_id = _pad_id(model)
    order = _task_order(tasks, config)
    first_step = checkpoint.step if checkpoint else 0
    records = _earlier_records(output / "metrics.jsonl", first_step)
    trained_tokens = checkpoint.trained_tokens if checkpoint else 0
    began = time.monotonic() - (checkpoint.elapsed_s if checkpoint else 0.0)
    if checkpoint is not None:
        restore_rng(load_rl_checkpoint(checkpoint, optimizer, scheduler))
        if checkpoint.policy_version > 0:  # the server may serve the base or later weights
            version = sync.next_free_version(checkpoint.policy_version)
            synced = await sync.sync(model, version=version)
            endpoint.version, endpoint.model = synced.version, synced.model_name

    def collect(step: int) -> asyncio.Task[RolloutBatch]:
        chosen = order[step]
        scaffold = config.scaffold.model_copy(deep=True)
        scaffold.sampling.seed = config.seed + step * config.group_size
        return asyncio.ensure_future(
            collect_rollouts(
                chosen, scaffold, output / "rollouts" / f"step-{step:05d}",
                endpoint=endpoint, group_size=config.group_size, runtime=config.runtime,
                workers=config.workers,
            )
        )  # fmt: skip

    pending = collect(first_step) if first_step < config.steps else None
    try:
        for step in range(first_step, config.steps):
            assert pending is not None
            waited = time.monotonic()
            batch = await pending
            rollout_s = time.monotonic() - waited
            if config.mode == "async" and step + 1 < config.steps:
                pending = collect(step + 1)  # generation goes on while this step trains
            version = endpoint.version
            kept, stale, staleness = _fresh(batch, version, config)
            items = _rl_samples(kept, config)
            step_tokens = sum(item.sample.trained_tokens for item in items)
            result = None
            started = time.monotonic()
            if items:
                result = await asyncio.to_thread(
                    _update, model, (optimizer, scheduler), items, config, pad_id
                )
            train_s = time.monotonic() - started
            started = time.monotonic()
            if result is not None:
                synced = await sync.sync(model)
                endpoint.version, endpoint.model = synced.version, synced.model_name
            sync_s = time.monotonic() - started
            if config.mode == "sync" and step + 1 < config.steps:
                pending = collect(step + 1)
            trained_tokens += step_tokens
            record = RLStepRecord(
                step=step + 1,
                policy_version=endpoint.version,
                rollouts=batch.stats.rollouts,
                failures=batch.stats.failures,
                solve_rate=batch.stats.solve_rate,
                mean_reward=batch.stats.mean_reward,
                staleness_max=staleness,
                dropped_stale=stale,
                trained_samples=len(items),
                trained_tokens=step_tokens,
                updated=result is not None,
                loss=result["loss"] if result else None,
                grad_norm=result["grad_norm"] if result else None,
                clip_fraction=result["clip_fraction"] if result else None,
                rollout_s=rollout_s,
                collect_s=batch.stats.wall_time_s,
                phase_s=batch.stats.phase_seconds,
                completion_tokens=batch.stats.completion_tokens,
                train_s=train_s,
                sync_s=sync_s,
                elapsed_s=time.monotonic() - began,
            )
            records.append(record)
            with (output / "metrics.jsonl").open("a", encoding="utf-8") as log:
                log.write(record.model_dump_json() + "\n")
            if config.save_every and (
                (step + 1) % config.save_every == 0 or step + 1 == config.steps
            ):
                await asyncio.to_thread(
                    save_rl_checkpoint, output, step=step + 1, total_steps=config.steps,
                    policy_version=endpoint.version, trained_tokens=trained_tokens,
                    elapsed_s=record.elapsed_s, settings=settings, fingerprint=fingerprint,
                    model=model, tokenizer_dir=Path(config.model_path), optimizer=optimizer,
                    scheduler=scheduler, keep=config.keep_checkpoints,
                )  # fmt: skip
            if on_step is not None:
                on_step(record)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
    _plot(records, output / "reward.png")
    return RLResult(
        records=records, final_version=endpoint.version, output_dir=output,
        resumed_from_step=first_step if checkpoint else None,
    )  # fmt: skip


def _policy_model(config: RLConfig, checkpoint: Path | None) -> Any:
    """The trainer's policy in float32, ready to train: the full model (from the checkpoint
    when resuming), or the base with a new adapter (or the checkpoint's)."""
    import torch

    from agentkit.training.modeling import add_lora, load_causal_lm, load_lora, resolve_device

    source = checkpoint if checkpoint is not None and config.lora is None else config.model_path
    model = load_causal_lm(
        source, dtype=torch.float32, device=resolve_device(config.device),
        attn_implementation="sdpa",
    )  # fmt: skip
    if config.lora is not None:
        model = load_lora(model, checkpoint) if checkpoint else add_lora(model, config.lora)
    model.train()
    return model


def _earlier_records(metrics: Path, steps: int) -> list[RLStepRecord]:
    """The records of the first ``steps`` steps from ``metrics.jsonl``, which is rewritten to
    hold only them: steps after the checkpoint are taken again, and logged again."""
    records: list[RLStepRecord] = []
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = RLStepRecord.model_validate_json(line)
                if record.step <= steps:
                    records.append(record)
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return records


def _task_order(tasks: Sequence[Task], config: RLConfig) -> list[list[Task]]:
    """The tasks of each step: a seeded shuffle, cycled, ``tasks_per_step`` at a time."""
    rng = random.Random(config.seed)
    queue: list[Task] = []
    steps: list[list[Task]] = []
    for _ in range(config.steps):
        chosen: list[Task] = []
        while len(chosen) < min(config.tasks_per_step, len(tasks)):
            if not queue:
                queue = list(tasks)
                rng.shuffle(queue)
            task = queue.pop()
            if task not in chosen:
                chosen.append(task)
        steps.append(chosen)
    return steps


def _fresh(batch: RolloutBatch, version: int, config: RLConfig) -> tuple[RolloutBatch, int, int]:
    """``batch`` without the rollouts older than the staleness bound; how many were dropped and
    the largest staleness kept."""
    groups: dict[str, list[Any]] = {}
    dropped, worst = 0, 0
    for task_id, group in batch.groups.items():
        for rollout in group:
            oldest = rollout.oldest_version
            age = 0 if oldest is None else version - oldest
            if age > config.max_staleness:
                dropped += 1
                continue
            worst = max(worst, age)
            groups.setdefault(task_id, []).append(rollout)
    return batch.model_copy(update={"groups": groups}), dropped, worst


def _rl_samples(batch: RolloutBatch, config: RLConfig) -> list[Any]:
    """Shaped rewards, compact filter, group advantages, zero-advantage groups dropped."""
    rollouts = [r for group in batch.groups.values() for r in group]
    samples = [s for r in rollouts for s in r.samples]
    if not samples:
        return []
    steps = {s.trajectory_id: r.steps for r in rollouts for s in r.samples}
    statuses = {s.trajectory_id: r.exit_status for r in rollouts for s in r.samples}
    shaped = shape_rewards(samples, config.shaping, step_counts=steps)
    items = assign_advantages(shaped, config.advantage)
    items = compact_filter(
        items, {k: v for k, v in statuses.items() if v is not None}, config.shaping
    )
    if config.shaping.drop_zero_advantage_groups:
        items = drop_zero_advantage_groups(items)
    return [item for item in items if item.sample.trained_tokens > 0]


def _update(
    model: Any, optimizer: tuple[Any, Any], items: list[Any], config: RLConfig, pad_id: int
) -> dict[str, float]:
    """One policy version: ``updates_per_batch`` optimizer steps on ``items`` (runs in a worker
    thread so rollouts keep going)."""
    from agentkit.training.rl_step import rl_micro_batches, rl_updates

    device = next(model.parameters()).device
    batches = [
        mb.to(device)
        for mb in rl_micro_batches(
            items, pad_id=pad_id, micro_batch_size=config.micro_batch_size, seed=config.seed
        )
    ]
    result = rl_updates(
        model, batches, config.loss, *optimizer, updates=config.updates_per_batch,
        max_grad_norm=config.max_grad_norm,
    )  # fmt: skip
    summary = result.stats.summary()
    clipped = summary.get("clip_low_fraction", 0.0) + summary.get("clip_high_fraction", 0.0)
    return {"loss": result.loss, "grad_norm": result.grad_norm, "clip_fraction": clipped}


def _pad_id(model: Any) -> int:
    config = model.config
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return 0


def _plot(records: Sequence[RLStepRecord], out: Path) -> None:
    """Solve rate and mean reward per step (matplotlib, imported only here)."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    steps = [r.step for r in records]
    axis.plot(steps, [r.solve_rate for r in records], marker="o", label="solve rate")
    axis.plot(steps, [r.mean_reward for r in records], marker=".", label="mean reward")
    axis.set_xlabel("step")
    axis.set_ylim(bottom=min(0.0, *(r.mean_reward for r in records)))
    axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
