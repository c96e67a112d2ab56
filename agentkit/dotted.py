"""Dotted paths (``"my_pkg.tools:LintTool"``) in configs: how a user's own class is named in YAML.

A config field that takes a registered name (``bash``, ``xml``, ``tool_loop``) also takes a dotted
path ``module:attribute`` to a user's class. :func:`resolve_dotted` imports it and says clearly
what went wrong: no such module, no such attribute, or an object of the wrong kind.

A config *file* names modules the way a script imports them: a user keeps ``my_tools.py`` next to
``my_scaffold.yaml`` and writes ``my_tools:CountLines``, expecting it to be found even though the
``agentkit`` command's own ``sys.path`` holds neither that folder nor the current directory. The
loader therefore resolves the file's paths inside :func:`import_folders`, and a module that is not
importable otherwise but is a file or package in one of those folders is found there.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from agentkit.errors import UserFacingError

T = TypeVar("T")


class DottedPathError(UserFacingError, ValueError):
    """A dotted path names no importable object, or one of the wrong kind.

    A ``ValueError`` so that pydantic validators report it as the field's problem."""


_FOLDERS: ContextVar[tuple[Path, ...]] = ContextVar("agentkit_import_folders", default=())
"""Where :func:`resolve_dotted` also looks for a module, innermost :func:`import_folders` first."""


@contextmanager
def import_folders(folders: Sequence[Path]) -> Iterator[None]:
    """Within the block, dotted paths also find top-level modules in ``folders`` (a config
    file's own folder), then in the current directory, the way ``python script.py`` finds its
    neighbours.

    Only a module that is importable no other way is looked for there, so nothing installed is
    ever shadowed; the folder that holds it then stays on ``sys.path``, so that the module's own
    later imports of its neighbours work as they would in a script."""
    try:
        here = [Path.cwd()]
    except OSError:  # the current directory was deleted: there is nothing to find in it
        here = []
    unique = tuple(dict.fromkeys(folder.resolve() for folder in (*folders, *here)))
    token = _FOLDERS.set((*unique, *_FOLDERS.get()))
    try:
        yield
    finally:
        _FOLDERS.reset(token)


def _find_in_folders(module_name: str) -> None:
    """Put on ``sys.path`` the first of the current :func:`import_folders` that holds the
    top-level package of ``module_name``, when nothing on ``sys.path`` does."""
    top = module_name.split(".")[0]
    folders = _FOLDERS.get()
    if not folders or not top.isidentifier():
        return
    try:
        if importlib.util.find_spec(top) is not None:
            return
    except (ImportError, ValueError):
        return
    for folder in folders:
        if (folder / f"{top}.py").is_file() or (folder / top).is_dir():
            if str(folder) not in sys.path:
                sys.path.append(str(folder))
            importlib.invalidate_caches()
            return


def _not_found_hint() -> str:
    folders = _FOLDERS.get()
    if not folders:
        return "is it installed, or on PYTHONPATH?"
    places = ", ".join(str(folder) for folder in folders)
    return f"it is not installed, not on PYTHONPATH, and not a .py file or package in {places}"


def is_dotted(name: str) -> bool:
    """Whether a config value is a dotted path (``module:attribute``) rather than a name."""
    return ":" in name


def resolve_dotted(path: str, what: str = "object") -> Any:
    """The object ``path`` (``"package.module:Attribute"``, the attribute may be dotted) names.

    ``what`` words the errors ("tool", "scaffold type").
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise DottedPathError(
            f"{what} {path!r} is not a dotted path: write it as 'package.module:Name'."
        )
    _find_in_folders(module_name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise DottedPathError(
            f"{what} {path!r}: cannot import module {missing!r} ({_not_found_hint()})."
        ) from None
    except Exception as exc:  # the user's module raised while importing: its message says why
        raise DottedPathError(
            f"{what} {path!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise DottedPathError(
                f"{what} {path!r}: module {module_name!r} has no attribute {attribute!r}."
            ) from None
    return value


def resolve_class(path: str, base: type[T], what: str) -> type[T]:
    """The class ``path`` names, which must be a subclass of ``base``."""
    value = resolve_dotted(path, what)
    if not isinstance(value, type) or not issubclass(value, base):
        kind = f"class {value.__name__}" if isinstance(value, type) else type(value).__name__
        raise DottedPathError(
            f"{what} {path!r} is a {kind}, not a subclass of {base.__module__}.{base.__name__}."
        )
    return value
