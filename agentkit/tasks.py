"""SWE-bench task instances: the classic fields, the 5.x harness fields, and loading datasets.

A dataset file may be JSONL, a JSON list, or a JSON object keyed by instance id. ``FAIL_TO_PASS``
and ``PASS_TO_PASS`` may be lists or JSON-encoded strings (as on the hub); both load as lists.
Unknown fields are kept (datasets carry many extras) and written back unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentkit.errors import UserFacingError
from agentkit.validation import describe_problems


class TaskLoadError(UserFacingError, ValueError):
    """A dataset file could not be read as SWE-bench instances."""


class Task(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    instance_id: str
    repo: str = ""
    base_commit: str = ""
    patch: str = ""
    """The reference (gold) patch: source changes only."""
    test_patch: str = ""
    problem_statement: str = ""
    FAIL_TO_PASS: list[str] = Field(default_factory=list)
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    hints_text: str = ""
    created_at: str = ""
    version: str = ""
    environment_setup_commit: str | None = None

    # Fields of the swebench 5.x harness.
    image: str | None = None
    """A pre-built image with the repository at ``base_commit`` in :attr:`workdir`."""
    eval_script: str | None = None
    """A bash script that prints the test output between the SWE-bench start/end markers."""
    log_parser: str | None = None
    """Name of the test-log parser (``pytest`` when unset)."""
    eval_type: Literal["pass_and_fail", "fail_only"] = "pass_and_fail"
    """``fail_only``: only a ``FAILED`` expected test counts against the patch (a test that did not
    run does not), for suites that report failures only."""

    # agentkit fields.
    repo_dir: str | None = None
    """A local git repository holding ``base_commit``: lets a task run without a pre-built image
    (the local runtime clones it; the Docker environment copies it onto the base image)."""
    test_cmd: str | None = None
    """The test command the default eval script runs (``python -m pytest -rA`` + test files)."""
    workdir: str = "/testbed"

    @field_validator("eval_type", mode="before")
    @classmethod
    def _default_eval_type(cls, value: Any) -> Any:
        return "pass_and_fail" if value is None else value

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _decode_json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list of test names: {exc}") from exc
        return value


def load_tasks(path: str | Path) -> list[Task]:
    """Read a dataset file (JSONL, JSON list, or JSON object keyed by instance id)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskLoadError(f"cannot read dataset {path}: {exc.strerror}") from exc
    return tasks_from_records(_parse_records(text, path), path)


_SHAPES_HINT = (
    "A dataset is JSONL (one instance per line), a JSON list of instances, or a JSON object keyed "
    "by instance id."
)


def tasks_from_records(
    records: Sequence[object], source: str | Path, *, empty_hint: str = _SHAPES_HINT
) -> list[Task]:
    """Validate already-read records as tasks, with :func:`load_tasks`' error messages.

    Public so that other readers (parquet, Hugging Face datasets) word their problems the same
    way; ``source`` names where the records came from, ``empty_hint`` says what was expected.
    """
    if not records:
        raise TaskLoadError(f"{source} holds no task instances. {empty_hint}".rstrip())
    tasks: list[Task] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise TaskLoadError(
                f"{source}: instance {number} is not a JSON object but {type(record).__name__}."
            )
        try:
            tasks.append(Task.model_validate(record))
        except ValidationError as exc:
            name = record.get("instance_id")
            which = (
                f"instance {number} ({name!r})" if isinstance(name, str) else f"instance {number}"
            )
            raise TaskLoadError(
                f"{source}: {which} is not a valid task: {describe_problems(exc, Task)}."
            ) from None
    ids = [task.instance_id for task in tasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise TaskLoadError(f"{source}: duplicate instance ids: {', '.join(duplicates)}")
    return tasks


def _parse_records(text: str, path: Path) -> list[dict[str, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            if data and all(isinstance(value, dict) for value in data.values()):
                return [{"instance_id": key, **value} for key, value in data.items()]
            return [data]
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TaskLoadError(f"{path}:{line_number}: not valid JSON: {exc.msg}") from exc
    return records


def save_tasks(tasks: list[Task], path: str | Path) -> None:
    """Write tasks as JSONL, keeping extra fields."""
    lines = [task.model_dump_json(exclude_none=True) for task in tasks]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
