"""One RL optimizer step: micro-batches of advantage-weighted samples, the policy loss over the
whole step's normalisers, accumulated gradients, one clipped update.

The same shape as the SFT step (:mod:`.sft_step`), whose batching, chunked log-probs and update
it reuses: only the per-token values (advantages, rollout / old / reference log-probs) and the
loss differ. :func:`step_normalizers` counts the step's tokens and sequences before any forward
pass, so each micro-batch's loss is its exact share of the step loss and the accumulated gradient
does not depend on the micro-batching (:mod:`.rl_loss`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .advantages import RLSample
from .batching import (
    MicroBatch,
    MicroBatchPlan,
    collate,
    length_grouped_batches,
    packed_batches,
    trainable_targets,
)
from .logprobs import DEFAULT_CHUNK_TOKENS, batch_logprobs
from .rl_loss import (
    LossNormalizers,
    LossStats,
    PolicyLossConfig,
    aggregation_weights,
    policy_loss,
)
from .sft_step import apply_step

if TYPE_CHECKING:
    import torch


@dataclass
class RLMicroBatch:
    """A collated micro-batch and its per-trained-token values, all in target order."""

    batch: MicroBatch
    advantages: torch.Tensor
    rollout_logprobs: torch.Tensor
    """The inference engine's log-probs of the trained tokens; NaN where none was recorded."""
    sequence_tokens: list[int]
    """Trained tokens of each sequence in the micro-batch, in the order its tokens appear."""
    old_logprobs: torch.Tensor | None = None
    """π_old for the PPO ratio; ``None``: the current model (one on-policy update per batch)."""

    def to(self, device: torch.device | str) -> RLMicroBatch:
        old = None if self.old_logprobs is None else self.old_logprobs.to(device)
        return RLMicroBatch(
            self.batch.to(device),
            self.advantages.to(device),
            self.rollout_logprobs.to(device),
            self.sequence_tokens,
            old,
        )


@dataclass(frozen=True)
class RLStepResult:
    loss: float
    grad_norm: float
    stats: LossStats
    normalizers: LossNormalizers


def collate_rl(
    plan: MicroBatchPlan, samples: Sequence[RLSample], *, pad_id: int, packed: bool = False
) -> RLMicroBatch:
    """Collate the samples ``plan`` names (:func:`~.batching.collate`) and line up their
    advantages and rollout log-probs with the batch's targets (position ``t`` of a sample is a
    target when ``t ≥ 1`` and ``loss_mask[t] == 1``; targets run row by row, sample by sample)."""
    import torch

    tokens = [item.sample for item in samples]
    batch = collate(
        plan,
        [s.input_ids for s in tokens],
        [s.loss_mask for s in tokens],
        pad_id=pad_id,
        packed=packed,
    )
    advantages: list[float] = []
    rollout: list[float] = []
    sequence_tokens: list[int] = []
    for row in plan:
        for index in row:
            sample = tokens[index]
            positions = [t for t in range(1, len(sample)) if sample.loss_mask[t]]
            advantages.extend([samples[index].advantage] * len(positions))
            recorded = sample.logprobs
            rollout.extend(math.nan if recorded is None else recorded[t] for t in positions)
            sequence_tokens.append(len(positions))
    return RLMicroBatch(
        batch,
        torch.tensor(advantages, dtype=torch.float32),
        torch.tensor(rollout, dtype=torch.float32),
        sequence_tokens,
    )


def rl_micro_batches(
    samples: Sequence[RLSample],
    *,
    pad_id: int,
    micro_batch_size: int | None = None,
    micro_batch_tokens: int | None = None,
    pack_length: int | None = None,
    seed: int = 0,
) -> list[RLMicroBatch]:
    """All of ``samples`` as the micro-batches of one optimizer step: length-grouped, or packed
    into rows of ``pack_length`` tokens (:mod:`.batching`). Samples without a trainable token
    (e.g. compact-masked) are left out: they would cost a forward pass and change nothing."""
    kept = [item for item in samples if trainable_targets(item.sample.loss_mask) > 0]
    lengths = [len(item.sample) for item in kept]
    if pack_length is None:
        plans = length_grouped_batches(
            lengths, micro_batch_size=micro_batch_size, micro_batch_tokens=micro_batch_tokens,
            seed=seed,
        )  # fmt: skip
    else:
        plans = packed_batches(
            lengths, pack_length=pack_length, micro_batch_size=micro_batch_size,
            micro_batch_tokens=micro_batch_tokens, seed=seed,
        )  # fmt: skip
    packed = pack_length is not None
    return [collate_rl(plan, kept, pad_id=pad_id, packed=packed) for plan in plans]


