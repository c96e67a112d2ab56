"""What RL learns from: reward shapers, an alternative reward, and the filters around advantages.

The order matters and is the caller's (one RL step):

1. **curriculum** (:func:`curriculum_tasks`) picks the tasks to roll out: tasks solved more often
   than ``max_solve_rate`` (2/3 by default) teach little, tasks never solved in ``min_attempts``
   tries give only zero-advantage groups;
2. **reward shaping** (:func:`shape_rewards`) adjusts each trajectory's reward — the step penalty
   and DAPO's overlong penalty — BEFORE advantages, so the penalties compete within a group;
3. advantages (:func:`~agentkit.training.advantages.assign_advantages`);
4. **compact filtering** (:func:`compact_filter`) AFTER advantages: a run cut off by a budget
   (step limit, timeout, context overflow, …) still counts in its group's baseline — its reward
   says the task was not solved in budget — but its tokens are not trained on (``mask`` keeps
   them with a zero loss mask, so nothing counts them; ``drop`` removes the samples);
5. **zero-advantage groups** (:func:`drop_zero_advantage_groups`): a group where every rollout
   succeeded or every one failed has advantage 0 everywhere and contributes no gradient, only
   tokens to the normaliser that dilute the others (DAPO's dynamic sampling drops them).

:func:`patch_similarity_reward` is SWE-RL's reward when running the tests is not possible: how
similar the predicted patch is to the reference one, and −1 for an empty or unreadable patch.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentkit.types import ExitStatus

from .advantages import RLSample
from .filters import COMPACT_STATUSES
from .samples import TokenSample

CompactMode = Literal["mask", "drop", "keep"]


class CurriculumConfig(BaseModel):
    """Which tasks are still worth rolling out, from their past outcomes."""

    model_config = ConfigDict(extra="forbid")

    max_solve_rate: float = Field(default=2 / 3, ge=0, le=1)
    """Tasks solved at a rate strictly above this are dropped."""
    drop_never_solved: bool = True
    min_attempts: int = Field(default=1, ge=1)
    """A task is judged only after this many attempts; before that it is kept."""


class ShapingConfig(BaseModel):
    """Reward shapers and filters of an RL run (each off unless configured)."""

    model_config = ConfigDict(extra="forbid")

    step_penalty_threshold: int | None = Field(default=None, ge=0)
    """Turns allowed before the step penalty starts; ``None``: no step penalty."""
    step_penalty_coef: float = Field(default=0.0, ge=0)
    """Reward lost per turn beyond the threshold."""
    overlong_max_tokens: int | None = Field(default=None, ge=1)
    """L_max of DAPO's overlong penalty (the context limit); ``None``: no overlong penalty."""
    overlong_buffer: int = Field(default=1024, ge=1)
    """L_buf: the penalty grows linearly over the last ``overlong_buffer`` tokens before L_max."""
    overlong_factor: float = Field(default=1.0, ge=0)
    """The penalty at (and past) L_max."""
    compact: CompactMode = "mask"
    compact_statuses: list[ExitStatus] = Field(default_factory=lambda: list(COMPACT_STATUSES))
    drop_zero_advantage_groups: bool = True
    curriculum: CurriculumConfig | None = None

    @model_validator(mode="after")
    def _buffer_fits(self) -> ShapingConfig:
        limit = self.overlong_max_tokens
        if limit is not None and self.overlong_buffer > limit:
            raise ValueError(f"overlong_buffer {self.overlong_buffer} exceeds L_max {limit}")
        return self


# ---------------------------------------------------------------- reward shapers (pure)


def step_penalty(steps: int, threshold: int, coef: float) -> float:
    """The amount subtracted from a reward for a run of ``steps`` turns: ``coef · max(0, steps −
    threshold)``. Linear past the threshold (the Nebius recipe: a run may use ``threshold`` turns
    for free; each turn beyond costs ``coef``), so among successful runs the shorter one earns
    more, and a long run is not punished for turns it needed below the threshold."""
    return coef * max(0, steps - threshold)


def overlong_penalty(length: int, max_length: int, buffer: int, factor: float = 1.0) -> float:
    """DAPO's soft overlong penalty, the amount subtracted from a reward:
    ``min(max(L − (L_max − L_buf), 0), L_buf) / L_buf · factor`` — 0 up to ``L_max − L_buf``
    tokens, rising linearly to ``factor`` at ``L_max`` and staying there."""
    return min(max(length - (max_length - buffer), 0), buffer) / buffer * factor


def shaped_reward(reward: float, *, steps: int | None, length: int, config: ShapingConfig) -> float:
    """``reward`` less the penalties ``config`` turns on (``steps``: the run's turns, ``length``:
    its longest sequence in tokens)."""
    if config.step_penalty_threshold is not None:
        if steps is None:
            raise ValueError("the step penalty needs each trajectory's number of turns")
        reward -= step_penalty(steps, config.step_penalty_threshold, config.step_penalty_coef)
    if config.overlong_max_tokens is not None:
        reward -= overlong_penalty(
            length, config.overlong_max_tokens, config.overlong_buffer, config.overlong_factor
        )
    return reward


