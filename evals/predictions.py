"""SWE-bench prediction files: what a model (or any tool) proposes, one patch per instance.

Accepted shapes, as SWE-bench's harness accepts them: JSONL (one prediction per line), a JSON
list, or a JSON object keyed by instance id (SWE-agent writes those; the key fills a missing
``instance_id``). Each prediction has ``instance_id``, ``model_patch`` and
``model_name_or_path``. ``model_patch: null`` (no prediction) and ``""`` (an empty patch) are
kept apart in the data, and both are "empty patches" in a run report, as SWE-bench counts them.
``gold`` instead of a path means the tasks' reference patches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agentkit.errors import UserFacingError
from agentkit.tasks import Task
from agentkit.validation import describe_problems

GOLD = "gold"


class PredictionsError(UserFacingError, ValueError):
    """A predictions file that cannot be read or does not fit the dataset."""


class Prediction(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    instance_id: str
    model_patch: str | None = None
    model_name_or_path: str = "unknown"

    @property
    def is_empty(self) -> bool:
        return self.model_patch is None or self.model_patch == ""


def gold_predictions(tasks: list[Task]) -> dict[str, Prediction]:
    return {
        task.instance_id: Prediction(
            instance_id=task.instance_id, model_patch=task.patch, model_name_or_path=GOLD
        )
        for task in tasks
    }


def load_predictions(source: str | Path, tasks: list[Task]) -> dict[str, Prediction]:
    """Predictions by instance id, each for a task of ``tasks`` (or :class:`PredictionsError`)."""
    if str(source) == GOLD:
        return gold_predictions(tasks)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise PredictionsError(f"Cannot read predictions {path}: {exc.strerror or exc}") from None
    predictions: dict[str, Prediction] = {}
    for number, record in enumerate(_records(text, path), start=1):
        prediction = _prediction(record, number, path)
        if prediction.instance_id in predictions:
            raise PredictionsError(f"{path}: more than one prediction for {prediction.instance_id}")
        predictions[prediction.instance_id] = prediction
    if not predictions:
        raise PredictionsError(f"{path} holds no predictions.")
    known = {task.instance_id for task in tasks}
    unknown = sorted(set(predictions) - known)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise PredictionsError(
            f"{path}: {len(unknown)} prediction(s) for instances not in the dataset: {shown}"
        )
    return predictions


def _records(text: str, path: Path) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.rstrip()):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PredictionsError(
                f"{path}: not valid JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        if isinstance(data, list):
            return data
        if isinstance(data, dict) and set(data) & {"instance_id", "model_patch"}:
            return [data]  # one prediction, not a mapping by id
        if isinstance(data, dict):
            return [
                {"instance_id": key, **value} if isinstance(value, dict) else value
                for key, value in data.items()
            ]
        raise PredictionsError(f"{path}: expected a list of predictions or an object by id")
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PredictionsError(f"{path}:{line_number}: not valid JSON: {exc.msg}") from None
    return records


def _prediction(record: Any, number: int, path: Path) -> Prediction:
    if not isinstance(record, dict):
        raise PredictionsError(f"{path}: prediction {number} is not a JSON object")
    try:
        return Prediction.model_validate(record)
    except ValidationError as exc:
        raise PredictionsError(
            f"{path}: prediction {number} is not valid: {describe_problems(exc, Prediction)}"
        ) from None
