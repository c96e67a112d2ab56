"""The ``python`` and ``think`` tools, with a real interpreter in a real sandbox.

Most tests run the kernel in a :class:`LocalRuntime` (the host's ``python3``); one runs it in a
Docker sandbox. Every fixed message a model can get is compared with a golden file in
tests/golden/python_tool/ (the work dir shown as ``/repo``, the kernel's directory as
``/tmp/.agentkit-python-ID``); regenerate them with ``AGENTKIT_UPDATE_GOLDEN=1``. Each runtime's
kernel must be gone once its runtime is closed: the fixture checks by pid.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from golden_files import check_golden_file

from agentkit.runtime import DockerRuntime, LocalRuntime
from agentkit.runtime.base import Runtime
from agentkit.runtime.output import TRUNCATION_NOTE
from agentkit.tools import ToolContext, get_format, get_tool
from agentkit.tools import python_tool as pt
from agentkit.tools import think as th
from agentkit.tools.python_kernel import INPUT_REFUSED, alive
from agentkit.tools.python_tool import PythonArguments, PythonTool
from agentkit.tools.think import ThinkArguments, ThinkTool
from agentkit.types import Completion, Observation

GOLDEN = Path(__file__).parent / "golden" / "python_tool"
TIMEOUT_S = 1.0


def check_golden(name: str, text: str) -> None:
    check_golden_file(GOLDEN / f"{name}.txt", text + "\n")


def wait_until_gone(pid: int) -> None:
    """The kernel notices its shell's end at once (a pidfd) or within a poll; this only bounds
    how long a broken build would hang the test."""
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(pid), f"the kernel (pid {pid}) outlived its runtime"


@dataclass
class Py:
    """One tool instance acting in one runtime."""

    runtime: Runtime
    tool: PythonTool = field(default_factory=PythonTool)
    timeout: float | None = TIMEOUT_S

    def __post_init__(self) -> None:
        self.tool.interrupt_grace_s = 0.3

    async def __call__(self, code: str) -> Observation:
        context = ToolContext(runtime=self.runtime, command_timeout=self.timeout)
        return await self.tool.execute(PythonArguments(code=code), context)

    def text(self, observation: Observation) -> str:
        """The output as a golden file holds it: paths made stable, and without the lines of
        carets under a traceback's source lines (their shape changes between Python versions)."""
        text = observation.output.replace(self.runtime.workdir, "/repo")
        text = re.sub(r"/tmp/\.agentkit-python-[0-9a-f]+", "/tmp/.agentkit-python-ID", text)
        return re.sub(r"(?m)^ *[~^]+ *\n", "", text)

    async def pid(self) -> int:
        pid = await self.tool.kernel_pid(self.runtime)
        assert pid is not None
        return pid


@pytest.fixture
async def py(tmp_path: Path) -> AsyncIterator[Py]:
    runtime = LocalRuntime(tmp_path / "repo")
    helper = Py(runtime)
    try:
        yield helper
        pid = await helper.tool.kernel_pid(runtime)
    finally:
        await runtime.close()
    if pid is not None:
        wait_until_gone(pid)


async def expect(py: Py, code: str, golden: str, exit_code: int | None = 0) -> Observation:
    observation = await py(code)
    assert observation.exit_code == exit_code, observation.output
    check_golden(golden, py.text(observation))
    return observation


# -- running code ---------------------------------------------------------------------------------


async def test_state_persists_between_calls(py: Py) -> None:
    first = await expect(py, "import json\nx = 41", "no_output")
    assert first.output == pt.NO_OUTPUT
    assert (await py("x + 1")).output == "42\n"
    assert (await py("json.dumps({'x': x})")).output == "'{\"x\": 41}'\n"
    assert (await py("def double(n):\n    return 2 * n\n\ndouble(x)")).output == "82\n"
    assert (await py("double(_)")).output == "164\n"  # ``_`` is the last value, as in a REPL


async def test_starts_in_the_workdir_with_the_repository_importable(py: Py) -> None:
    Path(py.runtime.workdir, "pkg").mkdir()
    Path(py.runtime.workdir, "pkg", "__init__.py").write_text("ANSWER = 42\n")
    observation = await py("import os, pkg\nprint(os.getcwd())\npkg.ANSWER")
    assert observation.output == f"{py.runtime.workdir}\n42\n"
    await py("os.chdir('pkg')")
    assert (await py("os.getcwd()")).output == f"{py.runtime.workdir + '/pkg'!r}\n"
    assert (await py.runtime.run("pwd")).output.strip() == py.runtime.workdir  # bash unaffected


async def test_stdout_stderr_and_subprocesses_in_order(py: Py) -> None:
    code = (
        "import os, subprocess, sys\n"
        "print('one')\n"
        "print('two', file=sys.stderr)\n"
        "os.system('echo three')\n"
        "subprocess.run(['sh', '-c', 'echo four >&2'])\n"
        "sys.stdout.write('five')\n"
        "None"
    )
    observation = await py(code)
    assert observation.output == "one\ntwo\nthree\nfour\nfive"
    assert observation.exit_code == 0


