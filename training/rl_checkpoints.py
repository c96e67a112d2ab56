"""Resumable RL checkpoints: the trainer's weights, optimizer and random state, and the policy
version the server was serving, so an interrupted run goes on from its last finished step.

The layout and atomic write are the SFT trainer's (:mod:`.checkpoints`); RL adds ``rl.json``
(the policy version of those weights) inside the checkpoint. What resume restores exactly: the
weights, the optimizer moments, the random generators, the step count and the task order (a
seeded sequence whose prefix does not depend on ``steps``, so a run may be extended). What it
cannot restore: rollouts that were being sampled when the run stopped; the step they belonged to
collects them again (attempts already finished in its run folder are reused, each with the
policy version that sampled it, so the staleness bound still applies).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from agentkit.tasks import Task

from .checkpoints import (
    STATE_DIR,
    CheckpointError,
    TrainerState,
    check_compatible,
    latest_checkpoint,
    load_optimizer_state,
    read_state,
    save_checkpoint,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "RLCheckpoint",
    "find_rl_checkpoint",
    "load_rl_checkpoint",
    "resume_settings",
    "save_rl_checkpoint",
    "tasks_fingerprint",
]

RL_STATE = "rl.json"
NOT_SETTINGS = ("output_dir", "steps", "keep_checkpoints", "save_every", "device")
"""What may change between a run and its resume: where it writes, how long it goes on, how
often it saves, and where it computes."""


class RLCheckpoint(BaseModel):
    """A checkpoint found for resuming: its folder, the steps taken, and the policy version."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    path: Path
    step: int
    policy_version: int
    trained_tokens: int
    elapsed_s: float


def resume_settings(config: BaseModel) -> dict[str, Any]:
    """The settings a resume must match (everything but :data:`NOT_SETTINGS`)."""
    settings = config.model_dump(mode="json")
    for key in NOT_SETTINGS:
        settings.pop(key, None)
    return settings


def tasks_fingerprint(tasks: Sequence[Task]) -> str:
    """The task ids in order: a resume on other tasks would draw other groups for each step."""
    ids = json.dumps([task.instance_id for task in tasks])
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def save_rl_checkpoint(
    output_dir: Path,
    *,
    step: int,
    total_steps: int,
    policy_version: int,
    trained_tokens: int,
    elapsed_s: float,
    settings: dict[str, Any],
    fingerprint: str,
    model: Any,
    tokenizer_dir: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    keep: int | None,
) -> Path:
    """Write the checkpoint after ``step`` RL steps (a complete ``from_pretrained`` folder)."""
    from .modeling import save_model

    def write_model(folder: Path) -> None:
        save_model(model, folder, tokenizer_dir)
        (folder / RL_STATE).write_text(
            json.dumps({"policy_version": policy_version}), encoding="utf-8"
        )

    state = TrainerState(
        step=step, epoch=0, step_in_epoch=step, total_steps=total_steps,
        trained_tokens=trained_tokens, tokens=trained_tokens, elapsed_s=elapsed_s,
        settings=settings, data_fingerprint=fingerprint,
    )  # fmt: skip
    return save_checkpoint(
        output_dir, state, write_model=write_model, optimizer=optimizer, scheduler=scheduler,
        keep=keep,
    )  # fmt: skip


def find_rl_checkpoint(
    output_dir: Path, settings: dict[str, Any], fingerprint: str
) -> RLCheckpoint | None:
    """The latest checkpoint of ``output_dir``, or ``None``; :class:`CheckpointError` when it
    was made with other settings or tasks."""
    path = latest_checkpoint(output_dir)
    if path is None:
        return None
    state = read_state(path)
    check_compatible(state, settings, fingerprint)
    try:
        version = int(json.loads((path / RL_STATE).read_text(encoding="utf-8"))["policy_version"])
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: not an RL checkpoint ({RL_STATE}: {exc})") from exc
    return RLCheckpoint(
        path=path, step=state.step, policy_version=version,
        trained_tokens=state.trained_tokens, elapsed_s=state.elapsed_s,
    )  # fmt: skip


def load_rl_checkpoint(
    checkpoint: RLCheckpoint, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Load the optimizer and scheduler state; return the random state for the caller to
    restore once its set-up is done. (The weights are loaded from ``checkpoint.path``.)"""
    if not (checkpoint.path / STATE_DIR).is_dir():
        raise CheckpointError(f"{checkpoint.path}: no {STATE_DIR}/ folder")
    return load_optimizer_state(checkpoint.path, optimizer, scheduler)
