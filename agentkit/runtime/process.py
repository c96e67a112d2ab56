"""Process-group signalling and the stateless (one process per command) runner.

Why process groups: a command is rarely one process (``pytest`` forks workers, ``make`` runs
compilers), and killing only the top one leaves the rest running and holding the output pipe.
Every command therefore runs as the leader of its own group, and a timeout signals the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

from agentkit.runtime.child import reset_signals, signals_need_reset
from agentkit.runtime.output import OutputBuffer, RawRun
from agentkit.runtime.shell import SYNTAX_CHECK
from agentkit.runtime.spawned import spawn

GROUP_SIGNAL_SCRIPT = r"""sig=$1 pg=$2 spare=$3
pidfile=
case $pg in /*) pidfile=$pg; read -r pg < "$pidfile" 2>/dev/null || exit 0 ;; esac
[ -n "$pg" ] || exit 0
if [ "$spare" != 1 ]; then
  kill -s "$sig" -- "-$pg" 2>/dev/null
  [ "$sig" = 9 ] && [ -n "$pidfile" ] && rm -f -- "$pidfile"
  exit 0
fi
for f in /proc/[0-9]*/stat; do
  read -r line < "$f" 2>/dev/null || continue
  pid=${f#/proc/}; pid=${pid%/stat}
  rest=${line##*) }
  set -- $rest
  [ "$3" = "$pg" ] && [ "$pid" != "$pg" ] && kill -s "$sig" "$pid" 2>/dev/null
done
exit 0
"""
"""Run by ``bash -c`` inside a sandbox: ``SIG PGID|/pidfile SPARE``. With SPARE=1 every member of
the group but its leader is signalled (used to kill a shell's children while keeping the shell);
it reads ``/proc`` because minimal images have no ``ps`` or ``pkill``."""

STATELESS_WRAPPER = "; ".join(
    [
        "__ak_pidfile=$1 __AK_CMD=$2 __AK_BASH=$BASH",
        "shift 2",
        "exec 2>&1 </dev/null",
        '[ -n "$__ak_pidfile" ] && printf "%s\\n" "$$" >| "$__ak_pidfile"',
        SYNTAX_CHECK,
        '__ak_check && eval "$__AK_CMD"',
        "__ak_rc=$?",
        '[ -n "$__ak_pidfile" ] && rm -f -- "$__ak_pidfile"',
        'exit "$__ak_rc"',
    ]
)
"""``bash -c STATELESS_WRAPPER bash PIDFILE COMMAND``: checks the syntax of the whole command before
running any of it (:data:`~agentkit.runtime.shell.SYNTAX_CHECK`: bash's own ``bash -c`` message
and status on error), merges stderr into stdout, gives it no stdin, and records its process group
id in PIDFILE when one is given (needed where the runner cannot see the pid, inside a container).
It is one line on purpose: ``eval`` numbers the lines of what it runs from its own line, so on
line 1 a runtime error reads ``bash: line 3: ...`` for line 3 of the command, as under ``bash -c``."""


async def signal_local_group(sig: int, pgid: int, spare_leader: bool) -> None:
    """Signal a host process group; with ``spare_leader`` only its other members."""
    if not spare_leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        return
    for pid in group_members(pgid):
        if pid != pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) PIDs on this host whose process group is ``pgid`` (read from /proc)."""
    members: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # the process ended while we looked
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


async def run_oneshot(
    argv: Sequence[str],
    *,
    timeout: float | None,
    on_timeout: Callable[[int, int], Awaitable[None]],
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    grace_s: float = 1.0,
    buffer_cap: int = 4 * 1024 * 1024,
) -> RawRun:
    """Run ``argv`` in a new session, collecting merged output until it exits.

    On timeout ``on_timeout(SIGINT, pid)`` then, after ``grace_s`` or as soon as the command has
    exited, ``on_timeout(SIGKILL, pid)`` are awaited (they must reach the command's process group
    wherever it runs), and finally the spawned process itself is killed. Background processes
    that keep the pipe open do not keep the call waiting: once the command has exited, output is
    read for a short moment more and then left. The process starts with default signal
    dispositions whatever this one's are (see :func:`~agentkit.runtime.child.reset_signals`).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc = await spawn(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        start_new_session=True,
        preexec_fn=reset_signals if signals_need_reset() else None,
    )
    assert proc.stdout is not None
    buffer = OutputBuffer(buffer_cap)
    reader = asyncio.create_task(_read_all(proc.stdout, buffer))
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        timed_out = True
        await on_timeout(signal.SIGINT, proc.pid)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            pass  # it ignored SIGINT; SIGKILL follows either way
        # Always: background members of the group ignore SIGINT and would outlive the command.
        await on_timeout(signal.SIGKILL, proc.pid)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    try:
        await asyncio.wait_for(asyncio.shield(reader), 0.5)
    except TimeoutError:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return RawRun(
        data=buffer.getvalue(),
        dropped=buffer.dropped,
        exit_code=None if timed_out else proc.returncode,
        timed_out=timed_out,
        duration_s=loop.time() - started,
    )


async def _read_all(stream: asyncio.StreamReader, buffer: OutputBuffer) -> None:
    while data := await stream.read(65536):
        buffer.feed(data)
