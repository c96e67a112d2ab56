"""The one async interface every sandbox implements.

An agent, a tool or the grader talks to a :class:`Runtime` and never to Docker or the host
directly, so the same scaffold runs in a container in production and in a work dir while developing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict


class CommandResult(BaseModel):
    """What a command did. ``output`` is stdout and stderr interleaved, already shaped for a model
    (cut in the middle when over the limit, binary made printable, empty output said so)."""

    model_config = ConfigDict(extra="forbid")

    output: str
    exit_code: int | None
    """``None`` when the command did not finish (timed out)."""
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0


class SandboxError(Exception):
    """The sandbox itself failed (container died, shell session lost); not a failing command."""


class Runtime(ABC):
    """A place to run commands and read and write files.

    ``run`` uses one persistent shell session by default (cwd and environment persist between
    calls; a timeout interrupts the command and the session stays usable). ``stateless=True`` runs
    the command in a fresh process instead.
    """

    workdir: str
    """Absolute path, inside the runtime, of the task's repository."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (container, shell). Idempotent."""

    @abstractmethod
    async def run(
        self, command: str, timeout: float | None = None, *, stateless: bool = False
    ) -> CommandResult: ...

    @abstractmethod
    async def read_file(self, path: str) -> bytes: ...

    @abstractmethod
    async def write_file(self, path: str, content: bytes | str) -> None: ...

    @abstractmethod
    async def upload(self, local_path: str | Path, remote_path: str) -> None:
        """Copy a host file or directory into the runtime."""

    @abstractmethod
    async def download(self, remote_path: str, local_path: str | Path) -> None:
        """Copy a runtime file or directory to the host."""

    @abstractmethod
    async def close(self) -> None:
        """Release everything. Safe to call more than once."""

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
