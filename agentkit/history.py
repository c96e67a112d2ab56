"""History processors: what the model sees of a long conversation.

Each processor is a small pydantic config picked by its ``type`` field, so scaffolds configure them
in YAML: a registered name or a dotted path to a user's subclass of :class:`HistoryProcessorBase`
(``type: "my_pkg.history:KeepErrors"``; the path stays the ``type``, so the config round-trips).
The registered ones:

- ``last_n_observations`` (:class:`KeepLastObservations`): older observations become a one-line note;
- ``cache_markers`` (:class:`CacheMarkers`): prompt-cache breakpoints for providers that take them;
- ``llm_summary`` (:class:`LLMSummary`): past a threshold, the middle of the conversation becomes
  one summary written by the model (a recorded call).

A scaffold's processors run in order, each on the previous one's output (:func:`apply_history`).
They never change the stored history; they return the list to send, and return the same message
objects for the same input so the trajectory's message pool stays de-duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SerializeAsAny, ValidationError

from agentkit.dotted import is_dotted, resolve_class
from agentkit.history_base import (
    HISTORY_PROCESSORS,
    HistoryContext,
    HistoryProcessorBase,
    copy_once,
    estimate_tokens,
    register_history_processor,
)
from agentkit.history_cache import CacheMarkers
from agentkit.history_summary import DEFAULT_SUMMARY_PROMPT, LLMSummary
from agentkit.types import Message
from agentkit.validation import describe_problems

__all__ = [
    "DEFAULT_SUMMARY_PROMPT",
    "HISTORY_PROCESSORS",
    "CacheMarkers",
    "HistoryContext",
    "HistoryProcessor",
    "HistoryProcessorBase",
    "KeepLastObservations",
    "LLMSummary",
    "apply_history",
    "estimate_tokens",
    "parse_history_processor",
    "register_history_processor",
]

UNKNOWN_HISTORY_PROCESSOR = (
    "Unknown history processor type '{name}'. The known types are: {valid}. Or name your own "
    "HistoryProcessorBase subclass by dotted path, like 'my_package.module:MyProcessor'."
)


@register_history_processor
class KeepLastObservations(HistoryProcessorBase):
    """Keep the last ``n`` observations in full and replace older ones with a one-line note."""

    type: Literal["last_n_observations"] = "last_n_observations"
    n: int = Field(default=5, ge=1)
    note: str = "[Older output elided: {lines} lines. Re-run the command if you need it again.]"

    def apply(
        self, history: list[Message], observations: list[int], cache: dict[Any, Any]
    ) -> list[Message]:
        old = observations[: -self.n] if len(observations) > self.n else []
        if not old:
            return history
        result = list(history)
        for index in old:
            original = history[index]
            lines = original.content.count("\n") + 1
            result[index] = copy_once(cache, original, {"content": self.note.format(lines=lines)})
        return result


async def apply_history(
    processors: Sequence[HistoryProcessorBase],
    history: list[Message],
    observations: list[int],
    caches: list[dict[Any, Any]],
    context: HistoryContext,
) -> list[Message]:
    """Run ``processors`` in order, each on the previous one's output, with its own cache.

    ``observations`` index ``history``; each processor gets them as indices of its own input. A
    processor that keeps the list's length keeps positions (it replaced messages in place); after
    one that changes the length (a summary), an observation is followed by its object's identity,
    and one that was summarised away is no longer an observation."""
    messages = history
    for processor, cache in zip(processors, caches, strict=True):
        result = await processor.apply_async(messages, observations, cache, context)
        if len(result) != len(messages):
            where = {id(message): index for index, message in enumerate(result)}
            observations = [
                where[id(messages[i])] for i in observations if id(messages[i]) in where
            ]
        messages = result
    return messages


def parse_history_processor(value: Any) -> Any:
    """A processor config (a mapping with ``type``) as the processor its ``type`` names."""
    if isinstance(value, HistoryProcessorBase) or not isinstance(value, dict):
        return value  # pydantic reports anything else as the wrong type
    name = value.get("type")
    if not isinstance(name, str):
        raise ValueError("a history processor needs a 'type': a known name or a dotted path")
    if is_dotted(name):
        cls = resolve_class(name, HistoryProcessorBase, "history processor")  # type: ignore[type-abstract]
    elif name in HISTORY_PROCESSORS:
        cls = HISTORY_PROCESSORS[name]
    else:
        valid = ", ".join(sorted(HISTORY_PROCESSORS))
        raise ValueError(UNKNOWN_HISTORY_PROCESSOR.format(name=name, valid=valid))
    try:
        return cls.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"history processor {name!r}: {describe_problems(exc, cls)}") from None


HistoryProcessor = Annotated[
    SerializeAsAny[HistoryProcessorBase], BeforeValidator(parse_history_processor)
]
"""A history processor in a config: picked by its ``type`` (a registered name or a dotted path)."""
