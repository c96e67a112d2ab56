"""Model calls made by history processors, recorded as steps of the run.

Why this exists: a history processor that shortens the conversation (an ``llm_summary``) may ask
the model for a summary. That is a model call of the run like any other, so it must leave the same
record: its exact input in the trajectory's message pool (training data must equal what the model
saw), its cost counted, and a step (of kind ``condensation``) in the trajectory and the step log
as it happens. Processors see only :class:`~agentkit.history_base.HistoryContext`;
:class:`RecordedCalls` is the agent loop's side of that seam. It holds no bookkeeping of its own:
pooling messages and recording steps stay with the loop (:mod:`agentkit.agent`), which hands them
in as callables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agentkit.backend import Backend
from agentkit.types import Completion, Message, SamplingParams, Step, StepTimings, Trajectory


@dataclass(frozen=True)
class RecordedCalls:
    """The :class:`~agentkit.history_base.HistoryContext` of one run: each :meth:`complete` goes
    to the run's backend and is recorded as a step of kind ``condensation``."""

    backend: Backend
    sampling: SamplingParams
    """The scaffold's sampling parameters, used when a call names none."""
    trajectory: Trajectory
    pool: Callable[[list[Message]], list[int]]
    """Adds messages to the run's de-duplicated message pool; returns their indices."""
    record: Callable[[Step], None]
    """Records a finished step (trajectory, step log, the run's counters, progress display)."""

    async def complete(
        self, messages: list[Message], params: SamplingParams | None = None
    ) -> Completion:
        input_ids = self.pool(messages)
        began = time.monotonic()
        completion = await self.backend.complete(
            messages, [], params if params is not None else self.sampling
        )
        self.trajectory.cost += completion.cost
        step = Step(
            index=len(self.trajectory.steps),
            kind="condensation",
            input=input_ids,
            completion=completion,
            timings=StepTimings(model_s=time.monotonic() - began),
            policy_version=completion.policy_version,
        )
        self.record(step)
        return completion
