"""The ``think`` tool: a place for the model to reason out loud, in any call format.

Nothing runs and nothing changes; the thought stays in the trajectory as the call's argument,
and the model gets a fixed acknowledgement (:data:`THOUGHT_LOGGED`). Useful with models that
only act through tool calls (native function calling leaves no room for prose in some
backends), and as the "think before acting" tool of Anthropic's and OpenHands' tool sets.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.tools import register_tool
from agentkit.tools.base import Tool, ToolContext
from agentkit.types import Observation

THOUGHT_LOGGED = "Your thought is noted. Nothing was run and nothing changed."


class ThinkArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thought: str = Field(description="What you are thinking: a plan, a hypothesis, a check.")


@register_tool
class ThinkTool(Tool):
    name: ClassVar[str] = "think"
    description: ClassVar[str] = (
        "Think out loud: reason about the problem, plan the next steps or weigh hypotheses. "
        "Nothing is run and nothing changes; use it when a thought needs room before acting."
    )
    Arguments: ClassVar[type[BaseModel]] = ThinkArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        return Observation(output=THOUGHT_LOGGED, exit_code=0)
