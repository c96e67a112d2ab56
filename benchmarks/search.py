"""`search_dir` against plain `grep -rn` on a large tree: what the tool's answer costs over the
search itself.

Builds a tree of ``--files`` Python files of ``--lines`` lines each (in package folders, with a
hidden folder and a few binary files, as real repositories have), then times, per search term:
the `search_dir` tool through a LocalRuntime (one persistent shell, the whole answer built:
per-file counts, hidden folders and binaries skipped, at most 100 files listed) and `grep -rn
TERM DIR` as a fresh process (every matching line printed). Terms are chosen to hit 0, a few and
many files. Prints a markdown table of medians.

    python benchmarks/search.py [--files 5000] [--lines 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from agentkit.runtime import LocalRuntime
from agentkit.tools import ToolContext, get_tool

TERMS = {
    "no file": "zz_never_written_zz",
    "1 file": "needle_in_module_0",
    "50 files": "shared_helper_name",
    "every file": "def function_",
}


def build_tree(root: Path, files: int, lines: int) -> None:
    for n in range(files):
        package = root / f"pkg_{n // 100}"
        package.mkdir(exist_ok=True)
        body = [f"def function_{i}(x):\n    return x + {i}\n" for i in range(lines // 2)]
        if n == 0:
            body.append("needle_in_module_0 = True\n")
        if n % (files // 50 or 1) == 0:
            body.append("shared_helper_name = None\n")
        (package / f"module_{n}.py").write_text("".join(body))
    hidden = root / ".cache"
    hidden.mkdir()
    (hidden / "copy.py").write_text("shared_helper_name = 1\n" * 100)
    for n in range(5):
        (root / f"blob_{n}.bin").write_bytes(b"\0shared_helper_name\0" * 1000)


async def time_search_dir(root: Path, term: str, repeats: int) -> float:
    tool = get_tool("search_dir")
    samples = []
    async with LocalRuntime(workdir=str(root)) as runtime:
        ctx = ToolContext(runtime=runtime, command_timeout=600)
        args = tool.Arguments.model_validate({"search_term": term})
        await tool.execute(args, ctx)  # warm-up (the engine is detected once per runtime)
        for _ in range(repeats):
            start = time.perf_counter()
            await tool.execute(args, ctx)
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def time_grep(root: Path, term: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(["grep", "-rn", "-F", term, str(root)], capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[1:])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentkit-bench-search-") as scratch:
        root = Path(scratch)
        build_tree(root, args.files, args.lines)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        rows = []
        for label, term in TERMS.items():
            tool = await time_search_dir(root, term, args.repeats)
            grep = time_grep(root, term, args.repeats)
            rows.append((label, term, tool, grep))
    print(
        f"{datetime.date.today().isoformat()}, {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}), {args.files} files × {args.lines} lines "
        f"({size / 1e6:.0f} MB), median of {args.repeats}\n"
    )
    print("| matches | search_dir (ms) | `grep -rn` (ms) | ratio |")
    print("|---|---:|---:|---:|")
    for label, term, tool, grep in rows:
        print(
            f"| {label} (`{term}`) | {tool * 1000:.1f} | {grep * 1000:.1f} | {tool / grep:.2f}× |"
        )


if __name__ == "__main__":
    asyncio.run(main())
