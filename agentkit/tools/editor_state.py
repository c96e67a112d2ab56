"""The editor's memory: undo history and the last seen content of files, kept per runtime."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agentkit.tools.editor_file import TextFile

HISTORY_LIMIT = 10
"""Edits of one file that ``undo_edit`` can take back."""
_REMEMBERED_FILES = 4


@dataclass(frozen=True)
class Edit:
    before: bytes | None
    """The file before the edit; ``None`` when the edit created it."""
    after: bytes


@dataclass
class EditorState:
    """What the tool remembers for one runtime: undo history, and the last seen content of the
    files it used most recently. A file read again is compared with its remembered bytes; when
    they are equal, the remembered :class:`TextFile` (encoding found, line index built) is used
    again, so viewing one range after another does not count the file's lines each time."""

    histories: dict[str, deque[Edit]] = field(default_factory=dict)
    files: dict[str, TextFile] = field(default_factory=dict)

    def history(self, path: str) -> deque[Edit]:
        return self.histories.setdefault(path, deque(maxlen=HISTORY_LIMIT))

    def known(self, path: str, data: bytes) -> TextFile | None:
        file = self.files.get(path)
        return file if file is not None and file.data == data else None

    def remember(self, path: str, file: TextFile) -> None:
        self.files.pop(path, None)
        self.files[path] = file
        while len(self.files) > _REMEMBERED_FILES:
            del self.files[next(iter(self.files))]
