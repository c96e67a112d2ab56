"""Dotted paths (``"my_pkg.tools:LintTool"``) in configs: how a user's own class is named in YAML.

A config field that takes a registered name (``bash``, ``xml``, ``tool_loop``) also takes a dotted
path ``module:attribute`` to a user's class. :func:`resolve_dotted` imports it and says clearly
what went wrong: no such module, no such attribute, or an object of the wrong kind.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from agentkit.errors import UserFacingError

T = TypeVar("T")


class DottedPathError(UserFacingError, ValueError):
    """A dotted path names no importable object, or one of the wrong kind.

    A ``ValueError`` so that pydantic validators report it as the field's problem."""


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
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise DottedPathError(
            f"{what} {path!r}: cannot import module {missing!r} (is it installed, or on "
            "PYTHONPATH?)."
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
