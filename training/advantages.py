"""Group-relative advantages: how much better one rollout did than the others of its task.

A group is the G rollouts sampled for one task (or any other key the caller chooses); its own
rewards are the baseline, so no value model is needed. Three estimators:

* ``grpo`` — ``(r_i − mean) / (std + eps)``. ``std`` is the SAMPLE standard deviation (Bessel's
  ``n − 1``), the one ``torch.std`` gives by default and the one TRL and verl use, so advantages
  here match theirs number for number.
* ``dr_grpo`` — ``r_i − mean``: Dr.GRPO drops the division by ``std``, which up-weights groups
  whose rewards barely differ (too easy or too hard tasks) and biases the update.
* ``rloo`` — ``r_i − mean of the other G − 1 rewards`` = ``(r_i − mean) · G / (G − 1)``: the
  leave-one-out baseline (DeepSWE), unbiased because a rollout's baseline does not contain it.

A group of one rollout, and a group whose rewards are all equal, carry no signal: every
advantage is exactly 0 (not a rounding residue divided by ``eps``).

A trajectory may become several samples (where a chat template rewrote history, the sequence
branches): each trajectory counts ONCE in its group's statistics and every one of its samples
gets its advantage, broadcast to the action tokens (``loss_mask == 1``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from .samples import TokenSample

if TYPE_CHECKING:
    import torch

AdvantageMode = Literal["grpo", "dr_grpo", "rloo"]
GroupKey = Callable[[TokenSample], str]


class AdvantageConfig(BaseModel):
    """How rewards become advantages."""

    model_config = ConfigDict(extra="forbid")

    mode: AdvantageMode = "grpo"
    eps: float = Field(default=1e-6, gt=0)
    """Added to the standard deviation under ``grpo`` so a near-constant group stays finite."""
    negative_scale: float = Field(default=1.0, ge=0, le=1)
    """Every negative advantage is multiplied by this (the positive/negative weighting of
    W-REINFORCE): 1.0 is the estimator as defined; 0.0 learns only from the rollouts that beat
    their group (online rejection sampling). Below 1 a group's advantages no longer sum to 0,
    so the update also raises the likelihood of what the group's good rollouts share. A small
    policy whose failures are many different malformed replies learns faster at 0.25: pushing
    each rare mistake down moves probability mass nowhere in particular, while pulling the
    rewarded replies up moves it where it should go (docs/training.md, "Does RL raise the
    reward?")."""


class RLSample(BaseModel):
    """A token sample with the advantage its trajectory earned, ready for the policy loss.

    The rollout log-probabilities the policy ratio and truncated importance sampling need are the
    sample's own :attr:`TokenSample.logprobs` (recorded by the inference engine when it sampled).
    """

    model_config = ConfigDict(extra="forbid")

    sample: TokenSample
    advantage: float
    group: str
    """The key the advantage was computed within (the task id unless the caller chose another)."""

    @property
    def token_advantages(self) -> list[float]:
        """The advantage on every action token, 0.0 elsewhere."""
        return broadcast_advantage(self.advantage, self.sample.loss_mask)


def _sample_std(values: Sequence[float], mean: float) -> float:
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def _advantages(rewards: Sequence[float], mode: AdvantageMode, eps: float) -> list[float]:
    size = len(rewards)
    if size < 2 or all(r == rewards[0] for r in rewards):
        return [0.0] * size
    mean = sum(rewards) / size
    centred = [r - mean for r in rewards]
    if mode == "dr_grpo":
        return centred
    if mode == "rloo":
        return [c * size / (size - 1) for c in centred]
    std = _sample_std(rewards, mean)
    return [c / (std + eps) for c in centred]


@overload
def group_advantages(
    rewards: Sequence[float], mode: AdvantageMode = ..., eps: float = ...
) -> list[float]: ...
@overload
def group_advantages(
    rewards: torch.Tensor, mode: AdvantageMode = ..., eps: float = ...
) -> torch.Tensor: ...
def group_advantages(
    rewards: Sequence[float] | torch.Tensor, mode: AdvantageMode = "grpo", eps: float = 1e-6
) -> list[float] | torch.Tensor:
    """The advantages of ONE group's rewards under ``mode`` (see the module docstring).

    Plain floats give a list; a 1-D tensor gives a tensor of its dtype and device (computed in
    float64 on the host: a group is a handful of numbers).
    """
    if mode not in ("grpo", "dr_grpo", "rloo"):
        raise ValueError(f"unknown advantage mode {mode!r}")
    if isinstance(rewards, Sequence):
        return _advantages([float(r) for r in rewards], mode, eps)
    import torch

    values = rewards.detach().to("cpu", torch.float64).reshape(-1).tolist()
    return torch.tensor(_advantages(values, mode, eps), dtype=rewards.dtype, device=rewards.device)


def broadcast_advantage(advantage: float, loss_mask: Sequence[int]) -> list[float]:
    """``advantage`` on the action tokens (mask 1) and 0.0 on every other token."""
    return [advantage if m else 0.0 for m in loss_mask]


def _by_task(sample: TokenSample) -> str:
    return sample.task_id


def assign_advantages(
    samples: Sequence[TokenSample],
    config: AdvantageConfig | None = None,
    *,
    group_key: GroupKey | None = None,
) -> list[RLSample]:
    """Advantages for ``samples``, grouped by ``group_key`` (default: the task id), in input order.

    Each trajectory (``trajectory_id``) enters its group's statistics once, with its reward; all of
    its samples must carry that same reward. A sample without a reward is an error: an ungraded
    rollout would silently count as a failure.
    """
    config = config or AdvantageConfig()
    key = group_key or _by_task
    rewards: dict[str, dict[str, float]] = {}
    for sample in samples:
        if sample.reward is None:
            raise ValueError(f"sample of trajectory {sample.trajectory_id!r} has no reward")
        members = rewards.setdefault(key(sample), {})
        seen = members.setdefault(sample.trajectory_id, sample.reward)
        if seen != sample.reward:
            raise ValueError(
                f"trajectory {sample.trajectory_id!r} has samples with rewards {seen} and "
                f"{sample.reward}; a trajectory has one reward"
            )
    advantage: dict[tuple[str, str], float] = {}
    for group, by_trajectory in rewards.items():
        values = group_advantages(list(by_trajectory.values()), config.mode, config.eps)
        for trajectory, value in zip(by_trajectory, values, strict=True):
            advantage[group, trajectory] = value * config.negative_scale if value < 0 else value
    return [
        RLSample(
            sample=sample,
            advantage=advantage[key(sample), sample.trajectory_id],
            group=key(sample),
        )
        for sample in samples
    ]
