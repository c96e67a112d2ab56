"""Scaffold configs: what a scaffold file (YAML) says, validated; a typo is an error that names
the field.

Every scaffold type's config subclasses :class:`BaseScaffoldConfig` and is picked by its ``type``
field (see :mod:`agentkit.scaffolding`, which builds scaffolds from configs). The ``tool_loop``
type, :class:`ScaffoldConfig`, is declarative: tools, a call format, templates, history
processors and limits. The bundled scaffolds live in ``agentkit.scaffolds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentkit.dotted import import_folders
from agentkit.errors import UserFacingError
from agentkit.history import HistoryProcessor
from agentkit.registry import find_class
from agentkit.tools import TOOLS, UNKNOWN_TOOL_NAME, CallFormat, Tool
from agentkit.tools.formats import FORMATS, UNKNOWN_FORMAT
from agentkit.tools.mcp_config import MCPServer
from agentkit.types import SamplingParams
from agentkit.validation import describe_problems
from agentkit.yaml_files import read_yaml


class ScaffoldConfigError(UserFacingError, ValueError):
    """A scaffold file is missing, unreadable or invalid."""


class Limits(BaseModel):
    """When a run stops. ``None`` disables a limit."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = 100
    max_cost: float | None = Field(default=3.0, ge=0)
    """Dollars, as reported by the backend; 0 means no limit, as ``null`` does (a run that must
    stop before its first call has no use)."""
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

    @field_validator("max_cost")
    @classmethod
    def _zero_cost_is_no_limit(cls, value: float | None) -> float | None:
        return None if value == 0 else value


class BaseScaffoldConfig(BaseModel):
    """What every scaffold type's config has: its ``type`` (a registered name such as
    ``tool_loop``, or a dotted path to a user's scaffold class), a ``name`` for runs, and the
    sampling parameters (the harness varies the seed per attempt). A type's config subclasses
    this; a registered type narrows ``type`` to ``Literal["its_name"]``, a type used by dotted
    path keeps ``type: str`` (the path is its value, so the config round-trips)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str
    sampling: SamplingParams = Field(default_factory=SamplingParams)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """This class's config from a YAML file (for any type, see
        :func:`agentkit.scaffolding.load_scaffold_config`)."""
        data = read_yaml(path, ScaffoldConfigError, "scaffold file")
        try:
            with import_folders([Path(path).parent]):  # as load_scaffold_config
                return cls.model_validate(data)
        except ValidationError as exc:
            raise ScaffoldConfigError(
                f"{path} is not a valid scaffold: {describe_problems(exc, cls)}."
            ) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


class ScaffoldConfig(BaseScaffoldConfig):
    """The ``tool_loop`` scaffold type: ask the model, run one tool call, repeat (the loop is
    :class:`agentkit.agent.Agent`). A file without ``type`` is this type.

    ``tools`` and ``call_format`` are registered names or dotted paths (``"my_pkg.tools:Lint"``)
    to a :class:`~agentkit.tools.Tool` / :class:`~agentkit.tools.CallFormat` subclass; both are
    checked when the config loads."""

    type: Literal["tool_loop"] = "tool_loop"
    tools: list[str] = Field(default_factory=lambda: ["bash"])
    call_format: str = "bash_block"
    """``native``, ``xml``, ``bash_block``, or a dotted path to a CallFormat subclass."""
    system_template: str
    instance_template: str
    """Rendered with ``task`` (the Task), ``workdir``, ``tool_instructions`` and
    ``submit_sentinel``."""
    observation_template: str
    """Rendered with ``output``, ``exit_code``, ``timed_out`` and ``truncated``."""
    format_error_template: str
    """Rendered with ``error``: the parser's message naming the problem."""
    submit_sentinel: str = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    """An action whose output starts with this line ends the run and submits the diff (for
    bash-only scaffolds; others may list the ``submit`` tool)."""
    history: list[HistoryProcessor] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    mcp_servers: list[MCPServer] = Field(default_factory=list)
    """MCP servers whose tools join ``tools``: started on the host for each run, stopped at its
    end (see :mod:`agentkit.tools.mcp`)."""

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, names: list[str]) -> list[str]:
        for name in names:
            tool_class(name)
        return names

    @field_validator("call_format")
    @classmethod
    def _known_format(cls, name: str) -> str:
        format_class(name)
        return name

    def build_tools(self) -> list[Tool]:
        """New instances of :attr:`tools`."""
        return [tool_class(name)() for name in self.tools]

    def build_format(self) -> CallFormat:
        """A new instance of :attr:`call_format`."""
        return format_class(self.call_format)()


TOOL_HINT = (
    " A tool of your own: list its class by dotted path, like 'my_tools:CountLines' (found when "
    "my_tools.py is next to the scaffold file or in the current directory, or installed, or on "
    "PYTHONPATH). A short name given by register_tool works only where the module that registers "
    "it is already imported: from Python, not from the agentkit command."
)
"""Appended to an unknown tool name's error: how to make a tool of one's own visible."""


def tool_class(name: str) -> type[Tool]:
    """The tool class a config names (registered name or dotted path); ``ValueError`` if none."""
    return find_class(TOOLS, UNKNOWN_TOOL_NAME, name, Tool, "tool", TOOL_HINT)  # type: ignore[type-abstract]


def format_class(name: str) -> type[CallFormat]:
    """The call format class a config names; ``ValueError`` lists the known names."""
    return find_class(FORMATS, UNKNOWN_FORMAT, name, CallFormat, "call format")  # type: ignore[type-abstract]
