"""The ``cache_markers`` history processor: prompt-cache breakpoints.

Anthropic-style providers cache a prompt's prefix only up to the messages marked with
``cache_control: {"type": "ephemeral"}`` (at most four marks a request). Marking the system prompt
and the last few user/tool messages each turn makes the next turn's prompt, which extends this one,
read the conversation so far from the cache. The mark travels as :attr:`Message.cache_control`;
the litellm backend sends it in the content-block form those providers expect, and backends whose
servers cache on their own (OpenAI, vLLM's prefix caching) ignore it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agentkit.history_base import HistoryProcessorBase, copy_once, register_history_processor
from agentkit.types import Message, Role

_DEFAULT_ROLES: list[Role] = ["user", "tool"]

MAX_CACHE_MARKS = 4
"""Anthropic refuses a request with more than four cache breakpoints."""


@register_history_processor
class CacheMarkers(HistoryProcessorBase):
    """Mark the system prompt (``system``) and the last ``last`` messages whose role is in
    ``roles`` as prompt-cache breakpoints. Put it last, after the processors that change what is
    sent, so the marks land on the messages that are sent."""

    type: Literal["cache_markers"] = "cache_markers"
    last: int = Field(default=2, ge=0)
    roles: list[Role] = Field(default_factory=lambda: _DEFAULT_ROLES.copy(), min_length=1)
    system: bool = True

    @model_validator(mode="after")
    def _within_the_providers_limit(self) -> CacheMarkers:
        if self.last + int(self.system) > MAX_CACHE_MARKS:
            raise ValueError(
                f"at most {MAX_CACHE_MARKS} cache marks a request (providers refuse more): "
                f"last={self.last} plus the system prompt's is {self.last + int(self.system)}"
            )
        return self

    def apply(
        self, history: list[Message], observations: list[int], cache: dict[Any, Any]
    ) -> list[Message]:
        marks = self.positions(history)
        if not marks:
            return history
        result = list(history)
        for index in marks:
            if not result[index].cache_control:
                result[index] = copy_once(cache, result[index], {"cache_control": True})
        return result

    def positions(self, history: list[Message]) -> list[int]:
        """The indices of ``history`` this processor marks, in order."""
        marks: set[int] = set()
        if self.system:
            leading = 0
            while leading < len(history) and history[leading].role == "system":
                leading += 1
            if leading:
                marks.add(leading - 1)
        found = 0
        for index in range(len(history) - 1, -1, -1):
            if found >= self.last:
                break
            if history[index].role in self.roles and index not in marks:
                marks.add(index)
                found += 1
        return sorted(marks)
