"""Bundled scaffolds, each a YAML config for :class:`agentkit.scaffold.ScaffoldConfig`."""

from __future__ import annotations

from pathlib import Path

from agentkit.scaffold import ScaffoldConfig, ScaffoldConfigError

_HERE = Path(__file__).parent
BUNDLED = {"mini": _HERE / "mini" / "mini.yaml"}


def load_scaffold(name_or_path: str) -> ScaffoldConfig:
    """A bundled scaffold by name (``mini``) or any scaffold YAML file by path."""
    if name_or_path in BUNDLED:
        return ScaffoldConfig.from_yaml(BUNDLED[name_or_path])
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return ScaffoldConfig.from_yaml(path)
    raise ScaffoldConfigError(
        f"Unknown scaffold {name_or_path!r}: use one of {', '.join(sorted(BUNDLED))} "
        "or the path of a scaffold YAML file."
    )


__all__ = ["BUNDLED", "load_scaffold"]
