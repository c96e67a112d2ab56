"""The ``submit`` tool: the model says it is done, in any call format.

Calling it ends the run; the loop then submits the workspace's diff
(:func:`agentkit.workspace.workspace_diff`). A scaffold lists it in ``tools`` like any other tool;
bash-only scaffolds may keep the submit sentinel instead.

:class:`ReviewedSubmitTool` (``agentkit.tools.submit:ReviewedSubmitTool`` in a scaffold's
``tools``) is SWE-agent's review-on-submit: the first call shows the diff about to be submitted
with a checklist and ends nothing; the next call submits. Models often submit with a stray
reproduction script or an edited test in the diff; one look at the diff catches most of those.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from agentkit.runtime.base import Runtime
from agentkit.tools import register_tool
from agentkit.tools.base import Tool, ToolContext
from agentkit.types import Observation
from agentkit.workspace import workspace_diff

SUBMITTED = "Your changes to the working tree are submitted as a git diff. The task is over."
REVIEW = """\
Nothing is submitted yet. This is the diff that `submit` would submit:

{diff}

Before you submit, check:
1. The diff changes only what the fix needs: remove reproduction scripts and other files you
   created only to investigate (unless the fix needs them).
2. The tests were not edited: put back any test file you changed (git checkout -- PATH).
3. You ran your reproduction again after the last change, and it shows the problem fixed.
4. Edge cases of the issue are handled.

If anything needs changing, change it now. When the diff is right, call submit again."""
EMPTY_REVIEW = """\
Nothing is submitted yet: the working tree has no changes, so the diff would be empty. Make the \
fix first, or call submit again to submit nothing."""


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

    def ends_run(self, runtime: Runtime) -> bool:
        """Whether the call just made in ``runtime`` ends the run (always, for this tool)."""
        return True


class ReviewedSubmitTool(SubmitTool):
    """``submit`` that shows the diff and a checklist first; the call after that submits.

    Per runtime, since one tool instance serves concurrent runs."""

    def __init__(self) -> None:
        self._reviewed: weakref.WeakKeyDictionary[Runtime, bool] = weakref.WeakKeyDictionary()
        """Runtime → whether its last submit call submitted (``False``: it showed the review)."""

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        if ctx.runtime in self._reviewed:
            self._reviewed[ctx.runtime] = True
            return Observation(output=SUBMITTED)
        diff = await workspace_diff(ctx.runtime, timeout=ctx.command_timeout)
        self._reviewed[ctx.runtime] = False
        text = REVIEW.format(diff=diff.rstrip("\n")) if diff.strip() else EMPTY_REVIEW
        return Observation(output=text, exit_code=0)

    def ends_run(self, runtime: Runtime) -> bool:
        return self._reviewed.get(runtime, False)
