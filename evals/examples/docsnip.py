"""Example: a Markdown snippet extractor that ends a four-backtick block at an inner ``` line.

Its reference patch also edits ``README.md`` and a docstring, both holding ``` fences, so the
gold run carries fence lines (and a ```` line) through every call format: the case that once made
the ``bash_block`` format refuse to write the gold action.
"""

from agentkit.evals.examples.spec import ExampleSpec

_README_BASE = """# docsnip

Extract the fenced code blocks of a Markdown file, and run its Python blocks as a test, so that
the examples in a README keep working.

```python
from docsnip import extract

blocks = extract(open("README.md").read(), "python")
```

Run every Python block of a file, in order, in one namespace:

```python
from docsnip import run_snippets

namespace = run_snippets(open("README.md").read())
```

Blocks in other languages are extracted but never run:

```bash
pip install docsnip
```
"""

_README_FIXED = (
    _README_BASE
    + """
## Blocks that show blocks

A block fenced with more backticks ends only at a fence of at least as many backticks, so it can
show a shorter block, as Markdown allows. Its content is one snippet in its own language:

````markdown
```python
print("shown, not run")
```
````
"""
)

_BLOCKS_BASE = '''"""Fenced code blocks of Markdown text."""

from __future__ import annotations

from dataclasses import dataclass

FENCE = "```"


@dataclass(frozen=True)
class Snippet:
    language: str
    """The first word after the opening fence, lower-cased; empty when there is none."""
    code: str
    line: int
    """1-based line of the opening fence."""


def _opening(line: str) -> tuple[int, str] | None:
    """``(backticks, language)`` when ``line`` opens a block, else ``None``."""
    stripped = line.strip()
    if not stripped.startswith(FENCE):
        return None
    width = len(stripped) - len(stripped.lstrip("`"))
    info = stripped[width:].strip()
    return width, info.split()[0].lower() if info else ""


def _closes(line: str, width: int) -> bool:
    return line.strip() == FENCE


def extract(markdown: str, language: str | None = None) -> list[Snippet]:
    """The fenced code blocks of ``markdown`` in order; only those in ``language`` when given.

    For a README holding::

        ```python
        print("hello")
        ```

    ``extract(text, "python")`` returns one snippet whose code is ``print("hello")`` and a newline.
    """
    snippets: list[Snippet] = []
    start = 0
    width = 0
    lang = ""
    body: list[str] | None = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        if body is None:
            opening = _opening(line)
            if opening is not None:
                width, lang = opening
                start, body = number, []
        elif _closes(line, width):
            snippets.append(Snippet(lang, "".join(f"{text}\\n" for text in body), start))
            body = None
        else:
            body.append(line)
    wanted = language.lower() if language is not None else None
    return [s for s in snippets if wanted is None or s.language == wanted]
'''

_BLOCKS_FIXED = _BLOCKS_BASE.replace(
    """def _closes(line: str, width: int) -> bool:
    return line.strip() == FENCE
""",
    '''def _closes(line: str, width: int) -> bool:
    """A closing fence is backticks only, at least as many as the opening fence's."""
    stripped = line.strip()
    return len(stripped) >= width and stripped == "`" * len(stripped)
''',
).replace(
    '''    ``extract(text, "python")`` returns one snippet whose code is ``print("hello")`` and a newline.
    """''',
    '''    ``extract(text, "python")`` returns one snippet whose code is ``print("hello")`` and a newline.
    A block opened with more backticks holds shorter fences as its own lines::

        ````markdown
        ```python
        print("hello")
        ```
        ````
    """''',
)

_RUNNER = '''"""Run the Python blocks of a Markdown text, in order, in one namespace."""

from __future__ import annotations

from docsnip.blocks import extract


def run_snippets(markdown: str) -> dict[str, object]:
    """Execute each ``python`` block; return the namespace they shared."""
    namespace: dict[str, object] = {"__name__": "__docsnip__"}
    for snippet in extract(markdown, "python"):
        code = compile(snippet.code, f"<snippet at line {snippet.line}>", "exec")
        exec(code, namespace)
    return namespace
'''

