"""A long-lived bash process driven over pipes, shared by every runtime.

Why a persistent shell: an agent expects ``cd`` and ``export`` to stick between commands, and a
command over an open pipe costs a fraction of a millisecond where spawning a process (or a
``docker exec``) costs tens. The session is generic over *how* bash is spawned (an argv: plain
``bash`` on the host, ``docker exec -i CID bash`` for a container) and over *how* a process group
in the sandbox is signalled (a callable), so local and Docker share every line below.

How one command runs (all inside the single bash process, no extra process per command):

* the command text is assigned to a variable and checked whole by :data:`SYNTAX_CHECK` before
  any part of it runs (see below); on a syntax error nothing runs and the session survives;
* it is written to a private file and ``source``-d with stdin from ``/dev/null`` so a command that
  reads stdin cannot eat the next command, a heredoc inside it still works, and ``cd``, ``export``,
  ``declare`` and functions persist;
* a sentinel line ``__AK_<token>__<exit code>`` follows; stdout and stderr are merged by bash
  itself (``exec 2>&1``), so their order is preserved.

Syntax errors read exactly as ``bash -c COMMAND`` prints them for the same command in a fresh
bash (its wording, the command's own line numbers, ``bash: -c: line N:`` prefix), with nothing of
the runtime's own (no ``eval``, no internal names, no temp file path), and exit status 2 (bash's
status for a syntax error; for a few, such as ``$(fi)`` or an unclosed ``a=(``, bash itself says
127 or 1, which we do not copy). For example::

    bash: -c: line 1: syntax error near unexpected token `fi'
    bash: -c: line 1: `fi'

Errors bash reports while the command *runs* read as ``bash -c`` prints them too
(``bash: line 2: x: unbound variable``). The difference from ``bash -c``: it runs the lines
before a syntax error, we run nothing. How the check stays exact and cheap: the fast path parses
the command inside the shell, in ``case`` arms that never match (~10 us, no process; session
state such as ``shopt -s extglob`` respected; in a subshell, ~0.3 ms, when the command holds a
``$(``, ``<(`` or ``>(``, because bash 5.2 exits on a syntax error inside one), its
wrapper-flavoured message thrown away. Only when that parse fails does a separate
``bash -n -c COMMAND`` (with the session's ``shopt`` options) give the exact message. When that
separate parse finds no error (a heredoc left open at the end is only a warning for bash, but
swallows the wrapper's closing lines), the command runs.

Timeouts: SIGINT goes to the shell's whole process group; the shell traps it with ``return``,
which abandons the sourced command, so the sentinel still arrives and the session keeps its cwd
and environment. Processes that ignore SIGINT get SIGKILL (the shell itself is spared). Only when
the shell does not answer after several rounds is it killed and restarted. The shell and what it
starts begin with default signal dispositions (:func:`reset_signals`) whatever the owner's were:
a non-interactive bash can neither trap nor reset a signal that was ignored when it started, so
an owner launched with SIGINT ignored (``agentkit run … &`` in a script) would otherwise get a
shell whose timeout kills only the running program and then goes on with the rest of the command.
Should a shell still come up unable to trap SIGINT, a timeout kills it outright (the next command
gets a fresh shell and says so) rather than let the rest of the command run.
"""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from agentkit.runtime.base import SandboxError
from agentkit.runtime.child import child_setup
from agentkit.runtime.output import OutputBuffer, RawRun
from agentkit.runtime.spawned import spawn

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

_PARSE_BRACES = """eval "case _ in x) { : ; ${__AK_CMD}"$'\\n} ;; esac'"""
_PARSE_BOTH = (
    """eval "case _ in x) { : ; ${__AK_CMD}"$'\\n} ;; y) ( : ; '"${__AK_CMD}"$'\\n) ;; esac'"""
)
"""Parse the whole command without running any of it: ``case`` arms that never match (``: ;``
lets an empty command through). Why also in parentheses when the command holds a ``}``: an
unbalanced ``}`` could close the braces early and leave the rest looking valid, but then it is an
error in the parentheses (and the other way round); only a command built to fool both gets
through, and then meets bash's own error when it runs."""

