"""The ``str_replace_editor`` tool on real files: what it writes, byte for byte, and what it says.

Every observation a model can get is compared with a golden file in tests/golden/editor/ (the
work dir's path replaced by ``/repo``), so a wording change is seen in review; regenerate them
with ``AGENTKIT_UPDATE_GOLDEN=1``. Refusals are also checked against their template filled in, so
the right message is picked with the right details. Files are checked as bytes: an edit may
change the matched text and nothing else.

Most tests use a :class:`LocalRuntime`; one runs the commands in a Docker sandbox whose Python
has been hidden, and checks it answers exactly as the local runtime does.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from golden_files import check_golden_file

from agentkit.runtime import DockerRuntime, LocalRuntime
from agentkit.runtime.base import Runtime
from agentkit.tools import TOOLS, ToolContext, get_format, get_tool
from agentkit.tools import editor as ed
from agentkit.tools import editor_text as et
from agentkit.tools.editor import EditorArguments, StrReplaceEditor
from agentkit.tools.editor_text import TextFile
from agentkit.types import Completion, Observation

GOLDEN = Path(__file__).parent / "golden" / "editor"


@dataclass
class Editor:
    """One tool instance acting in one runtime, with helpers to set up and read back files."""

    runtime: Runtime
    tool: StrReplaceEditor = field(default_factory=StrReplaceEditor)

    def path(self, name: str) -> str:
        return f"{self.runtime.workdir}/{name}"

    def write(self, name: str, data: bytes) -> str:
        target = Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return str(target)

    def read(self, name: str) -> bytes:
        return Path(self.path(name)).read_bytes()

    async def __call__(self, **arguments: Any) -> Observation:
        args = EditorArguments(**arguments)
        return await self.tool.execute(args, ToolContext(runtime=self.runtime))

    def text(self, observation: Observation) -> str:
        return observation.output.replace(self.runtime.workdir, "/repo")


@pytest.fixture
async def editor(tmp_path: Path) -> AsyncIterator[Editor]:
    async with LocalRuntime(tmp_path / "repo") as runtime:
        yield Editor(runtime)


def check_golden(name: str, text: str) -> None:
    check_golden_file(GOLDEN / f"{name}.txt", text + "\n")


async def expect(editor: Editor, golden: str, exit_code: int = 0, **arguments: Any) -> Observation:
    """Run a command, check its exit code, and compare what it said with the golden file."""
    observation = await editor(**arguments)
    assert observation.exit_code == exit_code, observation.output
    check_golden(golden, editor.text(observation))
    return observation


def numbered(count: int, prefix: str = "line") -> bytes:
    return "".join(f"{prefix} {n}\n" for n in range(1, count + 1)).encode()


PYTHON = (
    b"import os\n"
    b"\n"
    b"\n"
    b"def greet(name):\n"
    b'\tmessage = "hello " + name\n'
    b"\tprint(message)\n"
    b"\treturn message\n"
    b"\n"
    b"\n"
    b"def part(name):\n"
    b'\tmessage = "bye " + name\n'
    b"\tprint(message)\n"
    b"\treturn message\n"
)


def big_file(lines: int = 50_000) -> bytes:
    return "".join(
        f"    value_{n} = compute(value_{n - 1}, {n})  # step {n}\n" for n in range(1, lines + 1)
    ).encode()


# -- view ----------------------------------------------------------------------------------------


async def test_view_file_numbers_lines_and_keeps_tabs(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    await expect(editor, "view_file", command="view", path=path)


async def test_view_ranges(editor: Editor) -> None:
    path = editor.write("lines.txt", numbered(20))
    await expect(editor, "view_range_middle", command="view", path=path, view_range=[5, 9])
    await expect(editor, "view_range_start", command="view", path=path, view_range=[1, 3])
    await expect(editor, "view_range_to_end", command="view", path=path, view_range=[18, -1])
    await expect(editor, "view_range_last_line", command="view", path=path, view_range=[20, 20])
    observation = await expect(
        editor, "view_range_clamped", command="view", path=path, view_range=[15, 100]
    )
    assert observation.output.startswith(
        et.VIEW_RANGE_CLAMPED.format(path=path, total="20 lines", start=15, requested=100, last=20)
    )


async def test_view_range_of_a_file_without_final_newline(editor: Editor) -> None:
    path = editor.write("short.txt", b"a\nb\nc")
    observation = await editor(command="view", path=path, view_range=[3, -1])
    assert observation.output.endswith("     3\tc")
    observation = await editor(command="view", path=path, view_range=[2, 9])
    assert "Lines 2-3 of" in observation.output and "has only 3 lines" in observation.output
    observation = await editor(command="view", path=path, view_range=[4, 4])
    assert observation.exit_code == 1


@pytest.mark.parametrize(
    ("golden", "view_range", "template", "fields"),
    [
        ("error_view_range_shape", [5], et.VIEW_RANGE_SHAPE, {"got": [5]}),
        (
            "error_view_range_start",
            [0, 5],
            et.VIEW_RANGE_START,
            {"start": 0, "total": "20 lines", "last": 20},
        ),
        (
            "error_view_range_past_end",
            [25, 30],
            et.VIEW_RANGE_START,
            {"start": 25, "total": "20 lines", "last": 20},
        ),
        ("error_view_range_order", [9, 5], et.VIEW_RANGE_ORDER, {"start": 9, "end": 5}),
    ],
)
async def test_bad_view_ranges(
    editor: Editor, golden: str, view_range: list[int], template: str, fields: dict[str, Any]
) -> None:
    path = editor.write("lines.txt", numbered(20))
    observation = await expect(
        editor, golden, exit_code=1, command="view", path=path, view_range=view_range
    )
    fields = {"path": path, **fields} if "{path}" in template else fields
    assert observation.output == template.format(**fields)


async def test_view_empty_file(editor: Editor) -> None:
    path = editor.write("empty.txt", b"")
    observation = await expect(editor, "view_empty_file", command="view", path=path)
    assert observation.output == et.VIEW_EMPTY_FILE.format(path=path)
    observation = await expect(
        editor, "error_view_range_empty_file", 1, command="view", path=path, view_range=[1, 2]
    )
    assert observation.output == et.VIEW_RANGE_EMPTY_FILE.format(path=path)


async def test_view_of_a_long_file_is_clipped_with_a_way_on(editor: Editor) -> None:
    path = editor.write("big.py", big_file())
    observation = await expect(editor, "view_long_file", command="view", path=path)
    assert observation.truncated
    body = observation.output.split("\n", 1)[1].rsplit("\n", 1)[0]
    assert len(body) <= et.OUTPUT_LIMIT
    assert observation.output.splitlines()[0].endswith("(50000 lines), numbered as by `cat -n`:")
    await expect(
        editor, "view_long_file_range", command="view", path=path, view_range=[40000, 40008]
    )
    observation = await expect(
        editor, "view_long_file_end", command="view", path=path, view_range=[49998, -1]
    )
    assert not observation.truncated


async def test_a_huge_line_is_cut_inside_the_line(editor: Editor) -> None:
    path = editor.write("min.js", b"var a=1;" * 5000 + b"\nend\n")
    observation = await expect(editor, "view_long_line", command="view", path=path)
    assert observation.truncated
    assert observation.output.endswith(
        et.CLIPPED_LONG_LINE.format(limit=et.OUTPUT_LIMIT, line=1, length=40000, path=path)
    )


async def test_view_hides_carriage_returns_and_byte_order_marks(editor: Editor) -> None:
    crlf = editor.write("dos.txt", b"first\r\nsecond\r\n")
    await expect(editor, "view_crlf", command="view", path=crlf)
    bom = editor.write("bom.txt", b"\xef\xbb\xbfx = 1\ny = 2\n")
    observation = await editor(command="view", path=bom)
    assert "     1\tx = 1\n     2\ty = 2" in observation.output
    assert "\ufeff" not in observation.output


async def test_view_of_a_latin1_file(editor: Editor) -> None:
    path = editor.write("legacy.txt", "café = 1\nnaïve = 2\n".encode("latin-1"))
    await expect(editor, "view_latin1", command="view", path=path)


async def test_view_directory_two_levels_without_hidden_entries(editor: Editor) -> None:
    editor.write("pkg/__init__.py", b"")
    editor.write("pkg/sub/deep/too_deep.py", b"")
    editor.write("pkg/.env", b"SECRET=1\n")
    editor.write(".git/HEAD", b"ref: main\n")
    editor.write("README.md", b"# hi\n")
    Path(editor.path("docs")).mkdir()
    observation = await expect(
        editor, "view_directory", command="view", path=editor.runtime.workdir
    )
    assert "too_deep" not in observation.output and ".env" not in observation.output
    empty = editor.path("docs")
    observation = await expect(editor, "view_empty_directory", command="view", path=empty)
    assert observation.output == et.LISTING_EMPTY.format(path=empty)
    observation = await expect(
        editor, "error_view_range_directory", 1, command="view", path=empty, view_range=[1, 2]
    )
    assert observation.output == et.VIEW_RANGE_DIRECTORY.format(path=empty)


async def test_a_long_listing_is_clipped(editor: Editor) -> None:
    names = [f"file_with_a_rather_long_name_{n:04}.txt" for n in range(600)]
    for name in names:
        editor.write(f"many/{name}", b"")
    directory = editor.path("many")
    observation = await editor(command="view", path=directory)
    assert observation.truncated
    assert len(observation.output) <= et.OUTPUT_LIMIT
    header, *entries, note = observation.output.split("\n")
    assert header == et.LISTING.format(path=directory, body="")[:-1]
    assert 100 < len(entries) < 600
    assert entries == [f"{directory}/{name}" for name in names[: len(entries)]]
    # Where the cut falls depends on the length of the work dir's path: only the note is golden.
    assert note == et.LISTING_CLIPPED.format(path=directory)
    check_golden("view_directory_clipped", note.replace(editor.runtime.workdir, "/repo"))


@pytest.mark.parametrize("command", ["view", "str_replace", "insert"])
async def test_missing_file(editor: Editor, command: str) -> None:
    path = editor.path("nope/missing.py")
    arguments: dict[str, Any] = {"old_str": "a", "new_str": "b", "insert_line": 0}
    observation = await editor(command=command, path=path, **arguments)
    assert observation.exit_code == 1
    assert observation.output == ed.NOT_FOUND.format(path=path, parent=editor.path("nope"))
    check_golden("error_not_found", editor.text(observation))


async def test_binary_huge_and_undecodable_files_are_refused(editor: Editor) -> None:
    cases = [
        ("program.bin", b"\x7fELF\x02\x01\x00\x00rest", ed.BINARY, "error_binary"),
        ("wide.txt", "hello".encode("utf-16"), ed.WIDE_UNICODE, "error_wide_unicode"),
        ("noise.dat", bytes(range(1, 32)) * 20 + b"\xff", ed.CONTROL_BYTES, "error_control_bytes"),
    ]
    for name, data, template, golden in cases:
        path = editor.write(name, data)
        for command in ("view", "str_replace"):
            observation = await editor(command=command, path=path, old_str="x", new_str="y")
            assert observation.exit_code == 1
            assert observation.output == template.format(path=path)
        check_golden(golden, editor.text(observation))
        assert editor.read(name) == data
    path = editor.write("huge.log", b"x" * (ed.MAX_FILE_BYTES + 1))
    observation = await expect(editor, "error_too_large", 1, command="view", path=path)
    assert observation.output == ed.TOO_LARGE.format(path=path, size="10.0", limit=10)


async def test_a_pipe_is_never_opened(editor: Editor) -> None:
    path = editor.path("fifo")
    os.mkfifo(path)
    observation = await expect(editor, "error_not_regular", 1, command="view", path=path)
    assert observation.output == ed.NOT_REGULAR.format(path=path)


async def test_read_and_write_errors_are_explained(editor: Editor) -> None:
    # Real failures a root user still meets: a kernel file that refuses to be read, and a parent
    # "directory" that is a file.
    observation = await expect(
        editor, "error_read_failed", 1, command="view", path="/proc/self/mem"
    )
    assert observation.output == ed.READ_FAILED.format(
        path="/proc/self/mem", reason="input/output error"
    )
    editor.write("plain", b"x\n")
    path = editor.path("plain/sub.py")
    observation = await expect(
        editor, "error_write_failed", 1, command="create", path=path, file_text="y"
    )
    assert observation.output.startswith(f"Nothing was written: {path} could not be written: ")


async def test_relative_paths_are_refused_with_the_absolute_one(editor: Editor) -> None:
    observation = await expect(editor, "error_relative_path", 1, command="view", path="src/app.py")
    assert observation.output == ed.RELATIVE_PATH.format(
        path="src/app.py", suggestion=editor.path("src/app.py"), workdir=editor.runtime.workdir
    )


async def test_a_tracing_shell_does_not_confuse_the_editor(editor: Editor) -> None:
    path = editor.write("f.txt", b"a\n")
    editor.write(".hidden", b"")
    await editor.runtime.run("set -x")
    observation = await editor(command="str_replace", path=path, old_str="a", new_str="b")
    assert observation.exit_code == 0, observation.output
    observation = await editor(command="view", path=editor.runtime.workdir)
    workdir = editor.runtime.workdir
    assert observation.output == "\n".join(
        [
            et.LISTING.format(path=workdir, body=path),
            et.HIDDEN_LEFT_OUT.format(count=1, entries="entry", path=workdir),
        ]
    )


async def test_only_view_works_on_a_directory(editor: Editor) -> None:
    directory = editor.path("pkg")
    Path(directory).mkdir()
    for command, golden in [
        ("str_replace", "error_directory_str_replace"),
        ("insert", "error_directory_insert"),
        ("create", "error_directory_create"),
    ]:
        arguments = {"old_str": "a", "new_str": "b", "insert_line": 0, "file_text": "x"}
        observation = await expect(editor, golden, 1, command=command, path=directory, **arguments)
        assert observation.output == ed.IS_DIRECTORY.format(path=directory, command=command)


# -- create --------------------------------------------------------------------------------------


async def test_create_writes_the_text_and_its_parents(editor: Editor) -> None:
    path = editor.path("new/pkg/mod.py")
    observation = await expect(
        editor, "create", command="create", path=path, file_text="a = 1\n\tb = 2\r\nc"
    )
    assert observation.output == ed.CREATED.format(path=path, lines="3 lines")
    assert editor.read("new/pkg/mod.py") == b"a = 1\n\tb = 2\r\nc"


async def test_create_refuses_an_existing_file(editor: Editor) -> None:
    path = editor.write("keep.py", b"precious\n")
    observation = await expect(
        editor, "error_already_exists", 1, command="create", path=path, file_text="x"
    )
    assert observation.output == ed.ALREADY_EXISTS.format(path=path)
    assert editor.read("keep.py") == b"precious\n"


@pytest.mark.parametrize(
    ("arguments", "golden"),
    [
        ({"command": "create"}, "error_missing_file_text"),
        ({"command": "str_replace", "new_str": "x"}, "error_missing_old_str"),
        ({"command": "insert", "new_str": "x"}, "error_missing_insert_line"),
        ({"command": "insert", "insert_line": 1}, "error_missing_new_str"),
    ],
)
async def test_missing_parameters(editor: Editor, arguments: dict[str, Any], golden: str) -> None:
    path = editor.write("f.py", b"a\n")
    observation = await expect(editor, golden, 1, path=path, **arguments)
    parameter = golden.removeprefix("error_missing_")
    assert observation.output == ed.MISSING_PARAMETER.format(
        command=arguments["command"], parameter=parameter
    )


# -- str_replace ---------------------------------------------------------------------------------


async def test_str_replace_splices_and_shows_the_lines_around(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    await expect(
        editor,
        "str_replace",
        command="str_replace",
        path=path,
        old_str='\tmessage = "bye " + name',
        new_str='\tmessage = "goodbye " + name\n\tmessage = message.title()',
    )
    assert editor.read("app.py") == PYTHON.replace(
        b'\tmessage = "bye " + name', b'\tmessage = "goodbye " + name\n\tmessage = message.title()'
    )


async def test_str_replace_without_new_str_deletes(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    await expect(
        editor, "str_replace_delete", command="str_replace", path=path, old_str="import os\n"
    )
    assert editor.read("app.py") == PYTHON.removeprefix(b"import os\n")


async def test_str_replace_at_the_end_of_a_file_without_final_newline(editor: Editor) -> None:
    path = editor.write("tail.txt", b"one\ntwo\nthree")
    await expect(
        editor, "str_replace_end", command="str_replace", path=path, old_str="three", new_str="3"
    )
    assert editor.read("tail.txt") == b"one\ntwo\n3"


async def test_str_replace_that_empties_the_file(editor: Editor) -> None:
    path = editor.write("only.txt", b"all of it\n")
    await expect(
        editor, "str_replace_emptied", command="str_replace", path=path, old_str="all of it\n"
    )
    assert editor.read("only.txt") == b""


async def test_tabs_and_everything_outside_the_match_stay_as_they_were(editor: Editor) -> None:
    original = b"\tx = 1  \n\t\ty = 2\t# tab\n  z = 3\n\f\nlast"
    path = editor.write("tabs.py", original)
    observation = await editor(command="str_replace", path=path, old_str="y = 2", new_str="y = 20")
    assert observation.exit_code == 0
    assert editor.read("tabs.py") == original.replace(b"y = 2", b"y = 20")


async def test_crlf_file_with_lf_strings_keeps_crlf(editor: Editor) -> None:
    path = editor.write("dos.txt", b"alpha\r\nbeta\r\ngamma\r\n")
    await expect(
        editor,
        "str_replace_crlf",
        command="str_replace",
        path=path,
        old_str="alpha\nbeta",
        new_str="ALPHA\nBETA\nextra",
    )
    assert editor.read("dos.txt") == b"ALPHA\r\nBETA\r\nextra\r\ngamma\r\n"


async def test_crlf_strings_match_an_lf_file(editor: Editor) -> None:
    path = editor.write("unix.txt", b"alpha\nbeta\ngamma\n")
    observation = await editor(
        command="str_replace", path=path, old_str="alpha\r\nbeta", new_str="A\r\nB"
    )
    assert observation.exit_code == 0
    assert ed.CRLF_KEPT not in observation.output
    assert editor.read("unix.txt") == b"A\nB\ngamma\n"


async def test_latin1_file_is_written_back_in_latin1(editor: Editor) -> None:
    original = "café = 1\nnaïve = 2\n# ±\n".encode("latin-1")
    path = editor.write("legacy.py", original)
    observation = await expect(
        editor,
        "str_replace_latin1",
        command="str_replace",
        path=path,
        old_str="naïve = 2",
        new_str="naïf = 2  # über",
    )
    assert ed.ENCODING_KEPT.format(encoding="latin-1") in observation.output
    assert editor.read("legacy.py") == "café = 1\nnaïf = 2  # über\n# ±\n".encode("latin-1")
    observation = await expect(
        editor,
        "error_new_str_unencodable",
        1,
        command="str_replace",
        path=path,
        old_str="café",
        new_str="café €→",
    )
    assert observation.output == ed.NEW_STR_UNENCODABLE.format(
        chars="'€', '→'", path=path, encoding="latin-1"
    )
    observation = await expect(
        editor,
        "error_old_str_unencodable",
        1,
        command="str_replace",
        path=path,
        old_str="café → x",
        new_str="y",
    )
    assert observation.output == ed.OLD_STR_UNENCODABLE.format(
        chars="'→'", path=path, encoding="latin-1"
    )
    assert editor.read("legacy.py") == "café = 1\nnaïf = 2  # über\n# ±\n".encode("latin-1")


async def test_windows_1252_quotes_are_read_as_cp1252(editor: Editor) -> None:
    original = "say(“hi”)\n".encode("cp1252")
    path = editor.write("quotes.txt", original)
    observation = await editor(command="str_replace", path=path, old_str="“hi”", new_str="“bye”")
    assert ed.ENCODING_KEPT.format(encoding="cp1252") in observation.output
    assert editor.read("quotes.txt") == "say(“bye”)\n".encode("cp1252")


async def test_byte_order_mark_is_kept(editor: Editor) -> None:
    path = editor.write("bom.py", b"\xef\xbb\xbfx = 1\n")
    await editor(command="str_replace", path=path, old_str="x = 1", new_str="x = 2")
    await editor(command="insert", path=path, insert_line=0, new_str="# top")
    assert editor.read("bom.py") == b"\xef\xbb\xbf# top\nx = 2\n"


async def test_not_found_shows_the_closest_lines(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    observation = await expect(
        editor,
        "error_old_str_not_found",
        1,
        command="str_replace",
        path=path,
        old_str='def greet(nme):\n\tmesage = "helo " + name',
        new_str="x",
    )
    assert observation.output.startswith(et.OLD_STR_NOT_FOUND.format(path=path))
    assert et.WHITESPACE_ONLY not in observation.output
    assert editor.read("app.py") == PYTHON


async def test_not_found_says_when_only_whitespace_differs(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    observation = await expect(
        editor,
        "error_old_str_whitespace",
        1,
        command="str_replace",
        path=path,
        old_str='def part(name):\n    message = "bye " + name',
        new_str="x",
    )
    assert et.WHITESPACE_ONLY in observation.output
    assert observation.output.count("most similar") == 1


async def test_not_found_with_nothing_similar(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    observation = await expect(
        editor,
        "error_old_str_nothing_similar",
        1,
        command="str_replace",
        path=path,
        old_str="zzzz qqqq",
        new_str="x",
    )
    assert observation.output == et.OLD_STR_NOT_FOUND.format(path=path) + "\n" + et.NOTHING_SIMILAR


async def test_several_occurrences_are_listed_by_line(editor: Editor) -> None:
    path = editor.write("app.py", PYTHON)
    observation = await expect(
        editor,
        "error_old_str_many",
        1,
        command="str_replace",
        path=path,
        old_str="\tprint(message)",
        new_str="\tpass",
    )
    assert observation.output == ed.OLD_STR_MANY.format(count=2, path=path, lines="6 and 12")
    assert editor.read("app.py") == PYTHON


async def test_multi_line_old_str_occurrences_get_their_real_lines(editor: Editor) -> None:
    block = b"if ready:\n    go()\n"
    data = b"start\n\n" + block + b"x\n" * 5 + block + b"y\n" * 5 + block
    path = editor.write("dup.py", data)
    observation = await expect(
        editor,
        "error_old_str_many_multiline",
        1,
        command="str_replace",
        path=path,
        old_str="if ready:\n    go()",
        new_str="run()",
    )
    assert observation.output == ed.OLD_STR_MANY.format(count=3, path=path, lines="3, 10 and 17")
    assert editor.read("dup.py") == data


async def test_overlapping_occurrences_are_ambiguous(editor: Editor) -> None:
    path = editor.write("a.txt", b"xaaay\n")
    observation = await editor(command="str_replace", path=path, old_str="aa", new_str="b")
    assert observation.output == ed.OLD_STR_MANY.format(count=2, path=path, lines="1 and 1")


async def test_many_occurrences_are_summed_up(editor: Editor) -> None:
    path = editor.write("many.txt", b"pass\n" * 30)
    observation = await expect(
        editor,
        "error_old_str_many_summed",
        1,
        command="str_replace",
        path=path,
        old_str="pass",
        new_str="x",
    )
    lines = ", ".join(str(n) for n in range(1, 21)) + " and 10 more"
    assert observation.output == ed.OLD_STR_MANY.format(count=30, path=path, lines=lines)


@pytest.mark.parametrize(
    ("old", "new", "message", "golden"),
    [
        ("same", "same", ed.SAME_STRINGS, "error_same_strings"),
        ("", "x", ed.OLD_STR_EMPTY, "error_old_str_empty"),
    ],
)
async def test_pointless_replacements_are_refused(
    editor: Editor, old: str, new: str, message: str, golden: str
) -> None:
    path = editor.write("f.txt", b"same\n")
    observation = await expect(
        editor, golden, 1, command="str_replace", path=path, old_str=old, new_str=new
    )
    assert observation.output == message
    assert editor.read("f.txt") == b"same\n"


async def test_str_replace_deep_in_a_50k_line_file(editor: Editor) -> None:
    data = big_file()
    path = editor.write("big.py", data)
    old = "value_40000 = compute(value_39999, 40000)"
    observation = await expect(
        editor,
        "str_replace_big_file",
        command="str_replace",
        path=path,
        old_str=old,
        new_str="value_40000 = 0",
    )
    assert not observation.truncated
    assert editor.read("big.py") == data.replace(old.encode(), b"value_40000 = 0")


async def test_a_huge_new_str_clips_the_snippet(editor: Editor) -> None:
    path = editor.write("f.py", b"a\nb\n")
    new = "".join(f"line_{n} = {n}\n" for n in range(3000))
    observation = await editor(command="str_replace", path=path, old_str="b\n", new_str=new)
    assert observation.exit_code == 0 and observation.truncated
    assert "[Output clipped at 16000 characters, after line" in observation.output
    assert editor.read("f.py") == b"a\n" + new.encode()


# -- insert --------------------------------------------------------------------------------------


async def test_insert_in_the_middle(editor: Editor) -> None:
    path = editor.write("lines.txt", numbered(12))
    await expect(
        editor, "insert", command="insert", path=path, insert_line=6, new_str="new a\nnew b"
    )
    assert (
        editor.read("lines.txt")
        == numbered(6) + b"new a\nnew b\n" + numbered(12)[len(numbered(6)) :]
    )


@pytest.mark.parametrize(
    ("data", "after", "new", "expected"),
    [
        (b"a\nb\n", 0, "top", b"top\na\nb\n"),
        (b"a\nb\n", 2, "end", b"a\nb\nend\n"),
        (b"a\nb", 2, "end", b"a\nb\nend"),
        (b"a\nb", 1, "mid\n", b"a\nmid\nb"),
        (b"", 0, "only", b"only\n"),
        (b"a\r\nb\r\n", 1, "x\ny", b"a\r\nx\r\ny\r\nb\r\n"),
        (b"a\r\nb", 2, "c", b"a\r\nb\r\nc"),
    ],
)
async def test_insert_keeps_the_file_conventions(
    editor: Editor, data: bytes, after: int, new: str, expected: bytes
) -> None:
    path = editor.write("f.txt", data)
    observation = await editor(command="insert", path=path, insert_line=after, new_str=new)
    assert observation.exit_code == 0, observation.output
    assert editor.read("f.txt") == expected


async def test_insert_at_the_end_without_final_newline(editor: Editor) -> None:
    path = editor.write("tail.txt", b"one\ntwo")
    await expect(
        editor, "insert_end_no_newline", command="insert", path=path, insert_line=2, new_str="three"
    )
    assert editor.read("tail.txt") == b"one\ntwo\nthree"


@pytest.mark.parametrize("line", [-1, 4])
async def test_insert_line_out_of_range(editor: Editor, line: int) -> None:
    path = editor.write("f.txt", b"a\nb\nc\n")
    observation = await editor(command="insert", path=path, insert_line=line, new_str="x")
    assert observation.output == ed.INSERT_LINE_RANGE.format(
        line=line, path=path, total="3 lines", last=3
    )
    check_golden(
        f"error_insert_line_{'negative' if line < 0 else 'past_end'}", editor.text(observation)
    )
    assert editor.read("f.txt") == b"a\nb\nc\n"


async def test_insert_of_nothing(editor: Editor) -> None:
    path = editor.write("f.txt", b"a\n")
    observation = await expect(
        editor, "error_insert_empty", 1, command="insert", path=path, insert_line=1, new_str=""
    )
    assert observation.output == ed.INSERT_EMPTY


# -- undo_edit -----------------------------------------------------------------------------------


async def test_undo_walks_back_through_the_edits(editor: Editor) -> None:
    path = editor.write("f.txt", b"v0\n")
    await editor(command="str_replace", path=path, old_str="v0", new_str="v1")
    await editor(command="insert", path=path, insert_line=1, new_str="more")
    await expect(editor, "undo", command="undo_edit", path=path)
    assert editor.read("f.txt") == b"v1\n"
    await expect(editor, "undo_last", command="undo_edit", path=path)
    assert editor.read("f.txt") == b"v0\n"
    observation = await expect(editor, "error_nothing_to_undo", 1, command="undo_edit", path=path)
    assert observation.output == ed.NOTHING_TO_UNDO.format(path=path, limit=ed.HISTORY_LIMIT)


async def test_undo_history_is_bounded(editor: Editor) -> None:
    path = editor.write("f.txt", b"0\n")
    for n in range(1, 13):
        observation = await editor(
            command="str_replace", path=path, old_str=f"{n - 1}\n", new_str=f"{n}\n"
        )
        assert observation.exit_code == 0
    for _ in range(ed.HISTORY_LIMIT):
        assert (await editor(command="undo_edit", path=path)).exit_code == 0
    assert editor.read("f.txt") == b"2\n"
    assert (await editor(command="undo_edit", path=path)).exit_code == 1


async def test_undo_of_create_removes_the_file(editor: Editor) -> None:
    path = editor.path("made.py")
    await editor(command="create", path=path, file_text="x\n")
    observation = await expect(editor, "undo_create", command="undo_edit", path=path)
    assert observation.output == ed.UNDONE_CREATE.format(path=path)
    assert not Path(path).exists()


async def test_undo_says_when_later_changes_are_lost(editor: Editor) -> None:
    path = editor.write("f.txt", b"a\n")
    await editor(command="str_replace", path=path, old_str="a", new_str="b")
    editor.write("f.txt", b"b\nchanged by a shell command\n")
    observation = await expect(editor, "undo_changed", command="undo_edit", path=path)
    assert observation.output.endswith(ed.UNDO_CHANGED)
    assert editor.read("f.txt") == b"a\n"


async def test_undo_history_belongs_to_one_runtime(tmp_path: Path) -> None:
    """One tool instance, as a harness shares it, used by two runs at once: each run undoes only
    its own edits, even of the same file, and a finished run's history goes with its runtime."""
    shared = tmp_path / "shared.txt"
    shared.write_bytes(b"start\n")
    tool = StrReplaceEditor()
    async with LocalRuntime(tmp_path / "a") as first, LocalRuntime(tmp_path / "b") as second:
        a, b = Editor(first, tool), Editor(second, tool)

        async def edit(editor: Editor, n: int) -> None:
            path = editor.write(f"own_{n}.txt", b"0\n")
            for step in range(1, 4):
                await editor(
                    command="str_replace", path=path, old_str=f"{step - 1}\n", new_str=f"{step}\n"
                )
                await asyncio.sleep(0)

        await asyncio.gather(edit(a, 1), edit(b, 2))
        assert (await a(command="undo_edit", path=a.path("own_1.txt"))).exit_code == 0
        assert (await a(command="undo_edit", path=b.path("own_2.txt"))).exit_code == 1
        await a(command="str_replace", path=str(shared), old_str="start", new_str="by a")
        assert (await b(command="undo_edit", path=str(shared))).exit_code == 1
        assert shared.read_bytes() == b"by a\n"
    assert len(tool._states) == 2
    del a, b, first, second
    gc.collect()
    assert len(tool._states) == 0


