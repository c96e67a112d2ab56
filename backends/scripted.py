"""A backend that replies from a fixed list: for tests, demos and benchmarks of everything but
the model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentkit.backend import BackendError
from agentkit.types import Completion, Message, SamplingParams, ToolSpec


class ScriptedBackend:
    """Returns ``replies`` in order (a string becomes a plain text completion) and records every
    conversation it was sent in :attr:`calls`. Running out of replies is a :class:`BackendError`."""

    def __init__(self, replies: Iterable[str | Completion], *, record_calls: bool = True) -> None:
        self.replies = [r if isinstance(r, Completion) else Completion(text=r) for r in replies]
        self.record_calls = record_calls
        self.calls: list[list[Message]] = []
        self._next = 0

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        if self.record_calls:
            self.calls.append(list(messages))
        if self._next >= len(self.replies):
            raise BackendError(
                f"The scripted backend has no reply left (it had {len(self.replies)}); "
                "add replies or raise the script's length."
            )
        reply = self.replies[self._next]
        self._next += 1
        return reply

    def describe(self) -> dict[str, Any]:
        return {"type": "scripted", "replies": len(self.replies)}
