"""A run folder records the configuration that made it (``run_config.json``): a rerun with
another configuration never reuses the first one's results. Real runs through the CLI (the
bundled examples, the local runtime, the gold and scripted backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.cli import app
from agentkit.cli.run_config import RunRecord, choose_run, describe_changes, differences
from agentkit.errors import UserFacingError
from agentkit.evals.examples import build_examples
from agentkit.tasks import load_tasks

runner = CliRunner()
SUBMIT = '- "Done.\\n```bash\\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\\n```"\n'
LOOK = '- "Look.\\n```bash\\nls\\n```"\n'


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def task_ids(dataset) -> list[str]:
    return [task.instance_id for task in load_tasks(dataset)]


def run(dataset: Path, out: Path, *extra: str):
    result = runner.invoke(
        app,
        ["run", "--dataset", str(dataset), "--runtime", "local", "--output", str(out), *extra],
    )
    return result, " ".join(result.output.split())


def test_same_configuration_resumes_and_more_tasks_extend_the_same_run(dataset, task_ids, tmp_path):
    first, second = task_ids[:2]
    result, _ = run(dataset, tmp_path, "-t", first)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "mini__gold" / "run_config.json").read_text())
    assert record["config"]["runtime"] == "local" and record["config"]["backend"]["type"] == "gold"
    assert record["config"]["scaffold"]["name"] == "mini"

    # More tasks, more workers: the same configuration, the same folder.
    result, text = run(dataset, tmp_path, "-t", first, "-t", second, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert text.count("already done") == 1 and "note:" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini__gold"]
    report = json.loads((tmp_path / "mini__gold" / "report.json").read_text())
    assert report["resolved_ids"] == sorted([first, second])


def test_a_different_default_configuration_gets_its_own_folder(dataset, task_ids, tmp_path):
    task = task_ids[0]
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(SUBMIT)
    two.write_text(LOOK + SUBMIT)
    result, _ = run(dataset, tmp_path / "runs", "-t", task, "--backend", f"scripted:{one}")
    assert result.exit_code == 0, result.output
    result, text = run(dataset, tmp_path / "runs", "-t", task, "--backend", f"scripted:{two}")
    assert result.exit_code == 0, result.output
    assert "already done" not in text
    assert "holds a run with another configuration (backend.path:" in text
    (other,) = [p for p in (tmp_path / "runs").iterdir() if p.name != "mini__scripted"]
    assert other.name.startswith("mini__scripted__") and f"this one is {other}" in text
    steps = json.loads((other / task / "result.json").read_text())["steps"]
    assert steps == 2  # the second replies file ran, not the first one's result
    assert json.loads((tmp_path / "runs" / "mini__scripted" / task / "result.json").read_text())[
        "steps"
    ] == 1  # fmt: skip

    # The same command again finds its folder and resumes there.
    result, text = run(dataset, tmp_path / "runs", "-t", task, "--backend", f"scripted:{two}")
    assert result.exit_code == 0 and "already done" in text
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_a_named_run_with_another_configuration_is_refused_then_rerun(dataset, task_ids, tmp_path):
    task = task_ids[0]
    replies = tmp_path / "replies.yaml"
    replies.write_text(SUBMIT)
    named = ("-t", task, "--backend", f"scripted:{replies}", "--run-id", "mine")
    result, _ = run(dataset, tmp_path, *named)
    assert result.exit_code == 0, result.output

    replies.write_text(LOOK + SUBMIT)  # the same file, another content
    result, text = run(dataset, tmp_path, *named, "--max-steps", "7")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "mine holds a run made with another configuration" in text
    assert "backend_files.path:" in text and "scaffold.limits.max_steps: 100 → 7" in text
    assert "--run-id NAME" in text and "--rerun" in text
    assert json.loads((tmp_path / "mine" / task / "result.json").read_text())["steps"] == 1

    result, text = run(dataset, tmp_path, "-t", task, "--backend", f"scripted:{replies}",
                       "--max-steps", "7", "--run-id", "other")  # fmt: skip
    assert result.exit_code == 0 and "already done" not in text
    assert json.loads((tmp_path / "other" / task / "result.json").read_text())["steps"] == 2

    result, text = run(dataset, tmp_path, *named, "--max-steps", "7", "--rerun")
    assert result.exit_code == 0, result.output
    assert "now records the new configuration" in text
    assert json.loads((tmp_path / "mine" / task / "result.json").read_text())["steps"] == 2
    record = json.loads((tmp_path / "mine" / "run_config.json").read_text())
    assert record["config"]["scaffold"]["limits"]["max_steps"] == 7
    result, text = run(dataset, tmp_path, *named, "--max-steps", "7")
    assert result.exit_code == 0 and "already done" in text


def test_a_folder_without_a_record_is_adopted(dataset, task_ids, tmp_path):
    result, _ = run(dataset, tmp_path, "-t", task_ids[0])
    assert result.exit_code == 0, result.output
    (tmp_path / "mini__gold" / "run_config.json").unlink()  # as written by an older agentkit
    result, text = run(dataset, tmp_path, "-t", task_ids[0])
    assert result.exit_code == 0 and "already done" in text
    assert "has no run_config.json" in text
    assert (tmp_path / "mini__gold" / "run_config.json").exists()


def test_eval_records_predictions_dataset_and_runtime(dataset, task_ids, tmp_path):
    task = task_ids[0]
    tasks = {t.instance_id: t for t in load_tasks(dataset)}

    def preds(name: str, patch: str) -> Path:
        path = tmp_path / name
        row = {"instance_id": task, "model_patch": patch, "model_name_or_path": "m"}
        path.write_text(json.dumps(row) + "\n")
        return path

    first = preds("a.jsonl", tasks[task].patch)
    second = preds("b.jsonl", "")

    def grade(path: Path, *extra: str):
        result = runner.invoke(
            app,
            ["eval", "--dataset", str(dataset), "--predictions", str(path), "--runtime",
             "local", "--output", str(tmp_path / "runs"), "-t", task, *extra],
        )  # fmt: skip
        return result, " ".join(result.output.split())

    result, _ = grade(first)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "runs" / "eval__m" / "run_config.json").read_text())
    assert record["config"]["predictions"] == str(first.resolve())
    assert record["config"]["runtime"] == "local" and "sha256" in record["config"]["tasks"]

    # Another predictions file of the same model is another evaluation: its own folder.
    result, text = grade(second)
    assert result.exit_code == 0, result.output
    assert "eval__m holds a run with another configuration (predictions:" in text
    assert len(list((tmp_path / "runs").iterdir())) == 2
    # Named, it is refused.
    result, text = grade(second, "--run-id", "eval__m")
    assert result.exit_code == 2 and "predictions: " in text and "--rerun" in text

    # The same file, edited: the same evaluation, the changed patch graded again (grade keys).
    preds("a.jsonl", "")
    result, text = grade(first)
    assert result.exit_code == 0 and "note:" not in text


def test_differences_name_fields_with_old_and_new_values(tmp_path):
    old = RunRecord(command="run", config={"runtime": "docker", "scaffold": {"name": "mini"}})
    new = RunRecord(
        command="run",
        config={"runtime": "local", "scaffold": {"name": "mini", "extra": "x" * 80}},
    )
    changes = differences(old, new)
    assert [key for key, _, _ in changes] == ["runtime", "scaffold.extra"]
    text = describe_changes(changes)
    assert "runtime: 'docker' → 'local'" in text
    assert "scaffold.extra: (none) → 'xxx" in text and "…" in text
    assert old.digest() != new.digest() and differences(new, new) == []

    many = RunRecord(command="run", config={f"k{i}": i for i in range(12)})
    assert "... and 4 more" in describe_changes(
        differences(many, RunRecord(command="run", config={}))
    )


def test_an_unreadable_record_is_refused_unless_rerun(tmp_path):
    root = tmp_path / "x"
    (root / "task").mkdir(parents=True)
    (root / "task" / "result.json").write_text("{}")
    (root / "run_config.json").write_text("not json")
    record = RunRecord(command="run", config={"runtime": "local"})
    with pytest.raises(UserFacingError, match="cannot be read"):
        choose_run(tmp_path, "x", record, run_id="x", rerun=False)
    assert choose_run(tmp_path, "x", record, run_id="x", rerun=True).root == root
