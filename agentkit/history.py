"""History processors: what the model sees of a long conversation.

Each processor is a small pydantic config picked by its ``type`` field, so scaffolds configure them
in YAML. They never change the stored history; they return the list to send. They must return the
same message objects for the same input so the trajectory's message pool stays de-duplicated.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.types import Message


class KeepLastObservations(BaseModel):
    """Keep the last ``n`` observations in full and replace older ones with a one-line note."""

    model_config = ConfigDict(extra="forbid")

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


# One kind so far; with a second it becomes `Annotated[A | B, Field(discriminator="type")]`.
HistoryProcessor = KeepLastObservations
