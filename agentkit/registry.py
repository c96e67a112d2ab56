"""Named classes of one kind (tools, call formats): how a name in a config becomes an object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Generic, Protocol, TypeVar


class _Named(Protocol):
    name: ClassVar[str]


T = TypeVar("T", bound=_Named)


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
