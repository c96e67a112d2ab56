"""The ``tool_loop`` scaffold type: ask the model, parse one action, run it, repeat until a
submit or a limit.

:class:`ToolLoop` is the scaffold (built from a :class:`ScaffoldConfig`, called through
:meth:`ToolLoop.solve` like every scaffold type); :class:`Agent` is one run of it.
The run ends with a submission when the model calls the ``submit`` tool or an action's output
starts with the config's submit sentinel; the submission is the workspace's diff
(:func:`agentkit.workspace.workspace_diff`).

Every way a run can end is an :class:`ExitStatus` recorded in the trajectory with a message.
Every model call's exact input is recorded (as indices into a de-duplicated message pool), and
finished steps reach disk as they happen (see :class:`StepLog`), so a crash or Ctrl-C loses nothing.
That includes the calls history processors make (an ``llm_summary``): they are steps of kind
``condensation``, made before the turn whose input they shorten
(see :mod:`agentkit.history_calls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit.backend import (
    Backend,
    BackendError,
    ContextExceeded,
    warn_if_cost_limit_never_triggers,
)
from agentkit.errors import unexpected_error_message
from agentkit.history import apply_history, estimate_tokens
from agentkit.history_calls import RecordedCalls
from agentkit.prompts import render
from agentkit.runtime.base import Runtime, SandboxError
from agentkit.scaffold import ScaffoldConfig
from agentkit.store import StepLog
from agentkit.tasks import Task
from agentkit.tools import CallFormat, Tool, ToolCallError, ToolContext
from agentkit.tools.errors import TruncatedReply
from agentkit.tools.native import with_call_ids
from agentkit.tools.submit import SubmitTool
from agentkit.types import (
    ExitStatus,
    Message,
    Observation,
    Step,
    StepTimings,
    Trajectory,
)
from agentkit.workspace import workspace_diff


class _Exit(Exception):
    def __init__(self, status: ExitStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _State:
    """What the loop tracks between steps. ``observations`` are indices of observation messages
    in ``history`` (history processors elide by them); ``caches`` hold each history processor's
    per-run state (one dict per processor)."""

    history: list[Message] = field(default_factory=list)
    observations: list[int] = field(default_factory=list)
    caches: list[dict[Any, Any]] = field(default_factory=list)
    pool: dict[int, int] = field(default_factory=dict)
    actions: int = 0
    """Steps of kind ``action`` so far (condensations do not count against the step limit)."""
    format_errors: int = 0
    timeouts: int = 0
    last_prompt_tokens: int = 0


class ToolLoop:
    """The ``tool_loop`` scaffold type (see :mod:`agentkit.scaffolding`).

    ``tools``: already-built tools to use instead of building ``config.tools`` (a caller that
    shares tools across runs, or holds tools that cannot be named in a config, such as MCP ones).
    """

    Config = ScaffoldConfig

    def __init__(self, config: ScaffoldConfig, *, tools: Sequence[Tool] | None = None) -> None:
        self.config = config
        self.tools = list(tools) if tools is not None else config.build_tools()

    async def solve(
        self,
        task: Task,
        runtime: Runtime,
        backend: Backend,
        *,
        trajectory_path: str | Path | None = None,
        on_step: Callable[[Step], None] | None = None,
    ) -> Trajectory:
        async with contextlib.AsyncExitStack() as stack:
            tools = list(self.tools)
            if self.config.mcp_servers:
                from agentkit.tools.mcp import mcp_tools  # the mcp package loads only when used

                tools += await stack.enter_async_context(mcp_tools(*self.config.mcp_servers))
            agent = Agent(
                self.config,
                backend,
                runtime,
                tools,
                trajectory_path=trajectory_path,
                on_step=on_step,
            )
            return await agent.run(task)


class Agent:
    """Runs one tool-loop scaffold with one backend in one runtime.

    ``tools`` are the scaffold's tools, already built (:class:`ToolLoop` builds them from
    ``config.tools``). ``trajectory_path``, when given, receives the finished trajectory and, while
    the run goes on, an append-only log of its steps beside it. ``on_step`` is called after each
    step (progress displays).
    """

    def __init__(
        self,
        config: ScaffoldConfig,
        backend: Backend,
        runtime: Runtime,
        tools: list[Tool],
        *,
        trajectory_path: str | Path | None = None,
        on_step: Callable[[Step], None] | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.runtime = runtime
        self.tools = tools
        self.format: CallFormat = config.build_format()
        self.trajectory_path = Path(trajectory_path) if trajectory_path else None
        self.on_step = on_step
        self._tool_specs = [tool.spec() for tool in tools] if self.format.native else []
        self._context = ToolContext(
            runtime=runtime, command_timeout=config.limits.command_timeout_s
        )

    async def run(self, task: Task) -> Trajectory:
        warn_if_cost_limit_never_triggers(self.config.limits.max_cost, self.backend)
        trajectory = Trajectory(
            task_id=task.instance_id,
            scaffold=self.config.model_dump(mode="json"),
            backend=self.backend.describe(),
            tools=self._tool_specs,
        )
        log = StepLog(self.trajectory_path, trajectory) if self.trajectory_path else None
        state = _State(caches=[{} for _ in self.config.history])
        started = time.monotonic()
        self._start_conversation(task, state)
        try:
            while True:
                await self._step(task, trajectory, state, started, log)
        except _Exit as exit_:
            trajectory.exit_status, trajectory.exit_message = exit_.status, exit_.message
        except ContextExceeded as exc:
            trajectory.exit_status = ExitStatus.CONTEXT_EXCEEDED
            trajectory.exit_message = f"The backend refused the prompt as too long: {exc}"
        except BackendError as exc:
            trajectory.exit_status = ExitStatus.BACKEND_ERROR
            trajectory.exit_message = str(exc)
        except SandboxError as exc:
            trajectory.exit_status = ExitStatus.RUNTIME_ERROR
            trajectory.exit_message = str(exc)
        except (KeyboardInterrupt, asyncio.CancelledError):
            trajectory.exit_status = ExitStatus.INTERRUPTED
            trajectory.exit_message = "Interrupted by the user; the finished steps are saved."
            self._finish(trajectory, started, log)
            raise
        except Exception as exc:  # a bug in a backend, tool or template: this run's end, not all
            trajectory.exit_status = ExitStatus.ERROR
            trajectory.exit_message = unexpected_error_message(exc)
        if trajectory.exit_status is not ExitStatus.SUBMITTED:
            await self._autosubmit(trajectory, task)
        self._finish(trajectory, started, log)
        return trajectory

    # -- one turn -------------------------------------------------------------------------------

    async def _step(
        self, task: Task, trajectory: Trajectory, state: _State, started: float, log: StepLog | None
    ) -> None:
        self._check_limits(trajectory, state, started)
        model_input = await apply_history(
            self.config.history,
            state.history,
            state.observations,
            state.caches,
            RecordedCalls(
                self.backend,
                self.config.sampling,
                trajectory,
                pool=lambda messages: self._pool(trajectory, state, messages, log),
                record=lambda step: self._record(trajectory, step, log, state),
            ),
        )
        self._check_context(state, model_input)
        input_ids = self._pool(trajectory, state, model_input, log)

        began = time.monotonic()
        completion = await self.backend.complete(
            model_input, self._tool_specs, self.config.sampling
        )
        model_s = time.monotonic() - began
        if self.format.native:
            completion = with_call_ids(completion)  # every answer to a call must name its id
        trajectory.cost += completion.cost
        if completion.usage.prompt_tokens:
            state.last_prompt_tokens = (
                completion.usage.prompt_tokens + completion.usage.completion_tokens
            )

        step = Step(
            index=len(trajectory.steps),
            input=input_ids,
            completion=completion,
            policy_version=completion.policy_version,
        )
        state.history.append(self.format.assistant_message(completion))
        try:
            action = self.format.parse(completion, self.tools)
        except ToolCallError as error:
            step.format_error = error.message
            # A reply cut by the token limit is the budget's fault, not the model's format.
            if not isinstance(error, TruncatedReply):
                state.format_errors += 1
            feedback = render(
                self.config.format_error_template, "format_error_template", error=error.message
            )
            # Native calling needs an answer per call id, so the format builds the messages.
            state.history.extend(self.format.error_messages(completion, ToolCallError(feedback)))
            step.timings = StepTimings(model_s=model_s)
            self._record(trajectory, step, log, state)
            if state.format_errors >= self.config.limits.max_format_errors:
                raise _Exit(
                    ExitStatus.FORMAT_ERRORS,
                    f"{state.format_errors} consecutive replies had no valid action; last error: "
                    f"{error.message}",
                ) from None
            return

        state.format_errors = 0
        step.action = action.call
        began = time.monotonic()
        observation = await action.tool.execute(action.args, self._context)
        step.timings = StepTimings(model_s=model_s, action_s=time.monotonic() - began)
        step.observation = observation
        self._record(trajectory, step, log, state)

        submitted = isinstance(action.tool, SubmitTool) and action.tool.ends_run(self.runtime)
        if submitted or self._is_submission(observation):
            trajectory.submission = await self._diff(task)
            raise _Exit(ExitStatus.SUBMITTED, "The agent submitted.")
        state.timeouts = state.timeouts + 1 if observation.timed_out else 0
        text = render(
            self.config.observation_template,
            "observation_template",
            output=observation.output,
            exit_code=observation.exit_code,
            timed_out=observation.timed_out,
            truncated=observation.truncated,
        )
        state.observations.append(len(state.history))
        state.history.append(self.format.observation_message(action, text))
        if state.timeouts >= self.config.limits.max_timeouts:
            raise _Exit(ExitStatus.TIMEOUTS, f"{state.timeouts} consecutive commands timed out.")

    # -- helpers --------------------------------------------------------------------------------

    def _start_conversation(self, task: Task, state: _State) -> None:
        variables = {
            "task": task,
            "workdir": self.runtime.workdir,
            "tool_instructions": self.format.instructions(self.tools),
            "submit_sentinel": self.config.submit_sentinel,
        }
        state.history.append(
            Message(
                role="system",
                content=render(self.config.system_template, "system_template", **variables),
            )
        )
        state.history.append(
            Message(
                role="user",
                content=render(self.config.instance_template, "instance_template", **variables),
            )
        )

    def _pool(
        self, trajectory: Trajectory, state: _State, messages: list[Message], log: StepLog | None
    ) -> list[int]:
        """Map each message object to its index in the trajectory's pool, adding new ones."""
        ids: list[int] = []
        for message in messages:
            index = state.pool.get(id(message))
            if index is None:
                index = len(trajectory.messages)
                trajectory.messages.append(message)
                state.pool[id(message)] = index
                if log:
                    log.add_message(message)
            ids.append(index)
        return ids

    def _check_limits(self, trajectory: Trajectory, state: _State, started: float) -> None:
        limits = self.config.limits
        if limits.max_steps is not None and state.actions >= limits.max_steps:
            raise _Exit(ExitStatus.STEP_LIMIT, f"Reached the step limit ({limits.max_steps}).")
        if limits.max_cost is not None and trajectory.cost >= limits.max_cost:
            raise _Exit(
                ExitStatus.COST_LIMIT,
                f"Reached the cost limit (${trajectory.cost:.4f} of ${limits.max_cost:.2f}).",
            )
        elapsed = time.monotonic() - started
        if limits.max_wall_time_s is not None and elapsed >= limits.max_wall_time_s:
            raise _Exit(
                ExitStatus.TIME_LIMIT,
                f"Reached the wall-time limit ({limits.max_wall_time_s:.0f} s).",
            )

    def _check_context(self, state: _State, model_input: list[Message]) -> None:
        """The context limit, on what is about to be sent (after the history processors): the
        last call's measured size, unless a summary shrank the conversation since, or the
        estimated size of this input."""
        limit = self.config.limits.max_context_tokens
        if limit is None:
            return
        tokens = max(state.last_prompt_tokens, estimate_tokens(model_input))
        if tokens >= limit:
            raise _Exit(
                ExitStatus.CONTEXT_EXCEEDED,
                f"The conversation (~{tokens} tokens) reached the context limit ({limit}).",
            )

    def _is_submission(self, observation: Observation) -> bool:
        first_line = observation.output.lstrip().split("\n", 1)[0].strip()
        return first_line == self.config.submit_sentinel

    async def _diff(self, task: Task) -> str:
        return await workspace_diff(
            self.runtime, task.base_commit, timeout=self.config.limits.command_timeout_s
        )

    async def _autosubmit(self, trajectory: Trajectory, task: Task) -> None:
        if not self.config.limits.autosubmit or trajectory.exit_status in (
            ExitStatus.RUNTIME_ERROR,
            ExitStatus.INTERRUPTED,
        ):
            return
        try:
            trajectory.submission = await self._diff(task)
            trajectory.autosubmitted = True
        except SandboxError as exc:
            trajectory.exit_message += f" (autosubmit failed: {exc})"

    def _record(
        self, trajectory: Trajectory, step: Step, log: StepLog | None, state: _State
    ) -> None:
        if step.kind == "action":
            state.actions += 1
        elif step.kind == "condensation":
            # The conversation is being rewritten: the last call's size no longer measures it.
            state.last_prompt_tokens = 0
        trajectory.steps.append(step)
        if log:
            log.add_step(step)
        if self.on_step:
            self.on_step(step)

    def _finish(self, trajectory: Trajectory, started: float, log: StepLog | None) -> None:
        trajectory.wall_time_s = time.monotonic() - started
        if self.trajectory_path:
            trajectory.save(self.trajectory_path)
            if log:
                log.remove()
