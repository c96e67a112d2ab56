"""The RL math by hand: advantages of every estimator, the clipped policy loss in every
aggregation, KL, truncated importance sampling, reward shapers and the filters around them."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from pydantic import ValidationError

from agentkit.training.advantages import (
    AdvantageConfig,
    RLSample,
    assign_advantages,
    broadcast_advantage,
    group_advantages,
)
from agentkit.training.rl_loss import (
    LossNormalizers,
    LossStats,
    PolicyLossConfig,
    aggregation_weights,
    policy_loss,
)
from agentkit.training.rl_shaping import (
    CurriculumConfig,
    ShapingConfig,
    compact_filter,
    curriculum_tasks,
    drop_zero_advantage_groups,
    overlong_penalty,
    patch_similarity_reward,
    shape_rewards,
    step_penalty,
)
from agentkit.training.samples import TokenSample
from agentkit.types import ExitStatus

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="no torch")


def sample(task: str, trajectory: str, reward: float | None, mask: list[int]) -> TokenSample:
    return TokenSample(task_id=task, trajectory_id=trajectory, source="recorded",
                       input_ids=list(range(1, len(mask) + 1)), loss_mask=mask, reward=reward)  # fmt: skip


# ---------------------------------------------------------------- advantages


def test_advantages_of_every_mode_by_hand() -> None:
    rewards = [1.0, 0.0, 0.0]  # mean 1/3; centred 2/3, -1/3, -1/3; sample std sqrt(1/3)
    std = (1 / 3) ** 0.5
    assert group_advantages(rewards, "dr_grpo") == pytest.approx([2 / 3, -1 / 3, -1 / 3])
    assert group_advantages(rewards, "rloo") == pytest.approx([1.0, -0.5, -0.5])  # r - mean(others)
    grpo = group_advantages(rewards, "grpo", eps=0.0)
    assert grpo == pytest.approx([(2 / 3) / std, (-1 / 3) / std, (-1 / 3) / std])
    assert group_advantages(rewards, "grpo", eps=0.1) == pytest.approx(
        [(2 / 3) / (std + 0.1), (-1 / 3) / (std + 0.1), (-1 / 3) / (std + 0.1)]
    )
    four = group_advantages([1.0, 0.0, 0.0, 1.0], "grpo", eps=0.0)  # sample std sqrt(1/3)
    assert four == pytest.approx([0.5 / std, -0.5 / std, -0.5 / std, 0.5 / std])


@pytest.mark.parametrize("mode", ["grpo", "dr_grpo", "rloo"])
def test_one_sample_and_all_equal_groups_get_exactly_zero(mode: Any) -> None:
    assert group_advantages([1.0], mode) == [0.0]
    assert group_advantages([], mode) == []
    assert group_advantages([0.1, 0.1, 0.1], mode) == [0.0, 0.0, 0.0]  # no residue / eps


def test_negative_scale_shrinks_only_the_advantages_below_the_group_mean() -> None:
    samples = [sample("a", f"a{i}", r, [0, 1]) for i, r in enumerate([1.0, 0.0, 0.0, 0.0])]
    full = [s.advantage for s in assign_advantages(samples, AdvantageConfig(mode="dr_grpo"))]
    assert full == pytest.approx([0.75, -0.25, -0.25, -0.25])
    quarter = assign_advantages(samples, AdvantageConfig(mode="dr_grpo", negative_scale=0.25))
    assert [s.advantage for s in quarter] == pytest.approx([0.75, -0.0625, -0.0625, -0.0625])
    positive_only = assign_advantages(samples, AdvantageConfig(negative_scale=0.0))
    assert [s.advantage > 0 for s in positive_only] == [True, False, False, False]
    assert [s.advantage for s in positive_only[1:]] == [0.0, 0.0, 0.0]
    with pytest.raises(ValidationError):
        AdvantageConfig(negative_scale=1.5)


@needs_torch
def test_tensor_rewards_give_a_tensor() -> None:
    import torch

    out = group_advantages(torch.tensor([1.0, 0.0, 0.0]), "rloo")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.tolist() == pytest.approx([1.0, -0.5, -0.5])


def test_assign_advantages_groups_by_task_and_counts_a_trajectory_once() -> None:
    samples = [
        sample("a", "a1", 1.0, [0, 1, 1]),
        sample("a", "a1", 1.0, [0, 0, 1, 1]),  # a second branch of the same trajectory
        sample("a", "a2", 0.0, [0, 1]),
        sample("b", "b1", 1.0, [0, 1]),  # alone in its group
    ]
    out = assign_advantages(samples, AdvantageConfig(mode="dr_grpo"))
    assert [s.advantage for s in out] == pytest.approx([0.5, 0.5, -0.5, 0.0])  # a: mean 0.5
    assert [s.group for s in out] == ["a", "a", "a", "b"]
    assert out[1].token_advantages == [0.0, 0.0, 0.5, 0.5]
    assert broadcast_advantage(2.0, [1, 0, 1]) == [2.0, 0.0, 2.0]
    # an explicit group key: all four trajectories in one group (a1 counted once)
    pooled = assign_advantages(samples, AdvantageConfig(mode="rloo"), group_key=lambda s: "all")
    assert [s.advantage for s in pooled] == pytest.approx([0.5, 0.5, -1.0, 0.5])
    with pytest.raises(ValueError, match="one reward"):
        assign_advantages([sample("a", "x", 1.0, [0, 1]), sample("a", "x", 0.0, [0, 1])])
    with pytest.raises(ValueError, match="no reward"):
        assign_advantages([sample("a", "x", None, [0, 1])])
    with pytest.raises(ValidationError):
        AdvantageConfig(mode="grpo", centre=True)  # type: ignore[call-arg]


# ---------------------------------------------------------------- the policy loss

# Two sequences: A (advantage +1, 3 tokens) and B (advantage -1, 2 tokens). Ratios π/π_old:
#   A: 1.5 (above 1 + 0.28: clipped high, loss -1.28), 1.0 (loss -1), 0.5 (A > 0: min picks
#      the unclipped 0.5, loss -0.5)
#   B: 0.5 (below 1 - 0.2: clipped low, loss +0.8), 1.4 (A < 0: max picks 1.4, loss +1.4)
RATIOS = [1.5, 1.0, 0.5, 0.5, 1.4]
ADVANTAGES = [1.0, 1.0, 1.0, -1.0, -1.0]
TOKEN_LOSS = [-1.28, -1.0, -0.5, 0.8, 1.4]
LOGPROB_GRAD = [0.0, -1.0, -0.5, 0.0, 1.4]  # d token loss / d logp: -ρA unclipped, 0 clipped
LENGTHS = [3, 2]
EXPECTED = {
    "token_mean": (sum(TOKEN_LOSS) / 5, [1 / 5] * 5),
    "seq_mean_token_sum": (sum(TOKEN_LOSS) / 2, [1 / 2] * 5),
    "seq_mean_token_mean": (
        (sum(TOKEN_LOSS[:3]) / 3 + sum(TOKEN_LOSS[3:]) / 2) / 2,
        [1 / 6] * 3 + [1 / 4] * 2,
    ),
    "token_sum_constant": (sum(TOKEN_LOSS) / 10, [1 / 10] * 5),
}


def two_sequences(config: PolicyLossConfig, parts: list[slice] | None = None) -> Any:
    """The loss and d loss / d logp, computed over ``parts`` as separate micro-batches."""
    import torch

    old = torch.tensor([-1.0, -2.0, -0.5, -1.5, -0.7], dtype=torch.float64)
    logp = (old + torch.tensor(RATIOS, dtype=torch.float64).log()).requires_grad_()
    advantages = torch.tensor(ADVANTAGES, dtype=torch.float64)
    normalizers = LossNormalizers.from_counts(LENGTHS, config.loss_constant)
    total, stats = torch.zeros((), dtype=torch.float64), LossStats()
    for part, lengths in zip(
        parts or [slice(0, 5)], [[3], [2]] if parts else [LENGTHS], strict=True
    ):
        weights = aggregation_weights(config.aggregation, lengths, normalizers).double()
        out = policy_loss(logp[part], advantages[part], weights, config, old_logprobs=old[part])
        out.loss.backward()
        total, stats = total + out.loss.detach(), stats + out.stats
    assert logp.grad is not None
    return total.item(), logp.grad.tolist(), stats


@needs_torch
@pytest.mark.parametrize("aggregation", list(EXPECTED))
def test_hand_computed_loss_of_every_aggregation(aggregation: Any) -> None:
    config = PolicyLossConfig(aggregation=aggregation, loss_constant=10.0)
    loss, grad, stats = two_sequences(config)
    expected_loss, weights = EXPECTED[aggregation]
    assert loss == pytest.approx(expected_loss)
    assert grad == pytest.approx([w * g for w, g in zip(weights, LOGPROB_GRAD, strict=True)])
    summary = stats.summary()
    assert summary["clip_low_fraction"] == pytest.approx(1 / 5)
    assert summary["clip_high_fraction"] == pytest.approx(1 / 5)
    assert summary["ratio_mean"] == pytest.approx(sum(RATIOS) / 5)
    # k3 estimate of KL(old || new): (ρ - 1) - log ρ, averaged
    import math

    assert summary["approx_kl"] == pytest.approx(sum(r - 1 - math.log(r) for r in RATIOS) / 5)
    # the same step as two micro-batches (A, then B) gives the same loss and gradient
    split_loss, split_grad, split_stats = two_sequences(config, [slice(0, 3), slice(3, 5)])
    assert split_loss == pytest.approx(loss) and split_grad == pytest.approx(grad)
    assert split_stats.summary() == pytest.approx(summary)


def test_config_checks() -> None:
    with pytest.raises(ValidationError, match="loss_constant"):
        PolicyLossConfig(aggregation="token_sum_constant")
    with pytest.raises(ValidationError):
        PolicyLossConfig(clip_ratio=0.2)  # type: ignore[call-arg]
    defaults = PolicyLossConfig()
    assert (defaults.clip_low, defaults.clip_high, defaults.kl_coef) == (0.2, 0.28, 0.0)
    assert defaults.aggregation == "token_mean" and defaults.tis_cap == 2.0


@needs_torch
def test_on_policy_ratio_is_one_and_nothing_is_clipped() -> None:
    import torch

    logp = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    advantages = torch.tensor([2.0, 2.0, -1.0])
    weights = torch.full((3,), 1 / 3)
    out = policy_loss(logp, advantages, weights, PolicyLossConfig())  # old = logp detached
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-(2 + 2 - 1) / 3)
    assert logp.grad is not None and logp.grad.tolist() == pytest.approx([-2 / 3, -2 / 3, 1 / 3])
    summary = out.stats.summary()
    assert summary["ratio_mean"] == 1.0 and summary["approx_kl"] == 0.0
    assert summary["clip_low_fraction"] == summary["clip_high_fraction"] == 0.0


@needs_torch
def test_kl_is_off_by_default_and_k3_when_on() -> None:
    import math

    import torch

    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    ref = torch.tensor([-1.5, -1.0])
    advantages = torch.tensor([1.0, 1.0])
    weights = torch.full((2,), 0.5)
    plain = policy_loss(logp, advantages, weights, PolicyLossConfig())
    ignored = policy_loss(logp, advantages, weights, PolicyLossConfig(), ref_logprobs=ref)
    assert ignored.loss.item() == plain.loss.item() and ignored.stats.ref_kl == 0.0

    on = policy_loss(logp, advantages, weights, PolicyLossConfig(kl_coef=0.1), ref_logprobs=ref)
    on.loss.backward()
    d = [-0.5, 1.0]  # ref - logp
    k3 = [math.exp(x) - x - 1 for x in d]
    assert on.loss.item() == pytest.approx(-1.0 + 0.1 * sum(k3) / 2)
    assert on.stats.summary()["ref_kl"] == pytest.approx(sum(k3) / 2)
    # d k3 / d logp = 1 - exp(ref - logp)
    expected = [0.5 * (-1.0 + 0.1 * (1 - math.exp(x))) for x in d]
    assert logp.grad is not None and logp.grad.tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(logp, advantages, weights, PolicyLossConfig(kl_coef=0.1))


@needs_torch
def test_truncated_importance_sampling_of_the_rollout_mismatch() -> None:
    import math

    import torch

    logp = torch.tensor([-1.0, -1.0, -1.0], requires_grad=True)  # π_old = π (on-policy)
    # π_old / π_rollout = 3 (capped at 2), 0.5, unknown (weight 1)
    rollout = torch.tensor([-1.0 - math.log(3.0), -1.0 + math.log(2.0), math.nan])
    advantages = torch.tensor([1.0, 1.0, 1.0])
    weights = torch.ones(3)
    out = policy_loss(logp, advantages, weights, PolicyLossConfig(), rollout_logprobs=rollout)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(-(2.0 + 0.5 + 1.0))
    assert logp.grad is not None and logp.grad.tolist() == pytest.approx([-2.0, -0.5, -1.0])
    summary = out.stats.summary()
    assert summary["tis_truncated_fraction"] == pytest.approx(1 / 3)
    assert summary["tis_weight_mean"] == pytest.approx(3.5 / 3)
    off = policy_loss(logp, advantages, weights, PolicyLossConfig(tis_cap=None),
                      rollout_logprobs=rollout)  # fmt: skip
    assert off.loss.item() == pytest.approx(-3.0)
    # the weight compares π_old (not π) with the rollout: with π_old given, π does not move it
    old = torch.tensor([-1.0, -1.0, -1.0])
    shifted = policy_loss(logp.detach() + 0.01, advantages, weights, PolicyLossConfig(),
                          old_logprobs=old, rollout_logprobs=rollout)  # fmt: skip
    assert shifted.stats.tis_weight == pytest.approx(3.5)


# ---------------------------------------------------------------- shaping and filters


def rl(group: str, trajectory: str, advantage: float, mask: list[int] | None = None) -> RLSample:
    return RLSample(sample=sample(group, trajectory, 0.0, mask or [0, 1, 1]),
                    advantage=advantage, group=group)  # fmt: skip


def test_zero_advantage_groups_are_dropped() -> None:
    samples = [rl("solved", "s1", 0.0), rl("solved", "s2", 0.0), rl("mixed", "m1", 0.7),
               rl("mixed", "m2", 0.0), rl("alone", "x", 0.0)]  # fmt: skip
    kept = drop_zero_advantage_groups(samples)
    assert [s.sample.trajectory_id for s in kept] == ["m1", "m2"]
    # from rewards: all-success and all-failure groups have zero advantages
    rewarded = [sample("a", "a1", 1.0, [0, 1]), sample("a", "a2", 1.0, [0, 1]),
                sample("b", "b1", 0.0, [0, 1]), sample("b", "b2", 0.0, [0, 1]),
                sample("c", "c1", 1.0, [0, 1]), sample("c", "c2", 0.0, [0, 1])]  # fmt: skip
    kept = drop_zero_advantage_groups(assign_advantages(rewarded))
    assert [s.sample.trajectory_id for s in kept] == ["c1", "c2"]


def test_compact_filter_masks_or_drops_cut_off_runs() -> None:
    samples = [rl("t", "done", 1.0), rl("t", "steps", -1.0), rl("t", "ctx", -1.0),
               rl("t", "unknown", 0.5)]  # fmt: skip
    statuses = {"done": ExitStatus.SUBMITTED, "steps": ExitStatus.STEP_LIMIT,
                "ctx": ExitStatus.CONTEXT_EXCEEDED}  # fmt: skip
    masked = compact_filter(samples, statuses, ShapingConfig())  # mask is the default
    assert [s.sample.loss_mask for s in masked] == [[0, 1, 1], [0, 0, 0], [0, 0, 0], [0, 1, 1]]
    assert masked[1].advantage == -1.0  # the run still counted in its group's baseline
    dropped = compact_filter(samples, statuses, ShapingConfig(compact="drop"))
    assert [s.sample.trajectory_id for s in dropped] == ["done", "unknown"]
    only_steps = ShapingConfig(compact="drop", compact_statuses=[ExitStatus.STEP_LIMIT])
    assert len(compact_filter(samples, statuses, only_steps)) == 3
    assert compact_filter(samples, statuses, ShapingConfig(compact="keep")) == samples


def test_curriculum_drops_easy_and_never_solved_tasks() -> None:
    history = {"easy": [True, True, True], "edge": [True, True, False], "hard": [False] * 4,
               "fresh": [], "mid": [True, False, False]}  # fmt: skip
    tasks = ["easy", "edge", "hard", "fresh", "mid", "unseen"]
    assert curriculum_tasks(tasks, history) == ["edge", "fresh", "mid", "unseen"]  # 2/3 is kept
    lenient = CurriculumConfig(max_solve_rate=1.0, drop_never_solved=False)
    assert curriculum_tasks(tasks, history, lenient) == tasks
    patient = CurriculumConfig(min_attempts=4)
    assert curriculum_tasks(tasks, history, patient) == ["easy", "edge", "fresh", "mid", "unseen"]


def test_step_penalty_is_linear_past_the_threshold() -> None:
    assert step_penalty(8, threshold=8, coef=0.05) == 0.0
    assert step_penalty(3, threshold=8, coef=0.05) == 0.0
    assert step_penalty(12, threshold=8, coef=0.05) == pytest.approx(0.2)


def test_overlong_penalty_by_hand() -> None:
    # L_max 100, L_buf 20: free up to 80 tokens, linear to the factor at 100, flat after
    assert overlong_penalty(80, 100, 20) == 0.0
    assert overlong_penalty(90, 100, 20) == pytest.approx(0.5)
    assert overlong_penalty(100, 100, 20, factor=2.0) == pytest.approx(2.0)
    assert overlong_penalty(130, 100, 20) == pytest.approx(1.0)


def test_shape_rewards_per_trajectory() -> None:
    samples = [
        sample("t", "long", 1.0, [0] * 45 + [1] * 5),
        sample("t", "long", 1.0, [0] * 60),  # its longest branch decides its length
        sample("t", "short", 1.0, [0, 1]),
    ]
    config = ShapingConfig(step_penalty_threshold=5, step_penalty_coef=0.1,
                           overlong_max_tokens=70, overlong_buffer=20)  # fmt: skip
    shaped = shape_rewards(samples, config, step_counts={"long": 8, "short": 2})
    long_reward = 1.0 - 0.3 - 0.5  # 3 turns over; 60 tokens is 10 into the 20-token buffer
    assert [s.reward for s in shaped] == pytest.approx([long_reward, long_reward, 1.0])
    assert samples[0].reward == 1.0  # copies, not changed in place
    assert shape_rewards(samples, ShapingConfig()) == samples  # nothing configured
    with pytest.raises(ValueError, match="turns"):
        shape_rewards(samples, config)
    with pytest.raises(ValidationError, match="exceeds"):
        ShapingConfig(overlong_max_tokens=10, overlong_buffer=20)


REFERENCE_PATCH = """diff --git a/calc.py b/calc.py
index 1234abc..5678def 100644
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


def test_patch_similarity_reward() -> None:
    assert patch_similarity_reward(REFERENCE_PATCH, REFERENCE_PATCH) == 1.0
    other_hashes = REFERENCE_PATCH.replace("1234abc..5678def", "9999999..0000000")
    assert patch_similarity_reward(other_hashes, REFERENCE_PATCH) == 1.0  # index lines ignored
    close = REFERENCE_PATCH.replace("a + b", "b + a")
    assert 0.9 < patch_similarity_reward(close, REFERENCE_PATCH) < 1.0
    far = REFERENCE_PATCH.replace("calc.py", "other.py").replace("a + b", "sum((a, b))")
    assert patch_similarity_reward(far, REFERENCE_PATCH) < patch_similarity_reward(
        close, REFERENCE_PATCH
    )
    for bad in (None, "", "  \n", "I fixed it!", "--- a/x\n+++ b/x\n no hunk header\n"):
        assert patch_similarity_reward(bad, REFERENCE_PATCH) == -1.0
