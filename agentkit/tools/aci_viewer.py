"""The windowed file viewer of the SWE-agent interface: ``open``, ``goto``, ``scroll_up``,
``scroll_down``.

A model sees a file :data:`~agentkit.tools.aci_messages.WINDOW` lines at a time, under a header
``[File: PATH (N lines total)]`` and between ``(K more lines above)`` / ``(K more lines below)``
markers. ``open`` centres the window on the line asked for; ``goto`` puts it about a sixth of the
way down the window, so what follows it is in view; a scroll moves by the window less
:data:`~agentkit.tools.aci_messages.OVERLAP` lines. The open file and the window's position are
kept per runtime (:mod:`agentkit.tools.aci_files`), and the file is read again on every call, so a
change made by a shell command shows at once.

Every tool answers with ``exit_code`` 0 when it did its work and 1 when it refused; a refusal
changes nothing.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.tools import aci_messages as msg
from agentkit.tools import register_tool
from agentkit.tools.aci_files import (
    check_line,
    load,
    open_file,
    resolve,
    show,
    state_of,
)
from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.editor_text import Refusal
from agentkit.types import Observation

ACI_TOOLS: tuple[str, ...] = (
    "open",
    "goto",
    "scroll_up",
    "scroll_down",
    "find_file",
    "search_dir",
    "search_file",
    "edit",
)
"""The names of the interface's tools, for a scaffold's ``tools`` list."""

_Args = TypeVar("_Args", bound=BaseModel)


class AciTool(Tool):
    """A tool of the interface: ``run`` does the work, and a :class:`Refusal` it raises becomes an
    observation with ``exit_code`` 1."""

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        try:
            output = await self.run(args, ctx)
        except Refusal as refusal:
            return Observation(output=refusal.message, exit_code=1)
        return Observation(output=output, exit_code=0)

    @abstractmethod
    async def run(self, args: BaseModel, ctx: ToolContext) -> str: ...

    def arguments(self, args: BaseModel, model: type[_Args]) -> _Args:
        """``args`` as ``model`` (a subclass's own argument model is converted field by field)."""
        return args if isinstance(args, model) else model.model_validate(args.model_dump())


class OpenArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The file to open: absolute, or relative to the repository root.")
    line_number: int | None = Field(
        default=None,
        description="A line to centre the window on. Leave it out to start at the first line.",
    )


class GotoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_number: int = Field(description="The line of the open file to show.")


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_tool
class OpenTool(AciTool):
    name: ClassVar[str] = "open"
    description: ClassVar[str] = (
        f"Open a file in the viewer and show {msg.WINDOW} of its lines, numbered, with how many "
        "lines are above and below. With line_number, the window is centred on that line. Then "
        "move in the file with goto, scroll_up and scroll_down, and change it with edit."
    )
    Arguments: ClassVar[type[BaseModel]] = OpenArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        arguments = self.arguments(args, OpenArguments)
        loaded = await load(ctx, resolve(arguments.path, ctx.runtime.workdir))
        first = 1
        if arguments.line_number is not None:
            check_line(loaded, arguments.line_number)
            first = arguments.line_number - msg.WINDOW // 2
        return show(ctx, loaded, first)


@register_tool
class GotoTool(AciTool):
    name: ClassVar[str] = "goto"
    description: ClassVar[str] = (
        "Move the viewer's window so that it shows the given line of the open file, near the top "
        "of the window."
    )
    Arguments: ClassVar[type[BaseModel]] = GotoArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        line = self.arguments(args, GotoArguments).line_number
        loaded = await open_file(ctx, self.name)
        check_line(loaded, line)
        return show(ctx, loaded, line - msg.WINDOW // 6)


@register_tool
class ScrollDownTool(AciTool):
    name: ClassVar[str] = "scroll_down"
    description: ClassVar[str] = (
        f"Move the viewer's window down by {msg.WINDOW - msg.OVERLAP} lines in the open file."
    )
    Arguments: ClassVar[type[BaseModel]] = NoArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        loaded = await open_file(ctx, self.name)
        first = state_of(ctx.runtime).first
        if loaded.total == 0:
            raise Refusal(msg.NOTHING_TO_SCROLL.format(path=loaded.path))
        if first + msg.WINDOW - 1 >= loaded.total:
            raise Refusal(msg.AT_END.format(path=loaded.path, total=loaded.total))
        return show(ctx, loaded, first + msg.WINDOW - msg.OVERLAP)


@register_tool
class ScrollUpTool(AciTool):
    name: ClassVar[str] = "scroll_up"
    description: ClassVar[str] = (
        f"Move the viewer's window up by {msg.WINDOW - msg.OVERLAP} lines in the open file."
    )
    Arguments: ClassVar[type[BaseModel]] = NoArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        loaded = await open_file(ctx, self.name)
        first = state_of(ctx.runtime).first
        if loaded.total == 0:
            raise Refusal(msg.NOTHING_TO_SCROLL.format(path=loaded.path))
        if first <= 1:
            last = min(loaded.total, msg.WINDOW)
            raise Refusal(msg.AT_START.format(path=loaded.path, last=last))
        return show(ctx, loaded, first - (msg.WINDOW - msg.OVERLAP))


__all__ = [
    "ACI_TOOLS",
    "AciTool",
    "GotoTool",
    "OpenTool",
    "ScrollDownTool",
    "ScrollUpTool",
]
