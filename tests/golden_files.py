"""Golden files: the exact text a test expects, kept beside the tests and compared byte for byte.

``AGENTKIT_UPDATE_GOLDEN=1`` rewrites them from the current output instead (review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

UPDATE = os.environ.get("AGENTKIT_UPDATE_GOLDEN") == "1"


def check_golden_file(path: Path, text: str) -> None:
    """``text`` equals the golden file at ``path`` (UTF-8, no newline translation)."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"missing golden file {path}; run with AGENTKIT_UPDATE_GOLDEN=1"
    assert text == path.read_bytes().decode("utf-8")
