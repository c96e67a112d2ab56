"""Rejection-sampling fine-tuning (RFT): choose which attempts of a run with repeats to train on.

The recipe (Nebius SWE-rebench, and the RFT stage of DeepSWE and Kimi-Dev): sample about ten
attempts per task, keep the ones whose patch resolved the task, and fine-tune on them. This
module does the keeping; turning a kept trajectory into token sequences and masking its
malformed turns is :mod:`agentkit.training.sequences` and :mod:`agentkit.training.filters`.

The run folders are read only through :class:`~agentkit.evals.run_folder.RunFolder`, which owns
their layout: each attempt's ``result.json`` says whether it was graded and resolved, and its
``trajectory.json`` and ``patch.diff`` are what is kept. Several folders can be read together (the
same tasks sampled in separate runs): their attempts are pooled per task.

Policies, each a choice about the mix of the training set:

* ``best_of_k``: one trajectory per task, the resolved attempt with the fewest action steps (ties:
  the earlier folder, then the lowest attempt). Every solved task weighs the same and the
  shortest solution is the one imitated.
* ``all``: every kept attempt. Tasks the model solves often weigh more (more data, less balance).
* ``dedupe_patch``: one trajectory per distinct normalised patch per task (the best of each, as
  above): different solutions are all kept, the same solution found ten times is kept once.

``keep="graded"`` keeps unresolved graded attempts too (for a reward-weighted or preference
method); ``best_of_k`` then still prefers a resolved attempt.

An attempt that cannot be used never stops the selection: a missing, unreadable (damaged JSON,
another schema, a foreign file) or unfinished trajectory is skipped and counted by its reason.
Attempts without a grade (``error`` set: infrastructure, not the model) are never kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.types import Trajectory

KeepWhich = Literal["resolved", "graded"]
SelectPolicy = Literal["best_of_k", "all", "dedupe_patch"]
SkipReason = Literal["missing", "unreadable", "unfinished"]
"""``missing``: no trajectory file; ``unreadable``: it does not load as a trajectory of this
schema; ``unfinished``: it has no exit status (the run was cut off while it was written)."""

UNKNOWN_REPO = "(unknown)"
_INSTANCE_ID = re.compile(r"^(?P<owner>.+?)__(?P<repo>.+)-\d+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RFTOptions(_Model):
    """What to keep and how many per task; a config so that a recipe round-trips as YAML."""

    keep: KeepWhich = "resolved"
    policy: SelectPolicy = "best_of_k"


class SelectedTrajectory(_Model):
    """One kept attempt: where it came from, its trajectory and the patch that was graded."""

    run_folder: Path
    instance_id: str
    attempt: int
    repo: str
    resolved: bool
    steps: int
    """Action steps (condensation calls are not turns of the loop)."""
    patch: str
    trajectory: Trajectory

    @property
    def trajectory_id(self) -> str:
        """A stable name for the samples made from it: the trajectory file's path."""
        return str(RunFolder(self.run_folder, "").trajectory_path(self.instance_id, self.attempt))


class TaskStats(_Model):
    instance_id: str
    repo: str
    attempts: int = 0
    """Attempts with a result in the folders, graded or not."""
    graded: int = 0
    resolved: int = 0
    kept: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)


class RepoStats(_Model):
    repo: str
    tasks: int = 0
    tasks_kept: int = 0
    """Tasks with at least one kept trajectory."""
    attempts: int = 0
    graded: int = 0
    resolved: int = 0
    kept: int = 0


