"""The SWE-agent interface tools on real files: what they show, what they write, what they refuse.

Every observation is compared with a golden file in tests/golden/aci/ (the work dir's path
replaced by ``/repo``), so a change of wording is seen in review; regenerate them with
``AGENTKIT_UPDATE_GOLDEN=1``. Edits are checked as bytes: only the replaced lines may change.

Most tests use a :class:`LocalRuntime`; one runs a script of calls in a Docker sandbox whose
Python has been hidden and checks it answers exactly as the local runtime does.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from golden_files import check_golden_file

from agentkit.runtime import DockerRuntime, LocalRuntime
from agentkit.runtime.base import Runtime
from agentkit.tools import TOOLS, ToolContext, get_format, get_tool
from agentkit.tools import aci_edit as _aci_edit  # noqa: F401 - registers the tool
from agentkit.tools import aci_messages as msg
from agentkit.tools import aci_search as _aci_search  # noqa: F401 - registers the tools
from agentkit.tools.aci_files import state_of
from agentkit.tools.aci_lint import Lint, LintError, introduced, lint
from agentkit.tools.aci_viewer import ACI_TOOLS
from agentkit.types import Observation, ToolCall

GOLDEN = Path(__file__).parent / "golden" / "aci"


@dataclass
class Aci:
    """The interface's tools acting in one runtime, with helpers to set up and read back files."""

    runtime: Runtime
    tools: dict[str, Any] = field(default_factory=lambda: {n: get_tool(n) for n in ACI_TOOLS})

    def write(self, name: str, data: bytes) -> str:
        target = Path(self.runtime.workdir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return str(target)

    def read(self, name: str) -> bytes:
        return (Path(self.runtime.workdir) / name).read_bytes()

    async def __call__(self, name: str, **arguments: Any) -> Observation:
        tool = self.tools[name]
        return await tool.execute(tool.Arguments(**arguments), ToolContext(runtime=self.runtime))

    def text(self, observation: Observation) -> str:
        return observation.output.replace(self.runtime.workdir, "/repo")


@pytest.fixture
async def aci(tmp_path: Path) -> AsyncIterator[Aci]:
    async with LocalRuntime(tmp_path / "repo") as runtime:
        yield Aci(runtime)


def check_golden(name: str, text: str) -> None:
    check_golden_file(GOLDEN / f"{name}.txt", text + "\n")


async def expect(
    aci: Aci, golden: str, tool: str, exit_code: int = 0, **arguments: Any
) -> Observation:
    """Call a tool, check its exit code, and compare what it said with the golden file."""
    observation = await aci(tool, **arguments)
    assert observation.exit_code == exit_code, observation.output
    check_golden(golden, aci.text(observation))
    return observation


def numbered_file(count: int, prefix: str = "line") -> bytes:
    return "".join(f"{prefix} {n}\n" for n in range(1, count + 1)).encode()


def shown_lines(output: str) -> list[int]:
    """The line numbers a window shows."""
    return [int(line.split(":", 1)[0]) for line in output.splitlines() if line[:1].isdigit()]


# -- registration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("format_name", ["native", "xml", "bash_block"])
def test_the_tools_are_registered_and_round_trip_in_every_format(format_name: str) -> None:
    tools = [get_tool(name) for name in ACI_TOOLS]
    assert all(name in TOOLS for name in ACI_TOOLS)
    format = get_format(format_name)
    calls = [
        ToolCall(name="open", arguments={"path": "src/app.py", "line_number": 12}),
        ToolCall(name="scroll_down", arguments={}),
        ToolCall(
            name="edit",
            arguments={"start_line": 3, "end_line": 4, "replacement": "\tif x:\n\t\treturn 1\n"},
        ),
    ]
    for call in calls:
        if format.native:
            call = call.model_copy(update={"id": "call_1"})
        assert format.parse(format.render(call, tools), tools).call == call


# -- the viewer ------------------------------------------------------------------------------------


async def test_open_shows_the_first_window(aci: Aci) -> None:
    aci.write("long.txt", numbered_file(250))
    observation = await expect(aci, "open_start", "open", path="long.txt")
    assert shown_lines(observation.output) == list(range(1, 101))
    assert observation.output.endswith(msg.BELOW.format(count=150))


async def test_open_centres_the_window_on_a_line(aci: Aci) -> None:
    aci.write("long.txt", numbered_file(250))
    observation = await expect(aci, "open_centred", "open", path="long.txt", line_number=120)
    assert shown_lines(observation.output) == list(range(70, 170))


async def test_open_near_the_end_fills_the_window(aci: Aci) -> None:
    path = aci.write("long.txt", numbered_file(250))
    observation = await aci("open", path=path, line_number=245)
    assert shown_lines(observation.output) == list(range(151, 251))
    assert "more lines below" not in observation.output


async def test_goto_puts_the_line_near_the_top(aci: Aci) -> None:
    aci.write("long.txt", numbered_file(250))
    await aci("open", path="long.txt")
    observation = await expect(aci, "goto", "goto", line_number=60)
    assert shown_lines(observation.output)[0] == 60 - msg.WINDOW // 6


async def test_scrolling_moves_by_the_window_less_the_overlap(aci: Aci) -> None:
    aci.write("long.txt", numbered_file(250))
    await aci("open", path="long.txt")
    down = await expect(aci, "scroll_down", "scroll_down")
    assert shown_lines(down.output) == list(range(99, 199))
    down = await aci("scroll_down")
    assert shown_lines(down.output) == list(range(151, 251))  # the last window is a full one
    await expect(aci, "scroll_down_at_end", "scroll_down", exit_code=1)
    up = await expect(aci, "scroll_up", "scroll_up")
    assert shown_lines(up.output) == list(range(53, 153))
    up = await aci("scroll_up")
    assert shown_lines(up.output) == list(range(1, 101))
    await expect(aci, "scroll_up_at_start", "scroll_up", exit_code=1)


async def test_a_short_file_has_no_markers_and_nowhere_to_scroll(aci: Aci) -> None:
    aci.write("short.py", b"a = 1\r\n\tb = 2\r\nc = 3")
    await expect(aci, "open_short_crlf", "open", path="short.py")
    assert (await aci("scroll_down")).exit_code == 1
    assert (await aci("scroll_up")).exit_code == 1


async def test_viewer_refusals(aci: Aci) -> None:
    await expect(aci, "error_no_file_open", "goto", exit_code=1, line_number=3)
    assert (await aci("scroll_down")).exit_code == 1
    path = aci.write("long.txt", numbered_file(250))
    await expect(aci, "error_open_line_past_end", "open", 1, path=path, line_number=251)
    await expect(aci, "error_open_missing", "open", 1, path="nowhere/missing.py")
    aci.write("pkg/mod.py", b"x = 1\n")
    await expect(aci, "error_open_directory", "open", 1, path="pkg")
    aci.write("blob.bin", b"\x7fELF\x00\x01\x02")
    await expect(aci, "error_open_binary", "open", 1, path="blob.bin")
    aci.write("empty.txt", b"")
    await expect(aci, "open_empty", "open", path="empty.txt")
    await expect(aci, "error_goto_empty", "goto", 1, line_number=1)
    await expect(aci, "error_scroll_empty", "scroll_down", 1)
    await aci("open", path=path)
    await expect(aci, "error_goto_zero", "goto", 1, line_number=0)
    # A refusal leaves the window where it was.
    assert state_of(aci.runtime).path == path and state_of(aci.runtime).first == 1


async def test_long_lines_are_cut(aci: Aci) -> None:
    aci.write("wide.txt", b"short\n" + b"x" * 5000 + b"\n")
    observation = await aci("open", path="wide.txt")
    assert msg.LINE_CUT.format(length=5000) in observation.output
    assert len(observation.output) < 1200


async def test_state_is_kept_per_runtime(tmp_path: Path) -> None:
    tool = get_tool("goto")
    async with LocalRuntime(tmp_path / "one") as one, LocalRuntime(tmp_path / "two") as two:
        Path(one.workdir, "a.txt").write_bytes(numbered_file(300))
        await Aci(one)("open", path="a.txt")
        args = tool.Arguments(line_number=200)
        assert (await tool.execute(args, ToolContext(runtime=one))).exit_code == 0
        refused = await tool.execute(args, ToolContext(runtime=two))
        assert refused.output == msg.NO_FILE_OPEN.format(command="goto")


# -- find_file -----------------------------------------------------------------------------------


async def test_find_file(aci: Aci) -> None:
    aci.write("src/app/main.py", b"")
    aci.write("src/app/util.py", b"")
    aci.write("src/README.md", b"")
    aci.write(".venv/lib/site.py", b"")
    aci.write("src/.cache/main.py", b"")
    await expect(aci, "find_file_none", "find_file", file_name="*.rs")
    await expect(aci, "find_file_one", "find_file", file_name="main.py")
    await expect(aci, "find_file_glob", "find_file", file_name="*.py", dir="src")


async def test_find_file_too_many(aci: Aci) -> None:
    for n in range(500):
        aci.write(f"gen/module_{n:03}.py", b"")
    await expect(aci, "find_file_too_many", "find_file", 1, file_name="*.py")
    listed = await aci("find_file", file_name="module_1*.py")
    assert listed.output.startswith(
        msg.FILES_FOUND.format(count=100, s="s", name="module_1*.py", path=aci.runtime.workdir)
    )


async def test_find_file_refusals(aci: Aci) -> None:
    aci.write("a.py", b"")
    await expect(aci, "error_find_file_slash", "find_file", 1, file_name="src/*.py")
    await expect(aci, "error_find_file_no_dir", "find_file", 1, file_name="a.py", dir="nope")
    await expect(aci, "error_find_file_not_dir", "find_file", 1, file_name="a.py", dir="a.py")
    await expect(aci, "error_empty_term", "find_file", 1, file_name=" ")


# -- search_dir ----------------------------------------------------------------------------------


async def test_search_dir_counts_matching_lines_per_file(aci: Aci) -> None:
    aci.write("pkg/a.py", b"def handler():\n    return handler\n")
    aci.write("pkg/b.py", b"x = 1\n")
    aci.write("pkg/deep/c.py", b"# handler here\n")
    aci.write("pkg/.hidden/d.py", b"handler\n")
    aci.write(".git/config", b"handler\n")
    aci.write("pkg/blob.bin", b"handler\x00\x01")
    await expect(aci, "search_dir_none", "search_dir", search_term="nothing like this")
    await expect(aci, "search_dir_one", "search_dir", search_term="# handler", dir="pkg")
    await expect(aci, "search_dir_some", "search_dir", search_term="handler")


async def test_search_dir_with_500_files_asks_to_narrow(aci: Aci) -> None:
    for n in range(500):
        aci.write(f"gen/m{n:03}.py", b"import os\nos.sep\n")
    observation = await expect(aci, "search_dir_too_many", "search_dir", 1, search_term="os")
    assert "1000 lines in 500 files" in observation.output


async def test_search_dir_works_in_a_strict_shell(aci: Aci) -> None:
    aci.write("a.txt", b"alpha\n")
    await aci.runtime.run("set -euo pipefail")
    assert (await aci("search_dir", search_term="zeta")).output.startswith("No matches")
    assert (await aci("find_file", file_name="*.none")).output.startswith("No file")
    assert (await aci("open", path="a.txt")).exit_code == 0
    assert (await aci.runtime.run("echo alive")).output.strip() == "alive"


async def test_search_dir_refusals(aci: Aci) -> None:
    await expect(aci, "error_search_dir_missing", "search_dir", 1, search_term="x", dir="nope")
    await expect(aci, "error_multiline_term", "search_dir", 1, search_term="a\nb")
    assert (await aci("search_dir", search_term="")).output == msg.EMPTY_TERM


@pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep is not installed here")
async def test_rg_and_grep_give_the_same_answer(aci: Aci) -> None:
    aci.write("pkg/a.py", b"handler\nhandler\n")
    aci.write("pkg/.hidden/d.py", b"handler\n")
    aci.write("pkg/blob.bin", b"handler\x00\x01")
    answers = []
    for engine in ("rg", "grep"):
        state_of(aci.runtime).engine = engine  # type: ignore[assignment]
        answers.append((await aci("search_dir", search_term="handler")).output)
    assert answers[0] == answers[1]


# -- search_file ---------------------------------------------------------------------------------


async def test_search_file(aci: Aci) -> None:
    aci.write("app.py", b"import os\r\n\r\ndef main():\r\n    return os.getcwd()\r\n")
    await expect(aci, "error_search_file_nothing_open", "search_file", 1, search_term="os")
    await expect(aci, "search_file_none", "search_file", search_term="sys", path="app.py")
    await expect(aci, "search_file_one", "search_file", search_term="def ", path="app.py")
    await aci("open", path="app.py")
    await expect(aci, "search_file_open_file", "search_file", search_term="os")


async def test_search_file_with_500_lines_asks_to_narrow(aci: Aci) -> None:
    aci.write("big.txt", numbered_file(500))
    await aci("open", path="big.txt")
    await expect(aci, "search_file_too_many", "search_file", 1, search_term="line")
    observation = await aci("search_file", search_term="line 49")
    assert observation.output.startswith(
        msg.MATCHES_FILE.format(
            count=11, s="s", term="line 49", path=str(Path(aci.runtime.workdir) / "big.txt")
        )
    )


# -- edit ------------------------------------------------------------------------------------------

BROKEN = b"import os\n\n\ndef main(:\n\treturn os.getcwd()\n\n\nvalue = 1\n"


async def test_edit_replaces_lines_and_shows_the_window(aci: Aci) -> None:
    aci.write("app.py", b"import os\n\n\ndef main():\n\treturn os.getcwd()\n")
    await aci("open", path="app.py")
    await expect(
        aci,
        "edit_replace",
        "edit",
        start_line=5,
        end_line=5,
        replacement="\tcwd = os.getcwd()\n\treturn cwd\n",
    )
    assert aci.read("app.py") == b"import os\n\n\ndef main():\n\tcwd = os.getcwd()\n\treturn cwd\n"


async def test_lint_gate_rejects_an_edit_that_adds_an_undefined_name(aci: Aci) -> None:
    original = b"import os\n\n\ndef main():\n\treturn os.getcwd()\n"
    aci.write("app.py", original)
    await aci("open", path="app.py")
    await expect(
        aci,
        "edit_rejected_name",
        "edit",
        1,
        start_line=5,
        end_line=5,
        replacement="\treturn sys.argv\n",
    )
    assert aci.read("app.py") == original
    await expect(
        aci, "edit_rejected_removed_import", "edit", 1, start_line=1, end_line=1, replacement=""
    )


async def test_lint_gate_accepts_a_fix_and_edits_near_old_errors(aci: Aci) -> None:
    aci.write("app.py", BROKEN)
    await aci("open", path="app.py")
    # The file keeps its syntax error at line 4 (now 5): that is no reason to refuse.
    await aci("edit", start_line=2, end_line=1, replacement="import sys")
    assert aci.read("app.py") == BROKEN.replace(b"os\n", b"os\nimport sys\n", 1)
    # A new error is refused even though the file already has one.
    refused = await aci("edit", start_line=9, end_line=9, replacement="value = (1,")
    assert refused.exit_code == 1 and "line 9" in refused.output
    # The fix passes.
    await expect(
        aci, "edit_fixes_error", "edit", start_line=5, end_line=5, replacement="def main():"
    )
    assert b"def main():\n" in aci.read("app.py")


async def test_lint_gate_uses_tree_sitter_for_other_languages(aci: Aci) -> None:
    original = b"function add(a, b) {\r\n\treturn a + b;\r\n}\r\n"
    aci.write("add.js", original)
    await aci("open", path="add.js")
    await expect(
        aci, "edit_rejected_js", "edit", 1, start_line=2, end_line=2, replacement="\treturn (a + b;"
    )
    assert aci.read("add.js") == original
    await aci("edit", start_line=2, end_line=2, replacement="\treturn a - b;")
    assert aci.read("add.js") == original.replace(b"+", b"-")


async def test_edit_keeps_crlf_tabs_and_other_lines_exact(aci: Aci) -> None:
    original = b"a = 1\r\n\tb = 2  \r\nc = 3\r\nd = 4"  # no final newline
    aci.write("dos.txt", original)
    await aci("open", path="dos.txt")
    await expect(
        aci, "edit_crlf", "edit", start_line=2, end_line=2, replacement="\tB = 2\n\tB2 = 3\n"
    )
    assert aci.read("dos.txt") == b"a = 1\r\n\tB = 2\r\n\tB2 = 3\r\nc = 3\r\nd = 4"
    await aci("edit", start_line=5, end_line=5, replacement="D = 4\n")
    assert aci.read("dos.txt") == b"a = 1\r\n\tB = 2\r\n\tB2 = 3\r\nc = 3\r\nD = 4"
    await aci("edit", start_line=6, end_line=5, replacement="e = 5")
    assert aci.read("dos.txt") == b"a = 1\r\n\tB = 2\r\n\tB2 = 3\r\nc = 3\r\nD = 4\r\ne = 5"
    await aci("edit", start_line=5, end_line=6, replacement="")
    assert aci.read("dos.txt") == b"a = 1\r\n\tB = 2\r\n\tB2 = 3\r\nc = 3"
    await expect(aci, "edit_delete", "edit", start_line=1, end_line=1, replacement="")
    assert aci.read("dos.txt") == b"\tB = 2\r\n\tB2 = 3\r\nc = 3"


async def test_edit_keeps_encoding_and_byte_order_mark(aci: Aci) -> None:
    aci.write("latin.txt", "café\nnaïve\n".encode("latin-1"))
    await aci("open", path="latin.txt")
    await aci("edit", start_line=2, end_line=2, replacement="déjà vu")
    assert aci.read("latin.txt") == "café\ndéjà vu\n".encode("latin-1")
    await expect(
        aci, "error_edit_unencodable", "edit", 1, start_line=1, end_line=1, replacement="€ ✓"
    )
    aci.write("bom.txt", b"\xef\xbb\xbfone\ntwo\n")
    await aci("open", path="bom.txt")
    await aci("edit", start_line=1, end_line=1, replacement="ONE")
    assert aci.read("bom.txt") == b"\xef\xbb\xbfONE\ntwo\n"


async def test_edit_refusals(aci: Aci) -> None:
    await expect(aci, "error_edit_no_file", "edit", 1, start_line=1, end_line=1, replacement="x")
    aci.write("five.txt", numbered_file(5))
    await aci("open", path="five.txt")
    await expect(aci, "error_edit_start", "edit", 1, start_line=7, end_line=7, replacement="x")
    await expect(aci, "error_edit_end", "edit", 1, start_line=2, end_line=6, replacement="x")
    await expect(aci, "error_edit_order", "edit", 1, start_line=4, end_line=2, replacement="x")
    await expect(aci, "error_edit_same", "edit", 1, start_line=2, end_line=2, replacement="line 2")
    await expect(aci, "error_edit_nothing", "edit", 1, start_line=3, end_line=2, replacement="")
    assert aci.read("five.txt") == numbered_file(5)


async def test_edit_into_an_empty_file(aci: Aci) -> None:
    aci.write("empty.py", b"")
    await aci("open", path="empty.py")
    observation = await aci("edit", start_line=1, end_line=0, replacement="x = 1\n")
    assert observation.exit_code == 0, observation.output
    assert aci.read("empty.py") == b"x = 1\n"


async def test_edit_moves_the_window_to_an_edit_out_of_view(aci: Aci) -> None:
    aci.write("long.txt", numbered_file(400))
    await aci("open", path="long.txt")
    observation = await aci("edit", start_line=300, end_line=300, replacement="changed")
    assert 300 in shown_lines(observation.output)
    assert "300:changed" in observation.output


# -- the lint comparison -------------------------------------------------------------------------


def test_introduced_shifts_old_errors_by_the_edit_size() -> None:
    before = Lint([LintError(2, "a"), LintError(10, "b"), LintError(5, "c")])
    # Lines 4-6 replaced by 5 lines: line 10 moves to 12; "c" may reappear within lines 4-8.
    after = Lint([LintError(2, "a"), LintError(12, "b"), LintError(8, "c"), LintError(9, "d")])
    assert introduced(before, after, 4, 6, 5) == [LintError(9, "d")]
    assert introduced(before, Lint([LintError(10, "b")]), 4, 6, 5) == [LintError(10, "b")]


def test_python_lint_finds_undefined_names_in_every_scope() -> None:
    source = (
        "import os\n"
        "def f(a):\n"
        "    global G\n"
        "    G = a\n"
        "    return [x for x in a] + missing_one\n"
        "class C:\n"
        "    y = 1\n"
        "    def m(self):\n"
        "        return y, __class__, G, os, print, __file__\n"
    )
    found = lint(source, "python")
    assert found.names_checked
    assert found.errors == [
        LintError(5, msg.UNDEFINED_NAME.format(name="missing_one")),
        LintError(9, msg.UNDEFINED_NAME.format(name="y")),
    ]
    assert lint("from x import *\nprint(anything)\n", "python").errors == []
    assert not lint("def f(:\n", "python").names_checked
    assert lint("plain words (", None).errors == []


# -- in a Docker sandbox -------------------------------------------------------------------------

SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("open", {"path": "pkg/app.py", "line_number": 3}),
    ("search_file", {"search_term": "return"}),
    ("edit", {"start_line": 5, "end_line": 5, "replacement": "\treturn undefined\n"}),
    ("edit", {"start_line": 5, "end_line": 5, "replacement": "\tcwd = os.getcwd()\n\treturn cwd"}),
    ("find_file", {"file_name": "*.py"}),
    ("search_dir", {"search_term": "os"}),
    ("search_dir", {"search_term": "absent"}),
    ("open", {"path": "dos.txt"}),
    ("edit", {"start_line": 2, "end_line": 2, "replacement": "B"}),
    ("goto", {"line_number": 3}),
    ("scroll_down", {}),
    ("open", {"path": "pkg"}),
]


