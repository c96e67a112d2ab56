"""Loading a dataset for evaluation: the instances, checked for what grading will need.

A dataset comes in whichever shape its publisher used: a JSON / JSONL file (read by
:func:`agentkit.tasks.load_tasks`), a folder of such files, a parquet file (what the Hugging Face
hub serves for SWE-bench and its kin), or a Hugging Face ``datasets`` dataset saved with
``save_to_disk`` (one split, or a ``DatasetDict`` from which a split is chosen). Every shape ends
in :func:`agentkit.tasks.tasks_from_records`, so a bad instance is worded the same way whatever
file it came from. ``pyarrow`` and ``datasets`` are optional: they are imported only when such a
file is read, and their absence is a one-line instruction, not a traceback.

What only the grader knows (the names of its test-log parsers) is checked here, when the dataset
loads, so that a mistyped ``log_parser`` stops the run before any agent has spent time or money
on it, instead of failing each task after its agent finished.

:func:`select_tasks` then narrows the tasks to the ones a run asked for (ids, a regex, a slice).
"""

from __future__ import annotations

import datetime
import difflib
import importlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from agentkit.evals.log_parsers import has_log_parser, log_parser_names
from agentkit.tasks import Task, TaskLoadError, load_tasks, tasks_from_records

DEFAULT_SPLIT = "test"
"""The split of a saved ``DatasetDict`` used when none is named (SWE-bench's evaluation split)."""

_JSON_SUFFIXES = (".json", ".jsonl")
_HF_DICT_MARKER = "dataset_dict.json"
_HF_DATASET_MARKERS = ("state.json", "dataset_info.json")
_TABLE_HINT = "The table has no rows."
_SHOWN = 5


def load_dataset(path: str | Path, *, split: str | None = None) -> list[Task]:
    """The tasks of a dataset, or :class:`TaskLoadError` naming the first problem.

    ``path`` is a JSON / JSONL file, a folder of them, a ``.parquet`` file, or a folder written
    by ``datasets``' ``save_to_disk``. For a saved ``DatasetDict`` the split is ``split``, or a
    ``:split`` suffix on the path (``data/swe-bench:dev``), or ``"test"`` when there is one.
    """
    source, split = _split_from_path(path, split)
    tasks = _read(source, split)
    check_log_parsers(tasks, path)
    return tasks


def check_log_parsers(tasks: list[Task], source: str | Path) -> None:
    """Raise :class:`TaskLoadError` when an instance names a test-log parser that does not exist."""
    bad = [
        task
        for task in tasks
        if task.log_parser is not None and not has_log_parser(task.log_parser)
    ]
    if not bad:
        return
    names = sorted({str(task.log_parser) for task in bad})
    ids = ", ".join(task.instance_id for task in bad[:5]) + (" ..." if len(bad) > 5 else "")
    raise TaskLoadError(
        f"{source}: unknown log_parser {', '.join(map(repr, names))} (instances: {ids}). "
        f"Known parsers: {', '.join(log_parser_names())}."
    )


# --- reading -------------------------------------------------------------------------------------


def _split_from_path(path: str | Path, split: str | None) -> tuple[Path, str | None]:
    """Separate a ``PATH:split`` suffix, only when ``PATH`` exists and the whole does not (so a
    file whose name holds a colon still loads)."""
    whole = Path(path)
    if whole.exists():
        return whole, split
    head, colon, tail = str(path).rpartition(":")
    if not colon or not head or not tail or "/" in tail or "\\" in tail or not Path(head).exists():
        return whole, split
    if split is not None and split != tail:
        raise TaskLoadError(f"{path}: two splits given, {tail!r} in the path and {split!r}.")
    return Path(head), tail


def _read(path: Path, split: str | None) -> list[Task]:
    if path.is_dir():
        if (path / _HF_DICT_MARKER).is_file():
            return _read_saved_hf(path, split)
        if all((path / name).is_file() for name in _HF_DATASET_MARKERS):
            return _read_saved_hf(path, split)
        _refuse_split(path, split)
        return _read_json_folder(path)
    _refuse_split(path, split)
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path)
    return load_tasks(path)


def _refuse_split(path: Path, split: str | None) -> None:
    if split is not None:
        raise TaskLoadError(
            f"{path} has no splits (only a DatasetDict saved with save_to_disk does); "
            f"drop the split {split!r}."
        )


def _read_json_folder(folder: Path) -> list[Task]:
    """Every ``*.json`` / ``*.jsonl`` file of ``folder`` in name order; an id may appear once."""
    files = sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file()
        and entry.suffix.lower() in _JSON_SUFFIXES
        and not entry.name.startswith(".")
    )
    if not files:
        parquet = sorted(folder.glob("*.parquet"))
        hint = f" It holds parquet files: name one of them, e.g. {parquet[0]}." if parquet else ""
        raise TaskLoadError(
            f"{folder} holds no task instances: it has no *.json or *.jsonl file.{hint}"
        )
    tasks: list[Task] = []
    seen: dict[str, Path] = {}
    for file in files:
        for task in load_tasks(file):
            first = seen.setdefault(task.instance_id, file)
            if first != file:
                raise TaskLoadError(
                    f"{folder}: instance id {task.instance_id!r} is in both {first.name} and "
                    f"{file.name}."
                )
            tasks.append(task)
    return tasks


