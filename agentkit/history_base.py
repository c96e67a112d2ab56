"""The history-processor interface and its registry (the built-in processors live in
:mod:`agentkit.history`, :mod:`agentkit.history_cache` and :mod:`agentkit.history_summary`;
import them from :mod:`agentkit.history`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from agentkit.types import Completion, Message, SamplingParams


class HistoryContext(Protocol):
    """What the agent loop offers a processor besides the messages: model calls that are
    recorded. :meth:`complete` calls the run's backend and records the call in the trajectory as
    a step of kind ``condensation`` (its exact input, its completion, its cost), so no model call
    of a run goes unrecorded."""

    async def complete(
        self, messages: list[Message], params: SamplingParams | None = None
    ) -> Completion:
        """One recorded model call (no tools). ``params``: ``None`` uses the scaffold's."""
        ...


class HistoryProcessorBase(BaseModel, ABC):
    """The base of every history processor. A subclass used by dotted path keeps ``type: str``
    (the path is its value); a registered one narrows it to ``Literal["its_name"]``.

    A processor never changes the stored history; it returns the list to send. It must return
    the same message objects for the same input (keep replacements in ``cache``) so the
    trajectory's message pool stays de-duplicated. Processors are configs shared by every run of a
    scaffold: per-run state belongs in ``cache``, never on the processor.
    """

    model_config = ConfigDict(extra="forbid")

    type: str

    @abstractmethod
    def apply(
        self, history: list[Message], observations: list[int], cache: dict[Any, Any]
    ) -> list[Message]:
        """The messages to send. ``observations``: indices of observation messages in
        ``history``; ``cache``: per-run storage private to this processor (the agent gives
        each processor of a run its own dict), to return the same replacement objects every
        step."""

    async def apply_async(
        self,
        history: list[Message],
        observations: list[int],
        cache: dict[Any, Any],
        context: HistoryContext,
    ) -> list[Message]:
        """What the agent loop calls. Override it in a processor that needs the model (through
        ``context``, whose calls are recorded); by default it is :meth:`apply`."""
        return self.apply(history, observations, cache)


HISTORY_PROCESSORS: dict[str, type[HistoryProcessorBase]] = {}


def register_history_processor(
    cls: type[HistoryProcessorBase],
) -> type[HistoryProcessorBase]:
    """Make ``cls`` usable by the name its ``type`` field defaults to (a class decorator)."""
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a default for its 'type' field: its name.")
    HISTORY_PROCESSORS[name] = cls
    return cls


def estimate_tokens(messages: list[Message]) -> int:
    """A cheap size estimate (four characters a token) for limits and thresholds."""
    return sum(len(message.content) for message in messages) // 4


def copy_once(cache: dict[Any, Any], original: Message, update: dict[str, Any]) -> Message:
    """``original`` with ``update`` applied, the same object every time it is asked for.

    Keyed by the original's identity, and the original is kept with its copy so that identity
    can never be reused by another message while the entry lives: the answer stays right when
    an earlier processor moves messages (a summary replaces the middle of the conversation)."""
    entry = cache.get(id(original))
    if entry is not None and entry[0] is original:
        copy: Message = entry[1]
        return copy
    copy = original.model_copy(update=update)
    cache[id(original)] = (original, copy)
    return copy
