"""One RL optimizer step on a tiny random Qwen2 in float32 on the CPU: micro-batch invariance of
the loss and gradients in every aggregation, zero gradient where nothing is trained, the sign of
the update, and the on-policy first step."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agentkit.training.advantages import RLSample  # noqa: E402
from agentkit.training.batching import collate  # noqa: E402
from agentkit.training.logprobs import batch_logprobs  # noqa: E402
from agentkit.training.rl_loss import PolicyLossConfig  # noqa: E402
from agentkit.training.rl_step import (  # noqa: E402
    RLMicroBatch,
    accumulate_policy_gradients,
    collate_rl,
    rl_micro_batches,
    rl_step,
    rl_updates,
    step_normalizers,
    with_old_logprobs,
)
from agentkit.training.samples import TokenSample  # noqa: E402

VOCAB = 97
AGGREGATIONS = ["token_mean", "seq_mean_token_sum", "seq_mean_token_mean", "token_sum_constant"]


def tiny_qwen2(seed: int = 0) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    shape: dict[str, Any] = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        max_position_embeddings=256, tie_word_embeddings=False, pad_token_id=0,
        attn_implementation="sdpa", dtype="float32",
    )  # fmt: skip
    return Qwen2ForCausalLM(Qwen2Config(**shape)).train()


def perturbed(model: Any, scale: float, seed: int) -> Any:
    """A nearby policy: ``model`` with small noise on every weight (an "old" or reference model)."""
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    return other


def rl_samples(count: int, seed: int = 0) -> list[RLSample]:
    """Prompt tokens then one or two action spans, advantages of both signs, rollout log-probs
    recorded on the action tokens (0.0 elsewhere, as a backend records them)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        length = rng.randint(8, 24)
        ids = [rng.randrange(1, VOCAB) for _ in range(length)]
        mask = [0] * length
        start = rng.randint(2, length - 3)
        for t in range(start, min(length, start + rng.randint(2, 6))):
            mask[t] = 1
        if length - 1 > start + 7:
            mask[length - 1] = 1
        logprobs = [-rng.uniform(3.0, 6.5) if m else 0.0 for m in mask]
        token = TokenSample(task_id=f"t{n % 3}", trajectory_id=f"r{n}", source="recorded",
                            input_ids=ids, loss_mask=mask, logprobs=logprobs)  # fmt: skip
        out.append(RLSample(sample=token, advantage=rng.choice([-1.5, -0.5, 0.5, 1.0]),
                            group=token.task_id))  # fmt: skip
    return out


def split(samples: list[RLSample], rows: list[list[int]]) -> list[RLMicroBatch]:
    return [collate_rl([[i] for i in batch], samples, pad_id=0) for batch in rows]


def loss_and_grads(model: Any, batches: list[RLMicroBatch], config: PolicyLossConfig,
                   **kwargs: Any) -> tuple[float, dict[str, Any], Any]:  # fmt: skip
    model.zero_grad(set_to_none=True)
    loss, stats = accumulate_policy_gradients(model, batches, config, **kwargs)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(loss), grads, stats


def sequence_logprob(model: Any, item: RLSample) -> float:
    with torch.no_grad():
        batch = collate([[0]], [item.sample.input_ids], [item.sample.loss_mask], pad_id=0,
                        packed=False)  # fmt: skip
        return float(batch_logprobs(model, batch).sum())


