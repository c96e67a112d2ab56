"""The harness on Ray (``executor="ray"``): a real local Ray cluster started by this module, the
real Docker engine, the bundled examples. The same work through the local executor is the
reference: results, per-instance files and run reports must be the same.

The backend is the scripted one (the subject here is where the work runs, not a model): its
first reply prints the process id of the process that built it, which is how a test proves the
task ran in a Ray worker and not in this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentkit.backends import ScriptedBackend
from agentkit.cli import app
from agentkit.errors import UserFacingError
from agentkit.evals.examples import build_examples
from agentkit.evals.executors import make_executor
from agentkit.evals.harness import (
    HarnessEvent,
    TaskFinished,
    TaskProgress,
    TaskStarted,
    grade_predictions,
    run_and_grade,
)
from agentkit.evals.predictions import Prediction
from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.runtime.docker_cleanup import LABEL_RUN
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import get_tool
from agentkit.types import ExitStatus, Trajectory

SCAFFOLD = load_scaffold("mini")
TOOLS = [get_tool("bash")]
SUBMIT = f"Done.\n```bash\necho {SCAFFOLD.submit_sentinel}\n```"
NO_OP = (
    "diff --git a/NOTES.txt b/NOTES.txt\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.txt\n"
    "@@ -0,0 +1 @@\n+nothing fixed\n"
)
BROKEN = "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n"
RAISES = "raises"  # backend_for raises for an instance id with this in it
NO_REPLIES = "no-replies"  # the backend runs out of replies (a BackendError) for these
SLOW = "slow"  # the agent's second command sleeps for a minute


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def tasks(dataset: Path) -> list[Task]:
    return load_tasks(dataset)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A small real Ray cluster on this machine, for this module only."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024**2,
        log_to_driver=False,
    )
    # This module is not importable in Ray's workers: send its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray
    finally:
        ray.shutdown()


def backend_for(task: Task) -> ScriptedBackend:
    """Runs where the task runs: its first command prints that process's id."""
    if RAISES in task.instance_id:
        raise RuntimeError("no backend for this task")
    where = f"Where am I?\n```bash\necho worker-pid-{os.getpid()}\n```"
    if NO_REPLIES in task.instance_id:
        return ScriptedBackend([where])
    if SLOW in task.instance_id:
        return ScriptedBackend([where, "Wait.\n```bash\nsleep 60\n```", SUBMIT])
    fix = (
        "Apply the fix.\n```bash\ncat > /tmp/fix.diff <<'AGENTKIT_EOF'\n"
        f"{task.patch}AGENTKIT_EOF\ngit apply /tmp/fix.diff\n```"
    )
    return ScriptedBackend([where, fix, SUBMIT])


def renamed(task: Task, suffix: str) -> Task:
    return task.model_copy(update={"instance_id": f"{task.instance_id}-{suffix}"})


def task_files(folder: RunFolder, instance_id: str) -> dict[str, str]:
    """The task folder's files, but what depends on timing (test durations) or on where the
    task ran (the trajectory, the traceback's path)."""
    out = folder.task_dir(instance_id)
    skip = {"trajectory.json", "result.json", "error.log"}
    return {
        p.name: re.sub(r"\d+\.\d+s\b", "N.NNs", p.read_text())
        for p in sorted(out.iterdir())
        if p.name not in skip
    }


def comparable(result: TaskResult, folder: RunFolder) -> dict[str, object]:
    data = result.model_dump(exclude={"wall_time_s"})
    if result.error:
        data["error"] = result.error.replace(str(folder.root), "<run>")
    return data


def run_report(folder: RunFolder) -> dict[str, Any]:
    report = json.loads((folder.root / "report.json").read_text())
    report["statistics"].pop("wall_time_s")
    report["errors"] = {
        i: message.replace(str(folder.root), "<run>") for i, message in report["errors"].items()
    }
    return report


def first_output(folder: RunFolder, instance_id: str) -> str:
    """The output of the agent's first command (``worker-pid-N``)."""
    trajectory = Trajectory.load(folder.trajectory_path(instance_id))
    observation = trajectory.steps[0].observation
    assert observation is not None
    return observation.output.strip()


