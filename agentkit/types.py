"""The data that flows between agentkit's parts.

Everything here is a pydantic v2 model so that it validates on the way in, serialises to JSON
exactly, and round-trips. A :class:`Trajectory` is the unit that evaluation and training read:
it records every model call's exact input, so training data equals what the model saw.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
"""Version of the trajectory file format. Bump it on any incompatible change."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolCall(_Model):
    """One action the model asked for: a tool name and its (already parsed) arguments."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None
    """The backend's call id for native function calling; ``None`` for text formats."""


class ToolSpec(_Model):
    """What a backend is told about a tool: a name, a description and a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


Role = Literal["system", "user", "assistant", "tool"]


class Message(_Model):
    """A chat message. ``tool_calls`` is set on assistant turns that used native function calling.

    ``cache_control`` marks a prompt-cache breakpoint after this message (set by the
    ``cache_markers`` history processor); backends for providers that take explicit markers send
    it, the others ignore it."""

    role: Role
    content: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    cache_control: bool = False


class Usage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class Completion(_Model):
    """One reply of a backend.

    Token ids and logprobs are set only by backends that have them (vLLM, local transformers);
    they must be exactly what the model saw and sampled, because training reads them as they are.
    """

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    cost: float = 0.0
    model: str | None = None
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    policy_version: int | None = None
    """The weights version that sampled this reply, set by a backend that knows it (an RL
    rollout backend in front of a policy server whose weights change during training); the
    agent copies it onto :attr:`Step.policy_version` so training can bound staleness."""


class SamplingParams(_Model):
    """Decoding parameters; each backend maps them to its own API and refuses what it cannot honour."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    n: int = 1


class Observation(_Model):
    """What an action produced, as shown to the model (already shaped: truncated, made printable)."""

    output: str
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0


class ExitStatus(StrEnum):
    """Why a run ended. Everything except ``submitted`` is a limit or a failure."""

    SUBMITTED = "submitted"
    STEP_LIMIT = "step_limit"
    COST_LIMIT = "cost_limit"
    TIME_LIMIT = "time_limit"
    CONTEXT_EXCEEDED = "context_exceeded"
    FORMAT_ERRORS = "format_errors"
    TIMEOUTS = "timeouts"
    BACKEND_ERROR = "backend_error"
    RUNTIME_ERROR = "runtime_error"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    """An unexpected exception (a bug in a backend, tool or template) ended this run; the
    message names it. Not the model's doing, so a harness does not grade it."""


class StepTimings(_Model):
    model_s: float = 0.0
    action_s: float = 0.0


StepKind = Literal["action", "condensation"]


class Step(_Model):
    """One turn of the loop: the model's exact input, its reply, the parsed action and its result.

    ``input`` holds indices into :attr:`Trajectory.messages` (a de-duplicated pool), so a long
    run does not store its growing prompt once per step; :meth:`Trajectory.model_input` expands it.

    ``kind`` is ``action`` for a turn of the loop and ``condensation`` for a model call that a
    history processor made to summarise the conversation (no action, no observation; it does not
    count against the step limit). Both are exact model inputs; training may keep or drop either.
    """

    index: int
    kind: StepKind = "action"
    input: list[int]
    completion: Completion
    action: ToolCall | None = None
    observation: Observation | None = None
    format_error: str | None = None
    timings: StepTimings = Field(default_factory=StepTimings)
    policy_version: int | None = None


class TrajectoryVersionError(ValueError):
    """A trajectory file was written by a newer agentkit than the one reading it."""


class Trajectory(_Model):
    schema_version: int = SCHEMA_VERSION
    task_id: str
    scaffold: dict[str, Any] = Field(default_factory=dict)
    backend: dict[str, Any] = Field(default_factory=dict)
    tools: list[ToolSpec] = Field(default_factory=list)
    """The tool specs sent with every model call (native function calling); empty when the
    scaffold describes its tools in the prompt. Training renders chat templates with them."""
    messages: list[Message] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    exit_status: ExitStatus | None = None
    exit_message: str = ""
    autosubmitted: bool = False
    submission: str | None = None
    """The final ``git diff`` of the workspace; ``None`` when nothing was submitted."""
    reward: float | None = None
    cost: float = 0.0
    wall_time_s: float = 0.0

    def model_input(self, step: Step) -> list[Message]:
        """The exact list of messages sent to the model for ``step``."""
        return [self.messages[i] for i in step.input]

    @property
    def finished(self) -> bool:
        return self.exit_status is not None

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename) so a crash never leaves a half-written file."""
        write_text_atomic(Path(path), self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: dict[str, Any], source: str = "<data>") -> Trajectory:
        version = data.get("schema_version")
        if not isinstance(version, int):
            raise TrajectoryVersionError(
                f"{source}: not a trajectory (no integer 'schema_version')."
            )
        if version > SCHEMA_VERSION:
            raise TrajectoryVersionError(
                f"{source}: trajectory schema_version {version} is newer than this agentkit "
                f"understands ({SCHEMA_VERSION}); upgrade agentkit to read it."
            )
        return cls.model_validate(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
