"""A runtime on the host: a work dir, a bash session in its own process group, plain file I/O.

For developing scaffolds and for tasks that need no isolation. Nothing here is sandboxed: a
command can touch anything the user can. Commands run with the host environment plus
:data:`~agentkit.runtime.shell.NONINTERACTIVE_ENV` plus the ``env`` given.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import tempfile
import weakref
from pathlib import Path

from agentkit.runtime.base import SandboxError
from agentkit.runtime.output import DEFAULT_OUTPUT_LIMIT, RawRun
from agentkit.runtime.process import STATELESS_WRAPPER, run_oneshot, signal_local_group
from agentkit.runtime.shell import NONINTERACTIVE_ENV, SHELL_FLAGS, ShellSession
from agentkit.runtime.shell_runtime import ShellRuntime

_LIVE_SHELL_GROUPS: set[int] = set()
"""Process groups of local shells still running, killed at interpreter exit (the shells run in
their own session, so a Ctrl-C at the terminal does not reach them)."""


def _kill_live_groups() -> None:
    for pgid in list(_LIVE_SHELL_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone, which is the goal
        _LIVE_SHELL_GROUPS.discard(pgid)


atexit.register(_kill_live_groups)


class LocalRuntime(ShellRuntime):
    """Commands in a host work dir.

    ``workdir=None`` creates a temporary directory, removed on :meth:`close` (or at interpreter
    exit if close is never called). Relative paths given to the file methods are resolved inside
    ``workdir``; absolute paths are used as they are.
    """

    def __init__(
        self,
        workdir: str | Path | None = None,
        env: dict[str, str] | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> None:
        super().__init__()
        self._owns_dir = workdir is None
        if workdir is None:
            path = tempfile.mkdtemp(prefix="agentkit-")
            self._dir_finalizer = weakref.finalize(self, shutil.rmtree, path, True)
        else:
            path = str(Path(workdir).expanduser().resolve())
            Path(path).mkdir(parents=True, exist_ok=True)
        self.workdir = path
        self.env = dict(env or {})
        self.output_limit = output_limit
        self._closed = False

    def _new_session(self) -> ShellSession:
        return _TrackedSession(
            ["bash", *SHELL_FLAGS],
            signal_local_group,
            workdir=self.workdir,
            env=self.env,
            spawn_cwd=self.workdir,
        )

    async def _run_stateless(self, command: str, timeout: float | None) -> RawRun:
        env = {**os.environ, **NONINTERACTIVE_ENV, **self.env}

        async def on_timeout(sig: int, pid: int) -> None:
            await signal_local_group(sig, pid, False)

        return await run_oneshot(
            ["bash", *SHELL_FLAGS, "-c", STATELESS_WRAPPER, "bash", "", command],
            timeout=timeout,
            on_timeout=on_timeout,
            cwd=self.workdir,
            env=env,
        )

    async def start(self) -> None:
        if self._closed:
            raise SandboxError("this LocalRuntime was closed; create a new one")

    def _path(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.workdir) / p

    async def read_file(self, path: str) -> bytes:
        return await asyncio.to_thread(self._path(path).read_bytes)

    async def write_file(self, path: str, content: bytes | str) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        target = self._path(path)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        await asyncio.to_thread(write)

    async def upload(self, local_path: str | Path, remote_path: str) -> None:
        """Copy a host file or directory to ``remote_path`` (the copy's own path, not its parent);
        a directory merges into an existing one."""
        await asyncio.to_thread(_copy, Path(local_path), self._path(remote_path))

    async def download(self, remote_path: str, local_path: str | Path) -> None:
        """Copy a work-dir file or directory to ``local_path`` (the copy's own path)."""
        await asyncio.to_thread(_copy, self._path(remote_path), Path(local_path))

    async def close(self) -> None:
        self._closed = True
        await self._close_session()
        if self._owns_dir:
            self._dir_finalizer()


class _TrackedSession(ShellSession):
    """A local session whose process group is killed at interpreter exit if still alive."""

    async def start(self) -> None:
        await super().start()
        if self.shell_pid is not None:
            _LIVE_SHELL_GROUPS.add(self.shell_pid)

    async def close(self) -> None:
        pid = self.shell_pid
        await super().close()
        if pid is not None:
            _LIVE_SHELL_GROUPS.discard(pid)


def _copy(src: Path, dst: Path) -> None:
    if not src.exists():
        raise FileNotFoundError(f"no such file or directory: {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)
