"""Every ```python block in README.md and docs/*.md runs, so the documentation cannot drift from
the API unnoticed.

Each block runs alone in a fresh interpreter (no state leaks from one example into the next, the
way a reader would paste it) with a temporary directory as its working directory (an example that
writes files cannot litter the repository). A failure names the document and the block's number
and line, and shows the block's output. Shell blocks (```bash) are not run: they install things or
need Docker.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT_S = 120

# An opening fence (any indentation, three or more backticks or tildes, an info string) and the
# matching closing fence: the same character, at least as long.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class Block:
    document: Path
    number: int
    """1-based, counting only the python blocks of the document."""
    line: int
    """1-based line of the opening fence."""
    code: str

    @property
    def label(self) -> str:
        return f"{self.document.relative_to(ROOT)} python block {self.number}"


def python_blocks(document: Path) -> list[Block]:
    """The fenced blocks whose info string starts with ``python`` (``python``, ``python3``,
    ``python title=x``), dedented by their fence's indentation."""
    blocks: list[Block] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        language = (opening.group("info").split() or [""])[0].lower()
        body: list[str] = []
        start = index + 1
        index += 1
        while index < len(lines):
            if _closes(lines[index], fence):
                break
            line = lines[index]
            # Drop the fence's own indentation (a block inside a list item), and no more.
            body.append(line[indent:] if not indent or line[:indent].isspace() else line.lstrip())
            index += 1
        index += 1
        if language in ("python", "python3", "py"):
            blocks.append(Block(document, len(blocks) + 1, start, "\n".join(body) + "\n"))
    return blocks


def _closes(line: str, fence: str) -> bool:
    closing = _FENCE.match(line)
    return (
        closing is not None
        and closing.group("fence")[0] == fence[0]
        and len(closing.group("fence")) >= len(fence)
        and not closing.group("info").strip()
    )


BLOCKS = [block for document in DOCUMENTS if document.exists() for block in python_blocks(document)]


def test_the_documents_have_examples() -> None:
    """Guards the collection itself: a broken fence pattern would silently test nothing."""
    documents = {block.document.name for block in BLOCKS}
    assert {"README.md", "writing-a-tool.md", "writing-a-scaffold.md", "quickstart.md"} <= documents


def test_the_block_finder(tmp_path: Path) -> None:
    doc = tmp_path / "probe.md"
    doc.write_text(
        "x\n```python\na = 1\n```\n```bash\nls\n```\n  ```py\n  b = 2\n  ```\n"
        "````python\n```\n````\n",
        encoding="utf-8",
    )
    found = [(block.line, block.code) for block in python_blocks(doc)]
    assert found == [(2, "a = 1\n"), (8, "b = 2\n"), (11, "```\n")]


@pytest.mark.parametrize(
    "block", BLOCKS, ids=lambda block: f"{block.document.name}-block{block.number}"
)
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.label} (line {block.line}) did not finish within {TIMEOUT_S} s")
    if done.returncode != 0:
        pytest.fail(
            f"{block.label} (line {block.line} of {block.document.name}) exited with "
            f"{done.returncode}.\n--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n"
            f"{done.stderr[-4000:]}",
            pytrace=False,
        )
