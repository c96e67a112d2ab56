"""The configuration a run folder was made with (``run_config.json`` in it), and which folder a
new invocation of ``agentkit run`` or ``agentkit eval`` writes to.

Why a record: a run folder is resumable state (a task finished there is not run again). Without
one, ``agentkit run`` followed by ``agentkit run --runtime local``, or by another replies file,
finds the first run's results and reports them as the second's. So every run folder says what
made it, and an invocation whose configuration differs goes elsewhere (default run ids) or is
refused (a run id the user named) with the differences spelled out.

What counts (``config``, compared): what can change a task's result. For a run: the resolved
scaffold config (``--max-steps``, ``--temperature`` ... applied), the backend config and the
content of the files it names, the runtime, the tasks' content and the number of attempts.
What does not: how the work is spread (``--workers``, ``--executor``, ``--ray-address``), which
tasks are selected (a rerun on more tasks extends the run), where the folder is, and how a
backend is reached (timeouts, retries, a server's URL, which changes from session to session
while the model stays the same). Those go under ``details``, for the reader only. For a grade-only
run (``agentkit eval``) the predictions file counts by its path, not its content: each grade is
already stored under a hash of its patch, so an edited predictions file regrades exactly the
patches that changed, in the same folder (as documented); a different file is another evaluation.

Default run ids: ``SCAFFOLD__BACKEND`` (``eval__MODEL``) stays the folder's name while it holds
this configuration, or nothing yet. Only when it already holds another does the run go to
``SCAFFOLD__BACKEND__<hash>``, the hash being this configuration's. So the common case keeps the
short, documented name (``runs/mini__gold``); a second configuration never touches the first's
results; and, the suffix being a function of the configuration, the same command finds its
folder again and resumes there. A hash on every id would make every name unreadable for the
sake of the rare case.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agentkit.errors import UserFacingError
from agentkit.evals.run_folder import RUN_CONFIG_FILE
from agentkit.tasks import Task
from agentkit.types import write_text_atomic

__all__ = [
    "ChosenRun",
    "RunRecord",
    "TaskSource",
    "choose_run",
    "describe_changes",
    "eval_record",
    "fingerprint",
    "run_record",
    "save_record",
    "tasks_digest",
]

SCHEMA_VERSION = 1
_BACKEND_OPERATIONAL = frozenset(
    {
        "base_url",
        "api_base",
        "api_key_env",
        "timeout_s",
        "request_timeout_s",
        "startup_timeout_s",
        "retry",
        "max_retries",
        "retry_initial_delay_s",
        "retry_max_delay_s",
        "port",
        "host",
        "log_path",
        "python",
    }
)
"""Backend fields that say how the model is reached or started, not which model answers."""
_BACKEND_FILE_FIELDS = ("path", "model_path")
"""Backend fields that name a file or folder whose content the answers depend on."""
_SMALL_FILE = 4 * 1024 * 1024
_SHOWN_CHANGES = 8


class RunRecord(BaseModel):
    """What made a run folder; ``run_config.json``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    command: Literal["run", "eval"]
    config: dict[str, Any]
    """What the results depend on: compared with the next invocation's."""
    details: dict[str, Any] = {}
    """Recorded for the reader (paths, URLs, the agentkit version); never compared."""

    def digest(self) -> str:
        """A hash of what is compared: the suffix of a default run id."""
        text = json.dumps({"command": self.command, "config": self.config}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class TaskSource:
    """The tasks of a run, and how its record names them."""

    tasks: list[Task]
    identity: dict[str, Any]
    """Compared between invocations: which tasks these are."""
    details: dict[str, Any] = field(default_factory=dict)
    """Recorded only."""
    id_prefix: str = ""
    """Put before ``SCAFFOLD__BACKEND`` in the default run id."""
    grade: bool = True


# -- building records ---------------------------------------------------------------------------


def run_record(
    *,
    scaffold: Mapping[str, Any],
    backend: Mapping[str, Any],
    runtime: str,
    attempts: int,
    tasks: Mapping[str, Any],
    details: Mapping[str, Any] | None = None,
) -> RunRecord:
    """The record of an ``agentkit run``: ``scaffold`` and ``backend`` are the configs as JSON
    data, ``tasks`` says which tasks (a dataset's digest, or an ad-hoc task's identity)."""
    compared_backend = {k: v for k, v in backend.items() if k not in _BACKEND_OPERATIONAL}
    files = {
        name: fingerprint(Path(str(backend[name])).expanduser())
        for name in _BACKEND_FILE_FIELDS
        if isinstance(backend.get(name), str)
    }
    config: dict[str, Any] = {
        "runtime": runtime,
        "attempts": attempts,
        "tasks": dict(tasks),
        "backend": compared_backend,
    }
    if files:
        config["backend_files"] = files
    config["scaffold"] = dict(scaffold)
    recorded = {"backend": dict(backend), **(details or {})}
    return RunRecord(command="run", config=config, details=_with_version(recorded))


def eval_record(
    *, predictions: str, runtime: str, tasks_sha256: str, details: Mapping[str, Any] | None = None
) -> RunRecord:
    """The record of an ``agentkit eval``. ``predictions`` is a file (compared by its resolved
    path; its content digest is a detail, see the module docstring) or ``gold``."""
    source = predictions
    recorded = dict(details or {})
    if predictions != "gold":
        path = Path(predictions).expanduser().resolve()
        source = str(path)
        recorded["predictions_sha256"] = fingerprint(path)
    config = {"runtime": runtime, "predictions": source, "tasks": {"sha256": tasks_sha256}}
    return RunRecord(command="eval", config=config, details=_with_version(recorded))


def _with_version(details: dict[str, Any]) -> dict[str, Any]:
    from agentkit import __version__

    return {**details, "agentkit_version": __version__}


def tasks_digest(tasks: Iterable[Task]) -> str:
    """A hash of every task of a dataset (all of them, before any selection: a run on more of
    its tasks is the same run), independent of their order and of the file's format."""
    records = sorted((t.model_dump(mode="json") for t in tasks), key=lambda r: r["instance_id"])
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def fingerprint(path: Path) -> str:
    """The content of a file (sha256) or a folder: every file's name and size, and the content
    of files up to 4 MiB (configs, tokenizers); larger ones (weights) by size and modification
    time, so that a model folder is not read in full on every run. ``missing`` when absent."""
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = item.stat()
        content = _file_sha256(item) if stat.st_size <= _SMALL_FILE else str(stat.st_mtime_ns)
        line = f"{item.relative_to(path).as_posix()}\0{stat.st_size}\0{content}\n"
        digest.update(line.encode("utf-8", errors="surrogateescape"))
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- comparing ------------------------------------------------------------------------------------

_ABSENT = object()


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def differences(old: RunRecord, new: RunRecord) -> list[tuple[str, Any, Any]]:
    """``(field, old value, new value)`` for every compared field that differs, in the order
    of the record (runtime and backend before the scaffold's many fields)."""
    if old.command != new.command:
        return [("command", old.command, new.command)]
    before = dict(_flatten(old.config))
    after = dict(_flatten(new.config))
    keys = list(before) + [key for key in after if key not in before]
    return [
        (key, before.get(key, _ABSENT), after.get(key, _ABSENT))
        for key in keys
        if before.get(key, _ABSENT) != after.get(key, _ABSENT)
    ]


def describe_changes(changes: list[tuple[str, Any, Any]], *, limit: int = _SHOWN_CHANGES) -> str:
    """The differences one per line, ``field: old → new``, values shortened."""
    lines = [f"  {key}: {_show(key, old)} → {_show(key, new)}" for key, old, new in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"  ... and {len(changes) - limit} more")
    return "\n".join(lines)


def _show(key: str, value: Any) -> str:
    if value is _ABSENT:
        return "(none)"
    if isinstance(value, str):
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return f"{value[:12]}…"  # a content hash
        text = " ".join(value.split())
        return repr(text if len(text) <= 40 else f"{text[:37]}…")
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}…"