def test_collate_rl_lines_values_up_with_the_targets() -> None:
    a = TokenSample(task_id="t", trajectory_id="a", source="recorded", input_ids=[5, 6, 7, 8],
                    loss_mask=[1, 0, 1, 1], logprobs=[-9.0, 0.0, -0.7, -0.8])  # fmt: skip
    b = TokenSample(task_id="t", trajectory_id="b", source="recorded", input_ids=[9, 10, 11],
                    loss_mask=[0, 1, 0])  # fmt: skip
    samples = [RLSample(sample=a, advantage=2.0, group="t"),
               RLSample(sample=b, advantage=-1.0, group="t")]  # fmt: skip
    mb = collate_rl([[1], [0]], samples, pad_id=0)
    assert mb.batch.target_ids.tolist() == [10, 7, 8]  # first token is never a target
    assert mb.advantages.tolist() == [-1.0, 2.0, 2.0]
    rollout = mb.rollout_logprobs.tolist()
    assert rollout[0] != rollout[0] and rollout[1:] == pytest.approx([-0.7, -0.8])  # NaN: none
    assert mb.sequence_tokens == [1, 2]
    packed = collate_rl([[0, 1]], samples, pad_id=0, packed=True)
    assert packed.advantages.tolist() == [2.0, 2.0, -1.0] and packed.sequence_tokens == [2, 1]


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_loss_and_gradients_do_not_depend_on_micro_batching(aggregation: Any) -> None:
    model = tiny_qwen2()
    old_model = perturbed(model, 0.03, seed=1)  # π_old ≠ π: ratios off 1, some tokens clipped
    samples = rl_samples(8, seed=1)
    config = PolicyLossConfig(aggregation=aggregation, loss_constant=50.0)
    one_by_eight = with_old_logprobs(old_model, split(samples, [list(range(8))]))
    four_by_two = with_old_logprobs(old_model, split(samples, [[i, i + 1] for i in range(0, 8, 2)]))
    loss_a, grads_a, stats_a = loss_and_grads(model, one_by_eight, config)
    loss_b, grads_b, stats_b = loss_and_grads(model, four_by_two, config)
    assert loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-7)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) == len(list(model.parameters()))
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-4, atol=1e-7), name
    summary = stats_a.summary()
    assert summary == pytest.approx(stats_b.summary(), rel=1e-5, abs=1e-7)
    assert summary["clip_low_fraction"] + summary["clip_high_fraction"] > 0
    assert summary["tis_truncated_fraction"] > 0  # rollout log-probs far below the policy's


def test_kl_penalty_is_micro_batch_invariant_too() -> None:
    model = tiny_qwen2()
    reference = perturbed(model, 0.05, seed=2)
    samples = rl_samples(6, seed=2)
    config = PolicyLossConfig(kl_coef=0.5)
    loss_a, grads_a, stats = loss_and_grads(model, split(samples, [list(range(6))]), config,
                                            reference=reference)  # fmt: skip
    loss_b, grads_b, _ = loss_and_grads(model, split(samples, [[0, 1, 2], [3], [4, 5]]), config,
                                        reference=reference)  # fmt: skip
    assert stats.summary()["ref_kl"] > 0
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-4, atol=1e-7), name
    no_kl, _, _ = loss_and_grads(model, split(samples, [list(range(6))]), PolicyLossConfig())
    assert loss_a > no_kl
    with pytest.raises(ValueError, match="reference"):
        accumulate_policy_gradients(model, split(samples, [[0]]), config)


def test_masked_tokens_get_zero_gradient() -> None:
    model = tiny_qwen2()
    samples = rl_samples(3, seed=3)
    captured: dict[str, Any] = {}

    def keep_hidden(module: Any, inputs: Any, output: Any) -> None:
        output.retain_grad()
        captured["hidden"] = output

    handle = model.model.norm.register_forward_hook(keep_hidden)
    (mb,) = split(samples, [[0, 1, 2]])
    loss_and_grads(model, [mb], PolicyLossConfig())
    handle.remove()
    grad = captured["hidden"].grad.abs().sum(-1).reshape(-1)
    predicts_trained = torch.zeros_like(grad, dtype=torch.bool)
    predicts_trained[mb.batch.target_index] = True
    assert grad[~predicts_trained].max() == 0  # prompts, observations, padding
    assert grad[predicts_trained].min() > 0


