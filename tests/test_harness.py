"""The evaluation harness as a library: real tasks (the bundled examples), real git, real tests,
the gold backend through the scaffold's own tools; local runtime here, Docker in marked tests."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from agentkit.backends import ScriptedBackend
from agentkit.backends.gold import GoldBackend
from agentkit.evals.examples import build_examples
from agentkit.evals.harness import (
    HarnessEvent,
    TaskFinished,
    TaskStarted,
    attempt_seed,
    run_and_grade,
)
from agentkit.evals.run_folder import RunFolder
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import get_format, get_tool
from agentkit.types import ExitStatus, Trajectory

SCAFFOLD = load_scaffold("mini")
TOOLS = [get_tool("bash")]


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> list[Task]:
    return load_tasks(build_examples(tmp_path_factory.mktemp("examples")))


def gold(task: Task) -> GoldBackend:
    return GoldBackend(
        task.patch, get_format(SCAFFOLD.call_format), TOOLS, SCAFFOLD.submit_sentinel
    )


async def run(tasks, folder, **options):
    events: list[HarnessEvent] = []
    results = await run_and_grade(
        tasks, SCAFFOLD, TOOLS, gold, folder, on_event=events.append, **options
    )
    return results, events


async def test_workers_run_every_task_once_and_report_in_task_order(tasks, tmp_path):
    folder = RunFolder(tmp_path / "run", "run")
    results, events = await run(tasks, folder, runtime="local", workers=3)
    assert [r.instance_id for r in results] == [t.instance_id for t in tasks]
    assert all(r.resolved and r.error is None for r in results), results
    started = Counter(e.instance_id for e in events if isinstance(e, TaskStarted))
    finished = Counter(e.result.instance_id for e in events if isinstance(e, TaskFinished))
    assert started == finished == Counter(t.instance_id for t in tasks)
    report = json.loads((folder.root / "report.json").read_text())
    assert report["resolved_instances"] == len(tasks)
    assert len((folder.root / "preds.jsonl").read_text().splitlines()) == len(tasks)


async def test_the_run_report_covers_every_task_of_every_invocation(tasks, tmp_path):
    folder = RunFolder(tmp_path / "run", "run")
    first, second = tasks[0], tasks[1]
    await run([first], folder, runtime="local")
    results, events = await run([second, first], folder, runtime="local")
    assert [r.resumed for r in results] == [False, True]
    assert sum(isinstance(e, TaskStarted) for e in events) == 1
    report = json.loads((folder.root / "report.json").read_text())
    assert report["resolved_ids"] == sorted([first.instance_id, second.instance_id])
    predicted = [json.loads(line)["instance_id"] for line in (folder.root / "preds.jsonl").open()]
    assert sorted(predicted) == report["resolved_ids"]


async def test_a_task_without_a_repository_is_an_error_and_the_rest_are_graded(tasks, tmp_path):
    broken = tasks[0].model_copy(update={"instance_id": "broken__x-1", "repo_dir": None})
    folder = RunFolder(tmp_path / "run", "run")
    results, _ = await run([broken, tasks[1]], folder, runtime="local", workers=2)
    assert results[0].error is not None and "has no repo_dir" in results[0].error
    assert results[1].resolved
    assert not (folder.task_dir("broken__x-1") / "report.json").exists()
    assert json.loads((folder.root / "report.json").read_text())["error_ids"] == ["broken__x-1"]


async def test_cancelling_a_run_keeps_finished_tasks_and_writes_the_report(tasks, tmp_path):
    folder = RunFolder(tmp_path / "run", "run")
    finished: list[str] = []

    def on_event(event: HarnessEvent) -> None:
        if isinstance(event, TaskFinished):
            finished.append(event.result.instance_id)

    job = asyncio.ensure_future(
        run_and_grade(
            tasks, SCAFFOLD, TOOLS, gold, folder, runtime="local", workers=2, on_event=on_event
        )
    )
    while not finished:
        await asyncio.sleep(0.05)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    report = json.loads((folder.root / "report.json").read_text())
    assert set(finished) <= set(report["resolved_ids"]) and report["resolved_ids"]
    assert report["total_instances"] < len(tasks)


@pytest.mark.docker
async def test_four_docker_workers_give_the_same_reports_as_one(tasks, tmp_path):
    reports: dict[int, dict[str, dict]] = {}
    for workers in (1, 4):
        folder = RunFolder(tmp_path / f"w{workers}", "run")
        results, _ = await run(tasks, folder, runtime="docker", workers=workers)
        assert all(r.resolved for r in results), results
        reports[workers] = {
            t.instance_id: json.loads((folder.task_dir(t.instance_id) / "report.json").read_text())
            for t in tasks
        }
    assert reports[1] == reports[4]


def test_result_files_are_the_state_of_the_folder(tmp_path):
    """A folder written before result.json existed still resumes from report.json."""
    folder = RunFolder(tmp_path, "run")
    out = folder.task_dir("a__b-1")
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"a__b-1": {"resolved": True}}))
    Trajectory(task_id="a__b-1", exit_status=ExitStatus.SUBMITTED).save(out / "trajectory.json")
    result = folder.finished("a__b-1")
    assert result is not None and result.resolved and result.resumed
    (out / "report.json").write_text(json.dumps({"a__b-1": {"resolved": False, "error": "x"}}))
    assert folder.finished("a__b-1") is None  # an infrastructure error is never a verdict
    assert Path(out / "trajectory.json").exists()


class SeedDependent:
    """Replays the gold patch when the sampling seed is in ``good``, else submits nothing: a
    stand-in for a sampled model (on purpose: the subject is attempts, seeds and pass@k)."""

    def __init__(self, task: Task, good: set[int]) -> None:
        self.gold, self.good = gold(task), good
        self.idle = ScriptedBackend(["```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"])
        self.seeds: list[int | None] = []

    async def complete(self, messages, tools, params=None):
        seed = params.seed if params else None
        self.seeds.append(seed)
        chosen = self.gold if seed in self.good else self.idle
        return await chosen.complete(messages, tools, params)

    def describe(self):
        return {"type": "seed-dependent"}


async def test_attempts_use_distinct_seeds_and_the_report_gives_pass_at_k(tasks, tmp_path):
    first, second = tasks[0], tasks[1]
    good = {first.instance_id: {attempt_seed(0, first.instance_id, k) for k in (0, 2)}}
    good[second.instance_id] = set()
    seen: dict[str, list] = {}

    def backend_for(task: Task) -> SeedDependent:
        backend = SeedDependent(task, good[task.instance_id])
        seen.setdefault(task.instance_id, []).append(backend.seeds)
        return backend

    folder = RunFolder(tmp_path / "run", "run")
    results = await run_and_grade(
        [first, second], SCAFFOLD, TOOLS, backend_for, folder, runtime="local", attempts=3
    )
    assert [(r.instance_id, r.attempt, r.resolved) for r in results] == [
        (first.instance_id, 0, True), (first.instance_id, 1, False), (first.instance_id, 2, True),
        (second.instance_id, 0, False), (second.instance_id, 1, False), (second.instance_id, 2, False),
    ]  # fmt: skip
    first_seeds = sorted(seeds[0] for seeds in seen[first.instance_id])
    second_seeds = sorted(seeds[0] for seeds in seen[second.instance_id])
    assert first_seeds == [attempt_seed(0, first.instance_id, k) for k in range(3)]
    assert len(set(first_seeds) | set(second_seeds)) == 6  # no two tasks share a try
    assert (folder.task_dir(first.instance_id, 2) / "report.json").exists()
    report = json.loads((folder.root / "report.json").read_text())
    assert report["resolved_ids"] == [first.instance_id]  # the first attempt's verdicts
    stats = report["statistics"]
    assert stats["attempts"] == 6 and stats["tasks"] == 2
    assert stats["pass_at_1"] == pytest.approx((2 / 3 + 0) / 2)
    assert [round(p["value"], 6) for p in stats["pass_at_k"]] == [round(1 / 3, 6), 0.5, 0.5]

    again = await run_and_grade(
        [first, second], SCAFFOLD, TOOLS, backend_for, folder, runtime="local", attempts=3
    )
    assert all(r.resumed for r in again)


async def test_a_changed_task_is_regraded_without_running_the_agent_again(tasks, tmp_path):
    folder = RunFolder(tmp_path / "run", "run")
    task = tasks[0]
    [first], _ = await run([task], folder, runtime="local")
    assert first.resolved and first.grade_key is not None

    def no_agent(task: Task) -> GoldBackend:
        raise AssertionError("the agent ran again")

    async def rerun(task: Task):
        events: list[HarnessEvent] = []
        results = await run_and_grade(
            [task], SCAFFOLD, TOOLS, no_agent, folder, runtime="local", on_event=events.append
        )
        return results[0], sum(isinstance(e, TaskStarted) for e in events)

    unchanged, started = await rerun(task)
    assert (unchanged.resumed, unchanged.resolved, started) == (True, True, 0)

    missing = "tests/test_nothing_here.py::test_missing"
    changed = task.model_copy(update={"PASS_TO_PASS": [*task.PASS_TO_PASS, missing]})
    regraded, started = await rerun(changed)
    assert started == 1 and regraded.error is None
    assert regraded.resolved is False and not regraded.resumed
    assert (regraded.steps, regraded.exit_status) == (first.steps, first.exit_status)
    assert regraded.grade_key not in (None, first.grade_key)
    report = json.loads((folder.task_dir(task.instance_id) / "report.json").read_text())
    assert report[task.instance_id]["tests_status"]["PASS_TO_PASS"]["failure"] == [missing]
    trajectory = Trajectory.load(folder.trajectory_path(task.instance_id))
    assert trajectory.reward == 0.0 and len(trajectory.steps) == first.steps

    again, started = await rerun(changed)
    assert (again.resumed, again.resolved, started) == (True, False, 0)
