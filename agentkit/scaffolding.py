"""Scaffolds: one protocol for every way of solving a task, picked by the config's ``type``.

A scaffold takes a task, a runtime (the sandbox holding the repository) and a backend (the
model), and returns a :class:`~agentkit.types.Trajectory` whose ``submission`` is its patch. The
harness, the CLI and the RL rollout driver call every scaffold through :class:`Scaffold`, never
knowing which kind it is::

    scaffold = build_scaffold(load_scaffold_config("my_scaffold.yaml"))
    trajectory = await scaffold.solve(task, runtime, backend)

A scaffold *type* is a class with a ``Config`` class attribute (a :class:`BaseScaffoldConfig`
subclass) and a constructor ``(config, *, tools=None)``; ``tools`` are already-built tools a
caller shares (a type that uses no tools ignores them). Types are found by the config's
``type``: a registered name (``tool_loop``; :func:`register_scaffold_type`), or a dotted path
``"my_pkg.scaffolds:MyScaffold"`` to a user's class, which needs no registration. A config
without ``type`` is a ``tool_loop`` (the files written before types existed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BeforeValidator, SerializeAsAny, ValidationError

from agentkit.agent import ToolLoop
from agentkit.backend import Backend
from agentkit.dotted import DottedPathError, import_folders, is_dotted, resolve_dotted
from agentkit.runtime.base import Runtime
from agentkit.scaffold import BaseScaffoldConfig, ScaffoldConfigError
from agentkit.tasks import Task
from agentkit.tools import Tool
from agentkit.types import Step, Trajectory
from agentkit.validation import describe_problems
from agentkit.yaml_files import read_yaml

__all__ = [
    "DEFAULT_TYPE",
    "SCAFFOLD_TYPES",
    "UNKNOWN_SCAFFOLD_TYPE",
    "BaseScaffoldConfig",
    "Scaffold",
    "ScaffoldSpec",
    "ScaffoldType",
    "ToolLoop",
    "build_scaffold",
    "load_scaffold_config",
    "parse_scaffold_config",
    "register_scaffold_type",
    "scaffold_type",
]

DEFAULT_TYPE = "tool_loop"
"""The type of a config that names none."""

UNKNOWN_SCAFFOLD_TYPE = (
    "Unknown scaffold type '{name}'. The known types are: {valid}. Or name your own scaffold "
    "class by dotted path, like 'my_package.module:MyScaffold'."
)


@runtime_checkable
class Scaffold(Protocol):
    """Solves one task: what the harness and the RL rollout driver call."""

    async def solve(
        self,
        task: Task,
        runtime: Runtime,
        backend: Backend,
        *,
        trajectory_path: str | Path | None = None,
        on_step: Callable[[Step], None] | None = None,
    ) -> Trajectory:
        """Work on ``task`` in ``runtime`` with ``backend``; the trajectory, with the workspace's
        diff as its ``submission``. ``trajectory_path``, when given, receives the trajectory
        (and, for step-wise types, the steps as they happen); ``on_step`` is called after each
        model step (progress displays)."""
        ...


class ScaffoldType(Protocol):
    """A scaffold class: its config model and how it is built."""

    Config: ClassVar[type[BaseScaffoldConfig]]

    def __call__(self, config: Any, *, tools: Sequence[Tool] | None = None) -> Scaffold: ...


SCAFFOLD_TYPES: dict[str, Any] = {}
"""Registered scaffold classes by type name (values are :class:`ScaffoldType`\\ s)."""


def register_scaffold_type(cls: type[Any]) -> type[Any]:
    """Make a scaffold class usable by the name its ``Config.type`` defaults to (a class
    decorator)."""
    config = _config_model(cls, cls.__name__)
    name = config.model_fields["type"].default
    if not isinstance(name, str) or not name or is_dotted(name):
        raise ValueError(
            f"{cls.__name__}.Config needs a default for its 'type' field: the name to register "
            "it under (a plain name, no ':')."
        )
    SCAFFOLD_TYPES[name] = cls
    return cls


def scaffold_type(name: str) -> ScaffoldType:
    """The scaffold class a ``type`` value names; ``ValueError`` says what is wrong."""
    if is_dotted(name):
        cls = resolve_dotted(name, "scaffold type")
        _config_model(cls, name)
        return cls  # type: ignore[no-any-return]
    try:
        return SCAFFOLD_TYPES[name]  # type: ignore[no-any-return]
    except KeyError:
        valid = ", ".join(sorted(SCAFFOLD_TYPES))
        raise ValueError(UNKNOWN_SCAFFOLD_TYPE.format(name=name, valid=valid)) from None


def build_scaffold(config: BaseScaffoldConfig, *, tools: Sequence[Tool] | None = None) -> Scaffold:
    """The scaffold ``config`` describes. ``tools``: already-built tools to use instead of the
    config's own (ignored by types that use none)."""
    cls = scaffold_type(config.type)
    if not isinstance(config, cls.Config):
        raise TypeError(
            f"build_scaffold got a {type(config).__name__} for scaffold type {config.type!r}, "
            f"which takes a {cls.Config.__name__}."
        )
    return cls(config, tools=tools)


