"""The bundled tasks, exported in SWE-bench 5.x form (image, eval script, log parser), graded by
the pip-installed ``swebench`` harness and by ``agentkit eval`` with the same predictions: every
per-instance ``report.json`` is equal and so is the run report. Both harnesses run for real on
the same Docker images; ``swebench`` lives in its own virtual environment (.venv-swebench, made
by scripts/setup.sh) because it pins its own dependencies.

Known divergences, outside what is compared here: a patch that does not apply gets no
``report.json`` from ``swebench`` (agentkit writes one with ``patch_successfully_applied:
false``; both count it as an error), and a run without test-output markers gets a report with
``infra_failure`` flags from ``swebench`` where agentkit writes none and regrades on the next run.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.evals.swebench5 import export_swebench5
from agentkit.tasks import Task, load_tasks

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SWEBENCH_PYTHON = Path(
    os.environ.get(
        "AGENTKIT_SWEBENCH_PYTHON",
        Path(__file__).resolve().parents[1] / ".venv-swebench" / "bin" / "python",
    )
)
MODEL = "my/model"
NO_OP = (
    "diff --git a/NOTES.txt b/NOTES.txt\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.txt\n"
    "@@ -0,0 +1 @@\n+nothing fixed\n"
)
PATCHES: dict[str, Callable[[Task], str]] = {
    "gold": lambda task: task.patch,
    "empty": lambda task: "",
    "no-op": lambda task: NO_OP,
}
DOCKER_ONLY_KEYS = {"unstopped_instances", "unstopped_containers", "unremoved_images"}
"""Run-report keys ``swebench`` adds from the Docker engine's state, not from grading."""

Reports = tuple[dict[str, Any], dict[str, Any]]
"""Per-instance reports by instance id, and the run report."""


@pytest.fixture(scope="module")
def swebench_python() -> Path:
    probe = subprocess.run(
        [str(SWEBENCH_PYTHON), "-c", "import swebench.harness.run_evaluation"],
        capture_output=True,
        check=False,
    ) if SWEBENCH_PYTHON.exists() else None  # fmt: skip
    if probe is None or probe.returncode != 0:
        problem = f"the swebench harness is not installed at {SWEBENCH_PYTHON} (scripts/setup.sh)"
        if os.environ.get("CI"):
            pytest.fail(f"the compatibility test must run in CI but cannot: {problem}")
        pytest.skip(problem)
    return SWEBENCH_PYTHON


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, list[Task]]:
    out = tmp_path_factory.mktemp("swebench5")
    tasks = load_tasks(build_examples(out / "examples"))
    dataset = export_swebench5(tasks, out / "swebench5.jsonl")
    return dataset, load_tasks(dataset)


def write_predictions(path: Path, tasks: list[Task], kind: str) -> Path:
    rows = [
        {"instance_id": t.instance_id, "model_name_or_path": MODEL, "model_patch": PATCHES[kind](t)}
        for t in tasks
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def grade_with_swebench(python: Path, dataset: Path, predictions: Path, cwd: Path) -> Reports:
    """Run ``swebench``'s harness. Its final report lists every container on the engine and
    crashes when one disappears meanwhile (another process's sandbox); a second run, which
    skips the instances already graded, then writes the run report."""
    run_id = "compat"
    command = [
        str(python), "-m", "swebench.harness.run_evaluation", "--dataset_name", str(dataset),
        "--predictions_path", str(predictions), "--max_workers", "2", "--run_id", run_id,
        "--timeout", "600",
    ]  # fmt: skip
    for _ in range(2):
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=1200, check=False
        )
        if done.returncode == 0 or "make_run_report" not in done.stderr:
            break
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    model = MODEL.replace("/", "__")
    logs = cwd / "logs" / "run_evaluation" / run_id / model
    reports = {p.parent.name: json.loads(p.read_text()) for p in logs.glob("*/report.json")}
    return reports, json.loads((cwd / f"{model}.{run_id}.json").read_text())


def grade_with_agentkit(dataset: Path, predictions: Path, out: Path) -> Reports:
    result = CliRunner().invoke(
        app,
        ["eval", "--dataset", str(dataset), "--predictions", str(predictions),
         "--output", str(out), "--workers", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = out / ("eval__" + MODEL.replace("/", "__"))
    reports = {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/report.json")}
    return reports, json.loads((folder / "report.json").read_text())


@pytest.mark.parametrize("kind", list(PATCHES))
def test_both_harnesses_write_the_same_reports(swebench_python, exported, tmp_path, kind):
    dataset, tasks = exported
    predictions = write_predictions(tmp_path / "preds.jsonl", tasks, kind)
    (tmp_path / "swebench").mkdir()
    theirs, their_run = grade_with_swebench(
        swebench_python, dataset, predictions, tmp_path / "swebench"
    )
    ours, our_run = grade_with_agentkit(dataset, predictions, tmp_path / "agentkit")

    assert ours == theirs
    assert set(their_run) - set(our_run) == DOCKER_ONLY_KEYS
    assert our_run == {key: value for key, value in their_run.items() if key in our_run}
    # The comparison says something only if the runs did what the kind of patch implies.
    ids = sorted(task.instance_id for task in tasks)
    expected = {
        "gold": {"resolved_ids": ids, "completed_ids": ids},
        "empty": {"empty_patch_ids": ids, "completed_ids": []},
        "no-op": {"unresolved_ids": ids, "completed_ids": ids},
    }[kind]
    assert {key: our_run[key] for key in expected} == expected
    assert len(ours) == (0 if kind == "empty" else len(tasks))
