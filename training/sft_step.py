"""One optimizer step of SFT: gradients accumulated over micro-batches, clipped, applied.

Kept apart from the run loop so tests can check the step's math directly: the loss and the
gradients of a step do not depend on how it is split into micro-batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .logprobs import DEFAULT_CHUNK_TOKENS, batch_logprobs
from .loss import sft_loss

if TYPE_CHECKING:
    import torch

    from .batching import MicroBatch
    from .sft_config import Schedule


@dataclass(frozen=True)
class LRSchedule:
    """Learning-rate factor per step: linear warm-up, then constant, linear or cosine decay to 0.

    A plain object (not a lambda) so that the scheduler's state can be saved and restored.
    """

    warmup_steps: int
    total_steps: int
    kind: Schedule

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "constant":
            return 1.0
        span = max(self.total_steps - self.warmup_steps, 1)
        done = min((step - self.warmup_steps) / span, 1.0)
        if self.kind == "linear":
            return 1.0 - done
        return 0.5 * (1.0 + math.cos(math.pi * done))


def build_optimizer(
    parameters: Sequence[torch.nn.Parameter],
    *,
    learning_rate: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    schedule: LRSchedule,
) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (fused kernels: one launch for all parameters instead of a Python loop over them)."""
    import torch

    optimizer = torch.optim.AdamW(
        list(parameters),
        lr=learning_rate,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        fused=True,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return optimizer, scheduler


def accumulate_gradients(
    model: torch.nn.Module,
    micro_batches: Sequence[MicroBatch],
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> torch.Tensor:
    """Forward and backward over every micro-batch of one step; return the step's loss.

    Each micro-batch's loss is divided by the trained tokens of the whole step, so the summed
    loss is the step's mean NLL per trained token and the accumulated gradient is its gradient.
    """
    import torch

    step_tokens = sum(batch.trained_tokens for batch in micro_batches)
    total = torch.zeros((), dtype=torch.float32)
    for batch in micro_batches:
        loss = sft_loss(batch_logprobs(model, batch, chunk_tokens), step_tokens)
        loss.backward()
        total = total.to(loss.device) + loss.detach()
    return total


def apply_step(
    parameters: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    max_grad_norm: float | None,
) -> torch.Tensor:
    """Clip (when asked), step the optimizer and the schedule, clear the gradients; return the
    gradient norm before clipping."""
    import torch

    limit = max_grad_norm if max_grad_norm is not None else math.inf
    norm = torch.nn.utils.clip_grad_norm_(parameters, limit, foreach=True)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
