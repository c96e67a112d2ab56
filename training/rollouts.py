"""Rollout collection for RL: G attempts per task against a served policy, graded, as groups.

A group is the G rollouts of one task; group-relative advantages compare rewards within it.
Rollouts go through the harness library (:func:`agentkit.evals.harness.run_and_grade`), so any
scaffold and runtime works, attempts run on ``workers`` concurrent workers, and every attempt
lands in a run folder like any evaluation's. This module adds what RL needs on top:

- the policy it samples from (:mod:`.policy`): :class:`PolicyBackend` stamps each completion
  with the policy version of its :class:`PolicyEndpoint`, and sampling settings that truncate
  the vocabulary are refused before anything runs;
- rewards from the grade (resolved → 1.0, else 0.0). An attempt that ended in an error (backend,
  sandbox, grader: no evidence either way) is left out of its group and counted, never turned
  into a zero reward and never allowed to abort the collection;
- token-exact samples of each rollout from the recorded ids (:func:`trajectory_samples`), and
  statistics: solve rate, reward, steps, tokens, versions, and wall time per harness phase.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel, ConfigDict, Field

from agentkit.backend import Backend
from agentkit.errors import UserFacingError
from agentkit.evals.events import EventHandler, HarnessEvent, TaskFinished, TaskProgress
from agentkit.evals.harness import run_and_grade
from agentkit.evals.jobs import RuntimeKind
from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.scaffold import BaseScaffoldConfig
from agentkit.tasks import Task
from agentkit.tools import Tool
from agentkit.training.samples import TokenSample
from agentkit.training.sequences import trajectory_samples
from agentkit.types import Trajectory

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from agentkit.training.policy import (
    PolicyBackend,
    PolicyEndpoint,
    TruncatedSamplingError,
    check_sampling,
)

__all__ = [
    "PolicyBackend",
    "PolicyEndpoint",
    "Rollout",
    "RolloutBatch",
    "RolloutFailure",
    "RolloutStats",
    "TruncatedSamplingError",
    "check_sampling",
    "collect_rollouts",
]


class Rollout(BaseModel):
    """One graded attempt: its trajectory, reward and training samples."""

    model_config = ConfigDict(extra="forbid")

    task_id: str
    attempt: int
    reward: float
    resolved: bool
    exit_status: str | None
    steps: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_time_s: float = 0.0
    policy_versions: list[int] = Field(default_factory=list)
    """The version of each model call that recorded one, in step order."""
    trajectory: Trajectory
    samples: list[TokenSample] = Field(default_factory=list)
    """Token-exact sequences from the recorded ids (``task_id`` is the group id)."""

    @property
    def oldest_version(self) -> int | None:
        return min(self.policy_versions) if self.policy_versions else None


class RolloutFailure(BaseModel):
    """An attempt left out of its group: it has no grade (the run or the grading failed)."""

    model_config = ConfigDict(extra="forbid")

    task_id: str
    attempt: int
    error: str


class RolloutStats(BaseModel):
    """What one collection did. Rates count graded rollouts only (failures are no evidence)."""

    model_config = ConfigDict(extra="forbid")

    tasks: int
    attempts: int
    rollouts: int
    failures: int
    solved: int
    solve_rate: float
    mean_reward: float
    tasks_solved: int
    """Tasks with at least one resolved rollout."""
    mean_steps: float
    prompt_tokens: int
    completion_tokens: int
    trained_tokens: int
    exit_statuses: dict[str, int] = Field(default_factory=dict)
    policy_versions: dict[int, int] = Field(default_factory=dict)
    """Model calls per policy version."""
    wall_time_s: float
    phase_seconds: dict[str, float] = Field(default_factory=dict)
    """Seconds summed over attempts per harness phase (``image``, ``sandbox``, ``agent``,
    ``grading``), from the harness's progress events."""


class RolloutBatch(BaseModel):
    """Groups of rollouts by task id, the attempts left out, and the statistics."""

    model_config = ConfigDict(extra="forbid")

    groups: dict[str, list[Rollout]]
    failures: list[RolloutFailure] = Field(default_factory=list)
    stats: RolloutStats

    def samples(self) -> list[TokenSample]:
        """Every rollout's samples, group by group."""
        return [s for group in self.groups.values() for r in group for s in r.samples]


