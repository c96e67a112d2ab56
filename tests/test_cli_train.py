"""``agentkit export`` and ``agentkit train sft`` on a real run folder: the bundled tasks run by
the gold backend with the swe-agent scaffold on the local runtime, graded by their real tests,
then exported and trained with the tiny model built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.backends.tiny_model import build_tiny_chat_model
from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.training.export import load_samples

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dataset = build_examples(tmp_path_factory.mktemp("examples"))
    out = tmp_path_factory.mktemp("runs")
    args = ["run", "--dataset", str(dataset), "--runtime", "local", "--output", str(out),
            "--scaffold", "swe-agent", "--slice", "0:2", "--run-id", "gold"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "gold"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "plain")


def test_export_hf_writes_masked_token_samples(run_dir: Path, tiny_model: Path, tmp_path: Path):
    out = tmp_path / "data.parquet"
    result = runner.invoke(
        app, ["export", str(run_dir), "--model", str(tiny_model), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    samples = load_samples(out)
    assert {s.task_id for s in samples} == {
        json.loads(p.read_text())["instance_id"] for p in run_dir.glob("*/result.json")
    }
    for sample in samples:
        assert 0 < sample.trained_tokens < len(sample)
        assert sample.source == "template"  # the gold backend records no token ids
    assert "trained tokens" in result.output


def test_export_trl_and_conversations(run_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    trl = tmp_path / "trl.jsonl"
    result = runner.invoke(
        app,
        ["export", str(run_dir), "--model", str(tiny_model), "--output", str(trl),
         "--format", "trl"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in trl.read_text().splitlines()]
    assert rows and all(set(row) == {"input_ids", "assistant_masks"} for row in rows)
    chats = tmp_path / "chats.jsonl"
    result = runner.invoke(
        app,
        ["export", str(run_dir), "--model", str(tiny_model), "--output", str(chats),
         "--format", "conversations"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first = json.loads(chats.read_text().splitlines()[0])
    assert first["messages"][0]["role"] == "system" and first["tools"]


def test_export_errors_are_clear(run_dir: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.parquet")
    cases = [
        (["export", str(tmp_path / "nope"), "--model", str(tiny_model), "--output", out],
         "not a run folder"),
        (["export", str(run_dir), "--model", str(tmp_path), "--output", out],
         "no tokenizer could be loaded"),
        (["export", str(run_dir), "--model", str(tiny_model), "--output", out,
          "--select", "worst"], "policy"),
        (["export", str(run_dir), "--model", str(tiny_model), "--output", out,
          "--max-steps", "1"], "no training samples"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


def test_train_sft_writes_a_servable_checkpoint_and_refuses_to_overwrite(
    run_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "sft"
    args = ["train", "sft", str(run_dir), "--model", str(tiny_model), "--output", str(out),
            "--train-steps", "2", "--learning-rate", "1e-3"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    final = Path(result.output.strip().splitlines()[-1])
    assert final == out / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    assert AutoTokenizer.from_pretrained(final).chat_template
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert any(not a.equal(b) for a, b in zip(model.parameters(), base.parameters(), strict=True))
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert (out / "loss.png").exists() and (out / "data_config.json").exists()

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "resume" in again.output
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
