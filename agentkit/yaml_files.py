"""Reading the YAML (and JSON, which is YAML) files users write: scaffolds, backend configs,
scripted replies. One reader, so every such file fails the same clear way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, error: type[Exception], what: str) -> Any:
    """The parsed content of ``path``; ``error(message)`` names ``what`` the file was meant to be
    when it cannot be read or parsed."""
    source = Path(path)
    try:
        return yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"Cannot read the {what} {source}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"The {what} {source} is not valid YAML or JSON: {exc}") from exc