# -- choosing the folder ------------------------------------------------------------------------


@dataclass
class ChosenRun:
    """Where an invocation writes, and what to tell the user about that choice."""

    run_id: str
    root: Path
    notes: list[str] = field(default_factory=list)


def load_record(root: Path) -> RunRecord | None:
    """The record in a run folder; ``None`` when there is none. A record that cannot be read
    is a :class:`UserFacingError` (never silently taken as a match)."""
    path = root / RUN_CONFIG_FILE
    if not path.exists():
        return None
    try:
        return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError) as exc:
        raise UserFacingError(
            f"{path} cannot be read ({type(exc).__name__}); it records which configuration "
            "made the run. Use --run-id NAME for a new run, or --rerun to run again here and "
            "replace it."
        ) from None


def _has_results(root: Path) -> bool:
    """Whether any task of the run has a result (the record alone is not a run yet)."""
    return any(root.glob("*/result.json")) or any(root.glob("*/report.json"))


def choose_run(
    output: Path,
    default_id: str,
    record: RunRecord,
    *,
    run_id: str | None,
    rerun: bool,
    selected: Collection[str] = (),
) -> ChosenRun:
    """The run folder for an invocation with ``record``'s configuration (see the module
    docstring). A named run (``run_id``) whose folder holds another configuration is refused
    with the differences, unless ``rerun``. ``selected``: the instance ids this invocation
    runs, to say which results of the old configuration a rerun leaves in the folder."""
    if run_id is not None:
        return _named(output / run_id, run_id, record, rerun, selected)
    root = output / default_id
    changes = _changes(root, record, rerun)
    if changes is None or not changes:
        return ChosenRun(default_id, root, _legacy_note(root, changes))
    other_id = f"{default_id}__{record.digest()[:8]}"
    chosen = _named(output / other_id, other_id, record, rerun, selected)
    summary = "; ".join(f"{k}: {_show(k, a)} → {_show(k, b)}" for k, a, b in changes[:3])
    more = f"; and {len(changes) - 3} more" if len(changes) > 3 else ""
    chosen.notes.insert(
        0,
        f"{root} holds a run with another configuration ({summary}{more}), so this one is "
        f"{chosen.root} (--run-id names a run yourself).",
    )
    return chosen