def shape_rewards(
    samples: Sequence[TokenSample],
    config: ShapingConfig,
    *,
    step_counts: Mapping[str, int] | None = None,
) -> list[TokenSample]:
    """Copies of ``samples`` with shaped rewards, one penalty per trajectory (all of its samples
    get the same reward). ``step_counts`` maps a trajectory id to its number of turns (the
    trajectory's action steps; a sample holds only the steps of its own branch). The length of
    the overlong penalty is the trajectory's longest sequence: the context the model last saw,
    which is what a context limit cuts."""
    lengths: dict[str, int] = {}
    for sample in samples:
        lengths[sample.trajectory_id] = max(lengths.get(sample.trajectory_id, 0), len(sample))
    shaped: list[TokenSample] = []
    for sample in samples:
        if sample.reward is None:
            raise ValueError(f"sample of trajectory {sample.trajectory_id!r} has no reward")
        steps = None if step_counts is None else step_counts.get(sample.trajectory_id)
        reward = shaped_reward(
            sample.reward, steps=steps, length=lengths[sample.trajectory_id], config=config
        )
        shaped.append(sample.model_copy(update={"reward": reward}))
    return shaped


_FILE_HEADER = re.compile(r"^(---|\+\+\+) \S", re.MULTILINE)
_HUNK_HEADER = re.compile(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@", re.MULTILINE)
_INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+.*\n?", re.MULTILINE)


def _normalise_patch(patch: str) -> str:
    """Line endings unified and ``index <hash>..<hash>`` lines removed (their blob hashes depend
    on the repository state, not on the change), trailing blank space trimmed."""
    return _INDEX_LINE.sub("", patch.replace("\r\n", "\n")).strip()


def patch_similarity_reward(predicted: str | None, reference: str) -> float:
    """SWE-RL's reward: ``difflib.SequenceMatcher`` ratio (0..1) between the normalised predicted
    and reference patches; −1 for a missing or empty patch and for text that is not a unified
    diff (no ``---``/``+++`` file header or no ``@@ -a,b +c,d @@`` hunk), so a malformed answer
    scores below any real attempt."""
    if predicted is None or not predicted.strip():
        return -1.0
    if len(_FILE_HEADER.findall(predicted)) < 2 or not _HUNK_HEADER.search(predicted):
        return -1.0
    matcher = difflib.SequenceMatcher(
        None, _normalise_patch(predicted), _normalise_patch(reference), autojunk=False
    )
    return matcher.ratio()


# ---------------------------------------------------------------- filters


def compact_filter(
    samples: Sequence[RLSample],
    exit_statuses: Mapping[str, ExitStatus],
    config: ShapingConfig,
) -> list[RLSample]:
    """Samples of trajectories that ended with one of ``config.compact_statuses`` masked (every
    loss-mask entry 0: not trained, not counted by any normaliser) or dropped; others unchanged.
    ``exit_statuses`` maps trajectory ids to their exit status; a trajectory not in it is kept."""
    if config.compact == "keep":
        return list(samples)
    cut = set(config.compact_statuses)
    kept: list[RLSample] = []
    for item in samples:
        status = exit_statuses.get(item.sample.trajectory_id)
        if status is None or status not in cut:
            kept.append(item)
        elif config.compact == "mask":
            masked = item.sample.model_copy(update={"loss_mask": [0] * len(item.sample)})
            kept.append(item.model_copy(update={"sample": masked}))
    return kept


def drop_zero_advantage_groups(samples: Sequence[RLSample]) -> list[RLSample]:
    """``samples`` without the groups whose every advantage is 0 (all rollouts solved the task, or
    none did, or the group has one rollout): they add no gradient, only tokens to the normaliser."""
    informative = {item.group for item in samples if item.advantage != 0.0}
    return [item for item in samples if item.group in informative]


def solve_rate(outcomes: Sequence[bool]) -> float:
    """The fraction of ``outcomes`` that solved the task (0.0 for none)."""
    return sum(outcomes) / len(outcomes) if outcomes else 0.0


def curriculum_tasks(
    task_ids: Iterable[str],
    history: Mapping[str, Sequence[bool]],
    config: CurriculumConfig | None = None,
) -> list[str]:
    """The task ids worth rolling out, in input order: a task with at least ``min_attempts``
    past outcomes in ``history`` is dropped when its solve rate exceeds ``max_solve_rate`` or
    (with ``drop_never_solved``) when it was never solved; a task seen fewer times is kept."""
    config = config or CurriculumConfig()
    kept: list[str] = []
    for task in task_ids:
        outcomes = history.get(task, ())
        if len(outcomes) >= config.min_attempts:
            rate = solve_rate(outcomes)
            if rate > config.max_solve_rate or (config.drop_never_solved and rate == 0.0):
                continue
        kept.append(task)
    return kept