def test_compact_masked_samples_change_nothing() -> None:
    model = tiny_qwen2()
    samples = rl_samples(4, seed=4)
    masked = samples[3].sample.model_copy(update={"loss_mask": [0] * len(samples[3].sample)})
    with_masked = samples[:3] + [samples[3].model_copy(update={"sample": masked})]
    batches = rl_micro_batches(with_masked, pad_id=0, micro_batch_size=2)
    assert sum(len(mb.sequence_tokens) for mb in batches) == 3  # left out of the batches
    config = PolicyLossConfig(aggregation="seq_mean_token_mean")
    loss_a, grads_a, _ = loss_and_grads(model, batches, config)
    loss_b, grads_b, _ = loss_and_grads(model, split(samples, [[0, 1, 2]]), config)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-4, atol=1e-7), name


def one_update(model: Any, samples: list[RLSample]) -> Any:
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    batches = rl_micro_batches(samples, pad_id=0, micro_batch_size=2)
    return rl_step(model, batches, PolicyLossConfig(), optimizer, scheduler, max_grad_norm=1.0)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_advantage_sign_moves_the_sequence_logprob(sign: float) -> None:
    base = tiny_qwen2()
    x, y = rl_samples(2, seed=5)
    x = x.model_copy(update={"advantage": sign})
    y = y.model_copy(update={"advantage": -sign})
    for batch in ([x], [x, y]):  # alone, and next to a sequence pushed the other way
        model = copy.deepcopy(base)
        before = {id(s): sequence_logprob(model, s) for s in batch}
        one_update(model, batch)
        for item in batch:
            moved = sequence_logprob(model, item) - before[id(item)]
            assert moved * item.advantage > 0, (item.advantage, moved)


def test_on_policy_first_step_has_ratio_one_and_no_clipping() -> None:
    model = tiny_qwen2()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    samples = rl_samples(6, seed=6)
    result = one_update(model, samples)
    summary = result.stats.summary()
    assert summary["ratio_mean"] == 1.0 and summary["approx_kl"] == 0.0
    assert summary["clip_low_fraction"] == 0.0 and summary["clip_high_fraction"] == 0.0
    expected_tokens = sum(sum(s.sample.loss_mask[1:]) for s in samples)
    assert result.normalizers.tokens == result.stats.tokens == expected_tokens
    assert result.normalizers.sequences == 6 and result.grad_norm > 0
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    # π_old taken from the model itself (the first of several updates) is the same thing
    batches = with_old_logprobs(model, rl_micro_batches(samples, pad_id=0, micro_batch_size=3))
    _, _, stats = loss_and_grads(model, batches, PolicyLossConfig())
    assert stats.summary()["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert stats.clipped_low == stats.clipped_high == 0
    assert step_normalizers(batches).tokens == expected_tokens


def test_several_updates_judge_the_ratio_against_the_policy_before_the_first() -> None:
    samples = rl_samples(6, seed=7)
    config = PolicyLossConfig()

    def run(updates: int) -> tuple[Any, Any]:
        model = tiny_qwen2()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        batches = rl_micro_batches(samples, pad_id=0, micro_batch_size=3)
        return model, rl_updates(model, batches, config, optimizer, scheduler, updates=updates)

    once, first = run(1)
    plain = tiny_qwen2()
    optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-2, weight_decay=0.0)
    rl_step(plain, rl_micro_batches(samples, pad_id=0, micro_batch_size=3), config, optimizer,
            torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))  # fmt: skip
    assert all(
        torch.equal(a, b) for a, b in zip(once.parameters(), plain.parameters(), strict=True)
    )
    assert first.stats.summary()["ratio_mean"] == 1.0

    thrice, last = run(3)
    summary = last.stats.summary()
    assert summary["ratio_mean"] != pytest.approx(1.0, abs=1e-3)  # π_old stayed where it was
    assert summary["clip_low_fraction"] + summary["clip_high_fraction"] > 0
    moved = [sequence_logprob(thrice, s) - sequence_logprob(once, s) for s in samples]
    assert any(abs(m) > 1e-3 for m in moved)
    with pytest.raises(ValueError, match="at least 1"):
        rl_updates(thrice, [], config, optimizer, None, updates=0)
