"""What runs in a freshly forked child before it execs a shell or a command.

Two guarantees for every process a runtime starts on the host: it dies with its owner (so a
crashed owner never leaves a busy shell behind), and it starts with default signal dispositions
whatever its owner's were (an owner started with SIGINT ignored, as a background job of a script
is, would otherwise hand that on, and timeouts could not interrupt anything).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_SIG_DFL = 0
_SIG_SETMASK = 2
_SIGSET_BYTES = 128
_KEPT_BY_PYTHON_MASK = (1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1))
"""Ignored by Python itself, and put back to default by ``subprocess`` (``restore_signals``)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Run in the child before exec: the kernel kills it when its parent dies, even by SIGKILL,
    so a crashed owner never leaves a shell behind (a busy command would otherwise spin forever)."""
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def reset_signals() -> None:
    """Run in the child before exec: every signal back to its default action, none blocked, as in
    a shell started from a terminal.

    Why: an ignored signal stays ignored across exec, and a non-interactive bash can neither trap
    nor reset one that was ignored when it started. An owner started with SIGINT ignored (a
    background job of a script, some supervisors) would hand that on to every shell and program,
    and a timeout's SIGINT would then stop nothing. Plain C calls: no Python signal machinery."""
    libc = _libc()
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.signal.restype = ctypes.c_void_p
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            libc.signal(sig, _SIG_DFL)  # EINVAL for the few reserved by libc: harmless
    empty = ctypes.create_string_buffer(_SIGSET_BYTES)
    libc.pthread_sigmask(_SIG_SETMASK, empty, None)


def signals_need_reset() -> bool:
    """Whether a child would inherit a signal ignored or blocked by this process, which
    :func:`reset_signals` would undo. Why ask: running any Python code in the child makes
    ``subprocess`` fork instead of vfork, which costs milliseconds in a large process (an owner
    with torch loaded: ~7 ms instead of ~0.7 ms per spawn), so one-shot commands pay it only
    when needed. Reads ``/proc`` (exact, ~10 us); elsewhere answers yes."""
    try:
        fd = os.open("/proc/thread-self/status", os.O_RDONLY)
        try:
            status = os.read(fd, 8192)
        finally:
            os.close(fd)
        blocked = int(status[status.index(b"SigBlk:\t") + 8 :].split(b"\n", 1)[0], 16)
        ignored = int(status[status.index(b"SigIgn:\t") + 8 :].split(b"\n", 1)[0], 16)
    except (OSError, ValueError):
        return True
    return bool(ignored & ~_KEPT_BY_PYTHON_MASK or blocked)


def child_setup() -> None:
    """The persistent shell's pre-exec hook: default signals, and death with its owner."""
    reset_signals()
    die_with_parent()