def containers_of(run_id: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        found = client.api.containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
    finally:
        client.close()
    return [entry["Names"][0] for entry in found]


# -- grade-only ---------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
async def test_grading_on_ray_gives_the_local_reports_and_resumes_across_executors(
    tasks, tmp_path, ray_cluster
):
    patches: dict[str, str | None] = {t.instance_id: t.patch for t in tasks}
    patches[tasks[1].instance_id] = NO_OP
    patches[tasks[2].instance_id] = BROKEN
    patches[tasks[3].instance_id] = ""
    predictions = {
        i: Prediction(instance_id=i, model_name_or_path="m", model_patch=p)
        for i, p in patches.items()
    }
    folders, results = {}, {}
    for executor in ("local", "ray"):
        folders[executor] = RunFolder(tmp_path / executor, "run")
        results[executor] = await grade_predictions(
            tasks, predictions, folders[executor], workers=2, executor=executor
        )
    local, ray = folders["local"], folders["ray"]
    assert [r.model_dump() for r in results["ray"]] == [r.model_dump() for r in results["local"]]
    assert (ray.root / "report.json").read_text() == (local.root / "report.json").read_text()
    report = json.loads((ray.root / "report.json").read_text())
    assert len(report["resolved_ids"]) == len(tasks) - 3 and report["error_ids"]
    for task in tasks:
        if patches[task.instance_id]:
            assert task_files(ray, task.instance_id) == task_files(local, task.instance_id)
            assert (ray.task_dir(task.instance_id) / "report.json").exists() == (
                local.task_dir(task.instance_id) / "report.json"
            ).exists()
        else:
            assert not ray.task_dir(task.instance_id).exists()

    # The grade keys agree, so a Ray run over the local run's folder grades nothing again.
    events: list[HarnessEvent] = []
    again = await grade_predictions(
        tasks, predictions, local, workers=2, executor="ray", on_event=events.append
    )
    assert [r.instance_id for r in again] == [r.instance_id for r in results["local"]]
    assert all(r.resumed for r in again if r.error is None)
    started = [e.instance_id for e in events if isinstance(e, TaskStarted)]
    assert started == [r.instance_id for r in again if r.error is not None]


@pytest.mark.docker
@pytest.mark.slow
async def test_a_node_without_the_task_image_builds_it(tasks, tmp_path, ray_cluster):
    """A workdir nobody used yet gives an instance image that does not exist: the Ray task
    builds it on its node (nothing was built up front) and grades in it."""
    import docker

    task = tasks[0].model_copy(
        update={
            "instance_id": f"{tasks[0].instance_id}-fresh",
            "workdir": f"/work-{uuid.uuid4().hex[:8]}",
        }
    )
    predictions = {
        task.instance_id: Prediction(instance_id=task.instance_id, model_patch=task.patch)
    }
    folder = RunFolder(tmp_path / "run", "run")
    events: list[HarnessEvent] = []
    client = docker.from_env()
    ours = {"label": f"agentkit.instance-image={task.instance_id}"}
    try:
        assert client.images.list(filters=ours) == []
        [result] = await grade_predictions(
            [task], predictions, folder, executor="ray", on_event=events.append
        )
        assert result.resolved and result.error is None, result
        assert len(client.images.list(filters=ours)) == 1
        assert any(isinstance(e, TaskProgress) and e.phase == "image" for e in events)
    finally:
        for image in client.images.list(filters=ours):
            client.images.remove(image.id, force=True)
        client.close()


# -- run-and-grade ------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
async def test_run_and_grade_on_ray_matches_local_and_runs_in_ray_workers(
    tasks, tmp_path, ray_cluster
):
    chosen = [
        tasks[0],
        renamed(tasks[1], RAISES),
        tasks[2],
        renamed(tasks[3], NO_REPLIES),
    ]
    folders: dict[str, RunFolder] = {}
    results: dict[str, list[TaskResult]] = {}
    events: dict[str, list[HarnessEvent]] = {}
    for executor in ("local", "ray"):
        folders[executor] = RunFolder(tmp_path / executor, "run")
        events[executor] = []
        results[executor] = await run_and_grade(
            chosen,
            SCAFFOLD,
            TOOLS,
            backend_for,
            folders[executor],
            workers=2,
            on_event=events[executor].append,
            executor=executor,
        )
    local, ray = folders["local"], folders["ray"]
    assert [comparable(r, ray) for r in results["ray"]] == [
        comparable(r, local) for r in results["local"]
    ]
    assert run_report(ray) == run_report(local)
    assert [r.resolved for r in results["ray"]] == [True, None, True, None]

    # The backend that raised is its task's error, with the traceback in this folder.
    failed = results["ray"][1]
    log = ray.task_dir(failed.instance_id) / "error.log"
    assert failed.error == f"unexpected RuntimeError: no backend for this task (traceback: {log})"
    assert "Traceback" in log.read_text() and "RuntimeError" in log.read_text()
    assert (results["ray"][3].error or "").startswith("backend_error: ")

    for task in chosen:
        assert task_files(ray, task.instance_id) == task_files(local, task.instance_id)
        if RAISES not in task.instance_id:
            assert Trajectory.load(ray.trajectory_path(task.instance_id)).exit_status == (
                Trajectory.load(local.trajectory_path(task.instance_id)).exit_status
            )

    # Where each agent ran: in this process locally, in a live Ray worker process on Ray.
    me = os.getpid()
    assert first_output(local, tasks[0].instance_id) == f"worker-pid-{me}"
    pids = {int(first_output(ray, t.instance_id).removeprefix("worker-pid-")) for t in tasks[0:3:2]}
    assert me not in pids
    for pid in pids:
        assert b"ray::" in Path(f"/proc/{pid}/cmdline").read_bytes()

    # Every event reached this process, each task's steps before its TaskFinished.
    seen = events["ray"]
    for task in chosen:
        mine = [
            e
            for e in seen
            if (e.result.instance_id if isinstance(e, TaskFinished) else e.instance_id)
            == task.instance_id
        ]
        assert isinstance(mine[0], TaskStarted) and isinstance(mine[-1], TaskFinished)
        assert sum(isinstance(e, TaskFinished) for e in mine) == 1
        if RAISES not in task.instance_id:
            steps = [e.step for e in mine if isinstance(e, TaskProgress) and e.step is not None]
            assert steps == list(range(len(steps))) and steps


@pytest.mark.docker
@pytest.mark.slow
async def test_cancelling_a_ray_run_closes_its_sandboxes_and_keeps_what_finished(
    tasks, tmp_path, ray_cluster
):
    run_id = f"ray-cancel-{uuid.uuid4().hex[:8]}"
    folder = RunFolder(tmp_path / "run", run_id)
    slow = renamed(tasks[4], SLOW)
    chosen = [tasks[5], slow]
    finished: list[str] = []
    slow_step = asyncio.Event()

    def on_event(event: HarnessEvent) -> None:
        if isinstance(event, TaskFinished):
            finished.append(event.result.instance_id)
        elif event.instance_id == slow.instance_id and getattr(event, "step", None) == 0:
            slow_step.set()

    job = asyncio.ensure_future(
        run_and_grade(
            chosen, SCAFFOLD, TOOLS, backend_for, folder, workers=2, on_event=on_event,
            executor="ray",
        )
    )  # fmt: skip
    try:
        await asyncio.wait_for(slow_step.wait(), timeout=120)
        while not finished:  # the other task ends on its own
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # the slow task is in its `sleep 60` now
    finally:
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
    assert containers_of(run_id) == []
    report = json.loads((folder.root / "report.json").read_text())
    assert report["resolved_ids"] == [tasks[5].instance_id]
    assert finished == [tasks[5].instance_id]
    # The finished steps of the cancelled task came back from its node; it has no result.
    trajectory = Trajectory.load(folder.trajectory_path(slow.instance_id))
    assert trajectory.exit_status == ExitStatus.INTERRUPTED
    assert len(trajectory.steps) == 1  # the `sleep 60` was interrupted, not waited for
    assert first_output(folder, slow.instance_id).startswith("worker-pid-")
    assert not (folder.task_dir(slow.instance_id) / "result.json").exists()


# -- without ray --------------------------------------------------------------------------------


def test_without_ray_installed_the_ray_executor_says_what_to_install(
    dataset, tasks, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(UserFacingError, match=r"pip install 'agentkit\[ray\]'"):
        make_executor("ray")
    folder = RunFolder(tmp_path / "run", "run")
    with pytest.raises(UserFacingError, match="the Ray executor needs the `ray` extra"):
        asyncio.run(run_and_grade(tasks[:1], SCAFFOLD, TOOLS, backend_for, folder, executor="ray"))
    assert not folder.root.exists()  # nothing started

    for command in ("run", "eval"):
        args = [command, "--executor", "ray", "--runtime", "local", "--dataset", str(dataset)]
        args += ["--output", str(tmp_path)] + (
            ["--predictions", "gold"] if command == "eval" else []
        )
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "the Ray executor needs the `ray` extra: pip install 'agentkit[ray]'" in text
        assert "Traceback" not in result.output


def test_a_ray_address_without_the_ray_executor_is_a_clear_error(dataset, tmp_path):
    result = CliRunner().invoke(
        app,
        ["eval", "--predictions", "gold", "--dataset", str(dataset), "--ray-address", "auto",
         "--output", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2 and "--ray-address is for --executor ray" in result.output