def _named(
    root: Path, run_id: str, record: RunRecord, rerun: bool, selected: Collection[str]
) -> ChosenRun:
    changes = _changes(root, record, rerun)
    if not changes:
        return ChosenRun(run_id, root, _legacy_note(root, changes))
    if not rerun:
        raise UserFacingError(
            f"{root} holds a run made with another configuration:\n{describe_changes(changes)}\n"
            "Use --run-id NAME to start a new run, or --rerun to run the selected tasks again "
            "in this folder with the new configuration (its record is then replaced)."
        )
    kept = sorted({p.parent.name for p in root.glob("*/result.json")} - set(selected) - {".", ""})
    notes = [f"--rerun: {root} now records the new configuration."]
    if kept:
        shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
        notes.append(
            f"Tasks not run now keep their results from the earlier configuration: {shown}."
        )
    return ChosenRun(run_id, root, notes)


def _changes(root: Path, record: RunRecord, rerun: bool) -> list[tuple[str, Any, Any]] | None:
    """The differences from the folder's record; ``None`` when it has none. A folder without
    results yet (a run stopped before its first task: no Docker engine, say) is no conflict:
    its record is replaced. With ``rerun`` an unreadable record is simply replaced."""
    try:
        old = load_record(root)
    except UserFacingError:
        if rerun or not _has_results(root):
            return []
        raise
    if old is None:
        return None
    return differences(old, record) if _has_results(root) else []


def _legacy_note(root: Path, changes: list[tuple[str, Any, Any]] | None) -> list[str]:
    if changes is None and _has_results(root):
        return [
            f"{root} has no {RUN_CONFIG_FILE} (made before runs recorded their configuration); "
            "taking it as this configuration's run."
        ]
    return []


def save_record(root: Path, record: RunRecord) -> None:
    """Write ``record`` into the run folder (atomically)."""
    write_text_atomic(root / RUN_CONFIG_FILE, record.model_dump_json(indent=2) + "\n")
