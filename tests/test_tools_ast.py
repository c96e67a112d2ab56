"""AST-aware code tools: the index library on a sample per language, and the four tools through
real runtimes (a host work dir with a real git repository, and a Docker sandbox without Python).

Outputs a model sees are compared with golden files under tests/golden/ast/ (regenerate them with
``AGENTKIT_UPDATE_GOLDEN=1`` and review the diff); the facts that matter most are also asserted
directly, so a wrong golden file cannot hide them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from golden_files import check_golden_file

from agentkit.runtime import DockerRuntime, LocalRuntime
from agentkit.runtime.base import Runtime
from agentkit.tools import ToolCallError, ToolContext, get_tool
from agentkit.tools.arguments import validate_arguments
from agentkit.tools.ast_index import ParsedSource, definitions, parse, references, skeleton
from agentkit.tools.ast_languages import (
    LANGUAGES,
    UnsupportedLanguage,
    detect_language,
    supported_languages,
)
from agentkit.tools.ast_messages import BINARY_FILE, CLIP_CHARS, IS_A_DIRECTORY
from agentkit.tools.ast_tools import (
    MAX_DEFINITIONS,
    MAX_LIST_FILES,
    MAX_REFERENCES,
    NAME_REASON,
    FileSkeletonTool,
    FindDefinitionTool,
    FindReferencesTool,
    ListSymbolsTool,
)
from agentkit.tools.errors import INVALID_ARGUMENT_VALUE
from agentkit.types import Observation

GOLDEN = Path(__file__).parent / "golden" / "ast"

SAMPLE_LANGUAGES = ["python", "javascript", "typescript", "go", "java", "rust"]
SEARCHED_NAME = {
    "python": "radius",
    "javascript": "Greeter",
    "typescript": "area",
    "go": "Area",
    "java": "radius",
    "rust": "area",
}
REPO_FILES = {
    "src/shapes.py": "python",
    "src/greeter.js": "javascript",
    "web/shapes.ts": "typescript",
    "go/shapes.go": "go",
    "java/Circle.java": "java",
    "rust/src/lib.rs": "rust",
}


def sample(language: str) -> bytes:
    return (GOLDEN / f"{language}.source").read_bytes()


def check_golden(name: str, text: str) -> None:
    check_golden_file(GOLDEN / name, text)


def index_text(parsed: ParsedSource, name: str) -> str:
    lines = ["definitions:"]
    for item in parsed.definitions():
        doc = f" -- {item.doc}" if item.doc else ""
        container = f" in {item.container}" if item.container else ""
        lines.append(
            f"  {item.start_line}-{item.end_line} {item.kind} {item.qualified_name}{container}"
            f" (depth {item.depth}): {item.signature}{doc}"
        )
    lines.append(f"references to {name}:")
    for ref in parsed.references(name):
        role = "definition" if ref.is_definition else "use"
        lines.append(f"  {ref.line}:{ref.column} {role} in {ref.scope}: {ref.text}")
    return "\n".join(lines) + "\n"


# -- the library ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", SAMPLE_LANGUAGES)
def test_skeleton_and_index_match_golden(language: str) -> None:
    parsed = parse(sample(language), language)
    assert not parsed.has_errors
    check_golden(f"{language}.skeleton.txt", parsed.skeleton())
    check_golden(f"{language}.index.txt", index_text(parsed, SEARCHED_NAME[language]))


def test_one_shot_functions_agree_with_a_parse() -> None:
    source = sample("python")
    parsed = parse(source, "python")
    assert definitions(source, "python") == parsed.definitions()
    assert references(source, "python", "radius") == parsed.references("radius")
    assert skeleton(source, "python") == parsed.skeleton()


def by_name(language: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for item in definitions(sample(language), language):
        found.setdefault(item.qualified_name, []).append(item)
    return found


def test_python_symbols() -> None:
    symbols = by_name("python")
    area = symbols["Circle.area"][0]
    assert (area.kind, area.start_line, area.end_line) == ("method", 29, 33)  # decorator included
    assert area.signature == "def area(self) -> float"
    assert area.doc == "The area, in square metres."
    assert symbols["Circle"][0].doc == "A circle."
    assert symbols["Circle.scaled"][0].signature == (
        "def scaled(self, factor: float = DEFAULT_SCALE) -> Circle"
    )
    grow = symbols["Circle.scaled.grow"][0]
    assert (grow.kind, grow.container, grow.depth) == ("function", "Circle.scaled", 2)
    assert symbols["Circle.sides"][0].kind == "field"
    assert symbols["DEFAULT_SCALE"][0].kind == "variable"
    assert "label" not in symbols and "value" not in symbols  # locals and nested-class fields


def test_symbols_of_the_other_languages() -> None:
    go = by_name("go")
    assert [(s.kind, s.container, s.depth) for s in go["Circle.Area"]] == [("method", "Circle", 0)]
    assert go["Shape"][0].kind == "interface" and go["Circle"][0].kind == "struct"
    assert go["Shape.Area"][0].doc == "Area returns the area."
    assert {"defaultName", "count", "MaxSides"} <= set(go)
    rust = by_name("rust")
    assert [s.signature for s in rust["Circle.area"]] == ["fn area(&self) -> f64"]
    assert rust["Shape.area"][0].kind == "method" and rust["describe"][0].kind == "function"
    assert rust["tests.circle_area"][0].kind == "function"  # a module is not a class
    circle = rust["Circle"]
    assert [s.kind for s in circle] == ["struct", "impl", "impl", "impl"]
    assert (circle[0].start_line, circle[0].doc) == (19, "A round shape.")  # from #[derive]
    java = by_name("java")
    assert java["Circle.Circle"][0].kind == "constructor"
    assert java["Circle.Builder.build"][0].depth == 2
    ts = by_name("typescript")
    assert ts["Drawable.draw"][0].kind == "method" and ts["Color"][0].kind == "enum"
    assert ts["Geometry.distance"][0].kind == "function"
    js = by_name("javascript")
    assert js["shout"][0].kind == "function" and js["GREETING"][0].kind == "variable"
    assert js["GREETING"][0].doc == "Default greeting word."


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.py", "python"),
        ("stubs.pyi", "python"),
        ("App.JSX", "javascript"),
        ("x.mjs", "javascript"),
        ("x.ts", "typescript"),
        ("x.tsx", "tsx"),
        ("main.go", "go"),
        ("Main.java", "java"),
        ("lib.rs", "rust"),
        ("dist/app.min.js", None),
        ("README.md", None),
        ("Makefile", None),
    ],
)
def test_detect_language_by_name(path: str, expected: str | None) -> None:
    assert detect_language(path) == expected


def test_detect_language_by_shebang() -> None:
    assert detect_language("bin/tool", b"#!/usr/bin/env python3\nprint(1)\n") == "python"
    assert detect_language("bin/tool", b"#!/usr/bin/node\n") == "javascript"
    assert detect_language("bin/tool", b"#!/bin/sh\n") is None
    assert detect_language("bin/tool") is None


def test_every_language_parses_and_all_six_are_there() -> None:
    assert set(SAMPLE_LANGUAGES) | {"tsx"} <= set(supported_languages())
    for language in LANGUAGES:
        assert parse(b"", language).definitions() == []


def test_an_unknown_language_name_is_refused() -> None:
    with pytest.raises(UnsupportedLanguage, match="no AST support for the language 'cobol'"):
        parse(b"x", "cobol")


def test_syntax_errors_are_tolerated() -> None:
    parsed = parse(b"def broken(:\n    pass\n\nclass Fine:\n    def ok(self): ...\n", "python")
    assert parsed.has_errors
    assert [s.qualified_name for s in parsed.definitions()][-2:] == ["Fine", "Fine.ok"]


def test_a_file_that_defines_nothing_has_an_empty_skeleton() -> None:
    assert skeleton(b"print('hello')\n", "python") == ""
    assert skeleton(b"", "go") == ""


def test_references_skip_comments_and_strings_and_count_columns_in_characters() -> None:
    source = "x = 1  # x here is a comment\nlabel = 'é x'; y = x\n".encode()
    found = references(source, "python", "x")
    assert [(r.line, r.column, r.is_definition) for r in found] == [(1, 1, True), (2, 20, False)]
    assert found[1].text == "label = 'é x'; y = x"


def test_enclosing_symbol_of_a_line() -> None:
    parsed = parse(sample("python"), "python")
    assert parsed.enclosing(33).qualified_name == "Circle.area"  # type: ignore[union-attr]
    assert parsed.enclosing(40).qualified_name == "Circle.scaled.grow"  # type: ignore[union-attr]
    assert parsed.enclosing(5) is None
    assert parsed.enclosing(10_000) is None


def test_crlf_sources_give_clean_lines() -> None:
    parsed = parse(b"class A:\r\n    def g(self):\r\n        return 1\r\n", "python")
    assert parsed.skeleton() == "1 | class A:\n2 |     def g(self): ...\n"
    assert parsed.definitions()[1].end_line == 3


def test_tsx_components() -> None:
    source = b"export const App = () => {\n  return <div>{x}</div>;\n};\nfunction Page() {\n  return <App/>;\n}\n"
    symbols = definitions(source, "tsx")
    assert [(s.name, s.kind, s.start_line, s.end_line) for s in symbols] == [
        ("App", "function", 1, 3),
        ("Page", "function", 4, 6),
    ]
    assert [r.line for r in references(source, "tsx", "App")] == [1, 5]


def test_grammars_load_with_the_network_unreachable() -> None:
    """The grammars ship compiled inside their packages: nothing is fetched on first use."""
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode
    ):
        pytest.skip("cannot make a network namespace here (needs root and unshare)")
    code = (
        "from agentkit.tools.ast_index import definitions\n"
        "from agentkit.tools.ast_languages import LANGUAGES\n"
        "for name in LANGUAGES:\n"
        "    definitions(b'', name)\n"
        "print(len(definitions(b'def f(): pass', 'python')))\n"
    )
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


# -- the tools through a local runtime ------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def build_repo(root: Path) -> Path:
    """A git repository with one sample per language, plus files every tool must skip."""
    write(root, {name: sample(language) for name, language in REPO_FILES.items()})
    write(
        root,
        {
            "src/main.py": (
                "from shapes import Circle, describe\n\n\ndef main() -> None:\n"
                "    circle = Circle(1.0)\n    print(describe(circle), circle.radius)\n"
            ),
            "src/blob.py": b"\x00\x01binary\x00 def register(): pass\n",
            "notes.txt": "register everything\n",
            ".gitignore": "build/\n",
            "build/generated.py": "def register():\n    pass\n",
            "node_modules/lib/index.js": "export function register() {}\n",
            ".hidden/secret.py": "def register():\n    pass\n",
        },
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    write(root, {"src/fresh.py": "def fresh():\n    return register\n"})  # untracked
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return build_repo(tmp_path / "repo")


@pytest.fixture
async def runtime(repo: Path, tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rt = LocalRuntime(repo, env={"TMPDIR": str(scratch)})
    try:
        yield rt
    finally:
        await rt.close()


async def call(rt: Runtime, tool_name: str, **arguments: object) -> Observation:
    tool = get_tool(tool_name)
    args = tool.Arguments.model_validate(arguments)
    return await tool.execute(args, ToolContext(runtime=rt, command_timeout=60))


def normalized(observation: Observation, rt: Runtime) -> str:
    return observation.output.replace(rt.workdir, "<workdir>")


def test_the_tools_are_registered_with_specs() -> None:
    for name, cls in [
        ("file_skeleton", FileSkeletonTool),
        ("find_definition", FindDefinitionTool),
        ("find_references", FindReferencesTool),
        ("list_symbols", ListSymbolsTool),
    ]:
        tool = get_tool(name)
        assert isinstance(tool, cls)
        spec = tool.spec()
        assert spec.name == name and len(spec.description) > 40
    assert get_tool("file_skeleton").spec().parameters["required"] == ["path"]
    assert get_tool("find_definition").spec().parameters["required"] == ["symbol"]
    assert "required" not in get_tool("list_symbols").spec().parameters


def test_a_symbol_that_is_not_a_name_is_refused_before_anything_runs() -> None:
    tool = get_tool("find_definition")
    with pytest.raises(ToolCallError) as caught:
        validate_arguments(tool, {"symbol": "greet(name)"}, lambda t: "<usage>")
    assert caught.value.message == INVALID_ARGUMENT_VALUE.format(
        argument="symbol",
        tool="find_definition",
        value='"greet(name)"',
        reason=NAME_REASON,
    )
    parsed = validate_arguments(tool, {"symbol": " Circle::new "}, lambda t: "")
    assert parsed.symbol == "Circle.new"  # type: ignore[attr-defined]


async def test_file_skeleton(runtime: LocalRuntime) -> None:
    observation = await call(runtime, "file_skeleton", path="src/shapes.py")
    assert observation.exit_code == 0 and not observation.truncated
    assert observation.output.startswith("src/shapes.py (49 lines, python)")
    assert "30 |     def area(self) -> float:\n" in observation.output
    check_golden("tool_file_skeleton.txt", observation.output)
    absolute = await call(runtime, "file_skeleton", path=f"{runtime.workdir}/go/shapes.go")
    assert absolute.output.startswith("go/shapes.go (42 lines, go)")


async def test_file_skeleton_refusals(runtime: LocalRuntime, repo: Path) -> None:
    write(repo, {"broken.py": "def ok():\n    pass\n\ndef broken(:\n", "empty.py": "x.y = 1\n"})
    cases = {
        "missing": "src/nope.py",
        "directory": "src",
        "unknown_language": "notes.txt",
        "binary": "src/blob.py",
        "nothing_defined": "empty.py",
        "syntax_errors": "broken.py",
    }
    outputs = {}
    for case, path in cases.items():
        observation = await call(runtime, "file_skeleton", path=path)
        outputs[case] = normalized(observation, runtime)
        assert observation.exit_code == (0 if case in ("nothing_defined", "syntax_errors") else 1)
    assert outputs["directory"] == IS_A_DIRECTORY.format(path="src")
    assert outputs["binary"] == BINARY_FILE.format(path="src/blob.py")
    assert "def broken(: ..." in outputs["syntax_errors"]
    check_golden(
        "tool_file_skeleton_messages.txt",
        "".join(f"## {case}\n{text.rstrip()}\n\n" for case, text in outputs.items()),
    )


async def test_find_definition(runtime: LocalRuntime) -> None:
    area = await call(runtime, "find_definition", symbol="area")
    assert area.exit_code == 0
    located = [line.split(" ", 1)[0] for line in area.output.splitlines() if ":" in line[:40]]
    assert "src/shapes.py:29-33" in located and "web/shapes.ts:23-23" in located
    assert "Circle.Area" not in area.output  # names are case-sensitive
    check_golden("tool_find_definition_area.txt", area.output)
    qualified = await call(runtime, "find_definition", symbol="Circle::new")
    assert qualified.output.startswith("1 definition of 'Circle.new':\n\nrust/src/lib.rs:43-45 ")
    check_golden("tool_find_definition_qualified.txt", qualified.output)


async def test_find_definition_skips_ignored_hidden_vendored_and_binary_files(
    runtime: LocalRuntime,
) -> None:
    observation = await call(runtime, "find_definition", symbol="register")
    assert observation.output.startswith("1 definition of 'register':\n\nsrc/shapes.py:11-14 ")
    fresh = await call(runtime, "find_definition", symbol="fresh")  # untracked, not ignored
    assert "src/fresh.py:1-2 function fresh" in fresh.output


async def test_find_definition_scopes_and_refusals(runtime: LocalRuntime, repo: Path) -> None:
    in_dir = await call(runtime, "find_definition", symbol="area", path="rust")
    assert in_dir.output.startswith("2 definitions of 'area':")
    in_file = await call(runtime, "find_definition", symbol="Circle", path="java/Circle.java")
    assert "java/Circle.java:18-44 class Circle" in in_file.output
    outputs = {
        "not_defined": await call(runtime, "find_definition", symbol="Sprintf"),
        "qualified_elsewhere": await call(runtime, "find_definition", symbol="Square.area"),
        "absent": await call(runtime, "find_definition", symbol="nowhere_at_all"),
        "missing_path": await call(runtime, "find_definition", symbol="area", path="nope/"),
        "unknown_language_file": await call(
            runtime, "find_definition", symbol="register", path="notes.txt"
        ),
    }
    crowd = "".join(f"class C{i}:\n    def handler(self):\n        pass\n" for i in range(20))
    write(repo, {"crowd/a.py": crowd, "crowd/b.py": crowd})
    outputs["too_many"] = await call(runtime, "find_definition", symbol="handler")
    assert outputs["too_many"].exit_code == 1
    assert f"more than the {MAX_DEFINITIONS} shown" in outputs["too_many"].output
    assert "crowd/a.py (20), crowd/b.py (20)" in outputs["too_many"].output
    narrowed = await call(runtime, "find_definition", symbol="C3.handler")
    assert narrowed.output.count("method C3.handler") == 2
    assert outputs["missing_path"].exit_code == 1 and outputs["not_defined"].exit_code == 0
    check_golden(
        "tool_find_definition_messages.txt",
        "".join(f"## {k}\n{normalized(v, runtime).rstrip()}\n\n" for k, v in outputs.items()),
    )


async def test_find_references(runtime: LocalRuntime, repo: Path) -> None:
    observation = await call(runtime, "find_references", symbol="Circle.radius", path="src")
    assert observation.exit_code == 0
    assert "src/main.py\n  6:36  print(describe(circle), circle.radius)  [in main]" in (
        observation.output
    )
    check_golden("tool_find_references.txt", observation.output)
    everywhere = await call(runtime, "find_references", symbol="describe")
    files = [line for line in everywhere.output.splitlines() if line and line[0] != " "]
    assert files[1:] == ["rust/src/lib.rs", "src/main.py", "src/shapes.py"]  # Go says Describe
    none = await call(runtime, "find_references", symbol="metres")  # only in comments, strings
    write(repo, {"many/uses.py": "".join(f"v{i} = describe\n" for i in range(MAX_REFERENCES))})
    too_many = await call(runtime, "find_references", symbol="describe")
    assert too_many.exit_code == 1
    assert f"more than the {MAX_REFERENCES} shown" in too_many.output
    check_golden(
        "tool_find_references_messages.txt",
        f"## none\n{none.output.rstrip()}\n\n## too_many\n{too_many.output.rstrip()}\n",
    )


async def test_list_symbols(runtime: LocalRuntime) -> None:
    observation = await call(runtime, "list_symbols")
    assert observation.exit_code == 0
    files = [line for line in observation.output.splitlines() if line and line[0] != " "]
    assert files == [
        "go/shapes.go",
        "java/Circle.java",
        "rust/src/lib.rs",
        "src/fresh.py",
        "src/greeter.js",
        "src/main.py",
        "src/shapes.py",
        "web/shapes.ts",
    ]
    assert "blob.py" not in observation.output  # a binary file is no source file
    assert "     17  class Circle (members: sides, __init__, area, scaled, Meta)" in (
        observation.output
    )
    check_golden("tool_list_symbols.txt", observation.output)
    one_file = await call(runtime, "list_symbols", path="web/shapes.ts")
    assert one_file.output.startswith("web/shapes.ts\n      2  interface Drawable")


async def test_list_symbols_refusals(runtime: LocalRuntime, repo: Path) -> None:
    write(repo, {"docs/readme.md": "# nothing\n"})
    write(
        repo, {f"big/p{i // 50}/m{i}.py": f"def f{i}(): pass\n" for i in range(MAX_LIST_FILES + 1)}
    )
    outputs = {
        "no_sources": await call(runtime, "list_symbols", path="docs"),
        "missing": await call(runtime, "list_symbols", path="nope"),
        "too_many": await call(runtime, "list_symbols", path="big"),
    }
    assert outputs["too_many"].exit_code == 1
    assert "big/p0/ (50), big/p1/ (50), big/p2/ (50), big/p3/ (1)" in outputs["too_many"].output
    assert (await call(runtime, "list_symbols", path="big/p3")).output.startswith("big/p3/m150.py")
    check_golden(
        "tool_list_symbols_messages.txt",
        "".join(f"## {k}\n{normalized(v, runtime).rstrip()}\n\n" for k, v in outputs.items()),
    )


async def test_a_directory_that_is_not_a_repository_is_listed_with_find(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(
        plain,
        {
            "app.py": "def run():\n    pass\n",
            "pkg/util.go": "package pkg\n\nfunc Help() {}\n",
            ".cache/hidden.py": "def secret():\n    pass\n",
            "node_modules/m/index.js": "function vendored() {}\n",
        },
    )
    rt = LocalRuntime(plain)
    try:
        observation = await call(rt, "list_symbols")
        assert observation.output == (
            "app.py\n      1  function run\npkg/util.go\n      3  function Help\n"
        )
    finally:
        await rt.close()


async def test_long_output_is_clipped_with_a_note(runtime: LocalRuntime, repo: Path) -> None:
    write(repo, {"huge.py": "".join(f"def function_{i}(a, b):\n    pass\n" for i in range(2000))})
    observation = await call(runtime, "file_skeleton", path="huge.py")
    assert observation.truncated and observation.exit_code == 0
    body, note = observation.output.rstrip("\n").rsplit("\n", 1)
    assert len(body) <= CLIP_CHARS
    assert note.startswith("[... ") and note.endswith(
        "more characters not shown. View a line range of the file, or use find_definition "
        "for one symbol. ...]"
    )
    assert body.endswith("pass") is False and body.splitlines()[-1].endswith(": ...")


async def test_a_long_definition_is_cut_with_the_range_to_view(
    runtime: LocalRuntime, repo: Path
) -> None:
    write(repo, {"long.py": "def long_one():\n" + "    x = 1\n" * 59})
    observation = await call(runtime, "find_definition", symbol="long_one")
    lines = observation.output.splitlines()
    assert lines[2] == "long.py:1-60 function long_one"
    assert lines[3:5] == [" 1 | def long_one():", " 2 |     x = 1"]
    assert lines[-2:] == ["40 |     x = 1", "   | ... 20 more lines: view long.py lines 1-60"]


async def test_the_tools_leave_no_trace(runtime: LocalRuntime, tmp_path: Path) -> None:
    """The agent's shell keeps its directory, the repository stays clean, scratch files go."""
    await runtime.run("cd src && set -euo pipefail")  # options that would stop a naive script
    for name, args in [
        ("find_definition", {"symbol": "area"}),
        ("find_references", {"symbol": "area"}),
        ("find_definition", {"symbol": "nowhere_at_all"}),  # grep finds nothing: exit 1
        ("list_symbols", {}),
    ]:
        assert (await call(runtime, name, **args)).exit_code == 0
    assert (await runtime.run("pwd")).output.strip() == f"{runtime.workdir}/src"
    status = await runtime.run("git status --porcelain", stateless=True)
    assert status.output.strip() == "?? src/fresh.py"
    assert list((tmp_path / "scratch").iterdir()) == []


# -- the tools in a Docker sandbox ---------------------------------------------------------------


@pytest.mark.docker
async def test_the_tools_work_in_a_sandbox_without_python(
    docker_image: str, tmp_path: Path
) -> None:
    repo = build_repo(tmp_path / "repo")
    local = LocalRuntime(repo)
    calls: list[tuple[str, dict[str, object]]] = [
        ("file_skeleton", {"path": "rust/src/lib.rs"}),
        ("file_skeleton", {"path": "src"}),
        ("find_definition", {"symbol": "area"}),
        ("find_references", {"symbol": "describe"}),
        ("list_symbols", {}),
    ]
    try:
        expected = [normalized(await call(local, n, **a), local) for n, a in calls]
    finally:
        await local.close()
    async with DockerRuntime(docker_image, workdir="/testbed") as sandbox:
        await sandbox.upload(repo, "/testbed")
        removed = await sandbox.run("rm -f /usr/bin/python3* /usr/bin/python; command -v python3")
        assert removed.exit_code == 1, removed.output  # no Python left in the sandbox
        got = [normalized(await call(sandbox, n, **a), sandbox) for n, a in calls]
    assert got == expected
    assert "pub fn describe<S: Shape>(shape: &S) -> String { ... }" in got[0]