def _read_parquet(path: Path) -> list[Task]:
    pyarrow = _optional_import("pyarrow", path, "a parquet file")
    parquet = _optional_import("pyarrow.parquet", path, "a parquet file")
    try:
        records = parquet.read_table(path).to_pylist()
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise TaskLoadError(f"cannot read parquet dataset {path}: {_one_line(exc)}") from None
    return tasks_from_records([_plain(r) for r in records], path, empty_hint=_TABLE_HINT)


def _read_saved_hf(path: Path, split: str | None) -> list[Task]:
    datasets = _optional_import("datasets", path, "a Hugging Face dataset saved with save_to_disk")
    try:
        loaded = datasets.load_from_disk(str(path))
    # A damaged or foreign folder can fail in any of the library's layers (arrow, fsspec, json);
    # whatever it is, it is the user's folder, so it gets one line, not a traceback.
    except Exception as exc:
        raise TaskLoadError(f"cannot read saved dataset {path}: {_one_line(exc)}") from None
    source = str(path)
    if isinstance(loaded, datasets.DatasetDict):
        name = _choose_split(list(loaded.keys()), split, path)
        loaded, source = loaded[name], f"{path}:{name}"
    else:
        _refuse_split(path, split)
    records = [_plain(row) for row in loaded]
    return tasks_from_records(records, source, empty_hint=_TABLE_HINT)


def _choose_split(splits: list[str], split: str | None, path: Path) -> str:
    if split is None and DEFAULT_SPLIT in splits:
        return DEFAULT_SPLIT
    if split in splits:
        return split
    known = ", ".join(sorted(splits)) or "none"
    problem = f"has no split {split!r}" if split is not None else "has no 'test' split"
    raise TaskLoadError(
        f"{path} {problem}; choose one of: {known} (as {path}:SPLIT or load_dataset(..., split=))."
    )


def _optional_import(module: str, path: Path, what: str) -> ModuleType:
    """``module``, or a one-line instruction to install its package."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TaskLoadError(
            f"{path} is {what}; reading it needs the '{package}' package: pip install {package}"
        ) from None


def _plain(value: Any) -> Any:
    """Arrow's dates and times as ISO strings, as in the hub's JSON exports (``created_at`` is a
    timestamp column in some parquet files, a string field on :class:`Task`)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --- selecting -----------------------------------------------------------------------------------


def select_tasks(
    tasks: Sequence[Task],
    *,
    ids: Iterable[str] = (),
    pattern: str | None = None,
    slice_: str | slice | None = None,
) -> list[Task]:
    """The tasks a run asked for: by exact ``ids`` (in the order given), then those whose
    ``instance_id`` matches the regex ``pattern`` (``re.search``), then ``slice_`` in Python
    syntax (``"0:10"``, ``":5"``, ``"-3:"``, ``"::2"``). Each filter that is left empty is
    skipped; one that selects nothing raises :class:`TaskLoadError`, since a run of no task is
    always a mistake in the selection."""
    selected = list(tasks)
    wanted = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
    if wanted:
        selected = _by_ids(selected, wanted)
    if pattern is not None:
        selected = _by_pattern(selected, pattern)
    if slice_ is not None:
        total = len(selected)
        selected = selected[_parse_slice(slice_)]
        if not selected:
            raise TaskLoadError(f"slice {_show_slice(slice_)} selects none of the {total} tasks.")
    return selected


def _by_ids(tasks: list[Task], wanted: list[str]) -> list[Task]:
    by_id = {task.instance_id: task for task in tasks}
    unknown = [i for i in wanted if i not in by_id]
    if unknown:
        shown = ", ".join(map(repr, unknown[:_SHOWN])) + (" ..." if len(unknown) > _SHOWN else "")
        close = difflib.get_close_matches(unknown[0], list(by_id), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise TaskLoadError(f"no task {shown} in the dataset.{hint} {_some_ids(tasks)}")
    return [by_id[i] for i in wanted]


def _by_pattern(tasks: list[Task], pattern: str) -> list[Task]:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise TaskLoadError(f"invalid task pattern {pattern!r}: {exc}.") from None
    matching = [task for task in tasks if regex.search(task.instance_id)]
    if not matching:
        raise TaskLoadError(f"no task id matches the pattern {pattern!r}. {_some_ids(tasks)}")
    return matching


def _parse_slice(text: str | slice) -> slice:
    if isinstance(text, slice):
        parts: list[int | None] = [text.start, text.stop, text.step]
    else:
        pieces = text.split(":")
        if len(pieces) not in (2, 3):
            raise _bad_slice(text, "it needs one or two ':'")
        try:
            parts = [int(piece) if piece.strip() else None for piece in pieces]
        except ValueError:
            raise _bad_slice(text, "its bounds must be whole numbers") from None
    if len(parts) == 3 and parts[2] == 0:
        raise _bad_slice(text, "its step cannot be zero")
    return slice(*parts)


def _bad_slice(text: str | slice, why: str) -> TaskLoadError:
    return TaskLoadError(
        f"invalid task slice {_show_slice(text)}: {why} (Python syntax, e.g. '0:10', ':5', "
        "'-3:', '::2')."
    )


def _show_slice(value: str | slice) -> str:
    if isinstance(value, str):
        return repr(value)
    parts = [value.start, value.stop] + ([value.step] if value.step is not None else [])
    return repr(":".join("" if part is None else str(part) for part in parts))


def _some_ids(tasks: list[Task]) -> str:
    if not tasks:
        return "There are no tasks to choose from."
    shown = ", ".join(task.instance_id for task in tasks[:_SHOWN])
    more = f", ... ({len(tasks)} in all)" if len(tasks) > _SHOWN else ""
    return f"Tasks there: {shown}{more}."