def parse_scaffold_config(data: Any) -> BaseScaffoldConfig:
    """A scaffold config from plain data (parsed YAML/JSON), as the model its ``type`` names.

    A config already built passes through. ``ValueError`` (a :class:`ScaffoldConfigError`)
    says what is wrong."""
    if isinstance(data, BaseScaffoldConfig):
        return data
    if not isinstance(data, Mapping):
        raise ScaffoldConfigError(
            f"a scaffold config is a mapping of fields, not {type(data).__name__}"
        )
    name = data.get("type", DEFAULT_TYPE)
    if not isinstance(name, str):
        raise ScaffoldConfigError(f"type: a scaffold type name or dotted path, not {name!r}")
    try:
        model = scaffold_type(name).Config
    except ValueError as exc:
        raise ScaffoldConfigError(f"type: {exc}") from None
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ScaffoldConfigError(describe_problems(exc, model)) from None


def load_scaffold_config(
    path: str | Path, *, named_bases: Mapping[str, Path] | None = None
) -> BaseScaffoldConfig:
    """A scaffold config of any type from a YAML file.

    A file may start from another with ``extends: BASE`` and hold only what it changes: BASE is
    one of ``named_bases`` (the bundled scaffolds' names, when loaded through
    :func:`agentkit.scaffolds.load_scaffold`) or a path relative to the file. Mappings merge key
    by key, at any depth; any other value (a list, a string) replaces the base's.

    A dotted path in the file (``tools: [bash, "my_tools:CountLines"]``) also finds a module kept
    next to the file (or next to a file it extends) or in the current directory, as a script
    finds its neighbours (see :func:`agentkit.dotted.import_folders`)."""
    files: list[Path] = []  # the user's own: a bundled base's folder holds no modules of theirs
    bundled = set((named_bases or {}).values())
    data = _scaffold_data(Path(path), named_bases or {}, (), files)
    try:
        with import_folders([file.parent for file in files if file not in bundled]):
            return parse_scaffold_config(data)
    except ScaffoldConfigError as exc:
        raise ScaffoldConfigError(f"{path} is not a valid scaffold: {exc}.") from None


def _scaffold_data(
    path: Path, named: Mapping[str, Path], seen: tuple[Path, ...], files: list[Path]
) -> Any:
    """The merged data of ``path`` and the files it extends, which are added to ``files``."""
    data = read_yaml(path, ScaffoldConfigError, "scaffold file")
    files.append(path)
    if not isinstance(data, dict) or "extends" not in data:
        return data
    base = data.pop("extends")
    if not isinstance(base, str):
        raise ScaffoldConfigError(f"{path}: extends: a scaffold name or a file path, not {base!r}")
    base_path = named[base] if base in named else (path.parent / base)
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        chain = " -> ".join(str(p) for p in (*seen, path.resolve(), base_path.resolve()))
        raise ScaffoldConfigError(f"{path}: extends goes round in a circle: {chain}")
    if not base_path.exists():
        known = ", ".join(sorted(named)) or "none"
        raise ScaffoldConfigError(
            f"{path}: extends: {base!r} is neither a bundled scaffold ({known}) nor a file "
            f"(looked for {base_path})"
        )
    base_data = _scaffold_data(base_path, named, (*seen, path.resolve()), files)
    if not isinstance(base_data, dict):
        raise ScaffoldConfigError(f"{base_path} is not a mapping of scaffold fields")
    return _merged(base_data, data)


def _merged(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


ScaffoldSpec = Annotated[SerializeAsAny[BaseScaffoldConfig], BeforeValidator(parse_scaffold_config)]
"""A scaffold config of any type as a field of another pydantic model (an RL or sweep config):
validated as the model its ``type`` names, dumped with all its fields."""


def _config_model(cls: object, name: str) -> type[BaseScaffoldConfig]:
    config = getattr(cls, "Config", None)
    if not (
        isinstance(cls, type)
        and isinstance(config, type)
        and issubclass(config, BaseScaffoldConfig)
        and callable(getattr(cls, "solve", None))
    ):
        raise DottedPathError(
            f"scaffold type {name!r} is not a scaffold class: it needs a 'Config' class "
            "attribute (a BaseScaffoldConfig subclass) and an async 'solve' method."
        )
    return config


register_scaffold_type(ToolLoop)
