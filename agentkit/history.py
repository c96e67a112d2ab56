"""History processors: what the model sees of a long conversation.

Each processor is a small pydantic config picked by its ``type`` field, so scaffolds configure them
in YAML: a registered name (``last_n_observations``) or a dotted path to a user's subclass of
:class:`HistoryProcessorBase` (``type: "my_pkg.history:KeepErrors"``; the path stays the ``type``,
so the config round-trips). They never change the stored history; they return the list to send.
They must return the same message objects for the same input so the trajectory's message pool
stays de-duplicated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
)

from agentkit.dotted import is_dotted, resolve_class
from agentkit.types import Message
from agentkit.validation import describe_problems

UNKNOWN_HISTORY_PROCESSOR = (
    "Unknown history processor type '{name}'. The known types are: {valid}. Or name your own "
    "HistoryProcessorBase subclass by dotted path, like 'my_package.module:MyProcessor'."
)


class HistoryProcessorBase(BaseModel, ABC):
    """The base of every history processor. A subclass used by dotted path keeps ``type: str``
    (the path is its value); a registered one narrows it to ``Literal["its_name"]``."""

    model_config = ConfigDict(extra="forbid")

    type: str

    @abstractmethod
    def apply(
        self, history: list[Message], observations: list[int], cache: dict[int, Message]
    ) -> list[Message]:
        """The messages to send. ``observations``: indices of observation messages in
        ``history``; ``cache``: per-run storage keyed by message index, to return the same
        replacement objects every step."""


class KeepLastObservations(HistoryProcessorBase):
    """Keep the last ``n`` observations in full and replace older ones with a one-line note."""

    type: Literal["last_n_observations"] = "last_n_observations"
    n: int = Field(default=5, ge=1)
    note: str = "[Older output elided: {lines} lines. Re-run the command if you need it again.]"

    def apply(
        self, history: list[Message], observations: list[int], cache: dict[int, Message]
    ) -> list[Message]:
        old = observations[: -self.n] if len(observations) > self.n else []
        if not old:
            return history
        result = list(history)
        for index in old:
            elided = cache.get(index)
            if elided is None:
                original = history[index]
                lines = original.content.count("\n") + 1
                elided = original.model_copy(update={"content": self.note.format(lines=lines)})
                cache[index] = elided
            result[index] = elided
        return result


HISTORY_PROCESSORS: dict[str, type[HistoryProcessorBase]] = {
    "last_n_observations": KeepLastObservations
}


def register_history_processor(
    cls: type[HistoryProcessorBase],
) -> type[HistoryProcessorBase]:
    """Make ``cls`` usable by the name its ``type`` field defaults to (a class decorator)."""
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a default for its 'type' field: its name.")
    HISTORY_PROCESSORS[name] = cls
    return cls


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
