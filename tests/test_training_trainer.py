"""The SFT trainer: batching plans, chunked log-probs, loss normalisation, one real optimizer step,
checkpoints and resume — on tiny random Qwen2 models, in float32 on the CPU."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agentkit.backends.tiny_model import build_tiny_chat_model  # noqa: E402
from agentkit.training.batching import (  # noqa: E402
    MicroBatch,
    collate,
    fit_to_length,
    group_steps,
    length_grouped_batches,
    pack_rows,
    packed_batches,
)
from agentkit.training.checkpoints import CheckpointError, list_checkpoints  # noqa: E402
from agentkit.training.logprobs import (  # noqa: E402
    batch_logprobs,
    linear_token_logprobs,
    targets_from_mask,
    token_logprobs,
)
from agentkit.training.loss import sft_loss  # noqa: E402
from agentkit.training.metrics import read_metrics  # noqa: E402
from agentkit.training.samples import TokenSample  # noqa: E402
from agentkit.training.sft_step import accumulate_gradients, apply_step  # noqa: E402
from agentkit.training.trainer import LoRAConfig, SFTConfig, train_sft  # noqa: E402

VOCAB = 97


def tiny_qwen2(seed: int = 0, *, tied: bool = False, attention: str = "sdpa") -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    shape: dict[str, Any] = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
        max_position_embeddings=256, tie_word_embeddings=tied, pad_token_id=0,
        attn_implementation=attention, dtype="float32",
    )  # fmt: skip
    return Qwen2ForCausalLM(Qwen2Config(**shape)).train()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sft") / "tiny-qwen2"
    tiny_qwen2(seed=3).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The same place as tests/test_tiny_model.py: whichever runs first builds, the other reuses.
    return build_tiny_chat_model(tmp_path_factory.getbasetemp() / "tiny-models" / "plain")


def random_samples(count: int, seed: int = 0, low: int = 6, high: int = 30) -> list[TokenSample]:
    """Prompt tokens (mask 0) followed by one or two action spans (mask 1)."""
    rng = random.Random(seed)
    samples = []
    for n in range(count):
        length = rng.randint(low, high)
        ids = [rng.randrange(1, VOCAB) for _ in range(length)]
        mask = [0] * length
        start = rng.randint(1, length - 2)
        for t in range(start, min(length, start + rng.randint(1, 6))):
            mask[t] = 1
        if rng.random() < 0.5 and length - 1 > start + 7:
            mask[length - 1] = 1
        samples.append(
            TokenSample(task_id="t", trajectory_id=f"r{n}", source="recorded",
                        input_ids=ids, loss_mask=mask)
        )  # fmt: skip
    return samples


def batches_of(samples: list[TokenSample], rows: list[list[list[int]]], packed: bool = False):
    ids = [s.input_ids for s in samples]
    masks = [s.loss_mask for s in samples]
    return [collate(plan, ids, masks, pad_id=0, packed=packed) for plan in rows]


def gradients(model: Any) -> dict[str, Any]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def step_loss_and_grads(model: Any, batches: list[MicroBatch]) -> tuple[Any, dict[str, Any]]:
    model.zero_grad(set_to_none=True)
    loss = accumulate_gradients(model, batches)
    return loss, gradients(model)


# ---------------------------------------------------------------- batching plans


def test_fit_to_length_truncates_or_drops_and_leaves_out_untrainable() -> None:
    ids = [[1, 2, 3, 4, 5, 6], [1, 2, 3], [1, 2, 3, 4, 5, 6], [7, 8]]
    masks = [[0, 1, 1, 0, 0, 0], [0, 0, 0], [0, 0, 0, 0, 1, 1], [1, 0]]
    cut = fit_to_length(ids, masks, 4, "truncate")
    # sample 2 loses its only trained tokens; sample 3's only 1 is its first token (no context)
    assert cut.input_ids == [[1, 2, 3]] and cut.loss_masks == [[0, 1, 1]]  # nothing after a 1
    assert (cut.source_index, cut.truncated, cut.dropped) == ([0], 2, 3)
    drop = fit_to_length(ids, masks, 4, "drop")
    assert drop.input_ids == [] and drop.dropped == 4


def test_length_grouped_batches_cover_every_sample_once_within_budget() -> None:
    lengths = [random.Random(i).randint(5, 300) for i in range(57)]
    plan = length_grouped_batches(lengths, micro_batch_size=4, micro_batch_tokens=600, seed=1)
    seen = sorted(i for batch in plan for row in batch for i in row)
    assert seen == list(range(57))
    for batch in plan:
        width = max(lengths[row[0]] for row in batch)
        assert len(batch) <= 4 and (len(batch) == 1 or len(batch) * width <= 600)
    again = length_grouped_batches(lengths, micro_batch_size=4, micro_batch_tokens=600, seed=1)
    other = length_grouped_batches(lengths, micro_batch_size=4, micro_batch_tokens=600, seed=2)
    assert plan == again and plan != other


def test_packing_respects_the_row_length() -> None:
    lengths = [random.Random(i).randint(5, 100) for i in range(40)]
    rows = pack_rows(lengths, 128, seed=0)
    assert sorted(i for row in rows for i in row) == list(range(40))
    assert all(sum(lengths[i] for i in row) <= 128 for row in rows)
    assert len(rows) < 40  # something was packed
    with pytest.raises(ValueError, match="does not fit"):
        pack_rows([200], 128, seed=0)
    plan = packed_batches(
        lengths, pack_length=128, micro_batch_size=2, micro_batch_tokens=None, seed=0
    )
    assert sorted(i for b in plan for row in b for i in row) == list(range(40))


def test_steps_by_count_or_by_trained_tokens() -> None:
    batches = [[[i]] for i in range(5)]
    assert len(group_steps(batches, [3] * 5, gradient_accumulation=2, step_tokens=None)) == 3
    by_tokens = group_steps(batches, [3, 1, 1, 5, 2], gradient_accumulation=1, step_tokens=4)
    assert by_tokens == [[[[0]], [[1]]], [[[2]], [[3]]], [[[4]]]]


def test_collate_targets_point_at_the_previous_position() -> None:
    ids = [[5, 6, 7, 8], [9, 10, 11]]
    masks = [[0, 0, 1, 1], [0, 1, 0]]
    unpacked = collate([[0], [1]], ids, masks, pad_id=0, packed=False)
    assert unpacked.input_ids.tolist() == [[5, 6, 7, 8], [9, 10, 11, 0]]
    assert unpacked.attention_mask is not None
    assert unpacked.target_index.tolist() == [1, 2, 4]  # row 1 starts at flat index 4
    assert unpacked.target_ids.tolist() == [7, 8, 10]
    assert unpacked.tokens == 7
    packed = collate([[0, 1]], ids, masks, pad_id=0, packed=True)
    assert packed.attention_mask is None
    assert packed.position_ids is not None
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    assert packed.target_index.tolist() == [1, 2, 4] and packed.target_ids.tolist() == [7, 8, 10]
    index, targets = targets_from_mask(torch.tensor(ids[0])[None], torch.tensor(masks[0])[None])
    assert index.tolist() == [1, 2] and targets.tolist() == [7, 8]


# ---------------------------------------------------------------- log-probs and the loss


def test_chunked_logprobs_match_full_logits_and_train_only_masked_positions() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(16, VOCAB, bias=True)
    hidden = torch.randn(3, 9, 16, requires_grad=True)
    ids = torch.randint(0, VOCAB, (3, 9))
    mask = (torch.rand(3, 9) < 0.4).long()
    index, targets = targets_from_mask(ids, mask)
    chunked = token_logprobs(hidden, head, index, targets, chunk_tokens=2)
    chunked.sum().backward()
    grad_hidden, grad_weight = hidden.grad.clone(), head.weight.grad.clone()

    hidden.grad = None
    head.zero_grad()
    logits = head(hidden)[:, :-1]  # the reference: full logits, log_softmax, gather
    full = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)[mask[:, 1:].bool()]
    full.sum().backward()
    assert torch.allclose(chunked, full, atol=1e-5)
    assert torch.allclose(grad_hidden, hidden.grad, atol=1e-5)
    assert torch.allclose(grad_weight, head.weight.grad, atol=1e-5)
    # a position whose next token is not trained gets exactly zero gradient
    predicts_trained = torch.zeros(3, 9, dtype=torch.bool)
    predicts_trained[:, :-1] = mask[:, 1:].bool()
    assert grad_hidden[~predicts_trained].abs().max() == 0
    assert grad_hidden[predicts_trained].abs().sum(-1).min() > 0


def test_any_head_module_gives_the_same_logprobs_and_gradients() -> None:
    from agentkit.training.logprobs import head_token_logprobs

    torch.manual_seed(1)
    linear = torch.nn.Linear(8, VOCAB)
    wrapped = torch.nn.Sequential(linear)  # not a Linear: the checkpointed path
    hidden = torch.randn(7, 8, requires_grad=True)
    targets = torch.randint(0, VOCAB, (7,))
    results = []
    for head in (linear, wrapped):
        hidden.grad = None
        linear.zero_grad()
        out = head_token_logprobs(hidden, head, targets, chunk_tokens=3)
        (out * torch.arange(7.0)).sum().backward()
        results.append((out.detach(), hidden.grad.clone(), linear.weight.grad.clone()))
    for fast, general in zip(*results, strict=True):
        assert torch.allclose(fast, general, atol=1e-6)


def test_linear_logprobs_of_no_targets_is_empty_and_differentiable() -> None:
    hidden = torch.randn(0, 8, requires_grad=True)
    out = linear_token_logprobs(hidden, torch.randn(11, 8), None, torch.zeros(0, dtype=torch.long))
    assert out.shape == (0,)
    sft_loss(out, 0).backward()


def test_hand_computed_loss_of_two_sequences() -> None:
    model = tiny_qwen2()
    samples = [
        TokenSample(task_id="t", trajectory_id="a", source="recorded",
                    input_ids=[3, 14, 15, 92, 65, 35], loss_mask=[0, 0, 1, 1, 0, 1]),
        TokenSample(task_id="t", trajectory_id="b", source="recorded",
                    input_ids=[2, 71, 82, 81], loss_mask=[1, 0, 1, 1]),
    ]  # fmt: skip
    (batch,) = batches_of(samples, [[[0], [1]]])
    loss = sft_loss(batch_logprobs(model, batch), batch.trained_tokens)
    total, count = 0.0, 0
    with torch.no_grad():
        for sample in samples:  # each sequence alone: no padding, plain logits
            logp = model(torch.tensor([sample.input_ids])).logits[0].log_softmax(-1)
            for t in range(1, len(sample.input_ids)):
                if sample.loss_mask[t]:
                    total -= float(logp[t - 1, sample.input_ids[t]])
                    count += 1
    assert count == 5 and batch.trained_tokens == 5  # the first token is never a target
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_loss_and_gradients_do_not_depend_on_micro_batching() -> None:
    model = tiny_qwen2()
    samples = random_samples(8, seed=1)
    one_by_eight = batches_of(samples, [[[i] for i in range(8)]])
    four_by_two = batches_of(samples, [[[i], [i + 1]] for i in range(0, 8, 2)])
    loss_a, grads_a = step_loss_and_grads(model, one_by_eight)
    loss_b, grads_b = step_loss_and_grads(model, four_by_two)
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) == len(list(model.parameters()))
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_rows_train_exactly_like_separate_rows(attention: str) -> None:
    model = tiny_qwen2(attention=attention)
    samples = random_samples(6, seed=2)
    separate = batches_of(samples, [[[i] for i in range(6)]])
    packed = batches_of(samples, [[[0, 1, 2], [3, 4, 5]]], packed=True)
    assert packed[0].input_ids.shape[0] == 2
    loss_a, grads_a = step_loss_and_grads(model, separate)
    loss_b, grads_b = step_loss_and_grads(model, packed)
    assert torch.allclose(loss_a, loss_b, rtol=1e-5)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-4, atol=1e-6), name


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    from agentkit.training.modeling import enable_gradient_checkpointing

    model = tiny_qwen2()
    batches = batches_of(random_samples(4, seed=3), [[[0], [1]], [[2], [3]]])
    loss_a, grads_a = step_loss_and_grads(model, batches)
    enable_gradient_checkpointing(model)
    loss_b, grads_b = step_loss_and_grads(model, batches)
    assert torch.allclose(loss_a, loss_b)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-5, atol=1e-7), name


def test_tokens_after_the_last_trained_position_get_no_gradient() -> None:
    model = tiny_qwen2()
    sample = random_samples(1, seed=4, low=20, high=20)[0]
    last = max(t for t, m in enumerate(sample.loss_mask) if m)
    changed = list(sample.input_ids)
    for t in range(last + 1, len(changed)):
        changed[t] = (changed[t] + 7) % VOCAB
    if last + 1 == len(changed):  # make room for a change
        changed.append(5)
    other = sample.model_copy(update={"input_ids": changed,
                                      "loss_mask": sample.loss_mask + [0] * (len(changed) - len(sample.loss_mask))})  # fmt: skip
    _, grads_a = step_loss_and_grads(model, batches_of([sample], [[[0]]]))
    _, grads_b = step_loss_and_grads(model, batches_of([other], [[[0]]]))
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], atol=1e-7), name


# ---------------------------------------------------------------- one real optimizer step


def one_step(model: Any, batches: list[MicroBatch], lr: float = 1e-3) -> None:
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    accumulate_gradients(model, batches)
    apply_step(parameters, optimizer, scheduler, 1.0)


def test_one_step_changes_every_parameter_of_a_full_fine_tune() -> None:
    model = tiny_qwen2(tied=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    one_step(model, batches_of(random_samples(4), [[[0], [1]], [[2], [3]]]))
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def test_lora_steps_change_every_adapter_weight_and_no_base_weight() -> None:
    from agentkit.training.modeling import add_lora

    model = add_lora(tiny_qwen2(), LoRAConfig(rank=4, alpha=8))
    named = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in named.items()}
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    batches = batches_of(random_samples(4), [[[0], [1], [2], [3]]])
    one_step(model, batches)
    # lora_B starts at zero, so the first step moves every B and (its gradient being B-weighted) no A
    assert all(not torch.equal(named[n], before[n]) for n in trainable if "lora_B" in n)
    one_step(model, batches)
    assert all(not torch.equal(named[n], before[n]) for n in trainable)
    assert all(torch.equal(p, before[n]) for n, p in named.items() if n not in trainable)


# ---------------------------------------------------------------- whole runs


def config(model_dir: Path, out: Path, **overrides: Any) -> SFTConfig:
    values: dict[str, Any] = dict(
        model_path=str(model_dir), output_dir=str(out), learning_rate=3e-3, micro_batch_size=2,
        gradient_accumulation=2, max_steps=6, max_length=24, seed=5, plot=False,
    )  # fmt: skip
    values.update(overrides)
    return SFTConfig(**values)


def crash_at_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the optimizer step number ``step`` fail, as a killed process would stop there."""
    import agentkit.training.trainer as trainer

    calls = {"n": 0}
    real: Callable[..., Any] = trainer.apply_step

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "apply_step", failing)