async def test_a_file_changed_by_other_means_is_read_afresh(editor: Editor) -> None:
    """The editor reuses what it knows of a file only while the file's bytes are the same."""
    path = editor.write("f.txt", numbered(10))
    await editor(command="view", path=path, view_range=[5, 6])
    editor.write("f.txt", numbered(10, "row"))
    observation = await editor(command="view", path=path, view_range=[5, 6])
    assert observation.output.endswith("     5\trow 5\n     6\trow 6")
    await editor(command="str_replace", path=path, old_str="row 5\n", new_str="row five\n")
    editor.write("f.txt", b"new first line\n" + editor.read("f.txt"))
    observation = await editor(command="view", path=path, view_range=[6, 6])
    assert observation.output.endswith("     6\trow five")


@pytest.mark.parametrize("begin", [b"", et.UTF8_BOM])
def test_line_index_agrees_with_counting(begin: bytes) -> None:
    """The chunked line index, across chunk boundaries, against plain splitting."""
    lengths = [0, 1, 4095, 4096, 4097, 3, 9000, 0, 17, 2]
    data = begin + b"".join(b"x" * n + b"\n" for n in lengths) + b"tail"
    plain = TextFile(data, "utf-8", len(begin))
    indexed = TextFile(data, "utf-8", len(begin))
    assert indexed.line_count == len(lengths) + 1
    starts = [len(begin)]
    for n in lengths:
        starts.append(starts[-1] + n + 1)
    for line, start in enumerate(starts, 1):
        assert indexed.line_start(line) == start
    assert indexed.line_start(len(starts) + 1) == -1 and indexed.line_start(0) == -1
    for offset in range(len(begin), len(data), 97):
        expected = data.count(b"\n", len(begin), offset) + 1
        assert plain.line_of(offset) == expected == indexed.line_of(offset)


