"""RFT selection from run folders: folders written through RunFolder's own methods (fast), and a
real run of the harness with k attempts per task (real git, real tests, local runtime)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentkit.backend import BackendError
from agentkit.backends import ScriptedBackend
from agentkit.backends.gold import GoldBackend
from agentkit.evals.examples import build_examples
from agentkit.evals.grading import InstanceReport
from agentkit.evals.harness import attempt_seed, run_and_grade
from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import get_format, get_tool
from agentkit.training.rft import RFTOptions, normalise_patch, repo_of, select_trajectories
from agentkit.types import Completion, ExitStatus, Step, Trajectory

PATCH = "diff --git a/m.py b/m.py\nindex 1..2 100644\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
OTHER = PATCH.replace("+x = 2", "+x = 1 + 1")


def write_attempt(
    folder: RunFolder,
    instance_id: str,
    attempt: int,
    *,
    resolved: bool | None = True,
    steps: int = 2,
    patch: str = PATCH,
    error: str | None = None,
    repo: str = "",
) -> Trajectory:
    """One graded (or errored) attempt, written the way the harness writes it."""
    trajectory = Trajectory(
        task_id=instance_id,
        steps=[Step(index=i, input=[], completion=Completion(text=f"s{i}")) for i in range(steps)],
        exit_status=ExitStatus.SUBMITTED,
        submission=patch,
    )
    trajectory.save(folder.trajectory_path(instance_id, attempt))
    folder.save_patch(instance_id, patch, attempt)
    result = TaskResult(
        instance_id=instance_id, attempt=attempt, repo=repo, steps=steps, error=error
    )
    if error is not None:
        folder.save_result(result)
        return trajectory
    report = InstanceReport(
        instance_id=instance_id,
        patch_exists=True,
        patch_successfully_applied=True,
        resolved=bool(resolved),
    )
    folder.save_grade(report, trajectory, result.model_copy(update={"resolved": resolved}))
    return trajectory


@pytest.fixture
def folder(tmp_path: Path) -> RunFolder:
    """Task a__x-1: resolved on attempts 0 (4 steps), 1 (2 steps, same patch as 3),
    2 (2 steps, another patch) and 3 (2 steps); failed on 4. Task b__y-2: never resolved."""
    run = RunFolder(tmp_path / "run", "run")
    write_attempt(run, "a__x-1", 0, steps=4, patch=OTHER)
    write_attempt(run, "a__x-1", 1, steps=2)
    write_attempt(run, "a__x-1", 2, steps=2, patch=OTHER)
    write_attempt(run, "a__x-1", 3, steps=2, patch=PATCH.replace("index 1..2", "index 3..4"))
    write_attempt(run, "a__x-1", 4, resolved=False, steps=1)
    write_attempt(run, "b__y-2", 0, resolved=False)
    write_attempt(run, "b__y-2", 1, resolved=None, error="docker went away")
    return run


def picked(selection: Any) -> list[tuple[str, int]]:
    return [(r.instance_id, r.attempt) for r in selection.records]


def test_best_of_k_keeps_the_shortest_resolved_attempt_ties_to_the_lowest(folder) -> None:
    selection = select_trajectories(folder)
    assert picked(selection) == [("a__x-1", 1)]
    record = selection.records[0]
    assert record.resolved and record.steps == 2 and record.patch == PATCH
    assert record.trajectory.reward == 1.0 and record.run_folder == folder.root
    assert record.trajectory_id == str(folder.trajectory_path("a__x-1", 1))


def test_all_keeps_every_resolved_attempt_in_order(folder) -> None:
    selection = select_trajectories(folder, policy="all")
    assert picked(selection) == [("a__x-1", a) for a in (0, 1, 2, 3)]


def test_dedupe_keeps_the_best_attempt_of_each_distinct_patch(folder) -> None:
    selection = select_trajectories(folder, policy="dedupe_patch")
    # 1 and 3 differ only in their index line: one solution; 0 and 2 are the other.
    assert picked(selection) == [("a__x-1", 1), ("a__x-1", 2)]


def test_keep_graded_prefers_resolved_and_never_keeps_ungraded(folder) -> None:
    selection = select_trajectories(folder, keep="graded")
    assert picked(selection) == [("a__x-1", 1), ("b__y-2", 0)]
    assert not selection.records[1].resolved
    every = select_trajectories(folder, keep="graded", policy="all")
    assert ("b__y-2", 1) not in picked(every) and len(every.records) == 6


def test_statistics_per_task_per_repo_and_in_total(folder) -> None:
    stats = select_trajectories(folder, policy="all").stats
    by_task = {t.instance_id: t for t in stats.tasks}
    a, b = by_task["a__x-1"], by_task["b__y-2"]
    assert (a.repo, a.attempts, a.graded, a.resolved, a.kept) == ("a/x", 5, 5, 4, 4)
    assert (b.repo, b.attempts, b.graded, b.resolved, b.kept) == ("b/y", 2, 1, 0, 0)
    assert [r.repo for r in stats.repos] == ["a/x", "b/y"]
    total = stats.total
    assert (total.tasks, total.tasks_kept, total.attempts, total.graded) == (2, 1, 7, 6)
    assert (total.resolved, total.kept) == (4, 4)
    assert stats.skipped == {}


def test_the_statistics_print_as_a_short_table(folder) -> None:
    selection = select_trajectories(folder)
    text = str(selection)
    assert text == str(selection.stats)
    lines = text.splitlines()
    assert lines[0] == "RFT selection: keep=resolved, policy=best_of_k, 1 folder"
    assert lines[1].split() == [
        "repo",
        "tasks",
        "kept",
        "tasks",
        "attempts",
        "graded",
        "resolved",
        "kept",
    ]
    assert lines[2].split() == ["a/x", "1", "1", "5", "5", "4", "1"]
    assert lines[3].split() == ["b/y", "1", "0", "2", "1", "0", "0"]
    assert lines[4].split() == ["total", "2", "1", "7", "6", "4", "1"]
    assert len(lines) == 5


def test_unreadable_and_unfinished_trajectories_are_skipped_and_counted(folder) -> None:
    folder.trajectory_path("a__x-1", 1).write_text("{ not json")
    damaged = Trajectory.load(folder.trajectory_path("a__x-1", 3))
    damaged.exit_status = None
    damaged.save(folder.trajectory_path("a__x-1", 3))
    folder.trajectory_path("a__x-1", 2).write_text('{"schema_version": 999, "task_id": "a__x-1"}')
    folder.trajectory_path("a__x-1", 0).unlink()
    selection = select_trajectories(folder, policy="all")
    assert picked(selection) == []
    assert selection.stats.skipped == {"missing": 1, "unfinished": 1, "unreadable": 2}
    task = next(t for t in selection.stats.tasks if t.instance_id == "a__x-1")
    assert (task.resolved, task.kept) == (4, 0)
    assert task.skipped == {"unreadable": 2, "unfinished": 1, "missing": 1}
    assert str(selection).splitlines()[-1] == "skipped: missing 1, unfinished 1, unreadable 2"


def test_a_broken_best_attempt_falls_back_to_the_next_best(folder) -> None:
    folder.trajectory_path("a__x-1", 1).write_text("")
    assert picked(select_trajectories(folder)) == [("a__x-1", 2)]


def test_several_folders_pool_their_attempts_per_task(folder, tmp_path) -> None:
    second = RunFolder(tmp_path / "second", "second")
    write_attempt(second, "a__x-1", 0, steps=1, repo="owner/actual")
    write_attempt(second, "c__z-3", 0, steps=3)
    selection = select_trajectories([folder.root, second])
    assert [(r.run_folder, r.instance_id, r.attempt) for r in selection.records] == [
        (second.root, "a__x-1", 0),  # one step beats two, in whichever folder
        (second.root, "c__z-3", 0),
    ]
    assert selection.stats.folders == 2
    by_task = {t.instance_id: t for t in selection.stats.tasks}
    assert by_task["a__x-1"].attempts == 6
    tie = RunFolder(tmp_path / "tie", "tie")
    write_attempt(tie, "a__x-1", 0, steps=2)
    assert select_trajectories([tie, folder]).records[0].run_folder == tie.root  # earlier folder


def test_an_empty_or_missing_folder_selects_nothing(tmp_path) -> None:
    selection = select_trajectories(tmp_path / "nothing-here")
    assert selection.records == [] and selection.stats.total.attempts == 0
    assert str(selection).splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0", "0"]


def test_repo_names_come_from_the_task_or_the_instance_id() -> None:
    assert repo_of("django__django-11099") == "django/django"
    assert repo_of("agentkit-examples__pagekit-12") == "agentkit-examples/pagekit"
    assert repo_of("psf__requests-2317", "psf/requests") == "psf/requests"
    assert repo_of("my_org__my__repo-7") == "my_org/my__repo"
    assert repo_of("not-an-instance-id") == "(unknown)"


def test_patch_normalisation_ignores_what_does_not_change_code() -> None:
    two_files = (
        "diff --git a/b.py b/b.py\nindex 5..6 100644\n--- a/b.py\n+++ b/b.py\n"
        "@@ -3,1 +3,1 @@ def f():\n-  y  \n+  z\r\n" + PATCH
    )
    reordered = PATCH.replace("index 1..2", "index 9..8") + (
        "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -3,1 +3,1 @@ def g():\n-  y\n+  z\n"
    )
    assert normalise_patch(two_files) == normalise_patch(reordered)
    assert normalise_patch(PATCH) != normalise_patch(OTHER)
    assert normalise_patch("") == normalise_patch("\n\n") == ""


def test_options_are_a_strict_config() -> None:
    assert RFTOptions.model_validate({"policy": "all"}).keep == "resolved"
    with pytest.raises(ValueError):
        RFTOptions.model_validate({"policy": "best"})
    with pytest.raises(ValueError):
        select_trajectories([], policy="best")  # type: ignore[arg-type]


# -- a real run of the harness ------------------------------------------------------------------

SCAFFOLD = load_scaffold("mini")
TOOLS = [get_tool("bash")]
SUBMIT = "```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"
Plan = tuple[list[str], str]
"""Scripted replies first, then ``gold`` (replay the reference patch), ``idle`` (submit at once)
or ``crash`` (a backend failure: the attempt gets no grade)."""


class Sampled:
    """A stand-in for a sampled model, on purpose (the subject is selecting among attempts):
    the attempt's seed (hence its number) picks a plan of replies, so each attempt of a task differs as planned."""

    def __init__(self, task: Task, plans: dict[int, Plan]) -> None:
        self.task, self.plans = task, plans
        self.script: ScriptedBackend | None = None
        self.then: Any = None

    async def complete(self, messages, tools, params=None) -> Completion:
        if self.script is None:
            attempt = params.seed - attempt_seed(0, self.task.instance_id, 0)
            prelude, ending = self.plans[attempt]
            self.script = ScriptedBackend(prelude)
            if ending == "gold":
                fmt = get_format(SCAFFOLD.call_format)
                self.then = GoldBackend(self.task.patch, fmt, TOOLS, SCAFFOLD.submit_sentinel)
            elif ending == "idle":
                self.then = ScriptedBackend([SUBMIT])
            else:
                self.then = None
        if self.script._next < len(self.script.replies):
            return await self.script.complete(messages, tools, params)
        if self.then is None:
            raise BackendError("the planned backend failure")
        return await self.then.complete(messages, tools, params)

    def describe(self) -> dict[str, Any]:
        return {"type": "planned-samples"}


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory) -> tuple[RunFolder, list[Task]]:
    """Two example tasks, four attempts each. Task A: 0 gold (2 steps); 1 a malformed reply, then
    gold (3 steps, same patch); 2 submits nothing; 3 writes a notes file, then gold (3 steps,
    another patch). Task B: 0 and 1 gold (damaged afterwards: unreadable, unfinished); 2 submits
    nothing; 3 the backend fails (no grade)."""
    tasks = load_tasks(build_examples(tmp_path_factory.mktemp("examples")))[:2]
    first, second = tasks
    plans: dict[str, dict[int, Plan]] = {
        first.instance_id: {
            0: ([], "gold"),
            1: (["I will look around first."], "gold"),
            2: ([], "idle"),
            3: (["```bash\necho remember > NOTES.txt\n```"], "gold"),
        },
        second.instance_id: {
            0: ([], "gold"),
            1: (["```bash\necho hi\n```"], "gold"),
            2: ([], "idle"),
            3: ([], "crash"),
        },
    }
    folder = RunFolder(tmp_path_factory.mktemp("runs") / "rft", "rft")

    def backend_for(task: Task) -> Sampled:
        return Sampled(task, plans[task.instance_id])

    results = asyncio.run(
        run_and_grade(
            tasks, SCAFFOLD, TOOLS, backend_for, folder, runtime="local", workers=2, attempts=4
        )
    )
    outcomes = [(r.instance_id, r.attempt, r.resolved, r.error is None) for r in results]
    assert outcomes == [
        (first.instance_id, 0, True, True), (first.instance_id, 1, True, True),
        (first.instance_id, 2, False, True), (first.instance_id, 3, True, True),
        (second.instance_id, 0, True, True), (second.instance_id, 1, True, True),
        (second.instance_id, 2, False, True), (second.instance_id, 3, None, False),
    ]  # fmt: skip
    folder.trajectory_path(second.instance_id, 0).write_text('{"schema_version": 1, "steps": 3')
    unfinished = Trajectory.load(folder.trajectory_path(second.instance_id, 1))
    unfinished.exit_status = None
    unfinished.save(folder.trajectory_path(second.instance_id, 1))
    return folder, tasks


