"""What every runtime built on :class:`ShellSession` does the same way.

The policy for a shell that dies lives here, once: the command during which the shell ended
returns normally, with the shell's exit status and :data:`SHELL_EXITED_NOTE`; the next command
starts a fresh shell transparently and its output begins with :data:`SHELL_RESTARTED_NOTE`, so the
model learns that ``cd`` and ``export`` from before are gone. A sandbox that is itself gone (a
container that died) is not a shell death: subclasses raise :class:`SandboxError` from
:meth:`ShellRuntime._check_sandbox` instead.
"""

from __future__ import annotations

from abc import abstractmethod

from agentkit.runtime.base import CommandResult, Runtime, SandboxError
from agentkit.runtime.output import DEFAULT_OUTPUT_LIMIT, RawRun, to_result
from agentkit.runtime.shell import ShellSession

SHELL_EXITED_NOTE = (
    "[the shell session ended during this command (exit status {code}); the next command runs "
    "in a new shell in {workdir}, without the earlier cd, exports or variables]"
)
SHELL_RESTARTED_NOTE = (
    "[note: a new shell session was started in {workdir} because the previous one ended; "
    "earlier cd, exports and variables are gone]"
)


class ShellRuntime(Runtime):
    """A runtime whose persistent mode is a :class:`ShellSession`."""

    workdir: str
    output_limit: int = DEFAULT_OUTPUT_LIMIT

    def __init__(self) -> None:
        self._session: ShellSession | None = None
        self._restarted = False

    @abstractmethod
    def _new_session(self) -> ShellSession:
        """A not-yet-started session for this sandbox."""

    @abstractmethod
    async def _run_stateless(self, command: str, timeout: float | None) -> RawRun:
        """Run one command in a fresh process group."""

    async def _check_sandbox(self) -> None:
        """Raise :class:`SandboxError` when the sandbox itself is gone. Default: nothing to check."""

    def _extra_notes(self, raw: RawRun) -> tuple[str, ...]:
        """Hints a subclass adds to a result (e.g. what exit code 137 means in a container)."""
        return ()

    async def run(
        self, command: str, timeout: float | None = None, *, stateless: bool = False
    ) -> CommandResult:
        """Run a command; ``timeout=None`` waits for as long as it takes."""
        await self.start()
        if stateless:
            await self._check_sandbox()
            raw = await self._run_stateless(command, timeout)
            notes = self._extra_notes(raw)
            return to_result(raw, limit=self.output_limit, notes=notes)
        session = self._session
        before: tuple[str, ...] = ()
        if session is None or not session.alive:
            if session is not None:
                self._restarted = True
            await self._check_sandbox()
            session = self._session = self._new_session()
            try:
                await session.start()
            except SandboxError:
                await self._check_sandbox()  # a sandbox that died meanwhile: say why
                raise
        if self._restarted:
            before = (SHELL_RESTARTED_NOTE.format(workdir=self.workdir),)
            self._restarted = False
        raw = await session.run(command, timeout)
        after = self._extra_notes(raw)
        if raw.shell_exited:
            await self._check_sandbox()
            code = "unknown" if raw.exit_code is None else raw.exit_code
            after = (*after, SHELL_EXITED_NOTE.format(code=code, workdir=self.workdir))
            self._restarted = True
            await session.close()
            self._session = None
        return to_result(raw, limit=self.output_limit, notes=after, prefix=before)

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
