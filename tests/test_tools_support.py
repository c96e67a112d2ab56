"""Tools shared by the tool and call-format tests: one per kind of argument a format must carry.

Holds no tests itself; the ``test_`` prefix only keeps it beside the modules that import it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentkit.tools import BashTool, Tool, ToolContext
from agentkit.types import Observation


class _NoRun(Tool):
    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        raise AssertionError("format tests never execute a tool")


class EditArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Absolute path of the file.")
    line: int = Field(description="Line to edit.")
    dry_run: bool = False
    view_range: list[int] | None = None
    text: str = Field(description="The new text.")


class EditTool(_NoRun):
    """Strings, an int, a bool, an optional list and a last string that may span lines."""

    name = "edit"
    description = "Replace a line of a file."
    Arguments = EditArguments


class CountArguments(BaseModel):
    n: int = Field(ge=1, description="How many.")
    label: str | None = None


class CountTool(_NoRun):
    """A constrained int and an optional string; its model does not forbid extras on purpose."""

    name = "count"
    description = "Count things."
    Arguments = CountArguments


class SpanArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: int
    end: int

    @model_validator(mode="after")
    def _ordered(self) -> SpanArguments:
        if self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class SpanTool(_NoRun):
    """A check across arguments (a model-level validator)."""

    name = "span"
    description = "Show a range of lines."
    Arguments = SpanArguments


class SubmitArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitTool(_NoRun):
    name = "submit"
    description = "Submit the work."
    Arguments = SubmitArguments


def all_tools() -> list[Tool]:
    return [EditTool(), CountTool(), SpanTool(), SubmitTool(), BashTool()]


TRICKY_TEXT = (
    "def f():\n"
    "    return 'it''s' + \"quoted\" + `backticks` + ```inline fence```\n"
    "<parameter=x>not a parameter</parameter> in a comment\n"
    "</function> and <function=fake> too\n"
    "\ttab & ampersand < less > more $HOME \\n \\\n"
)
"""A value every text format must carry byte for byte."""
