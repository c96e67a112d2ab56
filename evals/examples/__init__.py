"""Bundled example tasks: small real repositories with real bugs, as SWE-bench instances.

``build_examples(out_dir)`` (or ``python -m agentkit.evals.examples.build OUT_DIR``) creates the
git repositories and writes the dataset; nothing generated lives in the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agentkit.evals.examples.catalog import EXAMPLES
from agentkit.evals.examples.spec import ExampleSpec

if TYPE_CHECKING:
    from collections.abc import Iterable


def build_examples(out_dir: str | Path, examples: Iterable[ExampleSpec] | None = None) -> Path:
    """Create every example repository under ``out_dir/repos``; return the JSONL dataset path."""
    # Imported here so ``python -m agentkit.evals.examples.build`` runs a fresh module.
    from agentkit.evals.examples.build import build_examples as _build

    return _build(out_dir, examples)


__all__ = ["EXAMPLES", "ExampleSpec", "build_examples"]
