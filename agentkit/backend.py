"""The contract between the agent loop and a language model.

Implementations live in ``agentkit.backends``; the core only depends on this protocol.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from agentkit.types import Completion, Message, SamplingParams, ToolSpec


class BackendError(Exception):
    """The backend could not produce a completion (after its own retries)."""


class ContextExceeded(BackendError):
    """The prompt no longer fits the model's context; the loop records it as an exit."""


@runtime_checkable
class Backend(Protocol):
    """``complete`` turns a conversation into one :class:`Completion`.

    ``tools`` is given for native function calling; backends driving a text call format may ignore
    it. ``describe`` returns a JSON-able summary recorded in every trajectory (never secrets).
    """

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion: ...

    def describe(self) -> dict[str, Any]: ...
