"""A scaffold is declarative: tools, a call format, templates, history processors and limits.

Scaffold files are YAML validated by :class:`ScaffoldConfig`; a typo is an error that names the
field. The agent loop (``agentkit.agent``) runs any config; the bundled scaffolds live in
``agentkit.scaffolds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.errors import UserFacingError
from agentkit.history import HistoryProcessor
from agentkit.types import SamplingParams
from agentkit.validation import describe_problems
from agentkit.yaml_files import read_yaml


class ScaffoldConfigError(UserFacingError, ValueError):
    """A scaffold file is missing, unreadable or invalid."""


class Limits(BaseModel):
    """When a run stops. ``None`` disables a limit."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = 100
    max_cost: float | None = 3.0
    """Dollars, as reported by the backend."""
    max_wall_time_s: float | None = 3600.0
    command_timeout_s: float = 120.0
    max_context_tokens: int | None = None
    """Estimated from the prompt (the backend's count when it reports one, else characters / 4)."""
    max_format_errors: int = 3
    """Consecutive replies without a valid action before the run ends."""
    max_timeouts: int = 3
    """Consecutive commands that timed out before the run ends."""
    autosubmit: bool = True
    """On a limit exit, submit the workspace's current diff (the exit status still says why)."""


class ScaffoldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    tools: list[str] = Field(default_factory=lambda: ["bash"])
    call_format: Literal["native", "xml", "bash_block"] = "bash_block"
    system_template: str
    instance_template: str
    """Rendered with ``task`` (the Task), ``workdir`` and ``tool_instructions``."""
    observation_template: str
    """Rendered with ``output``, ``exit_code``, ``timed_out`` and ``truncated``."""
    format_error_template: str
    """Rendered with ``error``: the parser's message naming the problem."""
    submit_sentinel: str = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    """An action whose output starts with this line ends the run and submits the diff."""
    history: list[HistoryProcessor] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    sampling: SamplingParams = Field(default_factory=SamplingParams)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ScaffoldConfig:
        data = read_yaml(path, ScaffoldConfigError, "scaffold file")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ScaffoldConfigError(
                f"{path} is not a valid scaffold: {describe_problems(exc, cls)}."
            ) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