@pytest.mark.slow
def test_policies_on_a_real_run_with_four_attempts_per_task(harness_run) -> None:
    folder, (first, second) = harness_run
    best = select_trajectories(folder)
    assert picked(best) == [(first.instance_id, 0)]
    assert best.records[0].steps == 2 and best.records[0].patch == first.patch
    assert best.records[0].trajectory.steps[0].format_error is None

    every = select_trajectories(folder, policy="all")
    assert picked(every) == [(first.instance_id, a) for a in (0, 1, 3)]
    malformed = every.records[1].trajectory.steps[0]
    assert malformed.format_error is not None  # kept: masking it is the filters' job

    distinct = select_trajectories(folder, policy="dedupe_patch")
    assert picked(distinct) == [(first.instance_id, 0), (first.instance_id, 3)]
    assert "NOTES.txt" in distinct.records[1].patch

    graded = select_trajectories(folder, keep="graded")
    assert picked(graded) == sorted([(first.instance_id, 0), (second.instance_id, 2)])


@pytest.mark.slow
def test_statistics_of_a_real_run(harness_run) -> None:
    folder, (first, second) = harness_run
    stats = select_trajectories(folder, policy="all").stats
    by_task = {t.instance_id: t for t in stats.tasks}
    a, b = by_task[first.instance_id], by_task[second.instance_id]
    assert (a.repo, a.attempts, a.graded, a.resolved, a.kept) == (first.repo, 4, 4, 3, 3)
    assert (b.repo, b.attempts, b.graded, b.resolved, b.kept) == (second.repo, 4, 3, 2, 0)
    assert b.skipped == {"unreadable": 1, "unfinished": 1}
    assert stats.skipped == {"unfinished": 1, "unreadable": 1}
    assert [r.repo for r in stats.repos] == sorted([first.repo, second.repo])
    assert (stats.total.attempts, stats.total.resolved, stats.total.kept) == (8, 5, 3)
    assert "skipped: unfinished 1, unreadable 1" in str(stats)


