"""Named classes of one kind (tools, call formats): how a name in a config becomes an object.

A config may also name a class by dotted path (``"my_pkg.tools:LintTool"``); :meth:`Registry.find`
accepts either, so a user's class needs no registration to be used from YAML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Generic, Protocol, TypeVar

from agentkit.dotted import is_dotted, resolve_class


class _Named(Protocol):
    name: ClassVar[str]


T = TypeVar("T", bound=_Named)

DOTTED_HINT = (
    " Or name your own class by dotted path, like 'my_package.module:MyClass' (in a scaffold "
    "file, a module next to the file or in the current directory is found too)."
)
"""Appended to the unknown-name error of :meth:`Registry.find` (unless it is given another)."""


class Registry(Generic[T]):
    """``unknown`` is the error template for a bad name; it gets ``name`` and ``valid`` (the known
    names, sorted and comma separated). ``entries`` is the plain dict, for inspection."""

    def __init__(self, unknown: str, classes: Iterable[type[T]] = ()) -> None:
        self.unknown = unknown
        self.entries: dict[str, type[T]] = {cls.name: cls for cls in classes}

    def register(self, cls: type[T]) -> type[T]:
        """Add ``cls`` under its ``name`` (usable as a class decorator)."""
        self.entries[cls.name] = cls
        return cls

    def create(self, name: str) -> T:
        """A new instance of the class called ``name``; ``ValueError`` lists the known names."""
        try:
            cls = self.entries[name]
        except KeyError:
            valid = ", ".join(sorted(self.entries))
            raise ValueError(self.unknown.format(name=name, valid=valid)) from None
        return cls()

    def find(self, name: str, base: type[T], what: str, hint: str = DOTTED_HINT) -> type[T]:
        """The class a config names: a registered name, or a dotted path to a subclass of
        ``base`` (``what`` words that error). ``ValueError`` says what is wrong, then ``hint``:
        how to name a class of one's own."""
        return find_class(self.entries, self.unknown, name, base, what, hint)


def find_class(
    entries: Mapping[str, type[T]],
    unknown: str,
    name: str,
    base: type[T],
    what: str,
    hint: str = DOTTED_HINT,
) -> type[T]:
    """:meth:`Registry.find` over a registry's ``entries`` and ``unknown`` template."""
    if is_dotted(name):
        return resolve_class(name, base, what)
    try:
        return entries[name]
    except KeyError:
        valid = ", ".join(sorted(entries))
        module, dot, attribute = name.rpartition(".")
        if dot and module and attribute:  # 'my_tools.CountLines': Python's spelling, not ours
            hint = (
                " For a class of your own, a dotted path separates the module and the class "
                f"with ':': '{module}:{attribute}'."
            )
        raise ValueError(unknown.format(name=name, valid=valid) + hint) from None