@pytest.mark.parametrize("lora", [None, LoRAConfig(rank=4, alpha=8, dropout=0.2)])
def test_resume_continues_the_same_loss_curve(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lora: LoRAConfig | None
) -> None:
    samples = random_samples(20, seed=6)
    straight = train_sft(samples, config(tiny_dir, tmp_path / "a", lora=lora), progress=False)
    assert straight.steps == 6 and len(straight.losses) == 6

    interrupted = config(tiny_dir, tmp_path / "b", lora=lora, save_every=3)
    crash_at_step(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        train_sft(samples, interrupted, progress=False)
    monkeypatch.undo()
    assert [step for step, _ in list_checkpoints(tmp_path / "b")] == [3]
    with pytest.raises(CheckpointError, match="resume=True"):
        train_sft(samples, interrupted, progress=False)
    resumed = train_sft(samples, interrupted, resume=True, progress=False)
    assert resumed.resumed_from_step == 3 and resumed.steps == 6
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-6, abs=1e-7)
    records = read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [m.step for m in records] == [1, 2, 3, 4, 5, 6]

    with pytest.raises(CheckpointError, match="learning_rate"):
        train_sft(samples, interrupted.model_copy(update={"learning_rate": 1e-2}), resume=True)
    with pytest.raises(CheckpointError, match="samples differ"):
        train_sft(samples[:-1], interrupted, resume=True, progress=False)