async def test_final_expression_repr(py: Py) -> None:
    assert (await py("'a' * 3")).output == "'aaa'\n"
    assert (await py("x = [1, 2]\nx")).output == "[1, 2]\n"
    assert (await py("print('shown')\nNone")).output == "shown\n"
    assert (await py("y = 3  # an assignment shows nothing")).output == pt.NO_OUTPUT
    assert (await py("if True:\n    7")).output == pt.NO_OUTPUT  # only a final bare expression


async def test_exception_traceback_shows_only_the_users_code(py: Py) -> None:
    await expect(py, "def f():\n    return 1 / 0\n\nf()", "traceback", exit_code=1)
    chained = await py(
        "try:\n    {}['k']\nexcept KeyError as exc:\n    raise ValueError('bad') from exc"
    )
    assert "KeyError: 'k'" in chained.output and "ValueError: bad" in chained.output
    assert "direct cause" in chained.output
    assert "kernel.py" not in chained.output
    await expect(py, "1 +", "syntax_error", exit_code=1)
    exited = await py("import sys\nsys.exit(3)")
    assert exited.exit_code == 1 and exited.output.endswith("SystemExit: 3\n")
    assert (await py("'still here'")).output == "'still here'\n"


async def test_input_is_refused(py: Py) -> None:
    observation = await expect(py, "name = input('name? ')", "input_refused", exit_code=1)
    assert INPUT_REFUSED in observation.output
    assert (await py("import sys\nsys.stdin.read()")).output == "''\n"


async def test_timeout_interrupts_and_keeps_state(py: Py) -> None:
    await py("import time\ncount = 0")
    code = "print('started')\ncount += 1\nwhile True:\n    time.sleep(10)"
    observation = await expect(py, code, "timed_out", exit_code=None)
    assert observation.timed_out
    assert observation.output.startswith("started\nTraceback")
    after = await py("count")
    assert after.output == "1\n" and not after.timed_out


async def test_a_cell_that_ignores_the_interrupt_is_killed(py: Py) -> None:
    await py("x = 1")
    pid = await py.pid()
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('stubborn', flush=True)\n"
        "while True:\n    time.sleep(0.01)"
    )
    observation = await expect(py, code, "killed", exit_code=None)
    assert observation.timed_out
    wait_until_gone(pid)
    # The model was told; the next call starts a new interpreter without saying it again.
    observation = await py("'x' in globals()")
    assert observation.output == "False\n"
    assert await py.pid() != pid


async def test_a_kernel_that_dies_is_replaced(py: Py) -> None:
    await py("x = 1")
    died = await expect(py, "import os\nprint('bye', flush=True)\nos._exit(3)", "died", None)
    assert not died.timed_out
    assert (await py("'x' in globals()")).output == "False\n"
    crashed = await py("import ctypes\nctypes.string_at(0)")  # a segfault
    assert crashed.exit_code is None
    assert "Segmentation fault" in crashed.output  # faulthandler's dump reached the model
    assert crashed.output.endswith(pt.PYTHON_DIED.format(workdir=py.runtime.workdir))


async def test_a_kernel_killed_between_calls_restarts_with_a_note(py: Py) -> None:
    await py("x = 1")
    pid = await py.pid()
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    observation = await expect(py, "'x' in globals()", "restarted")
    assert observation.output.endswith("False\n")
    assert (await py("'ok'")).output == "'ok'\n"  # said once only


async def test_two_runtimes_have_separate_interpreters(tmp_path: Path) -> None:
    tool = PythonTool()
    async with LocalRuntime(tmp_path / "a") as a, LocalRuntime(tmp_path / "b") as b:
        left, right = Py(a, tool), Py(b, tool)
        await asyncio.gather(left("name = 'a'"), right("name = 'b'"))
        outputs = await asyncio.gather(left("name"), right("name"), left("name"))
        assert [o.output for o in outputs] == ["'a'\n", "'b'\n", "'a'\n"]
        pids = {await left.pid(), await right.pid()}
        assert len(pids) == 2
    for pid in pids:
        wait_until_gone(pid)


async def test_binary_non_utf8_and_huge_output(py: Py) -> None:
    latin = await py("import sys\nsys.stdout.buffer.write(b'caf\\xe9\\n')\nprint('\\udcff')")
    assert latin.output == "caf\ufffd\n\\udcff\n"
    binary = await py("sys.stdout.buffer.write(bytes(range(256)) * 4)\nNone")
    assert binary.output.startswith("[binary output: 1024 bytes")
    huge = await py("print('x' * 3_000_000)\nprint('the end')")
    assert huge.truncated
    assert len(huge.output) < 20_000
    assert huge.output.endswith("x\nthe end\n")
    note = re.search(r"\[\.\.\. (\d+) characters cut", huge.output)
    assert note is not None
    assert TRUNCATION_NOTE.format(cut=note.group(1)) in huge.output
    assert int(note.group(1)) > 2_900_000  # what the client dropped is counted too