_INIT = '''"""Extract and run the code blocks of Markdown files."""

from docsnip.blocks import Snippet, extract
from docsnip.runner import run_snippets

__all__ = ["Snippet", "extract", "run_snippets"]
'''

_TESTS_BASE = '''from docsnip import Snippet, extract, run_snippets

README = """# Title

```python
x = 1
```

Some text.

```bash
echo hi
```

```Python title="more.py"
y = x + 1
```
"""


def test_extract_every_block():
    assert [s.language for s in extract(README)] == ["python", "bash", "python"]


def test_extract_by_language():
    assert extract(README, "python") == [
        Snippet("python", "x = 1\\n", 3),
        Snippet("python", "y = x + 1\\n", 13),
    ]


def test_unclosed_block_is_not_a_snippet():
    assert extract("```python\\nx = 1\\n") == []


def test_run_snippets_shares_one_namespace():
    assert run_snippets(README)["y"] == 2
'''

_LONG_FENCE_TESTS = '''from docsnip import Snippet, extract, run_snippets

SHOWN = """Write snippets like this:

````markdown
```python
raise SystemExit("shown, not run")
```
````

```python
value = 42
```
"""


def test_longer_fence_holds_shorter_fences():
    assert extract(SHOWN)[0] == Snippet(
        "markdown", '```python\\nraise SystemExit("shown, not run")\\n```\\n', 3
    )


def test_blocks_after_a_longer_block_are_found():
    assert extract(SHOWN, "python") == [Snippet("python", "value = 42\\n", 9)]
    assert run_snippets(SHOWN)["value"] == 42


def test_closing_fence_may_be_longer():
    assert extract("```python\\nx = 1\\n`````\\n\\ntext\\n") == [Snippet("python", "x = 1\\n", 1)]
'''

EXAMPLE = ExampleSpec(
    name="docsnip",
    number=17,
    version="0.3",
    problem_statement="""\
A code block fenced with four backticks is cut short

Markdown lets a block be fenced with more than three backticks, so that it can show a
three-backtick block inside it; our own docs do this to show how a snippet is written.
`extract` ends such a block at the first inner three-backtick line and then takes the real
closing fence for the start of a new block, so every snippet after it is lost and
`run_snippets` silently skips the rest of the file. A closing fence longer than the opening one
(five backticks closing a three-backtick block) is not recognised either: the block swallows the
rest of the document.
""",
    base_files={
        "pyproject.toml": '[project]\nname = "docsnip"\nversion = "0.3.0"\n',
        "README.md": _README_BASE,
        "docsnip/__init__.py": _INIT,
        "docsnip/blocks.py": _BLOCKS_BASE,
        "docsnip/runner.py": _RUNNER,
        "tests/test_blocks.py": _TESTS_BASE,
    },
    fix_files={"README.md": _README_FIXED, "docsnip/blocks.py": _BLOCKS_FIXED},
    test_files={
        "tests/test_blocks.py": _TESTS_BASE
        + "\n\ndef test_indented_fences():\n"
        + '    assert extract("  ```sh\\n  ls\\n  ```\\n") == [Snippet("sh", "  ls\\n", 1)]\n',
        "tests/test_long_fences.py": _LONG_FENCE_TESTS,
    },
    fail_to_pass=[
        "tests/test_long_fences.py::test_longer_fence_holds_shorter_fences",
        "tests/test_long_fences.py::test_blocks_after_a_longer_block_are_found",
        "tests/test_long_fences.py::test_closing_fence_may_be_longer",
    ],
    pass_to_pass=[
        "tests/test_blocks.py::test_extract_every_block",
        "tests/test_blocks.py::test_extract_by_language",
        "tests/test_blocks.py::test_unclosed_block_is_not_a_snippet",
        "tests/test_blocks.py::test_run_snippets_shares_one_namespace",
        "tests/test_blocks.py::test_indented_fences",
    ],
)