async def run_script(runtime: Runtime) -> tuple[list[str], bytes, bytes]:
    aci = Aci(runtime)
    await runtime.write_file(
        f"{runtime.workdir}/pkg/app.py", b"import os\n\n\ndef main():\n\treturn os.sep\n"
    )
    await runtime.write_file(f"{runtime.workdir}/pkg/.cache/x.py", b"import os\n")
    await runtime.write_file(f"{runtime.workdir}/dos.txt", b"a\r\nb\r\nc\r\n")
    outputs = []
    for name, arguments in SCRIPT:
        observation = await aci(name, **arguments)
        outputs.append(f"[{name} {observation.exit_code}] {aci.text(observation)}")
    app = await runtime.read_file(f"{runtime.workdir}/pkg/app.py")
    return outputs, app, await runtime.read_file(f"{runtime.workdir}/dos.txt")


@pytest.mark.docker
async def test_in_a_docker_sandbox_without_python(docker_image: str, tmp_path: Path) -> None:
    async with LocalRuntime(tmp_path / "repo") as local:
        expected = await run_script(local)
    async with DockerRuntime(docker_image, workdir="/work") as sandbox:
        hide = (
            'for f in /usr/bin/python* /usr/local/bin/python*; do [ -e "$f" ] && mv "$f" "$f.off"; '
            "done; command -v python3 || echo none"
        )
        assert (await sandbox.run(hide)).output.strip() == "none"
        actual = await run_script(sandbox)
    assert actual == expected
    assert expected[1] == b"import os\n\n\ndef main():\n\tcwd = os.getcwd()\n\treturn cwd\n"
    assert expected[2] == b"a\r\nB\r\nc\r\n"
    check_golden("docker_script", "\n\n".join(expected[0]))