async def test_no_python_in_the_sandbox(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    async with LocalRuntime(tmp_path / "repo", env={"PATH": str(empty)}) as runtime:
        observation = await Py(runtime)("print(1)")
    assert observation.output == pt.NO_PYTHON
    check_golden("no_python", observation.output)


async def test_files_that_cannot_be_written(py: Py, monkeypatch: pytest.MonkeyPatch) -> None:
    session = py.tool._session(py.runtime)
    session.directory = "/proc/agentkit-python-cannot-exist"
    observation = await py("1")
    detail = (
        f"its files could not be written under {session.directory}: FileNotFoundError: [Errno 2] "
        f"No such file or directory: '{session.directory}'"
    )
    assert observation.output == pt.PYTHON_FAILED.format(detail=detail)
    check_golden("failed", observation.output)


async def test_a_kernel_that_cannot_start(py: Py, monkeypatch: pytest.MonkeyPatch) -> None:
    await py.runtime.run("true")  # the shell starts in the real work dir; the kernel cannot
    monkeypatch.setattr(py.runtime, "workdir", str(Path(py.runtime.workdir) / "missing"))
    observation = await py("1")
    assert observation.output.startswith("The code was not run: the Python interpreter could not")
    assert "No such file or directory" in observation.output
    # No kernel ever ran to remove its directory when the runtime closes.
    shutil.rmtree(py.tool._session(py.runtime).directory)


async def test_empty_code_runs_nothing(py: Py) -> None:
    await expect(py, "  \n", "empty_code", exit_code=None)
    assert py.tool._sessions.get(py.runtime) is None


async def test_no_timeout_waits(py: Py) -> None:
    py.timeout = None
    assert (await py("import time\ntime.sleep(0.2)\n'done'")).output == "'done'\n"


async def test_a_bash_timeout_does_not_touch_the_kernel(py: Py) -> None:
    """Bash timeouts signal the shell's process group; the kernel lives in its own session."""
    await py("x = 5")
    result = await py.runtime.run("trap '' INT; sleep 30", timeout=0.5)
    assert result.timed_out
    assert (await py("x")).output == "5\n"


async def test_parsed_from_a_call_format(py: Py) -> None:
    text = "<function=python><parameter=code>print(6 * 7)</parameter></function>"
    action = get_format("xml").parse(Completion(text=text), [py.tool])
    observation = await py.tool.execute(action.args, ToolContext(runtime=py.runtime))
    assert observation.output == "42\n"


def test_registered_with_a_schema() -> None:
    assert isinstance(get_tool("python"), PythonTool)
    assert isinstance(get_tool("think"), ThinkTool)
    assert PythonTool().spec().parameters["required"] == ["code"]
    assert ThinkTool().spec().parameters["required"] == ["thought"]


# -- think ----------------------------------------------------------------------------------------


async def test_think_runs_nothing(tmp_path: Path) -> None:
    runtime = LocalRuntime(tmp_path / "repo")  # never started: think must not touch it
    args = ThinkArguments(thought="The bug is probably in the parser; check it first.")
    observation = await ThinkTool().execute(args, ToolContext(runtime=runtime))
    assert observation.output == th.THOUGHT_LOGGED
    assert observation.exit_code == 0
    check_golden("think", observation.output)
    assert list((tmp_path / "repo").iterdir()) == []


def test_every_message_is_in_a_golden_file() -> None:
    goldens = "\n".join(p.read_text(encoding="utf-8") for p in GOLDEN.glob("*.txt"))
    templates = {
        f"{module.__name__}.{name}": value
        for module in (pt, th)
        for name, value in vars(module).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }
    assert len(templates) >= 10
    missing = []
    for name, template in templates.items():
        pieces = [p for p in re.split(r"\{[a-z_]*\}", template) if p.strip()]
        if not all(piece in goldens for piece in pieces):
            missing.append(name)
    assert not missing, f"messages without a golden case: {missing}"


# -- in a Docker sandbox --------------------------------------------------------------------------


@pytest.mark.docker
async def test_in_a_docker_sandbox(docker_image: str) -> None:
    tool = PythonTool()
    async with DockerRuntime(docker_image, workdir="/work") as sandbox:
        py = Py(sandbox, tool)
        assert (await py("import os\nx = 41\nos.getcwd()")).output == "'/work'\n"
        assert (await py("x + 1")).output == "42\n"
        stopped = await py("import time\nwhile True:\n    time.sleep(0.01)")
        assert stopped.timed_out and stopped.output.endswith(
            pt.PYTHON_TIMED_OUT.format(seconds="1")
        )
        assert (await py("x")).output == "41\n"
        died = await py("os._exit(1)")
        assert died.output == pt.PYTHON_DIED.format(workdir="/work")
        assert (await py("'x' in globals()")).output == "False\n"
        user = await sandbox.run("stat -c %U /tmp/.agentkit-python-*")
        assert user.output.strip() == (await sandbox.run("id -un")).output.strip()
        hide = (
            'for f in /usr/bin/python* /usr/local/bin/python*; do [ -e "$f" ] && mv "$f" "$f.off"; '
            "done; hash -r; command -v python3 || echo none"
        )
        assert (await sandbox.run(hide)).output.strip() == "none"
        assert (await py("1")).output == pt.NO_PYTHON