async def collect_rollouts(
    tasks: Sequence[Task],
    scaffold: BaseScaffoldConfig,
    folder: RunFolder | str | Path,
    *,
    endpoint: PolicyEndpoint | None = None,
    backend_for: Callable[[Task], Backend] | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    group_size: int = 4,
    runtime: RuntimeKind = "local",
    workers: int = 2,
    tools: Sequence[Tool] = (),
    allow_truncated_sampling: bool = False,
    on_event: EventHandler | None = None,
) -> RolloutBatch:
    """Run ``group_size`` attempts of each task against the policy at ``endpoint`` (or the
    backends of ``backend_for``, e.g. a scripted one), grade them, and return the groups.

    Every attempt runs afresh (a folder's earlier attempts, from older weights, are never
    reused); attempt ``k`` of a task samples with the harness's ``attempt_seed`` (the
    scaffold's seed + ``k`` + an offset fixed by the task id), so vary the scaffold's seed
    between collections. ``tokenizer`` renders steps without recorded token ids; without it,
    every step must carry them (the policy backend's always do)."""
    if (endpoint is None) == (backend_for is None):
        raise ValueError("give exactly one of endpoint and backend_for")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, not {group_size}")
    if not allow_truncated_sampling:
        check_sampling(scaffold.sampling, endpoint.extra_body if endpoint else None)
    run_folder = folder if isinstance(folder, RunFolder) else _folder(Path(folder))
    shared = (
        PolicyBackend(endpoint, allow_truncated_sampling=allow_truncated_sampling)
        if (endpoint is not None)
        else None
    )
    clock = _PhaseClock(on_event)
    began = time.monotonic()
    try:
        results = await run_and_grade(
            tasks,
            scaffold,
            tools,
            backend_for if backend_for is not None else (lambda task: cast(Backend, shared)),
            run_folder,
            runtime=runtime,
            workers=workers,
            attempts=group_size,
            rerun=True,
            model_name=endpoint.model if endpoint else "policy",
            on_event=clock,
        )
    finally:
        if shared is not None:
            await shared.aclose()
    wall = time.monotonic() - began
    groups: dict[str, list[Rollout]] = {task.instance_id: [] for task in tasks}
    failures: list[RolloutFailure] = []
    for result in results:
        outcome = _rollout(result, run_folder, tokenizer)
        if isinstance(outcome, RolloutFailure):
            failures.append(outcome)
        else:
            groups[result.instance_id].append(outcome)
    groups = {task_id: group for task_id, group in groups.items() if group}
    stats = _stats(len(tasks), len(results), groups, failures, wall, clock.seconds)
    return RolloutBatch(groups=groups, failures=failures, stats=stats)


def _folder(root: Path) -> RunFolder:
    return RunFolder(root, root.name)


def _rollout(
    result: TaskResult, folder: RunFolder, tokenizer: PreTrainedTokenizerBase | None
) -> Rollout | RolloutFailure:
    """The graded attempt as a rollout, or the reason it has no place in its group."""

    def failure(error: str) -> RolloutFailure:
        return RolloutFailure(task_id=result.instance_id, attempt=result.attempt, error=error)

    if result.error is not None or result.resolved is None:
        return failure(result.error or "not graded")
    trajectory = folder.saved_trajectory(result.instance_id, result.attempt)
    if trajectory is None:
        return failure("graded, but its trajectory was not saved")
    actions = [s for s in trajectory.steps if s.kind == "action"]
    if tokenizer is None and any(s.completion.completion_token_ids is None for s in actions):
        raise UserFacingError(
            f"{result.instance_id} attempt {result.attempt}: a step has no recorded token ids. "
            "Serve the policy through PolicyBackend (request_token_ids), or pass a tokenizer "
            "to render such steps with the chat template."
        )
    trajectory_id = str(folder.trajectory_path(result.instance_id, result.attempt))
    samples = trajectory_samples(
        trajectory,
        cast("PreTrainedTokenizerBase", tokenizer),  # only read for steps without ids
        trajectory_id=trajectory_id,
    )
    reward = 1.0 if result.resolved else 0.0
    return Rollout(
        task_id=result.instance_id,
        attempt=result.attempt,
        reward=reward,
        resolved=bool(result.resolved),
        exit_status=result.exit_status,
        steps=result.steps,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        wall_time_s=result.wall_time_s,
        policy_versions=[s.policy_version for s in actions if s.policy_version is not None],
        trajectory=trajectory,
        samples=[s.model_copy(update={"reward": reward}) for s in samples],
    )


class _PhaseClock:
    """Listens to the harness's events and adds up the time each attempt spends per phase
    (a phase lasts until the attempt's next phase starts or it finishes)."""

    def __init__(self, forward: EventHandler | None) -> None:
        self.forward = forward
        self.seconds: dict[str, float] = {}
        self._current: dict[tuple[str, int], tuple[str, float]] = {}

    def __call__(self, event: HarnessEvent) -> None:
        now = time.monotonic()
        if isinstance(event, TaskProgress) and event.step is None:
            self._close((event.instance_id, event.attempt), now)
            self._current[event.instance_id, event.attempt] = (event.phase, now)
        elif isinstance(event, TaskFinished):
            self._close((event.result.instance_id, event.result.attempt), now)
        if self.forward is not None:
            self.forward(event)

    def _close(self, key: tuple[str, int], now: float) -> None:
        current = self._current.pop(key, None)
        if current is not None:
            phase, since = current
            self.seconds[phase] = self.seconds.get(phase, 0.0) + now - since


def _stats(
    tasks: int,
    attempts: int,
    groups: dict[str, list[Rollout]],
    failures: list[RolloutFailure],
    wall: float,
    phases: dict[str, float],
) -> RolloutStats:
    rollouts = [r for group in groups.values() for r in group]
    solved = sum(r.resolved for r in rollouts)
    count = len(rollouts)
    versions: Counter[int] = Counter(v for r in rollouts for v in r.policy_versions)
    return RolloutStats(
        tasks=tasks,
        attempts=attempts,
        rollouts=count,
        failures=len(failures),
        solved=solved,
        solve_rate=solved / count if count else 0.0,
        mean_reward=sum(r.reward for r in rollouts) / count if count else 0.0,
        tasks_solved=sum(any(r.resolved for r in group) for group in groups.values()),
        mean_steps=sum(r.steps for r in rollouts) / count if count else 0.0,
        prompt_tokens=sum(r.prompt_tokens for r in rollouts),
        completion_tokens=sum(r.completion_tokens for r in rollouts),
        trained_tokens=sum(s.trained_tokens for r in rollouts for s in r.samples),
        exit_statuses=dict(Counter(str(r.exit_status) for r in rollouts)),
        policy_versions=dict(sorted(versions.items())),
        wall_time_s=wall,
        phase_seconds={k: round(v, 3) for k, v in sorted(phases.items())},
    )
