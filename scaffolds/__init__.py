"""Bundled scaffolds, each a YAML scaffold config (see :mod:`agentkit.scaffolding`)."""

from __future__ import annotations

from pathlib import Path

from agentkit.scaffold import BaseScaffoldConfig, ScaffoldConfigError
from agentkit.scaffolding import load_scaffold_config

_HERE = Path(__file__).parent
BUNDLED = {
    "mini": _HERE / "mini" / "mini.yaml",
    "mini-native": _HERE / "mini" / "mini_native.yaml",
    "swe-agent": _HERE / "swe_agent" / "swe_agent.yaml",
    "code-nav": _HERE / "code_nav" / "code_nav.yaml",
    "codeact": _HERE / "codeact" / "codeact.yaml",
}


def load_scaffold(name_or_path: str) -> BaseScaffoldConfig:
    """A bundled scaffold by name (``mini``) or any scaffold YAML file by path, as the config
    model of its ``type`` (a file without ``type`` is a ``tool_loop``). A file may extend a
    bundled scaffold by name (``extends: mini``) and hold only its changes."""
    if name_or_path in BUNDLED:
        return load_scaffold_config(BUNDLED[name_or_path])
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return load_scaffold_config(path, named_bases=BUNDLED)
    raise ScaffoldConfigError(
        f"Unknown scaffold {name_or_path!r}: use one of {', '.join(sorted(BUNDLED))} "
        "or the path of a scaffold YAML file."
    )


__all__ = ["BUNDLED", "load_scaffold"]