# -- the tool as a model sees it -----------------------------------------------------------------


def test_registered_and_described() -> None:
    tool = get_tool("str_replace_editor")
    assert isinstance(tool, StrReplaceEditor)
    assert TOOLS["str_replace_editor"] is StrReplaceEditor
    spec = tool.spec()
    assert list(spec.parameters["properties"]) == [
        "command",
        "path",
        "file_text",
        "old_str",
        "new_str",
        "insert_line",
        "view_range",
    ]
    assert spec.parameters["required"] == ["command", "path"]


async def test_a_text_format_call_reaches_the_editor(editor: Editor) -> None:
    path = editor.write("lines.txt", numbered(5))
    text = (
        "<function=str_replace_editor><parameter=command>view</parameter>"
        f"<parameter=path>{path}</parameter><parameter=view_range>[2, 3]</parameter></function>"
    )
    action = get_format("xml").parse(Completion(text=text), [editor.tool])
    observation = await editor.tool.execute(action.args, ToolContext(runtime=editor.runtime))
    assert observation.output.endswith("     2\tline 2\n     3\tline 3")


def test_every_message_is_in_a_golden_file() -> None:
    """Each template's fixed text must appear in some golden file: no message goes unreviewed."""
    goldens = "\n".join(p.read_text(encoding="utf-8") for p in GOLDEN.glob("*.txt"))
    templates = {
        f"{module.__name__}.{name}": value
        for module in (ed, et)
        for name, value in vars(module).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }
    assert len(templates) > 40
    missing = []
    for name, template in templates.items():
        pieces = [p for p in re.split(r"\{[a-z_]*\}", template) if p.strip()]
        if not all(piece in goldens for piece in pieces):
            missing.append(name)
    assert not missing, f"messages without a golden case: {missing}"


