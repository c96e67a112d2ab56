"""The RL policy loss as pure functions over per-token tensors, normalised in one place.

Three log-probabilities meet here, and mixing them up is the classic RL-trainer bug:

* ``logprobs`` — the trainer's CURRENT policy π_θ, with gradient;
* ``old_logprobs`` — π_old, the trainer's policy when the step's data was fixed (detached). The
  PPO ratio ``ρ = π_θ / π_old`` is taken against it. For the usual fully on-policy, one-update
  step π_old IS the current model, so ``old_logprobs=None`` means ``logprobs.detach()``: ρ = 1,
  nothing is clipped and the gradient is ``A · ∇log π_θ``. With several updates on one batch, the
  caller computes π_old once, before the first update;
* ``rollout_logprobs`` — what the inference engine reported when it sampled the tokens. Even with
  the same weights it differs from π_old (other kernels, precision, a stale policy version in async
  RL), so the sampled tokens come from the wrong distribution; truncated importance sampling (TIS)
  re-weights each token's loss by ``min(π_old / π_rollout, cap)`` (detached).

Per token: ``ℓ_t = w_t · max(−ρ_t A_t, −clip(ρ_t, 1 − ε_low, 1 + ε_high) A_t) + β · k3_t`` where
``w_t`` is the TIS weight and ``k3_t = π_ref/π_θ − log(π_ref/π_θ) − 1`` the KL estimator to a
reference model (β = 0, off, by default — as in DAPO, DeepSWE, Nebius and TRL; turning it on
needs reference log-probs, and is explicit). ``ε_high > ε_low`` ("clip-higher") lets unlikely
tokens gain probability faster than likely ones lose it, which keeps entropy from collapsing.

Aggregation: the step loss is ``Σ_t c_t ℓ_t`` over every trained token of the optimizer step, where
the coefficients ``c_t`` (:func:`aggregation_weights`) come from counts over the WHOLE step
(:class:`LossNormalizers`), never over one micro-batch. Each micro-batch then contributes its own
partial sum, and the summed loss and gradients are the same however the step is split:

* ``token_mean`` (DAPO, Nebius): ``c_t = 1 / (trained tokens of the step)``;
* ``seq_mean_token_sum`` (DeepSWE): ``c_t = 1 / (sequences of the step)``;
* ``seq_mean_token_mean`` (original GRPO): ``c_t = 1 / (sequences · trained tokens of t's sequence)``;
* ``token_sum_constant`` (Dr.GRPO): ``c_t = 1 / constant``, a number fixed in the configuration
  (Dr.GRPO uses the generation budget times the sequences per step) so that no sequence's
  length changes the weight of another's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import torch

Aggregation = Literal[
    "token_mean", "seq_mean_token_sum", "seq_mean_token_mean", "token_sum_constant"
]


class PolicyLossConfig(BaseModel):
    """The clipped policy objective and how it is aggregated."""

    model_config = ConfigDict(extra="forbid")

    clip_low: float = Field(default=0.2, ge=0, lt=1)
    """ε_low: the ratio is clipped below at ``1 − clip_low``."""
    clip_high: float = Field(default=0.28, ge=0)
    """ε_high: the ratio is clipped above at ``1 + clip_high`` (clip-higher when > ``clip_low``)."""
    aggregation: Aggregation = "token_mean"
    loss_constant: float | None = Field(default=None, gt=0)
    """The divisor of the step's token sum under ``token_sum_constant`` (required there)."""
    kl_coef: float = Field(default=0.0, ge=0)
    """β of the k3 KL penalty to a reference model; 0 turns the reference off entirely."""
    tis_cap: float | None = Field(default=2.0, gt=0)
    """Cap of the truncated importance weight π_old / π_rollout; ``None`` turns TIS off."""

    @model_validator(mode="after")
    def _constant_when_needed(self) -> PolicyLossConfig:
        if self.aggregation == "token_sum_constant" and self.loss_constant is None:
            raise ValueError("aggregation 'token_sum_constant' needs loss_constant")
        return self


@dataclass(frozen=True)
class LossNormalizers:
    """Counts over the WHOLE optimizer step, computed before any micro-batch runs."""

    tokens: int
    """Trained tokens of the step."""
    sequences: int
    """Sequences of the step with at least one trained token."""
    constant: float | None = None

    @classmethod
    def from_counts(
        cls, sequence_tokens: Sequence[int], constant: float | None = None
    ) -> LossNormalizers:
        """From the trained-token count of every sequence of the step."""
        return cls(sum(sequence_tokens), sum(1 for n in sequence_tokens if n > 0), constant)


