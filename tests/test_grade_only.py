"""``agentkit eval``: grading a predictions file without an agent. Real tasks (the bundled
examples), real git, real tests; local runtime here, Docker in the marked test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.evals.predictions import PredictionsError, load_predictions
from agentkit.tasks import Task, load_tasks

runner = CliRunner()

NO_OP = (
    "diff --git a/NOTES.txt b/NOTES.txt\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.txt\n"
    "@@ -0,0 +1 @@\n+nothing fixed\n"
)
BROKEN = "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def tasks(dataset) -> list[Task]:
    return load_tasks(dataset)


def write_jsonl(path: Path, patches: dict[str, str | None]) -> Path:
    rows = [
        {"instance_id": i, "model_name_or_path": "my/model", "model_patch": p}
        for i, p in patches.items()
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def grade(dataset: Path, predictions: str, out: Path, *extra: str):
    return runner.invoke(
        app,
        ["eval", "--dataset", str(dataset), "--predictions", predictions,
         "--runtime", "local", "--output", str(out), *extra],
    )  # fmt: skip


def test_a_predictions_file_is_graded_into_swebench_reports_and_resumes(dataset, tasks, tmp_path):
    gold, noop, empty, null, broken = (t.instance_id for t in tasks[:5])
    preds = write_jsonl(
        tmp_path / "preds.jsonl",
        {gold: tasks[0].patch, noop: NO_OP, empty: "", null: None, broken: BROKEN},
    )
    result = grade(dataset, str(preds), tmp_path / "runs", "--workers", "2")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "eval__my__model"
    report = json.loads((run / "report.json").read_text())
    assert report["total_instances"] == len(tasks) and report["submitted_instances"] == 5
    assert report["resolved_ids"] == [gold]
    assert report["unresolved_ids"] == [noop]
    assert report["empty_patch_ids"] == sorted([empty, null])
    assert report["error_ids"] == [broken]  # SWE-bench: a patch that does not apply
    assert report["incomplete_ids"] == sorted(t.instance_id for t in tasks[5:])
    assert report["completed_ids"] == sorted([gold, noop])
    body = json.loads((run / gold / "report.json").read_text())[gold]
    assert list(body)[:5] == [
        "patch_is_None", "patch_exists", "patch_successfully_applied", "resolved", "infra_failure",
    ]  # fmt: skip
    assert body["resolved"] is True and body["infra_failure"] is False
    assert not (run / empty).exists() and not (run / null).exists()

    again = grade(dataset, str(preds), tmp_path / "runs")
    assert again.exit_code == 0
    assert " ".join(again.output.split()).count("already done") == 3  # gold, noop, broken

    write_jsonl(
        preds, {gold: tasks[0].patch, noop: tasks[1].patch, empty: "", null: None, broken: BROKEN}
    )
    changed = grade(dataset, str(preds), tmp_path / "runs")
    text = " ".join(changed.output.split())
    assert text.count("already done") == 2 and f"{noop}: resolved" in text
    report = json.loads((run / "report.json").read_text())
    assert report["resolved_ids"] == sorted([gold, noop])


def test_gold_predictions_resolve_every_task(dataset, tasks, tmp_path):
    result = grade(
        dataset, "gold", tmp_path, "-t", tasks[0].instance_id, "-t", tasks[1].instance_id
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval__gold" / "report.json").read_text())
    assert report["resolved_ids"] == sorted(t.instance_id for t in tasks[:2])


def test_every_predictions_shape_loads(tasks, tmp_path):
    first, second = tasks[0].instance_id, tasks[1].instance_id
    rows = [
        {"instance_id": first, "model_patch": None, "model_name_or_path": "m"},
        {"instance_id": second, "model_patch": "", "model_name_or_path": "m"},
    ]
    shapes = {
        "list.json": json.dumps(rows),
        "by_id.json": json.dumps({r["instance_id"]: {k: v for k, v in r.items() if k != "instance_id"} for r in rows}),
        "lines.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
    }  # fmt: skip
    for name, text in shapes.items():
        (tmp_path / name).write_text(text)
        loaded = load_predictions(tmp_path / name, tasks)
        assert loaded[first].model_patch is None and loaded[second].model_patch == ""
        assert all(p.is_empty for p in loaded.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no predictions"),
        ('{"instance_id": "nope__x-1", "model_patch": ""}\n', "not in the dataset: nope__x-1"),
        ('{"model_patch": ""}\n', "missing required key 'instance_id'"),
        ("[1]", "prediction 1 is not a JSON object"),
    ],
)
def test_bad_predictions_are_one_clear_line(tasks, tmp_path, text, message):
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(PredictionsError, match=message):
        load_predictions(path, tasks)


@pytest.mark.docker
def test_grade_only_in_docker_matches_the_local_verdicts(dataset, tasks, tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", {tasks[0].instance_id: tasks[0].patch,
                                               tasks[1].instance_id: NO_OP})  # fmt: skip
    result = runner.invoke(
        app,
        ["eval", "--dataset", str(dataset), "--predictions", str(preds),
         "--output", str(tmp_path / "runs"), "--workers", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "runs" / "eval__my__model" / "report.json").read_text())
    assert report["resolved_ids"] == [tasks[0].instance_id]
    assert report["unresolved_ids"] == [tasks[1].instance_id]


def test_tasks_are_selected_by_regex_and_slice(dataset, tasks, tmp_path):
    """--filter and --slice narrow the dataset (here to one task) before anything runs."""
    target = tasks[2].instance_id
    result = grade(
        dataset, "gold", tmp_path, "--filter", re.escape(target[-8:]) + "$", "--slice", "0:1"
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval__gold" / "report.json").read_text())
    assert report["resolved_ids"] == [target] and report["total_instances"] == 1
    bad = grade(dataset, "gold", tmp_path, "--slice", "a:b")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
