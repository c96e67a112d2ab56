"""A long-lived bash process driven over pipes, shared by every runtime.

Why a persistent shell: an agent expects ``cd`` and ``export`` to stick between commands, and a
command over an open pipe costs a fraction of a millisecond where spawning a process (or a
``docker exec``) costs tens. The session is generic over *how* bash is spawned (an argv: plain
``bash`` on the host, ``docker exec -i CID bash`` for a container) and over *how* a process group
in the sandbox is signalled (a callable), so local and Docker share every line below.

How one command runs (all inside the single bash process, no extra process per command):

* the command text is assigned to a variable, and parsed whole as the body of a throw-away
  function: a syntax error anywhere is reported (exit code 2) before any part of it runs, the way
  ``bash -n`` would, and the session survives;
* it is written to a private file and ``source``-d with stdin from ``/dev/null`` so a command that
  reads stdin cannot eat the next command, a heredoc inside it still works, and ``cd``, ``export``,
  ``declare`` and functions persist;
* a sentinel line ``__AK_<token>__<exit code>`` follows; stdout and stderr are merged by bash
  itself (``exec 2>&1``), so their order is preserved.

Timeouts: SIGINT goes to the shell's whole process group; the shell traps it with ``return``,
which abandons the sourced command, so the sentinel still arrives and the session keeps its cwd
and environment. Processes that ignore SIGINT get SIGKILL (the shell itself is spared). Only when
the shell does not answer after several rounds is it killed and restarted.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from agentkit.runtime.base import SandboxError
from agentkit.runtime.output import OutputBuffer, RawRun

NONINTERACTIVE_ENV: dict[str, str] = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "PIP_PROGRESS_BAR": "off",
    "TQDM_DISABLE": "1",
    "TERM": "dumb",
    "PYTHONUNBUFFERED": "1",
    "DEBIAN_FRONTEND": "noninteractive",
    "GIT_TERMINAL_PROMPT": "0",
}
"""Set in every shell so no program waits for a pager, a prompt or a terminal."""

SignalGroup = Callable[[int, int, bool], Awaitable[None]]
"""``(signal, pgid, spare_leader)``: deliver a signal to a process group inside the sandbox; with
``spare_leader`` the group leader (the shell) is left alone."""

SHELL_FLAGS = ["--norc", "--noprofile"]

# Parse the whole command as a function body (never executed), then store it for `source`.
# The file lives in /dev/shm when possible: rewriting a file on a disk costs ~1 ms, on tmpfs ~20 us.
_SETUP = r"""exec 2>&1
trap 'return 130 2>/dev/null' INT
unset HISTFILE
__AK_DIR=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then __AK_DIR=/dev/shm; fi
__AK_FILE="$__AK_DIR/.agentkit-cmd-$$"
trap 'rm -f -- "$__AK_FILE"' EXIT
__ak_check() {
  eval "__ak_chk() { : ; ${__AK_CMD}"$'\n}' || return 2
  unset -f __ak_chk
  printf '%s\n' "$__AK_CMD" >| "$__AK_FILE"
}
"""

_INTERRUPT_ROUNDS = 3


def quote(text: str) -> str:
    """Quote for bash as one word (any byte but NUL survives)."""
    return "'" + text.replace("'", "'\\''") + "'"


def export_lines(env: Mapping[str, str]) -> str:
    return "".join(f"export {k}={quote(v)}\n" for k, v in env.items())


class ShellSession:
    """One bash process; commands run one at a time (a lock serialises callers)."""

    def __init__(
        self,
        argv: Sequence[str],
        signal_group: SignalGroup,
        *,
        workdir: str,
        env: Mapping[str, str] | None = None,
        spawn_cwd: str | None = None,
        interrupt_grace_s: float = 1.0,
        buffer_cap: int = 4 * 1024 * 1024,
    ) -> None:
        self.argv = list(argv)
        self.workdir = workdir
        self.env = {**NONINTERACTIVE_ENV, **(env or {})}
        self.spawn_cwd = spawn_cwd
        self.interrupt_grace_s = interrupt_grace_s
        self.buffer_cap = buffer_cap
        self._signal_group = signal_group
        self._proc: asyncio.subprocess.Process | None = None
        self._pending = b""
        self._lock = asyncio.Lock()
        self._abandoned: _SentinelReader | None = None
        """Reader of a command whose caller was cancelled; drained before the next command."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._file_prefix: bytes | None = None
        self.shell_pid: int | None = None
        """PID of bash in the sandbox's PID namespace (also its process group id)."""

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Spawn bash and wait until it answers, so a broken sandbox fails here and not later."""
        if self.alive:
            return
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.spawn_cwd,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise SandboxError(f"could not start the shell {self.argv[0]!r}: {exc}") from exc
        self._pending = b""
        token = uuid.uuid4().hex
        script = (
            _SETUP
            + export_lines(self.env)
            + f"cd -- {quote(self.workdir)} || exit 97\n"
            + "printf '%s' \"$__AK_FILE\"\n"
            + f"printf '\\n__AK_{token}__%s\\n' \"$$\"\n"
        )
        try:
            raw = await self._exchange(script, token, timeout=30.0)
        except asyncio.CancelledError:
            self._abandoned = None
            if self._proc is not None and self._proc.returncode is None:
                self._proc.kill()
            self._proc = None
            raise
        if raw.exit_code is None or raw.shell_exited:
            await self.close()
            text = raw.data.decode("utf-8", errors="replace").strip()[-2000:]
            raise SandboxError(f"the shell did not start ({' '.join(self.argv)}): {text}")
        self.shell_pid = raw.exit_code
        # bash names the sourced file in its messages; show them as an interactive bash would.
        self._file_prefix = raw.data.strip() + b": "

    async def run(self, command: str, timeout: float | None = None) -> RawRun:
        """Run one command; on timeout interrupt it and keep the session."""
        if "\x00" in command:
            command = command.replace("\x00", "")
        async with self._lock:
            if self._abandoned is not None:
                await self._recover()
            if not self.alive:
                await self.start()
            token = uuid.uuid4().hex
            line = (
                f"__AK_CMD={quote(command)}\n"
                f'__ak_check && builtin source "$__AK_FILE" </dev/null; '
                f"printf '\\n__AK_{token}__%s\\n' \"$?\"\n"
            )
            return await self._exchange(line, token, timeout)

    async def _exchange(self, text: str, token: str, timeout: float | None) -> RawRun:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        reader = _SentinelReader(proc.stdout, token, self.buffer_cap, self._pending)
        try:
            proc.stdin.write(text.encode("utf-8", errors="surrogateescape"))
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the shell is gone; the reader sees EOF right away and reports it
        timed_out = False
        try:
            await asyncio.wait_for(reader.pump(), timeout)
        except TimeoutError:
            timed_out = True
            try:
                await self._interrupt(reader)
            except asyncio.CancelledError:
                self._abandon(reader)
                raise
        except asyncio.CancelledError:
            self._abandon(reader)
            raise
        self._pending = reader.rest
        if reader.eof:
            await self._reap()
        if timed_out:
            exit_code = None
        elif reader.eof:
            exit_code = proc.returncode
        else:
            exit_code = reader.exit_code
        data = reader.buffer.getvalue()
        if self._file_prefix:
            data = data.replace(self._file_prefix, b"bash: ")
        return RawRun(
            data=data,
            dropped=reader.buffer.dropped,
            exit_code=exit_code,
            timed_out=timed_out,
            shell_exited=reader.eof or not self.alive,
            duration_s=loop.time() - started,
        )

    def _abandon(self, reader: _SentinelReader) -> None:
        """The caller was cancelled mid-command (e.g. Ctrl-C in an agent loop): interrupt the
        command now, in the background, and remember to drain its sentinel before the next one,
        so its late output is never taken for the next command's."""
        self._abandoned = reader
        if self.shell_pid is not None and self.alive:
            task = asyncio.ensure_future(self._signal_group(signal.SIGINT, self.shell_pid, False))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _recover(self) -> None:
        reader, self._abandoned = self._abandoned, None
        if reader is None or not self.alive:
            return
        if not await _pump_for(reader, self.interrupt_grace_s):
            await self._interrupt(reader)
        self._pending = reader.rest
        if reader.eof:
            await self._reap()

    async def _interrupt(self, reader: _SentinelReader) -> None:
        """SIGINT the group, then SIGKILL the shell's children, a few rounds; last resort: kill."""
        pgid = self.shell_pid
        for _ in range(_INTERRUPT_ROUNDS):
            if pgid is None or not self.alive:
                break
            await self._signal_group(signal.SIGINT, pgid, False)
            if await _pump_for(reader, self.interrupt_grace_s):
                return
            await self._signal_group(signal.SIGKILL, pgid, True)
            if await _pump_for(reader, self.interrupt_grace_s):
                return
        await self.close()

    async def _reap(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5.0)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    async def close(self) -> None:
        """Stop the shell: close its stdin (bash exits), then kill what is left."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if self.shell_pid is not None:
            try:
                await self._signal_group(signal.SIGKILL, self.shell_pid, False)
            except (OSError, SandboxError):
                pass  # the sandbox is already gone; killing the spawner below is enough
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 2.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _pump_for(reader: _SentinelReader, seconds: float) -> bool:
    try:
        await asyncio.wait_for(reader.pump(), seconds)
    except TimeoutError:
        return False
    return True


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in the child before exec: the kernel kills it when its parent dies, even by SIGKILL,
    so a crashed owner never leaves a shell behind (a busy command would otherwise spin forever)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_SENTINEL = re.compile(rb"\n__AK_([0-9a-f]{32})__(\d+)\n")
"""One pattern for every command (compiling one per unique token cost ~0.1 ms a command)."""


class _SentinelReader:
    """Reads a pipe into a bounded buffer until the sentinel line (or EOF) shows up."""

    def __init__(
        self, stream: asyncio.StreamReader, token: str, cap: int, pending: bytes = b""
    ) -> None:
        self.stream = stream
        self.token = token.encode()
        self.buffer = OutputBuffer(cap)
        self.exit_code: int | None = None
        self.eof = False
        self.rest = b""
        self.done = False
        if pending:
            self._feed(pending)

    def _feed(self, data: bytes) -> None:
        buf = self.buffer
        buf.feed(data)
        start = max(0, len(buf.tail) - len(data) - 128)
        found = next(
            (m for m in _SENTINEL.finditer(buf.tail, start) if m.group(1) == self.token), None
        )
        if found:
            begin, end, code = found.start(), found.end(), int(found.group(2))
            del found  # the match holds a view of the buffer, which must be released to resize it
            self.exit_code = code
            self.rest = bytes(buf.tail[end:])
            del buf.tail[begin:]
            self.done = True

    async def pump(self) -> None:
        while not self.done:
            data = await self.stream.read(65536)
            if not data:
                self.eof = True
                self.done = True
                return
            self._feed(data)