def aggregation_weights(
    aggregation: Aggregation,
    sequence_tokens: Sequence[int],
    normalizers: LossNormalizers,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The coefficient ``c_t`` of every trained token of one micro-batch, in target order.

    ``sequence_tokens`` holds the trained-token count of each of the micro-batch's sequences in
    the order their tokens appear (a sequence is never split across micro-batches, so its count
    here is its whole count). Every other number comes from ``normalizers``.
    """
    import torch

    total = sum(sequence_tokens)
    if aggregation == "token_mean":
        return torch.full((total,), 1.0 / max(normalizers.tokens, 1), device=device)
    if aggregation == "seq_mean_token_sum":
        return torch.full((total,), 1.0 / max(normalizers.sequences, 1), device=device)
    if aggregation == "seq_mean_token_mean":
        counts = torch.tensor(list(sequence_tokens), dtype=torch.long, device=device)
        per_sequence = 1.0 / (max(normalizers.sequences, 1) * counts.clamp(min=1).double())
        return per_sequence.float().repeat_interleave(counts)
    if aggregation == "token_sum_constant":
        if normalizers.constant is None:
            raise ValueError("aggregation 'token_sum_constant' needs a constant")
        return torch.full((total,), 1.0 / normalizers.constant, device=device)
    raise ValueError(f"unknown aggregation {aggregation!r}")


@dataclass
class LossStats:
    """Token-level sums of one or more micro-batches; add them up, then :meth:`summary`."""

    tokens: int = 0
    clipped_low: float = 0.0
    """Tokens with A < 0 whose ratio fell below 1 − ε_low (their gradient is cut)."""
    clipped_high: float = 0.0
    """Tokens with A > 0 whose ratio rose above 1 + ε_high."""
    ratio: float = 0.0
    approx_kl: float = 0.0
    """k3 estimate of KL(π_old ‖ π_θ): how far the update has moved the policy."""
    tis_truncated: float = 0.0
    """Tokens whose importance weight π_old / π_rollout exceeded the cap."""
    tis_weight: float = 0.0
    ref_kl: float = 0.0

    def __add__(self, other: LossStats) -> LossStats:
        return LossStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def summary(self) -> dict[str, float]:
        """Per-token means (fractions for the counts), for a step's log."""
        n = max(self.tokens, 1)
        return {
            "clip_low_fraction": self.clipped_low / n,
            "clip_high_fraction": self.clipped_high / n,
            "ratio_mean": self.ratio / n,
            "approx_kl": self.approx_kl / n,
            "tis_truncated_fraction": self.tis_truncated / n,
            "tis_weight_mean": self.tis_weight / n,
            "ref_kl": self.ref_kl / n,
        }


@dataclass(frozen=True)
class PolicyLoss:
    loss: torch.Tensor
    """``Σ_t c_t ℓ_t`` over the given tokens: this micro-batch's share of the step loss."""
    stats: LossStats


def ppo_clip_token_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token ``max(−ρA, −clip(ρ, 1 − clip_low, 1 + clip_high)A)`` and the ratio ``ρ``."""
    import torch

    ratio = torch.exp(logprobs - old_logprobs)
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(-ratio * advantages, -clipped * advantages), ratio


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token ``π_ref/π − log(π_ref/π) − 1`` (≥ 0, unbiased for KL(π ‖ π_ref) under π)."""
    import torch

    log_ratio = ref_logprobs - logprobs
    return torch.exp(log_ratio) - log_ratio - 1.0


def truncated_importance_weights(
    old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, cap: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Detached ``min(π_old / π_rollout, cap)`` per token, and which tokens the cap cut.

    A NaN rollout log-prob (the engine did not record one) gives weight 1: no correction.
    """
    import torch

    raw = torch.exp(old_logprobs.detach() - rollout_logprobs)
    known = ~torch.isnan(rollout_logprobs)
    raw = torch.where(known, raw, torch.ones_like(raw))
    return raw.clamp(max=cap), known & (raw > cap)


def policy_loss(
    logprobs: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    config: PolicyLossConfig,
    *,
    old_logprobs: torch.Tensor | None = None,
    rollout_logprobs: torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
) -> PolicyLoss:
    """This micro-batch's share of the step's policy loss, and its token statistics.

    All tensors are 1-D over the micro-batch's trained tokens in the same order; ``weights``
    come from :func:`aggregation_weights`. See the module docstring for which log-probs are which.
    """
    import torch

    old = logprobs.detach() if old_logprobs is None else old_logprobs.detach()
    advantages = advantages.to(logprobs.dtype)
    token_loss, ratio = ppo_clip_token_loss(
        logprobs, old, advantages, config.clip_low, config.clip_high
    )
    zero = logprobs.new_zeros(logprobs.shape)
    tis_weight, truncated = torch.ones_like(zero), zero.bool()
    if config.tis_cap is not None and rollout_logprobs is not None:
        tis_weight, truncated = truncated_importance_weights(old, rollout_logprobs, config.tis_cap)
        token_loss = token_loss * tis_weight
    ref_kl = zero
    if config.kl_coef > 0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs reference log-probs")
        ref_kl = k3_kl(logprobs, ref_logprobs.detach())
        token_loss = token_loss + config.kl_coef * ref_kl
    loss = (token_loss * weights.to(token_loss.dtype)).sum()
    with torch.no_grad():
        log_ratio = logprobs.detach() - old
        sums = torch.stack(
            [
                ((ratio < 1.0 - config.clip_low) & (advantages < 0)).sum().to(ratio.dtype),
                ((ratio > 1.0 + config.clip_high) & (advantages > 0)).sum().to(ratio.dtype),
                ratio.sum(),
                (torch.exp(log_ratio) - 1.0 - log_ratio).sum(),
                truncated.sum().to(ratio.dtype),
                tis_weight.sum(),
                ref_kl.detach().sum(),
            ]
        )
    stats = LossStats(int(logprobs.numel()), *(float(v) for v in sums.double().tolist()))
    return PolicyLoss(loss, stats)