def step_normalizers(
    micro_batches: Sequence[RLMicroBatch], constant: float | None = None
) -> LossNormalizers:
    """The whole step's trained tokens and sequences (and the configured constant)."""
    counts = [n for batch in micro_batches for n in batch.sequence_tokens]
    return LossNormalizers.from_counts(counts, constant)


def with_old_logprobs(
    model: torch.nn.Module,
    micro_batches: Sequence[RLMicroBatch],
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> list[RLMicroBatch]:
    """The micro-batches with π_old fixed to ``model``'s current log-probs (no gradient), for
    taking several updates on one batch: compute this once, before the first update."""
    import torch

    with torch.no_grad():
        return [
            replace(mb, old_logprobs=batch_logprobs(model, mb.batch, chunk_tokens).detach())
            for mb in micro_batches
        ]


def accumulate_policy_gradients(
    model: torch.nn.Module,
    micro_batches: Sequence[RLMicroBatch],
    config: PolicyLossConfig,
    *,
    normalizers: LossNormalizers | None = None,
    reference: torch.nn.Module | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> tuple[torch.Tensor, LossStats]:
    """Forward and backward over every micro-batch of one step; return the step loss and stats.

    ``normalizers`` default to :func:`step_normalizers` of ``micro_batches`` (pass them when one
    step's micro-batches are spread over several calls). ``reference`` is the frozen model of the
    KL penalty, needed only when ``config.kl_coef > 0``.
    """
    import torch

    if config.kl_coef > 0 and reference is None:
        raise ValueError("kl_coef > 0 needs a reference model")
    if normalizers is None:
        normalizers = step_normalizers(micro_batches, config.loss_constant)
    total = torch.zeros((), dtype=torch.float32)
    stats = LossStats()
    for mb in micro_batches:
        logprobs = batch_logprobs(model, mb.batch, chunk_tokens)
        ref = None
        if config.kl_coef > 0 and reference is not None:
            with torch.no_grad():
                ref = batch_logprobs(reference, mb.batch, chunk_tokens)
        weights = aggregation_weights(
            config.aggregation, mb.sequence_tokens, normalizers, device=logprobs.device
        )
        out = policy_loss(
            logprobs,
            mb.advantages.to(logprobs.device),
            weights,
            config,
            old_logprobs=None if mb.old_logprobs is None else mb.old_logprobs.to(logprobs.device),
            rollout_logprobs=mb.rollout_logprobs.to(logprobs.device),
            ref_logprobs=ref,
        )
        out.loss.backward()
        total = total.to(out.loss.device) + out.loss.detach()
        stats = stats + out.stats
    return total, stats


def rl_step(
    model: torch.nn.Module,
    micro_batches: Sequence[RLMicroBatch],
    config: PolicyLossConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    max_grad_norm: float | None = 1.0,
    reference: torch.nn.Module | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> RLStepResult:
    """One optimizer step of the policy loss over ``micro_batches``: accumulate, clip, update."""
    normalizers = step_normalizers(micro_batches, config.loss_constant)
    loss, stats = accumulate_policy_gradients(
        model,
        micro_batches,
        config,
        normalizers=normalizers,
        reference=reference,
        chunk_tokens=chunk_tokens,
    )
    parameters = [p for p in model.parameters() if p.requires_grad]
    norm = apply_step(parameters, optimizer, scheduler, max_grad_norm)
    return RLStepResult(float(loss), float(norm), stats, normalizers)


def rl_updates(
    model: torch.nn.Module,
    micro_batches: Sequence[RLMicroBatch],
    config: PolicyLossConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    updates: int = 1,
    max_grad_norm: float | None = 1.0,
    reference: torch.nn.Module | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> RLStepResult:
    """``updates`` optimizer steps on the same micro-batches (PPO epochs), the last one's result.

    π_old is fixed to the model's log-probs before the first step (:func:`with_old_logprobs`), so
    every later step's ratio is measured against the policy that the data is judged under and the
    clip stops a token's probability from running away. One update is exactly :func:`rl_step`.
    """
    if updates < 1:
        raise ValueError(f"updates must be at least 1, not {updates}")
    if updates > 1:
        micro_batches = with_old_logprobs(model, micro_batches, chunk_tokens=chunk_tokens)
    for _ in range(updates):
        result = rl_step(
            model, micro_batches, config, optimizer, scheduler, max_grad_norm=max_grad_norm,
            reference=reference, chunk_tokens=chunk_tokens,
        )  # fmt: skip
    return result