# -- in a Docker sandbox -------------------------------------------------------------------------


SCRIPT: list[dict[str, Any]] = [
    {"command": "create", "path": "{w}/pkg/app.py", "file_text": PYTHON.decode()},
    {"command": "view", "path": "{w}/pkg/app.py", "view_range": [4, 7]},
    {
        "command": "str_replace",
        "path": "{w}/pkg/app.py",
        "old_str": "\tprint(message)",
        "new_str": "x",
    },
    {
        "command": "str_replace",
        "path": "{w}/pkg/app.py",
        "old_str": "def part(name):\n\tmessage",
        "new_str": "def part(who):\n\tmessage",
    },
    {"command": "insert", "path": "{w}/pkg/app.py", "insert_line": 1, "new_str": "import sys"},
    {"command": "str_replace", "path": "{w}/dos.txt", "old_str": "b\nc", "new_str": "B\nC"},
    {"command": "view", "path": "{w}"},
    {"command": "undo_edit", "path": "{w}/pkg/app.py"},
    {"command": "view", "path": "{w}/pkg/app.py"},
    {"command": "create", "path": "{w}/pkg/app.py", "file_text": "again"},
    {"command": "view", "path": "{w}/missing.py"},
]


async def run_script(runtime: Runtime) -> tuple[list[str], bytes, bytes]:
    tool = StrReplaceEditor()
    ctx = ToolContext(runtime=runtime)
    await runtime.write_file(f"{runtime.workdir}/dos.txt", b"a\r\nb\r\nc\r\n")
    outputs = []
    for step in SCRIPT:
        arguments = {k: v.format(w=runtime.workdir) if k == "path" else v for k, v in step.items()}
        observation = await tool.execute(EditorArguments(**arguments), ctx)
        outputs.append(
            f"[{observation.exit_code}] " + observation.output.replace(runtime.workdir, "/repo")
        )
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
    assert expected[2] == b"a\r\nB\r\nC\r\n"
    check_golden("docker_script", "\n\n".join(expected[0]))
