"""Exports of training samples: round trips through every format, the TRL columns, the
conversational form, and TRL's real SFTTrainer training on exactly our masked tokens."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from agentkit.training.export import (
    IGNORE_INDEX,
    conversation_record,
    load_samples,
    sample_rows,
    samples_dataset,
    save_conversations,
    save_samples,
    save_trl,
    trl_dataset,
    trl_records,
)
from agentkit.training.samples import TokenSample
from agentkit.types import Completion, ExitStatus, Message, Step, ToolCall, ToolSpec, Trajectory


def make_samples() -> list[TokenSample]:
    """Four trainable samples of different lengths (padding), with masked runs in the middle
    (a malformed action kept as context), and one with nothing to train."""
    return [
        TokenSample(
            task_id="a__x-1",
            trajectory_id="run/a__x-1/trajectory.json",
            steps=[0, 1, 2],
            source="recorded",
            input_ids=[11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22],
            loss_mask=[0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0],
            logprobs=[0.0, 0.0, 0.0, -0.1234567890123, -1e-9, 0, 0, 0, -2.5, -3.0, -0.0, 0.0],
            reward=1.0,
            policy_version=3,
        ),
        TokenSample(
            task_id="a__x-1",
            trajectory_id="run/a__x-1/trajectory.json",
            branch=1,
            steps=[3],
            source="recorded",
            input_ids=[31, 32, 33, 34, 35],
            loss_mask=[0, 0, 1, 1, 1],
            reward=1.0,
        ),
        TokenSample(
            task_id="b__y-2",
            trajectory_id="run/b__y-2/attempt-2/trajectory.json",
            steps=[0],
            source="template",
            input_ids=[41, 42, 43, 44, 45, 46, 47, 48],
            loss_mask=[0, 0, 0, 0, 0, 0, 1, 1],
        ),
        TokenSample(
            task_id="c__z-3",
            trajectory_id="c",
            source="template",
            input_ids=[51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68],
            loss_mask=[0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        ),
        TokenSample(
            task_id="d__w-4",
            trajectory_id="d",
            source="template",
            input_ids=[71, 72, 73],
            loss_mask=[0, 0, 0],
        ),
    ]


@pytest.mark.parametrize("name", ["samples", "samples.parquet", "samples.jsonl"])
def test_samples_round_trip_through_every_format(tmp_path: Path, name: str) -> None:
    samples = make_samples()
    path = save_samples(samples, tmp_path / "out" / name)
    assert load_samples(path) == samples
    assert load_samples(path)[0].logprobs == samples[0].logprobs  # float64: exact
    # Writing again replaces the export whole, and leaves nothing else beside it.
    save_samples(samples[:2], path)
    assert load_samples(path) == samples[:2]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [name]


def test_an_explicit_format_overrides_the_suffix(tmp_path: Path) -> None:
    path = save_samples(make_samples(), tmp_path / "data.bin", format="parquet")
    assert path.read_bytes()[:4] == b"PAR1" and load_samples(path) == make_samples()
    folder = save_samples(make_samples()[:1], tmp_path / "as-folder.jsonl", format="disk")
    assert folder.is_dir() and load_samples(folder) == make_samples()[:1]


def test_an_empty_export_round_trips(tmp_path: Path) -> None:
    for name in ("empty", "empty.parquet", "empty.jsonl"):
        assert load_samples(save_samples([], tmp_path / name)) == []


def test_the_dataset_has_one_schema_whatever_the_values(tmp_path: Path) -> None:
    without = samples_dataset(make_samples()[1:2])  # every optional field None
    full = samples_dataset(make_samples()[:1])
    assert without.features == full.features
    assert without[0]["logprobs"] is None and full[0]["policy_version"] == 3
    assert sample_rows(make_samples()[:1])[0]["loss_mask"] == make_samples()[0].loss_mask


def test_trl_records_carry_exactly_the_loss_mask() -> None:
    samples = make_samples()
    records = trl_records(samples)
    assert len(records) == 4  # the sample with nothing to train is left out
    for record, sample in zip(records, samples, strict=False):
        assert record == {"input_ids": sample.input_ids, "assistant_masks": sample.loss_mask}
    labelled = trl_records(samples, mask_column="labels")
    assert labelled[1] == {"input_ids": [31, 32, 33, 34, 35], "labels": [-100, -100, 33, 34, 35]}
    assert trl_dataset(samples).column_names == ["input_ids", "assistant_masks"]


@pytest.mark.parametrize("name", ["trl", "trl.parquet", "trl.jsonl"])
def test_trl_exports_load_with_the_datasets_library(tmp_path: Path, name: str) -> None:
    from datasets import load_dataset, load_from_disk

    path = save_trl(make_samples(), tmp_path / name, mask_column="labels")
    if path.is_dir():
        loaded = load_from_disk(str(path))
    else:
        kind = "parquet" if path.suffix == ".parquet" else "json"
        loaded = load_dataset(kind, data_files=str(path), split="train", cache_dir=str(tmp_path))
    assert loaded.to_list() == trl_records(make_samples(), mask_column="labels")


def native_trajectory() -> Trajectory:
    bash = ToolSpec(
        name="bash",
        description="Run a command.",
        parameters={"type": "object", "properties": {"command": {"type": "string"}}},
    )
    first = ToolCall(name="bash", arguments={"command": "ls"}, id="c1")
    second = ToolCall(name="bash", arguments={"command": "echo done"}, id="c2")
    messages = [
        Message(role="system", content="You fix bugs."),
        Message(role="user", content="Fix it."),
        Message(role="assistant", content="Looking.", tool_calls=[first]),
        Message(role="tool", content="a.py", tool_call_id="c1"),
    ]
    return Trajectory(
        task_id="a__x-1",
        tools=[bash],
        messages=messages,
        steps=[
            Step(index=0, input=[0, 1], completion=Completion(text="Looking.", tool_calls=[first])),
            Step(index=1, kind="condensation", input=[1], completion=Completion(text="summary")),
            Step(index=2, input=[0, 1, 2, 3], completion=Completion(text="", tool_calls=[second])),
        ],
        exit_status=ExitStatus.SUBMITTED,
    )


def test_the_conversational_form_is_the_last_prompt_and_its_reply(tmp_path: Path) -> None:
    record = conversation_record(native_trajectory())
    assert [m["role"] for m in record["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    last = record["messages"][-1]
    assert last["tool_calls"][0]["function"] == {
        "name": "bash",
        "arguments": {"command": "echo done"},
    }
    assert record["messages"][3]["tool_call_id"] == "c1"
    assert record["tools"][0]["function"]["name"] == "bash"
    path = save_conversations([native_trajectory()], tmp_path / "chats.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == [record]
    with pytest.raises(ValueError, match="no action step"):
        conversation_record(Trajectory(task_id="empty"))


# -- TRL's SFTTrainer on the export ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agentkit.backends.tiny_model import build_tiny_chat_model

    # The same place as the other tests that use it: whichever runs first builds it.
    return build_tiny_chat_model(tmp_path_factory.getbasetemp() / "tiny-models" / "plain")


@pytest.mark.slow
@pytest.mark.parametrize("mask_column", ["assistant_masks", "labels"])
def test_trl_sft_trainer_trains_on_exactly_our_masked_tokens(
    tiny_model: Path, tmp_path: Path, mask_column: Any
) -> None:
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    samples = make_samples()
    dataset = load_from_disk(str(save_trl(samples, tmp_path / "trl", mask_column=mask_column)))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    initial = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    batches: list[dict[str, torch.Tensor]] = []
    losses: list[float] = []

    class Recording(SFTTrainer):
        """Records each training batch as TRL built it and the loss TRL computed on it."""

        def compute_loss(self, model, inputs, *args, **kwargs):  # type: ignore[no-untyped-def]
            batches.append({k: v.detach().clone() for k, v in inputs.items()})
            loss = super().compute_loss(model, inputs, *args, **kwargs)
            value = loss[0] if isinstance(loss, tuple) else loss
            losses.append(float(value.detach()))
            return loss

    # With labels, TRL's own preparation (which builds labels from masks) is skipped.
    skip = {"skip_prepare_dataset": True} if mask_column == "labels" else None
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        dataset_kwargs=skip,
    )
    trainer = Recording(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert math.isfinite(result.training_loss) and len(losses) == 2
    assert all(math.isfinite(loss) for loss in losses)

    expected = {tuple(s.input_ids): s for s in samples if s.trained_tokens}
    seen = []
    for batch in batches:
        for ids, labels, attention in zip(
            batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True
        ):
            real = attention.bool()
            sample = expected[tuple(ids[real].tolist())]
            want = [
                t if m else IGNORE_INDEX
                for t, m in zip(sample.input_ids, sample.loss_mask, strict=True)
            ]
            assert labels[real].tolist() == want
            assert (labels[~real] == IGNORE_INDEX).all()  # padding is never trained
            seen.append(sample.task_id + str(sample.branch))
    assert sorted(seen) == sorted(s.task_id + str(s.branch) for s in expected.values())

    # TRL's first loss is the mean cross-entropy over our trained tokens, computed by hand.
    first = batches[0]
    with torch.no_grad():
        logits = initial(
            input_ids=first["input_ids"], attention_mask=first["attention_mask"]
        ).logits
    targets = first["labels"][:, 1:]
    picked = targets != IGNORE_INDEX
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_loss = -log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    assert losses[0] == pytest.approx(float(token_loss[picked].mean()), rel=1e-4)


@pytest.mark.slow
def test_the_conversational_form_renders_with_a_chat_template(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    record = conversation_record(native_trajectory())
    text = tokenizer.apply_chat_template(record["messages"], tools=record["tools"], tokenize=False)
    assert '"name": "bash"' in text and '{"command": "echo done"}' in text
    assert "<tool_response>\na.py\n</tool_response>" in text