class SelectionStats(_Model):
    """Counts per task, per repository and in total; ``str()`` gives a short table."""

    keep: KeepWhich
    policy: SelectPolicy
    folders: int
    tasks: list[TaskStats]
    repos: list[RepoStats]
    total: RepoStats
    skipped: dict[str, int] = Field(default_factory=dict)
    """Attempts that would have been kept but could not be read, by reason."""

    def table(self) -> str:
        header = ("repo", "tasks", "kept tasks", "attempts", "graded", "resolved", "kept")
        rows = [_row(r) for r in self.repos] + [_row(self.total)]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

        def line(row: Sequence[object]) -> str:
            cells = [str(row[0]).ljust(widths[0])]
            cells += [
                str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
            ]
            return "  ".join(cells).rstrip()

        plural = "s" if self.folders != 1 else ""
        out = [
            f"RFT selection: keep={self.keep}, policy={self.policy}, {self.folders} folder{plural}"
        ]
        out += [line(row) for row in [header, *rows]]
        if self.skipped:
            out.append("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())))
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


class RFTSelection(_Model):
    records: list[SelectedTrajectory]
    stats: SelectionStats

    def __str__(self) -> str:
        return self.stats.table()


def _row(stats: RepoStats) -> tuple[object, ...]:
    return (
        stats.repo,
        stats.tasks,
        stats.tasks_kept,
        stats.attempts,
        stats.graded,
        stats.resolved,
        stats.kept,
    )


def repo_of(instance_id: str, repo: str = "") -> str:
    """The task's repository: its own ``repo`` field when set, else read from a SWE-bench
    instance id (``owner__repo-123`` → ``owner/repo``), else :data:`UNKNOWN_REPO`."""
    if repo:
        return repo
    match = _INSTANCE_ID.match(instance_id)
    return f"{match['owner']}/{match['repo']}" if match else UNKNOWN_REPO


def normalise_patch(patch: str) -> str:
    """A patch reduced to what it changes, for telling solutions apart: ``index`` lines (blob
    hashes) and the function context after a hunk header dropped, trailing whitespace and
    carriage returns stripped, files in path order. Two attempts that made the same edit get the
    same text even if their diffs came from different tools or git versions."""
    sections: list[list[str]] = []
    for raw in patch.splitlines():
        line = raw.rstrip()
        if line.startswith("diff --git ") or not sections:
            sections.append([])
        if line.startswith("index "):
            continue
        if line.startswith("@@"):
            end = line.find("@@", 2)
            line = line[: end + 2] if end != -1 else line
        sections[-1].append(line)
    texts = ["\n".join(lines).strip("\n") for lines in sections]
    return "\n".join(sorted(text for text in texts if text))


class _Candidate(_Model):
    order: int
    """The folder's position among those given: ties go to the earlier folder."""
    result: TaskResult
    record: SelectedTrajectory

    def rank(self) -> tuple[bool, int, int, int]:
        return (not self.record.resolved, self.record.steps, self.order, self.result.attempt)


def select_trajectories(
    folders: RunFolder | str | Path | Iterable[RunFolder | str | Path],
    *,
    keep: KeepWhich = "resolved",
    policy: SelectPolicy = "best_of_k",
) -> RFTSelection:
    """The attempts of ``folders`` to train on, by ``policy``, with their statistics.

    Records come task by task (instance ids in sorted order), and within a task best first
    for ``best_of_k``/``dedupe_patch`` and in (folder, attempt) order for ``all``."""
    options = RFTOptions(keep=keep, policy=policy)
    opened = _open(folders)
    tasks: dict[str, TaskStats] = {}
    wanted: dict[str, list[tuple[int, TaskResult]]] = {}
    for order, folder in enumerate(opened):
        for result in folder.results():
            stats = tasks.setdefault(
                result.instance_id,
                TaskStats(
                    instance_id=result.instance_id, repo=repo_of(result.instance_id, result.repo)
                ),
            )
            graded = result.error is None
            resolved = graded and result.resolved is True
            stats.attempts += 1
            stats.graded += graded
            stats.resolved += resolved
            if resolved if options.keep == "resolved" else graded:
                wanted.setdefault(result.instance_id, []).append((order, result))
    # Task by task, so that only one task's candidate trajectories are in memory at a time.
    records: list[SelectedTrajectory] = []
    skipped: dict[str, int] = {}
    for instance_id in sorted(tasks):
        stats = tasks[instance_id]
        candidates = []
        for order, result in wanted.get(instance_id, []):
            candidate = _candidate(opened[order], order, result, stats.repo)
            if isinstance(candidate, str):
                stats.skipped[candidate] = stats.skipped.get(candidate, 0) + 1
                skipped[candidate] = skipped.get(candidate, 0) + 1
            else:
                candidates.append(candidate)
        chosen = _choose(candidates, options.policy)
        stats.kept = len(chosen)
        records.extend(chosen)
    task_list = [tasks[i] for i in sorted(tasks)]
    summary = SelectionStats(
        keep=options.keep,
        policy=options.policy,
        folders=len(opened),
        tasks=task_list,
        repos=_per_repo(task_list),
        total=_sum("total", task_list),
        skipped=dict(sorted(skipped.items())),
    )
    return RFTSelection(records=records, stats=summary)


def _open(folders: RunFolder | str | Path | Iterable[RunFolder | str | Path]) -> list[RunFolder]:
    if isinstance(folders, RunFolder | str | Path):
        folders = [folders]
    opened = []
    for folder in folders:
        if isinstance(folder, RunFolder):
            opened.append(folder)
        else:
            path = Path(folder)
            opened.append(RunFolder(path, path.name))
    return opened


def _candidate(
    folder: RunFolder, order: int, result: TaskResult, repo: str
) -> _Candidate | SkipReason:
    """The attempt with its trajectory and patch, or why it cannot be used."""
    instance_id, attempt = result.instance_id, result.attempt
    try:
        trajectory = folder.saved_trajectory(instance_id, attempt)
        patch = folder.saved_patch(instance_id, attempt)
    except (OSError, ValueError):  # damaged JSON, another schema, not a trajectory at all
        return "unreadable"
    if trajectory is None:
        return "missing"
    if not trajectory.finished:
        return "unfinished"
    record = SelectedTrajectory(
        run_folder=folder.root,
        instance_id=instance_id,
        attempt=attempt,
        repo=repo,
        resolved=result.error is None and result.resolved is True,
        steps=sum(step.kind == "action" for step in trajectory.steps),
        patch=patch or trajectory.submission or "",
        trajectory=trajectory,
    )
    return _Candidate(order=order, result=result, record=record)


def _choose(candidates: list[_Candidate], policy: SelectPolicy) -> list[SelectedTrajectory]:
    if not candidates:
        return []
    if policy == "all":
        ordered = sorted(candidates, key=lambda c: (c.order, c.result.attempt))
        return [c.record for c in ordered]
    if policy == "best_of_k":
        return [min(candidates, key=_Candidate.rank).record]
    best: dict[tuple[bool, str], _Candidate] = {}
    for candidate in candidates:
        key = (candidate.record.resolved, normalise_patch(candidate.record.patch))
        if key not in best or candidate.rank() < best[key].rank():
            best[key] = candidate
    return [c.record for c in sorted(best.values(), key=_Candidate.rank)]


def _per_repo(tasks: list[TaskStats]) -> list[RepoStats]:
    by_repo: dict[str, list[TaskStats]] = {}
    for task in tasks:
        by_repo.setdefault(task.repo, []).append(task)
    return [_sum(repo, by_repo[repo]) for repo in sorted(by_repo)]


def _sum(name: str, tasks: list[TaskStats]) -> RepoStats:
    return RepoStats(
        repo=name,
        tasks=len(tasks),
        tasks_kept=sum(t.kept > 0 for t in tasks),
        attempts=sum(t.attempts for t in tasks),
        graded=sum(t.graded for t in tasks),
        resolved=sum(t.resolved for t in tasks),
        kept=sum(t.kept for t in tasks),
    )
