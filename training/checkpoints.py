"""Resumable checkpoints: model (or adapter) + tokenizer, and everything a run needs to go on.

A checkpoint is ``<output_dir>/checkpoints/step-NNNNNNN/``: a complete ``from_pretrained``
directory (a LoRA checkpoint holds the adapter) with a ``training_state/`` folder beside the
weights — optimizer and scheduler state, every random generator's state, the data position and
the settings that must not change on resume. It is written under a temporary name and renamed
into place, so a checkpoint that exists is complete.

Resuming restores the weights, the optimizer moments, the learning-rate schedule, the random
generators (dropout) and the position in the data plan; the run then takes exactly the steps an
uninterrupted run would have taken.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from .metrics import dump_json

if TYPE_CHECKING:
    import torch

CHECKPOINTS_DIR = "checkpoints"
STATE_DIR = "training_state"
_NAME = re.compile(r"^step-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used to continue this run (or a run that would overwrite one)."""


class TrainerState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    """Optimizer steps taken."""
    epoch: int
    step_in_epoch: int
    """Where the next step starts: steps of ``epoch`` already taken."""
    total_steps: int
    trained_tokens: int
    tokens: int
    elapsed_s: float
    settings: dict[str, Any]
    data_fingerprint: str


def checkpoint_path(output_dir: Path, step: int) -> Path:
    return output_dir / CHECKPOINTS_DIR / f"step-{step:07d}"


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    root = output_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and (child / STATE_DIR / "state.json").is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, [int(k) for k in keys], position, has_gauss, gauss),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    output_dir: Path,
    state: TrainerState,
    *,
    write_model: Callable[[Path], None],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    keep: int | None,
) -> Path:
    """Write the checkpoint of ``state.step`` atomically; prune to the newest ``keep``."""
    import torch

    final = checkpoint_path(output_dir, state.step)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        write_model(staging)
        states = staging / STATE_DIR
        states.mkdir()
        torch.save(optimizer.state_dict(), states / "optimizer.pt")
        torch.save(scheduler.state_dict(), states / "scheduler.pt")
        torch.save(_rng_state(), states / "rng.pt")
        dump_json(state.model_dump(mode="json"), states / "state.json")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if keep is not None:
        for _, old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(checkpoint: Path) -> TrainerState:
    return TrainerState.model_validate_json(
        (checkpoint / STATE_DIR / "state.json").read_text(encoding="utf-8")
    )


def check_compatible(state: TrainerState, settings: dict[str, Any], fingerprint: str) -> None:
    """Refuse to continue a run with other data or other settings: its data position and
    schedule would mean something else, and the loss curve would silently change."""
    if state.data_fingerprint != fingerprint:
        raise CheckpointError(
            "the samples differ from those the checkpoint was trained on; "
            "resume with the same samples or start a new output directory"
        )
    changed = sorted(
        key
        for key in set(settings) | set(state.settings)
        if settings.get(key) != state.settings.get(key)
    )
    if changed:
        raise CheckpointError(
            f"settings changed since the checkpoint: {', '.join(changed)}; "
            "resume with the same settings or start a new output directory"
        )


def load_optimizer_state(
    checkpoint: Path, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Load optimizer and scheduler state; return the random generators' state, to be restored
    by the caller once all set-up (which may draw random numbers) is done."""
    import torch

    states = checkpoint / STATE_DIR
    optimizer.load_state_dict(torch.load(states / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(states / "scheduler.pt", weights_only=True))
    rng: dict[str, Any] = torch.load(states / "rng.pt", weights_only=True)
    return rng
