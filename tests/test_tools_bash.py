"""The ``bash`` tool's own behaviour: refusing interactive programs and explaining timeouts.

The runtime below is an in-test stand-in that only records commands and returns canned
results: it exists to check how this tool shapes what a runtime reports, never whether commands
really run. The real runtimes (local and Docker, real bash, real timeouts) are tested in
tests/test_runtime_*.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit.runtime.base import CommandResult, Runtime
from agentkit.tools import TOOLS, UNKNOWN_TOOL_NAME, BashTool, ToolContext, get_tool
from agentkit.tools.bash import (
    COMMAND_TIMED_OUT,
    EMPTY_COMMAND,
    INTERACTIVE_REFUSED,
    BashArguments,
    format_seconds,
)
from agentkit.tools.interactive import (
    EDITOR_HINT,
    EDITOR_REASON,
    GIT_COMMIT_HINT,
    GIT_COMMIT_REASON,
    INTERPRETER_REASON,
    PYTHON_HINT,
    find_interactive,
)
from agentkit.types import Observation


class RecordingRuntime(Runtime):
    """Stand-in runtime: remembers each ``run`` call and returns the result it was given."""

    workdir = "/repo"

    def __init__(self, result: CommandResult | None = None) -> None:
        self.result = result or CommandResult(output="ok\n", exit_code=0, duration_s=0.01)
        self.calls: list[tuple[str, float | None]] = []

    async def run(
        self, command: str, timeout: float | None = None, *, stateless: bool = False
    ) -> CommandResult:
        self.calls.append((command, timeout))
        return self.result

    async def read_file(self, path: str) -> bytes:
        raise NotImplementedError

    async def write_file(self, path: str, content: bytes | str) -> None:
        raise NotImplementedError

    async def upload(self, local_path: str | Path, remote_path: str) -> None:
        raise NotImplementedError

    async def download(self, remote_path: str, local_path: str | Path) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


REFUSED = {
    "vim setup.py": "vim",
    "vi": "vi",
    "nano a.txt": "nano",
    "emacs -nw x.c": "emacs",
    "less log.txt": "less",
    "git log | less": "less",
    "more README": "more",
    "top": "top",
    "htop": "htop",
    "man grep": "man",
    "python": "python",
    "python3": "python3",
    "python3.11 -u": "python3.11",
    "ipython": "ipython",
    "bash": "bash",
    "node": "node",
    "python3 -i script.py": "python3",
    "cd /repo && vim x.py": "vim",
    "ls; nano a": "nano",
    "FOO=1 sudo vim x": "vim",
    "timeout 5 python3": "python3",
    "/usr/bin/vim x": "vim",
    "git commit": "git commit",
    "git commit --amend": "git commit",
    "git -C /repo commit -v": "git commit",
    "git rebase -i HEAD~3": "git rebase -i",
    "git add -p": "git add -p",
}

ALLOWED = [
    "ls -la",
    "echo vim less man",
    "grep -rn less src/",
    "python script.py",
    "python3 -c 'print(1)'",
    "python -m pytest -x",
    "echo 'print(1)' | python3",
    "python3 < input.py",
    "python3 - <<'EOF'\nimport os\nvim = 1\nEOF",
    "cat > notes.txt <<EOF\nvim\nless\nEOF\nwc -l notes.txt",
    "bash run_tests.sh",
    "bash -c 'ls'",
    "node -e 'console.log(1)'",
    "git commit -m 'fix'",
    "git commit -am fix",
    "git commit --amend --no-edit",
    "git commit --message=fix",
    "GIT_EDITOR=true git commit",
    "git log --oneline | head",
    "git add -A",
    "top -b -n 1",
    "emacs --batch -l build.el",
    "echo 'unbalanced",
    "# vim in a comment",
]


@pytest.mark.parametrize("command", sorted(REFUSED))
def test_interactive_commands_are_found(command: str) -> None:
    refusal = find_interactive(command)
    assert refusal is not None
    assert refusal.program == REFUSED[command]


@pytest.mark.parametrize("command", ALLOWED)
def test_ordinary_commands_pass(command: str) -> None:
    assert find_interactive(command) is None


async def test_refused_command_never_reaches_the_runtime() -> None:
    runtime = RecordingRuntime()
    observation = await BashTool().execute(
        BashArguments(command="vim setup.py"), ToolContext(runtime=runtime)
    )
    assert runtime.calls == []
    assert observation == Observation(
        output=INTERACTIVE_REFUSED.format(program="vim", reason=EDITOR_REASON, hint=EDITOR_HINT)
    )
    assert observation.output == (
        "The command was not run: `vim` is an interactive editor that waits for keystrokes, and "
        "nothing can type into it here. View a file with `cat -n FILE` or `sed -n '10,40p' FILE`, "
        "and change it with a file-editing tool or a non-interactive command (`sed -i`, or "
        "`cat > FILE <<'EOF'` ... `EOF`)."
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "python3",
            INTERACTIVE_REFUSED.format(
                program="python3", reason=INTERPRETER_REASON, hint=PYTHON_HINT
            ),
        ),
        (
            "git commit",
            INTERACTIVE_REFUSED.format(
                program="git commit", reason=GIT_COMMIT_REASON, hint=GIT_COMMIT_HINT
            ),
        ),
        ("", EMPTY_COMMAND),
        ("  \n ", EMPTY_COMMAND),
    ],
)
async def test_refusal_messages(command: str, expected: str) -> None:
    runtime = RecordingRuntime()
    observation = await BashTool().execute(BashArguments(command=command), ToolContext(runtime))
    assert runtime.calls == []
    assert observation.output == expected
    assert observation.exit_code is None


async def test_result_is_passed_through() -> None:
    result = CommandResult(output="x\n", exit_code=3, truncated=True, duration_s=1.5)
    runtime = RecordingRuntime(result)
    observation = await BashTool().execute(
        BashArguments(command="make"), ToolContext(runtime, command_timeout=60)
    )
    assert runtime.calls == [("make", 60)]
    assert observation == Observation(output="x\n", exit_code=3, truncated=True, duration_s=1.5)


@pytest.mark.parametrize(
    ("partial", "timeout", "expected_output"),
    [
        (
            "collecting 3 items\n",
            30.0,
            "collecting 3 items\n\n" + COMMAND_TIMED_OUT.format(seconds="30"),
        ),
        ("", 2.5, COMMAND_TIMED_OUT.format(seconds="2.5")),
    ],
)
async def test_timeout_is_explained(partial: str, timeout: float, expected_output: str) -> None:
    result = CommandResult(output=partial, exit_code=None, timed_out=True, duration_s=timeout + 0.2)
    observation = await BashTool().execute(
        BashArguments(command="pytest"), ToolContext(RecordingRuntime(result), timeout)
    )
    assert observation.output == expected_output
    assert observation.timed_out and observation.exit_code is None
    assert "interrupted after" in observation.output
    assert "still usable" in observation.output
    assert "background" in observation.output


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (30, 30.0, 2.5, 0.25, 120.04)] == [
        "30",
        "30",
        "2.5",
        "0.2",
        "120",
    ]


def test_spec_describes_the_argument() -> None:
    spec = BashTool().spec()
    assert spec.name == "bash"
    assert spec.parameters["required"] == ["command"]
    assert "title" not in spec.parameters["properties"]["command"]
    assert spec.parameters["properties"]["command"]["description"]


def test_tool_registry() -> None:
    assert isinstance(get_tool("bash"), BashTool)
    assert "bash" in TOOLS
    with pytest.raises(ValueError) as caught:
        get_tool("shell")
    valid = ", ".join(sorted(TOOLS))
    assert str(caught.value) == UNKNOWN_TOOL_NAME.format(name="shell", valid=valid)
