"""The tree stays clean: ruff (lint + import order + formatting) and mypy on the packages."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["agentkit", "backends", "evals", "scaffolds", "training"]


def _tool(name: str) -> list[str]:
    if shutil.which(name) is None and not (Path(sys.executable).parent / name).exists():
        pytest.skip(f"{name} is not installed (it comes with the [dev] extra)")
    return [sys.executable, "-m", name]


def test_ruff_lint_and_format():
    ruff = _tool("ruff")
    subprocess.run([*ruff, "check", "."], cwd=ROOT, check=True)
    subprocess.run([*ruff, "format", "--check", "."], cwd=ROOT, check=True)


def test_mypy():
    subprocess.run([*_tool("mypy"), *PACKAGES], cwd=ROOT, check=True)