@pytest.mark.slow
def test_from_a_run_folder_to_an_sft_export(harness_run, tmp_path_factory, tmp_path) -> None:
    """Run folder → RFT selection → token samples with malformed turns masked → export."""
    from transformers import AutoTokenizer

    from agentkit.backends.tiny_model import build_tiny_chat_model
    from agentkit.training.export import load_samples, save_samples, trl_records
    from agentkit.training.filters import SFTFilter

    model = build_tiny_chat_model(tmp_path_factory.getbasetemp() / "tiny-models" / "plain")
    tokenizer = AutoTokenizer.from_pretrained(model)
    folder, (first, _) = harness_run
    selection = select_trajectories(folder, policy="all")
    sft = SFTFilter()
    samples = []
    for record in selection.records:
        made = sft.samples(record.trajectory, tokenizer, trajectory_id=record.trajectory_id)
        assert made and all(s.trajectory_id == record.trajectory_id for s in made)
        samples += made
    assert sft.stats.trajectories == 3 and sft.stats.masked_steps == {"malformed": 1}

    def trained_text(sample) -> str:
        ids = [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m]
        return tokenizer.decode(ids)

    def context_text(sample) -> str:
        return tokenizer.decode(sample.input_ids)

    with_malformed = [s for s in samples if s.trajectory_id.endswith("attempt-1/trajectory.json")]
    assert with_malformed and all(s.task_id == first.instance_id for s in with_malformed)
    assert any("I will look around first." in context_text(s) for s in with_malformed)
    assert not any("look around" in trained_text(s) for s in with_malformed)  # masked
    assert any("COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in trained_text(s) for s in samples)

    path = save_samples(samples, tmp_path / "rft.parquet")
    assert load_samples(path) == samples
    records = trl_records(load_samples(path))
    assert [r["assistant_masks"] for r in records] == [s.loss_mask for s in samples]
