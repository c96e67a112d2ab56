"""A tool is one typed definition: a pydantic argument model, a description and an ``execute``.

The argument model gives the JSON schema sent to backends for native function calling, and the
same model validates what any call format parsed, so every format reports the same errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel

from agentkit.runtime.base import Runtime
from agentkit.types import Observation, ToolSpec


@dataclass
class ToolContext:
    """What a tool may use while it runs."""

    runtime: Runtime
    command_timeout: float | None = None


class Tool(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Arguments: ClassVar[type[BaseModel]]

    def spec(self) -> ToolSpec:
        schema = self.Arguments.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    @abstractmethod
    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation: ...