SYNTAX_CHECK = (
    "__ak_check() { "
    # Fast path, no process; the wrapper-flavoured message goes to a closed stderr. bash 5.2
    # exits a non-interactive shell on a syntax error inside $( ), <( ) or >( ), so a command
    # holding one is parsed in a subshell (which such a command forks to run anyway).
    r"case $__AK_CMD in *[\$\<\>]\(*) "
    f"( {_PARSE_BOTH} ) 2>&- && return 0 ;; "
    rf"*\}}*) {{ {_PARSE_BOTH}; }} 2>&- && return 0 ;; "
    f"*) {{ {_PARSE_BRACES}; }} 2>&- && return 0 ;; "
    "esac; "
    # Failure path: a separate bash parses the command alone, for the exact message and status.
    "local __ak_msg; "
    """__ak_msg=$(export BASHOPTS; exec "$__AK_BASH" -n -c "$__AK_CMD" bash 2>&1) && return 0; """
    # Too long for one argument (128 KiB): bash -n reads it from a pipe instead, and its
    # "bash: line N:" becomes the "bash: -c: line N:" of the command-string form.
    """if [ "$?" = 126 ]; then __ak_msg=$(export BASHOPTS; printf '%s' "$__AK_CMD" | """
    """exec -a bash "$__AK_BASH" -n 2>&1) && return 0; __ak_msg=$'\\n'$__ak_msg; """
    """__ak_msg=${__ak_msg//$'\\n'bash: line /$'\\n'bash: -c: line }; __ak_msg=${__ak_msg#?}; fi; """
    """printf '%s\\n' "$__ak_msg"; return 2; }"""
)
"""Bash (one line) defining ``__ak_check``: is ``$__AK_CMD`` free of syntax errors? Status 0 if so;
otherwise bash's own ``bash -c`` report is printed and the status is 2 (see the module
docstring). Needs ``__AK_BASH`` (the running bash's path: the model may change ``PATH``)."""

# The command file lives in /dev/shm when possible: rewriting a file on a disk costs ~1 ms, on
# tmpfs ~20 us.
_SETUP = (
    r"""exec 2>&1
trap 'return 130 2>/dev/null' INT
unset HISTFILE
__AK_BASH=$BASH
__AK_DIR=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then __AK_DIR=/dev/shm; fi
__AK_FILE="$__AK_DIR/.agentkit-cmd-$$"
trap 'rm -f -- "$__AK_FILE"' EXIT
"""
    + SYNTAX_CHECK
    + "\n"
)

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
        self._traps_sigint = True
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
            self._proc = await spawn(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.spawn_cwd,
                start_new_session=True,
                preexec_fn=child_setup,
            )
        except OSError as exc:
            raise SandboxError(f"could not start the shell {self.argv[0]!r}: {exc}") from exc
        self._pending = b""
        token = uuid.uuid4().hex
        script = (
            _SETUP
            + export_lines(self.env)
            + f"cd -- {quote(self.workdir)} || exit 97\n"
            + "trap -p INT\n"
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
        *notes, path = raw.data.strip().split(b"\n")
        # A shell started with SIGINT ignored keeps ignoring it whatever we trap (possible only
        # where we do not spawn the shell's process ourselves): a timeout must then kill it.
        self._traps_sigint = any(b"return 130" in note for note in notes)
        # bash names the sourced file in its messages; show them as ``bash -c`` would.
        self._file_prefix = path + b": "

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
                f'__ak_check && builtin printf %s "$__AK_CMD" >| "$__AK_FILE" && '
                f'builtin source "$__AK_FILE" </dev/null; '
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
            sig = signal.SIGINT if self._traps_sigint else signal.SIGKILL
            task = asyncio.ensure_future(self._signal_group(sig, self.shell_pid, False))
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
        """SIGINT the group, then SIGKILL the shell's children, a few rounds; last resort (and at
        once for a shell that cannot trap SIGINT, which would run the rest of the command after
        its children die): kill the shell."""
        pgid = self.shell_pid
        for _ in range(_INTERRUPT_ROUNDS if self._traps_sigint else 0):
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
        if self._tasks:  # a signal sent for a cancelled command: let it finish first
            await asyncio.wait(set(self._tasks), timeout=5.0)
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
