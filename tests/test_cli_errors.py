"""``agentkit run`` given bad input or hitting a bug: one clear line, no traceback, and no task
lost to another task's failure. Real tasks (the bundled examples), real git, real tests, the
local runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.scaffolds import BUNDLED
from agentkit.tasks import load_tasks
from agentkit.types import Trajectory

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


def run(*args: str):
    return runner.invoke(app, ["run", "--runtime", "local", *args])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_an_output_folder_that_cannot_be_written_is_named_before_anything_starts(dataset, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for output, reason in [
        ("/proc/x", "No such file or directory"),
        (str(a_file), "Not a directory"),
    ]:
        text = one_line_error(run("--dataset", str(dataset), "--output", output))
        assert f"Cannot write results to {output}/mini__gold" in text, text
        assert reason in text and "--output" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to any folder, whatever its mode")
def test_an_output_folder_without_write_permission_is_a_clear_error(dataset, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    text = one_line_error(run("--dataset", str(dataset), "--output", str(locked)))
    assert "Permission denied" in text


def test_an_empty_dataset_says_it_holds_no_instances(tmp_path):
    for name, content in [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("list.json", "[]")]:
        path = tmp_path / name
        path.write_text(content)
        text = one_line_error(run("--dataset", str(path), "--output", str(tmp_path / "runs")))
        assert f"{path} holds no task instances" in text
    assert not (tmp_path / "runs").exists()


def test_an_unknown_log_parser_stops_the_run_before_any_agent_starts(dataset, tmp_path):
    tasks = [json.loads(line) for line in dataset.read_text().splitlines()]
    tasks[1]["log_parser"] = "pytset"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(task) + "\n" for task in tasks))
    text = one_line_error(run("--dataset", str(bad), "--output", str(tmp_path / "runs")))
    assert f"unknown log_parser 'pytset' (instances: {tasks[1]['instance_id']})" in text
    assert "Known parsers:" in text and "pytest" in text
    assert not list((tmp_path / "runs").glob("*/*"))


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"problem_statement": "x"},
            "instance 2 is not a valid task: missing required key 'instance_id'",
        ),
        (
            {"instance_id": "a__b-1", "FAIL_TO_PASS": 5},
            "instance 2 ('a__b-1') is not a valid task: 'FAIL_TO_PASS': input should be a valid "
            "list (got 5)",
        ),
        ('"just text"', "instance 2 is not a JSON object but str"),
    ],
)
def test_an_invalid_instance_is_named_with_its_problem(tmp_path, record, expected):
    path = tmp_path / "data.jsonl"
    line = record if isinstance(record, str) else json.dumps(record)
    path.write_text(json.dumps({"instance_id": "ok__ok-1"}) + "\n" + line + "\n")
    text = one_line_error(run("--dataset", str(path), "--output", str(tmp_path)))
    assert f"{path}: {expected}" in text
    assert "pydantic" not in text and "validation error" not in text


def test_a_mistyped_scaffold_key_names_the_key_and_the_likely_one(dataset, tmp_path):
    config = yaml.safe_load(BUNDLED["mini"].read_text())
    config["limits"]["max_step"] = config["limits"].pop("max_steps", 5)
    config["call_fromat"] = "xml"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    text = one_line_error(run("--dataset", str(dataset), "--scaffold", str(path)))
    assert f"{path} is not a valid scaffold:" in text
    assert "unknown key 'limits.max_step' (did you mean 'max_steps'?)" in text
    assert "unknown key 'call_fromat' (did you mean 'call_format'?)" in text
    assert "pydantic" not in text


def test_a_task_whose_backend_raises_is_an_error_and_every_other_task_is_graded(
    dataset, tmp_path, monkeypatch
):
    """A backend with a bug (a fake on purpose: the exception is the subject) raises an arbitrary
    exception in one task; that task alone is an error with the exception's message."""
    import agentkit.backends.registry as registry

    tasks = load_tasks(dataset)
    broken = tasks[1].instance_id
    real_build = registry.build_backend

    def build(config, *, task=None, **kwargs):
        backend = real_build(config, task=task, **kwargs)
        if task is not None and task.instance_id == broken:

            async def complete(*args, **kw):
                raise ValueError("a value holds a fence line (```)")

            backend.complete = complete
        return backend

    monkeypatch.setattr(registry, "build_backend", build)
    result = run("--dataset", str(dataset), "--output", str(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "unexpected ValueError: a value holds a fence line (```)" in text

    run_dir = tmp_path / "mini__gold"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["total_instances"] == len(tasks)
    assert report["error_ids"] == [broken]
    assert sorted(report["resolved_ids"]) == sorted(
        t.instance_id for t in tasks if t.instance_id != broken
    )
    trajectory = Trajectory.load(run_dir / broken / "trajectory.json")
    assert trajectory.exit_status == "error"
    assert trajectory.exit_message == "unexpected ValueError: a value holds a fence line (```)"
    assert not (run_dir / broken / "report.json").exists()  # a rerun retries it
    predicted = {json.loads(line)["instance_id"] for line in (run_dir / "preds.jsonl").open()}
    assert predicted == set(report["resolved_ids"])


def test_a_grader_that_raises_fails_its_task_only_and_keeps_the_traceback(
    dataset, tmp_path, monkeypatch
):
    """The grader raises for one task (a fake fault on purpose): that task is an error whose
    message points at error.log, which holds the traceback; the other task is graded."""
    import agentkit.evals.harness as grader

    first, second = [task.instance_id for task in load_tasks(dataset)[:2]]
    real_grade = grader.grade_patch

    async def grade(runtime, task, patch, **kwargs):
        if task.instance_id == first:
            raise KeyError("no such field")
        return await real_grade(runtime, task, patch, **kwargs)

    monkeypatch.setattr(grader, "grade_patch", grade)
    result = run("--dataset", str(dataset), "-t", first, "-t", second, "--output", str(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    out = tmp_path / "mini__gold"
    log = (out / first / "error.log").read_text()
    assert "Traceback" in log and "KeyError: 'no such field'" in log
    assert "unexpected KeyError: 'no such field'" in " ".join(result.output.split())
    report = json.loads((out / "report.json").read_text())
    assert report["error_ids"] == [first] and report["resolved_ids"] == [second]


@pytest.mark.parametrize(
    "args, module, extra",
    [
        (
            ["run", "--backend", "hf:{model}", "--runtime", "local", "--slice", "0:1"],
            "torch",
            "train",
        ),
        (
            ["export", "{model}", "--model", "{model}", "--output", "x.parquet"],
            "transformers",
            "train",
        ),
    ],
)
def test_a_missing_optional_dependency_names_the_extra_in_one_line(
    tmp_path: Path, args: list[str], module: str, extra: str
) -> None:
    """The module is made unimportable by a stand-in package earlier on the path (the extras
    are installed here, so their absence can only be simulated)."""
    blocker = tmp_path / "blocked" / module
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name='{module}')\n"
    )
    model = tmp_path / "model"
    model.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "blocked")}
    command = [sys.executable, "-m", "agentkit.cli", *(a.format(model=model) for a in args)]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    text = " ".join(done.stderr.split())
    assert f"needs '{module}'" in text and f"agentkit[{extra}]" in text, done.stderr
