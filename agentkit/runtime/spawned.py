"""Every host process a runtime spawns, so an interrupted program can reap them before it exits.

Why: ``asyncio.run`` closes its event loop once the main task ends. A process still running then
(a ``docker exec`` that signals a group, started while Ctrl-C was cancelling everything) exits
later into a closed loop, and Python prints two tracebacks from its child watcher and the
transport's finaliser. The command-line entry points therefore end with :func:`reap_spawned`,
which kills what is left and closes its pipes while the loop still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_spawned: set[asyncio.subprocess.Process] = set()
"""Strong references: a caller that drops its process object still leaves the process running.
Finished ones are dropped at the next spawn."""


async def spawn(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """``asyncio.create_subprocess_exec`` that remembers the process for :func:`reap_spawned`."""
    _spawned.difference_update([proc for proc in _spawned if _finished(proc)])
    proc = await asyncio.create_subprocess_exec(*argv, **kwargs)
    _spawned.add(proc)
    return proc


def _finished(proc: asyncio.subprocess.Process) -> bool:
    transport = _transport(proc)
    return proc.returncode is not None and (transport is None or transport.is_closing())


def _transport(proc: asyncio.subprocess.Process) -> asyncio.SubprocessTransport | None:
    # No public accessor exists; the transport closes itself only once every pipe saw EOF.
    transport: asyncio.SubprocessTransport | None = getattr(proc, "_transport", None)
    return transport


async def reap_spawned(grace_s: float = 5.0) -> None:
    """Kill every spawned process still running, wait for it, and close its pipes.

    Only for the end of a program: it also stops processes other tasks still use."""
    procs = list(_spawned)
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    for proc in procs:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace_s)
        # A pipe held open by a grandchild would keep the transport open into the closed loop.
        transport = _transport(proc)
        if transport is not None:
            transport.close()
    _spawned.clear()


async def reaping_children(main: Awaitable[T]) -> T:
    """Await ``main``, then (however it ends, Ctrl-C included) reap what it left running."""
    try:
        return await main
    finally:
        await reap_spawned()
