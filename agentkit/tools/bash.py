"""The ``bash`` tool: run one command in the task's sandbox and show what it printed.

The runtime does the running and the shaping of output (truncation, binary, empty output); this
tool adds what only makes sense from the model's side: refusing interactive programs before they
hang the shell, and explaining a timeout so the model knows the shell survived and what to try.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.interactive import find_interactive
from agentkit.types import Observation

INTERACTIVE_REFUSED = (
    "The command was not run: `{program}` {reason}, and nothing can type into it here. {hint}"
)
EMPTY_COMMAND = "The command was empty, so nothing was run. Give the shell command to run."
COMMAND_TIMED_OUT = (
    "The command was interrupted after {seconds} seconds because it had not finished. The shell "
    "is still usable, with the same working directory and environment. If the command needs more "
    "time, run it in the background (`COMMAND > out.log 2>&1 &`) and read the log later, or run "
    "it on a smaller input."
)


def format_seconds(seconds: float) -> str:
    """``30`` rather than ``30.0``; at most one decimal otherwise."""
    rounded = round(seconds, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


class BashArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(
        description=(
            "The shell command to run. The working directory and environment variables persist "
            "from one command to the next."
        )
    )


class BashTool(Tool):
    name: ClassVar[str] = "bash"
    description: ClassVar[str] = (
        "Run a command in a bash shell and see its output and exit code. Commands must not wait "
        "for keyboard input (no editors, pagers or bare interpreters), and a command that runs "
        "past the time limit is interrupted."
    )
    Arguments: ClassVar[type[BaseModel]] = BashArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        """Run the command, unless it is empty or interactive; then nothing runs at all and the
        observation (``exit_code`` ``None``) says why."""
        if isinstance(args, BashArguments):
            command = args.command
        else:  # a subclass's own argument model: take what it shares with ours
            command = BashArguments.model_validate(args.model_dump()).command
        if not command.strip():
            return Observation(output=EMPTY_COMMAND)
        refusal = find_interactive(command)
        if refusal is not None:
            return Observation(
                output=INTERACTIVE_REFUSED.format(
                    program=refusal.program, reason=refusal.reason, hint=refusal.hint
                )
            )
        result = await ctx.runtime.run(command, timeout=ctx.command_timeout)
        output = result.output
        if result.timed_out:
            limit = ctx.command_timeout if ctx.command_timeout is not None else result.duration_s
            note = COMMAND_TIMED_OUT.format(seconds=format_seconds(limit))
            output = f"{output.rstrip()}\n\n{note}" if output.strip() else note
        return Observation(
            output=output,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            truncated=result.truncated,
            duration_s=result.duration_s,
        )
