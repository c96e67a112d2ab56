"""The ``submit`` tool: the model says it is done, in any call format.

Calling it ends the run; the loop then submits the workspace's diff
(:func:`agentkit.workspace.workspace_diff`). A scaffold lists it in ``tools`` like any other tool;
bash-only scaffolds may keep the submit sentinel instead.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from agentkit.tools import register_tool
from agentkit.tools.base import Tool, ToolContext
from agentkit.types import Observation

SUBMITTED = "Your changes to the working tree are submitted as a git diff. The task is over."


class SubmitArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register_tool
class SubmitTool(Tool):
    """Ends the run. The loop recognises it by class, so a subclass (say, with a different
    description) submits too."""

    name: ClassVar[str] = "submit"
    description: ClassVar[str] = (
        "Submit your changes to the working tree and end the task. Call it once, when the fix "
        "is complete and checked; nothing runs after it."
    )
    Arguments: ClassVar[type[BaseModel]] = SubmitArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        return Observation(output=SUBMITTED)
