"""The ``python`` tool: run code in one persistent Python interpreter inside the sandbox.

The CodeAct style of acting (OpenHands' IPython cell): the model writes Python, and variables,
imports and the working directory persist from one call to the next, as in a notebook.

How it works. The interpreter (a *kernel*, see :mod:`agentkit.tools.python_kernel`) is a
``python3`` process inside the sandbox, in its own session, listening on a unix socket under
``/tmp/.agentkit-python-<id>/``. It is started lazily, by the first call in a runtime: that call
ships the kernel's source through the runtime's shell (no file API, so the files belong to the
sandbox's user) and a small client, run with :meth:`Runtime.run` in the persistent shell, starts
the kernel when none answers, sends the code, and writes the cell's output to a result file the
tool then reads with :meth:`Runtime.read_file` and shapes like any command's output
(:func:`~agentkit.runtime.output.shape_output`: binary, cut in the middle, control bytes).

Timeouts: a cell running past ``ctx.command_timeout`` gets SIGINT (a ``KeyboardInterrupt`` in
the cell), and the observation says the interpreter kept its state; a cell that ignores SIGINT
for a few rounds of :attr:`PythonTool.interrupt_grace_s` is killed with its process group, and
the observation says the state is lost. A kernel that died between calls (killed from bash, say)
is replaced by the next call, whose output begins with :data:`PYTHON_RESTARTED`.

Lifetime: the kernel watches the runtime's persistent shell (the process that ran the client)
and, when it ends, removes its directory and kills its process group. A :class:`LocalRuntime`'s
``close`` ends the shell, so the kernel does not outlive the runtime; in Docker the container
takes everything with it anyway. A shell that restarts (``exit`` in bash) takes the interpreter
with it; the next call says so. State per runtime lives in a ``WeakKeyDictionary`` because one
tool instance serves every run of a harness.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.resources
import json
import uuid
import weakref
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.runtime.base import Runtime
from agentkit.runtime.output import DEFAULT_OUTPUT_LIMIT, add_note, shape_output
from agentkit.runtime.shell import quote
from agentkit.tools import python_kernel as kernel
from agentkit.tools import register_tool
from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.bash import format_seconds
from agentkit.tools.python_kernel import INPUT_REFUSED
from agentkit.types import Observation

__all__ = [
    "EMPTY_CODE",
    "INPUT_REFUSED",
    "NO_OUTPUT",
    "NO_PYTHON",
    "PYTHON_DIED",
    "PYTHON_FAILED",
    "PYTHON_KILLED",
    "PYTHON_RESTARTED",
    "PYTHON_TIMED_OUT",
    "PythonArguments",
    "PythonTool",
]

EMPTY_CODE = "The code was empty, so nothing was run. Give the Python code to run."
NO_PYTHON = (
    "The code was not run: this sandbox has no `python3` on its PATH, so there is no Python "
    "interpreter to run it in. Use the bash tool instead."
)
NO_OUTPUT = "(the code ran without errors and printed nothing)"
PYTHON_TIMED_OUT = (
    "The code was interrupted (KeyboardInterrupt) after {seconds} seconds because it had not "
    "finished. The interpreter is still running and keeps its variables, imports and working "
    "directory, including whatever the code did before the interrupt. For longer work, start "
    "it in the background (subprocess.Popen writing to a log file) and read the log later, or "
    "run it on a smaller input."
)
PYTHON_KILLED = (
    "The code did not stop within {seconds} seconds, even when interrupted, so the Python "
    "interpreter was killed. Its variables and imports are lost; the next call starts a new "
    "interpreter in {workdir}."
)
PYTHON_DIED = (
    "The Python interpreter ended while running this code (os._exit, a crash such as a "
    "segmentation fault, or a signal). Its variables and imports are lost; the next call "
    "starts a new interpreter in {workdir}."
)
PYTHON_RESTARTED = (
    "[note: the Python interpreter had stopped since the last call, so a new one was started "
    "in {workdir}; earlier variables and imports are gone]"
)
PYTHON_FAILED = (
    "The code was not run: the Python interpreter could not be started in this sandbox "
    "({detail}). Use the bash tool instead."
)

_NO_PYTHON_MARK = "__agentkit_python_missing__"
_NO_KERNEL_MARK = "__agentkit_kernel_missing__"
_STARTUP_ALLOWANCE_S = 90.0
"""Beyond the cell's own limit: starting the kernel, and the rounds of interrupts. The runtime
stops the client only if the client itself hangs, which it should never do."""


@cache
def kernel_source() -> str:
    """The source of :mod:`agentkit.tools.python_kernel`, as shipped into sandboxes."""
    resource = importlib.resources.files("agentkit.tools").joinpath("python_kernel.py")
    return resource.read_text(encoding="utf-8")


class PythonArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        description=(
            "Python code to run. Variables, imports and the working directory persist from one "
            "call to the next; the value of a final expression is shown."
        )
    )


@dataclass
class _Session:
    """One runtime's interpreter: where its files live, whether they were shipped, and the
    interpreter that ``python3`` named at the first call (the shell need not look it up again)."""

    directory: str = field(default_factory=lambda: f"/tmp/.agentkit-python-{uuid.uuid4().hex[:12]}")
    shipped: bool = False
    python: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@register_tool
class PythonTool(Tool):
    name: ClassVar[str] = "python"
    description: ClassVar[str] = (
        "Run Python code in a persistent interpreter, like a notebook cell: variables, imports "
        "and the working directory (which starts at the repository) persist between calls. "
        "Shows what the code printed (subprocess output included), the value of a final "
        "expression, or the traceback of an exception. input() is not available, and code that "
        "runs past the time limit is interrupted."
    )
    Arguments: ClassVar[type[BaseModel]] = PythonArguments

    interrupt_grace_s: float = 2.0
    """Seconds between the SIGINTs sent to a cell that runs past its limit, before the kill."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[Runtime, _Session] = weakref.WeakKeyDictionary()

    def _session(self, runtime: Runtime) -> _Session:
        return self._sessions.setdefault(runtime, _Session())

    async def kernel_pid(self, runtime: Runtime) -> int | None:
        """The pid (in the sandbox) of ``runtime``'s interpreter, if one was started."""
        session = self._sessions.get(runtime)
        if session is None:
            return None
        try:
            text = await runtime.read_file(f"{session.directory}/{kernel.PID_FILE}")
        except OSError:
            return None
        return int(text.decode().strip())

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        if isinstance(args, PythonArguments):
            code = args.code
        else:  # a subclass's own argument model: take what it shares with ours
            code = PythonArguments.model_validate(args.model_dump()).code
        if not code.strip():
            return Observation(output=EMPTY_CODE)
        session = self._session(ctx.runtime)
        async with session.lock:
            return await self._run(code, session, ctx)

    async def _run(self, code: str, session: _Session, ctx: ToolContext) -> Observation:
        runtime = ctx.runtime
        token = uuid.uuid4().hex
        backstop = ctx.command_timeout
        if backstop is not None:
            backstop += _STARTUP_ALLOWANCE_S + 4 * self.interrupt_grace_s
        said = ""
        for _ in range(2):
            command = self._command(code, session, runtime.workdir, ctx.command_timeout, token)
            result = await runtime.run(command, timeout=backstop)
            said = result.output.strip()
            lines = said.splitlines() or [""]
            if lines[-1] == _NO_PYTHON_MARK:
                return Observation(output=NO_PYTHON, duration_s=result.duration_s)
            if lines[-1] != _NO_KERNEL_MARK:
                break
            if not session.shipped:  # what the shipping step said, if anything, is the reason
                detail = f"its files could not be written under {session.directory}"
                if len(lines) > 1:
                    detail = f"{detail}: {lines[-2].strip()}"
                return Observation(output=PYTHON_FAILED.format(detail=detail))
            # Removed from under us (the sandbox's /tmp was cleaned): ship them again.
            session.shipped, session.python = False, None
        session.shipped = True
        try:
            data = await runtime.read_file(f"{session.directory}/{kernel.RESULT_FILE}")
        except OSError:
            data = b""
        header_line, _, body = data.partition(b"\n")
        try:
            header: dict[str, Any] = json.loads(header_line)
        except ValueError:
            header = {}
        if header.get("token") != token:
            detail = said or "it wrote no result"
            return Observation(output=PYTHON_FAILED.format(detail=detail))
        if isinstance(header.get("python"), str):
            session.python = header["python"]
        return self._observation(header, body, runtime, ctx, result.duration_s)

    def _command(
        self, code: str, session: _Session, workdir: str, timeout: float | None, token: str
    ) -> str:
        """One shell command that runs the client (``-S``: it needs no site-packages, and
        starts faster without them). Once the interpreter is known, that is all it does;
        before, it also checks for ``python3`` and ships the kernel. A missing kernel file
        prints :data:`_NO_KERNEL_MARK`. Every step ends in ``|| true`` so that a shell running
        with ``set -e`` survives it."""
        directory = quote(session.directory)
        encoded = base64.encodebytes(code.encode("utf-8", "surrogatepass")).decode("ascii")
        limit = "none" if timeout is None else repr(float(timeout))
        python = quote(session.python) if session.python else "python3"
        client = (
            f"{python} -S {directory}/kernel.py client {directory} {quote(workdir)} {limit} "
            f"{self.interrupt_grace_s!r} {token} <<'__AGENTKIT_CODE__' || true\n"
            f"{encoded}__AGENTKIT_CODE__\n"
        )
        missing = f"printf '%s\\n' {_NO_KERNEL_MARK}"
        if session.shipped and session.python:
            return f"if [ -f {directory}/kernel.py ] && [ -x {python} ]; then {client}else {missing}; fi"
        ship = ""
        if not session.shipped:
            ship = (
                "python3 -S -c 'import os,sys; d=sys.argv[1]; os.path.isdir(d) or os.makedirs(d, "
                '0o700); f=open(os.path.join(d, "kernel.py"), "wb"); '
                f"f.write(sys.stdin.buffer.read()); f.close()' {directory} "
                "<<'__AGENTKIT_KERNEL__' || true\n"
                f"{kernel_source().rstrip()}\n__AGENTKIT_KERNEL__\n"
            )
        return (
            f"if ! command -v python3 >/dev/null 2>&1; then printf '%s\\n' {_NO_PYTHON_MARK}\n"
            f"else\n{ship}if [ -f {directory}/kernel.py ]; then {client}else {missing}; fi\nfi"
        )

    def _observation(
        self,
        header: dict[str, Any],
        body: bytes,
        runtime: Runtime,
        ctx: ToolContext,
        duration_s: float,
    ) -> Observation:
        status = header.get("status")
        if status == "start_failed":
            detail = str(header.get("detail") or "no reason given").strip()
            return Observation(output=PYTHON_FAILED.format(detail=detail), duration_s=duration_s)
        timed_out = bool(header.get("timed_out")) and status in ("interrupted", "killed")
        dropped = int(header.get("dropped") or 0)
        limit = getattr(runtime, "output_limit", DEFAULT_OUTPUT_LIMIT)
        if not body.strip() and dropped == 0:
            text = NO_OUTPUT if status == "ok" else ""
            truncated = False
        else:
            shaped = shape_output(body, 0, limit=limit, dropped=dropped)
            text, truncated = shaped.text, shaped.truncated
        seconds = format_seconds(ctx.command_timeout or 0.0)
        note = None
        exit_code: int | None = 0 if status == "ok" else 1
        if status == "interrupted" and timed_out:
            note, exit_code = PYTHON_TIMED_OUT.format(seconds=seconds), None
        elif status == "killed":
            note, exit_code = PYTHON_KILLED.format(seconds=seconds, workdir=runtime.workdir), None
        elif status == "died":
            note, exit_code = PYTHON_DIED.format(workdir=runtime.workdir), None
        if note is not None:
            text = add_note(text.rstrip("\n") + "\n\n", note) if text.strip() else note
        if header.get("restarted"):
            text = f"{PYTHON_RESTARTED.format(workdir=runtime.workdir)}\n{text}"
        return Observation(
            output=text,
            exit_code=exit_code,
            timed_out=timed_out,
            truncated=truncated,
            duration_s=duration_s,
        )
