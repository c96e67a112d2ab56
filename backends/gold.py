"""The gold backend: replays a task's reference patch through the scaffold's own tools, then submits.

It is the SWE-bench "gold" sanity run: it proves the sandbox, the tools, the submission path and
the grader agree on a task, with no model involved. Its results are always labelled ``gold`` and
must never be reported as a model's.
"""

from __future__ import annotations

from typing import Any

from agentkit.backend import BackendError
from agentkit.tools import CallFormat, Tool
from agentkit.types import Completion, Message, SamplingParams, ToolCall, ToolSpec

GOLD_LABEL = "gold (reference patch replay, not a model)"


class GoldBackend:
    """Two replies: a bash action that applies ``patch`` with ``git apply``, then the submit command.

    The replies are rendered in the scaffold's call format, so they travel through exactly the
    parsing and execution path a model's replies would.
    """

    def __init__(
        self, patch: str, call_format: CallFormat, tools: list[Tool], submit_sentinel: str
    ) -> None:
        if not any(tool.name == "bash" for tool in tools):
            raise BackendError(
                "The gold backend applies the patch with the 'bash' tool, and this scaffold has "
                f"none (tools: {', '.join(t.name for t in tools)})."
            )
        self.format = call_format
        self.tools = tools
        self._actions = [
            ToolCall(name="bash", arguments={"command": _apply_command(patch)}, id="gold-1"),
            ToolCall(name="bash", arguments={"command": f"echo {submit_sentinel}"}, id="gold-2"),
        ]
        self._next = 0

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        if self._next >= len(self._actions):
            raise BackendError("The gold backend was asked for a reply after it submitted.")
        action = self._actions[self._next]
        self._next += 1
        thought = "Applying the reference patch." if self._next == 1 else "Submitting."
        return self.format.render(action, self.tools, thought=thought)

    def describe(self) -> dict[str, Any]:
        return {"type": "gold", "label": GOLD_LABEL}


def _apply_command(patch: str) -> str:
    delimiter = "AGENTKIT_GOLD_PATCH"
    while delimiter in patch:
        delimiter += "_"
    body = patch if patch.endswith("\n") else patch + "\n"
    return f"git apply --whitespace=nowarn - <<'{delimiter}'\n{body}{delimiter}"