def test_full_run_writes_metrics_plot_and_servable_model(
    chat_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    samples = [s.model_copy(update={"input_ids": [i % 900 + 3 for i in s.input_ids]})
               for s in random_samples(10, seed=7)]  # fmt: skip
    cfg = config(chat_model_dir, tmp_path / "run", max_steps=3, plot=True, packing=True,
                 max_length=64, micro_batch_size=1, gradient_accumulation=1, save_every=1,
                 keep_checkpoints=2)  # fmt: skip
    result = train_sft(samples, cfg, progress=True)
    out = tmp_path / "run"
    assert [step for step, _ in list_checkpoints(out)] == [2, 3]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert set(records[0]) >= {"step", "loss", "lr", "trained_tokens", "tokens_per_s", "grad_norm"}
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.final_dir == out / "final"
    for folder in (result.final_dir, result.checkpoint_dir):
        assert (folder / "tokenizer.json").is_file() and (folder / "chat_template.jinja").is_file()
    assert not (result.final_dir / "training_state").exists()
    AutoTokenizer.from_pretrained(result.final_dir)
    trained = AutoModelForCausalLM.from_pretrained(result.final_dir)
    base = AutoModelForCausalLM.from_pretrained(chat_model_dir)
    assert not torch.equal(trained.model.norm.weight, base.model.norm.weight)


def test_lora_run_writes_adapter_checkpoint_and_merged_final(
    chat_model_dir: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    samples = [s.model_copy(update={"input_ids": [i % 900 + 3 for i in s.input_ids]})
               for s in random_samples(8, seed=8)]  # fmt: skip
    cfg = config(chat_model_dir, tmp_path / "lora", max_steps=2, lora=LoRAConfig(rank=4))
    result = train_sft(samples, cfg, progress=False)
    assert (result.checkpoint_dir / "adapter_config.json").is_file()
    assert (result.final_dir / "config.json").is_file()
    assert not (result.final_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(result.final_dir).eval()
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(chat_model_dir), result.checkpoint_dir
    ).eval()
    ids = torch.tensor([samples[0].input_ids])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
