"""The run folder: the one place that knows where a run's files live and how they are written.

```
RUN_DIR/
├── report.json        the run report (every task in the folder, not only the last invocation's)
├── preds.jsonl        the graded patches as SWE-bench predictions
├── run_config.json    the configuration that made the run (scaffold, backend, runtime, tasks)
└── INSTANCE_ID/
    ├── result.json    this task's outcome (also for errors, which have no grade)
    ├── trajectory.json, patch.diff
    ├── report.json    the SWE-bench per-instance report (only when graded)
    ├── test_output.txt, eval.sh
    └── error.log      the traceback of an unexpected exception
```

The folder is the state: a task whose ``report.json`` exists is finished, so a rerun skips it
(in a run without grading, a ``result.json`` without an error marks it finished); any other
task (never started, interrupted, or ended in an error that is not the patch's fault) runs
again. Every file is written atomically, so a killed run leaves whole files or none.
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agentkit.errors import UserFacingError, unexpected_error_message
from agentkit.evals.grading import InstanceReport
from agentkit.evals.infra import classify_log
from agentkit.evals.predictions import Prediction
from agentkit.evals.statistics import AttemptRecord, run_statistics
from agentkit.tasks import Task
from agentkit.types import Trajectory, write_text_atomic

RUN_REPORT_SCHEMA_VERSION = 2
RUN_CONFIG_FILE = "run_config.json"
"""The record of the configuration that made the run, in the run folder's root."""
_RECORD_FIELDS = set(AttemptRecord.model_fields)


class TaskResult(BaseModel):
    """One task's outcome in a run. ``error`` set means no grade (a rerun retries the task)."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    attempt: int = 0
    """0-based; a run with ``attempts=k`` runs each task k times."""
    repo: str = ""
    exit_status: str | None = None
    steps: int = 0
    resolved: bool | None = None
    error: str | None = None
    cost: float = 0.0
    wall_time_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    grade_key: str | None = None
    """What the grade depends on (patch, task, eval script, image), hashed: grade-only runs
    regrade a task whose key changed."""
    resumed: bool = False
    """Finished by an earlier invocation and not run again."""
    graded: bool = True
    """``False`` in a run without grading (a user's own repository, no tests): ``resolved``
    stays ``None`` and the trajectory and patch are the whole result."""

    @property
    def ok(self) -> bool:
        return self.error is None


class RunFolder:
    """Reads and writes one run's folder; see the module docstring for its layout."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root = root
        self.run_id = run_id

    def prepare(self) -> None:
        """Create the folder and prove it is writable before any sandbox or model starts, so a
        bad output path costs one line, not a traceback after the first task."""
        probe = self.root / f".agentkit-write-test-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(probe) else ""
            raise UserFacingError(
                f"Cannot write results to {self.root}: {reason}{where}. "
                "Choose another --output folder."
            ) from None

    def task_dir(self, instance_id: str, attempt: int = 0) -> Path:
        """``INSTANCE_ID/`` for the first attempt (where SWE-bench tools look), and
        ``INSTANCE_ID/attempt-N/`` for the others."""
        if attempt == 0:
            return self.root / instance_id
        return self.root / instance_id / f"attempt-{attempt}"

    def trajectory_path(self, instance_id: str, attempt: int = 0) -> Path:
        return self.task_dir(instance_id, attempt) / "trajectory.json"

    # -- reading ------------------------------------------------------------------------------

    def finished(
        self, instance_id: str, grade_key: str | None = None, attempt: int = 0
    ) -> TaskResult | None:
        """The result of a task graded by an earlier invocation, or ``None``; with
        ``grade_key``, only a result graded under that same key counts."""
        out = self.task_dir(instance_id, attempt)
        report_path = out / "report.json"
        result_path = out / "result.json"
        if not report_path.exists():
            return self._finished_ungraded(result_path)
        if result_path.exists():
            result = TaskResult.model_validate_json(result_path.read_text(encoding="utf-8"))
        else:  # a folder written before result.json existed
            report = json.loads(report_path.read_text(encoding="utf-8"))[instance_id]
            if report.get("error"):
                return None  # an infrastructure error is retried, never kept as a verdict
            trajectory = Trajectory.load(out / "trajectory.json")
            result = TaskResult(
                instance_id=instance_id,
                exit_status=str(trajectory.exit_status),
                steps=len(trajectory.steps),
                resolved=report.get("resolved"),
                error=report.get("error"),
                cost=trajectory.cost,
            )
        if result.error is not None or (grade_key is not None and result.grade_key != grade_key):
            return None
        return result.model_copy(update={"resumed": True})

    @staticmethod
    def _finished_ungraded(result_path: Path) -> TaskResult | None:
        """A run without grading has no ``report.json``: its result, when it ended without an
        error, is the verdict."""
        if not result_path.exists():
            return None
        try:
            result = TaskResult.model_validate_json(result_path.read_text(encoding="utf-8"))
        except ValueError:
            return None
        if result.graded or result.error is not None:
            return None
        return result.model_copy(update={"resumed": True})

    def results(self) -> list[TaskResult]:
        """Every task's latest result in the folder, by instance id."""
        found = []
        paths = [*self.root.glob("*/result.json"), *self.root.glob("*/attempt-*/result.json")]
        for path in sorted(paths):
            try:
                found.append(TaskResult.model_validate_json(path.read_text(encoding="utf-8")))
            except ValueError:
                continue  # a foreign or damaged file: not this run's state
        return found

    # -- writing ------------------------------------------------------------------------------

    def save_result(self, result: TaskResult) -> None:
        stored = result.model_copy(update={"resumed": False})
        out = self.task_dir(result.instance_id, result.attempt)
        write_text_atomic(out / "result.json", stored.model_dump_json(indent=2))

    def save_patch(self, instance_id: str, patch: str, attempt: int = 0) -> None:
        write_text_atomic(self.task_dir(instance_id, attempt) / "patch.diff", patch)

    def saved_patch(self, instance_id: str, attempt: int = 0) -> str:
        """The patch an attempt submitted (``""`` when none was saved)."""
        path = self.task_dir(instance_id, attempt) / "patch.diff"
        return path.read_text(encoding="utf-8", errors="surrogateescape") if path.exists() else ""

    def saved_trajectory(self, instance_id: str, attempt: int = 0) -> Trajectory | None:
        path = self.trajectory_path(instance_id, attempt)
        return Trajectory.load(path) if path.exists() else None

    def save_grade(
        self, report: InstanceReport, trajectory: Trajectory | None, result: TaskResult
    ) -> None:
        """The grading files, the reward into the trajectory, and the result; ``report.json``
        last, since its presence marks the task finished. A report with ``error`` (no evidence
        either way) gets no ``report.json``: it is retried, never kept as a verdict."""
        out = self.task_dir(report.instance_id, result.attempt)
        write_text_atomic(out / "test_output.txt", report.test_output)
        write_text_atomic(out / "eval.sh", report.eval_script)
        if trajectory is not None and report.error is None:
            trajectory.reward = 1.0 if report.resolved else 0.0
            trajectory.save(out / "trajectory.json")
        self.save_result(result)
        if report.error is None:
            write_text_atomic(out / "report.json", json.dumps(report.to_swebench(), indent=2))

    def save_exception(self, instance_id: str, exc: BaseException, attempt: int = 0) -> str:
        """Write the traceback to ``error.log``; the one-line message that points at it."""
        text = "".join(traceback.format_exception(exc))
        return self.save_traceback(instance_id, unexpected_error_message(exc), text, attempt)

    def save_traceback(self, instance_id: str, message: str, text: str, attempt: int = 0) -> str:
        """Write a formatted traceback (``text``, perhaps from another process or node) to
        ``error.log``; ``message`` with a pointer to it."""
        path = self.task_dir(instance_id, attempt) / "error.log"
        try:
            write_text_atomic(path, text)
        except OSError:
            return message
        return f"{message} (traceback: {path})"

    # -- moving a task's files between folders ------------------------------------------------

    def pack_task(self, instance_id: str, attempt: int = 0) -> dict[str, bytes]:
        """The files of one attempt's folder, by name: what a worker that wrote them into a
        scratch folder on its own machine sends back (other attempts' folders are not
        included, nor a write still in progress)."""
        out = self.task_dir(instance_id, attempt)
        if not out.is_dir():
            return {}
        return {
            path.name: path.read_bytes()
            for path in sorted(out.iterdir())
            if path.is_file() and not (path.name.startswith(".") and path.name.endswith(".tmp"))
        }

    def unpack_task(self, instance_id: str, attempt: int, files: Mapping[str, bytes]) -> None:
        """Write what :meth:`pack_task` gave into this folder, each file atomically and
        ``report.json`` last (its presence marks the task finished)."""
        names = sorted(files, key=lambda name: (name == "report.json", name))
        for name in names:
            if name in ("", ".", "..") or Path(name).name != name:
                raise ValueError(f"not a file name of a task folder: {name!r}")
        out = self.task_dir(instance_id, attempt)
        for name in names:
            _write_bytes_atomic(out / name, files[name])

    def write_summary(self, model_name: str) -> dict[str, object]:
        """Write the run report and the predictions for every task in the folder. The id lists
        and ``preds.jsonl`` are the first attempt's (SWE-bench has one prediction per task);
        ``statistics`` covers every attempt (pass@k, rates per repo, spend)."""
        every = self.results()
        results = [r for r in every if r.attempt == 0]
        report = _run_report(self.run_id, results, self._graded_patches(results))
        report["statistics"] = run_statistics([_attempt_record(r) for r in every]).model_dump(
            mode="json"
        )
        write_text_atomic(self.root / "report.json", json.dumps(report, indent=2))
        lines = [
            json.dumps({"instance_id": i, "model_name_or_path": model_name, "model_patch": p})
            for i, p in self._graded_patches(results).items()
        ]
        write_text_atomic(self.root / "preds.jsonl", "".join(line + "\n" for line in lines))
        return report

    def write_swebench_report(
        self, tasks: Sequence[Task], predictions: Mapping[str, Prediction]
    ) -> dict[str, object]:
        """The run report of a grade-only run, in SWE-bench 5.x's shape and with its rules:
        every dataset task counts in ``total_instances``; empty patches are not run; a
        prediction without a per-instance report is an error; likely infrastructure failures
        among the unresolved and errors are named (advisory)."""
        resolved: set[str] = set()
        unresolved: set[str] = set()
        errors: set[str] = set()
        empty: set[str] = set()
        incomplete: set[str] = set()
        for task in tasks:
            instance_id = task.instance_id
            prediction = predictions.get(instance_id)
            if prediction is None:
                incomplete.add(instance_id)
            elif prediction.is_empty:
                empty.add(instance_id)
            else:
                report_path = self.task_dir(instance_id) / "report.json"
                try:
                    body = json.loads(report_path.read_text(encoding="utf-8"))[instance_id]
                except (OSError, ValueError, KeyError):
                    errors.add(instance_id)
                    continue
                if not body.get("patch_successfully_applied") and body.get("patch_exists"):
                    errors.add(instance_id)  # SWE-bench: a patch that does not apply is an error
                    continue
                (resolved if body.get("resolved") else unresolved).add(instance_id)
        reasons: dict[str, str] = {}
        infra: set[str] = set()
        ambiguous: set[str] = set()
        for instance_id in unresolved | errors:
            classified = classify_log(self._logs(instance_id))
            if classified is not None:
                reasons[instance_id] = classified[0]
                (infra if classified[1] == "environment" else ambiguous).add(instance_id)
        completed = resolved | unresolved
        report: dict[str, object] = {
            "total_instances": len(tasks),
            "submitted_instances": len(predictions),
            "completed_instances": len(completed),
            "resolved_instances": len(resolved),
            "unresolved_instances": len(unresolved),
            "infra_failure_instances": len(infra),
            "ambiguous_failure_instances": len(ambiguous),
            "empty_patch_instances": len(empty),
            "error_instances": len(errors),
            "completed_ids": sorted(completed),
            "incomplete_ids": sorted(incomplete),
            "empty_patch_ids": sorted(empty),
            "submitted_ids": sorted(predictions),
            "resolved_ids": sorted(resolved),
            "unresolved_ids": sorted(unresolved),
            "infra_failure_ids": sorted(infra),
            "ambiguous_failure_ids": sorted(ambiguous),
            "failure_reasons": dict(sorted(reasons.items())),
            "error_ids": sorted(errors),
            "schema_version": RUN_REPORT_SCHEMA_VERSION,
        }
        write_text_atomic(self.root / "report.json", json.dumps(report, indent=4))
        lines = [prediction.model_dump_json() for prediction in predictions.values()]
        write_text_atomic(self.root / "preds.jsonl", "".join(line + "\n" for line in lines))
        return report

    def _logs(self, instance_id: str) -> str:
        """The test log and the error log of a task, as far as they exist."""
        texts = []
        for name in ("test_output.txt", "error.log"):
            path = self.task_dir(instance_id) / name
            if path.exists():
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(texts)

    def _graded_patches(self, results: Iterable[TaskResult]) -> dict[str, str]:
        """The submitted patch of every graded task, by instance id."""
        patches = {}
        for result in results:
            path = self.task_dir(result.instance_id) / "patch.diff"
            if result.error is None and path.exists():
                patches[result.instance_id] = path.read_text(
                    encoding="utf-8", errors="surrogateescape"
                )
        return patches


def _attempt_record(result: TaskResult) -> AttemptRecord:
    """What the statistics see of a result; one that was never graded is no evidence either
    way, as an error is (its spend still counts)."""
    data = result.model_dump(include=_RECORD_FIELDS)
    if not result.graded:
        data["error"] = data["error"] or "not graded"
    return AttemptRecord.model_validate(data)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _run_report(
    run_id: str, results: list[TaskResult], patches: dict[str, str]
) -> dict[str, object]:
    """The SWE-bench run report's counts and id lists, plus each task's exit status."""

    def ids(keep: Callable[[TaskResult], bool]) -> list[str]:
        return sorted(r.instance_id for r in results if keep(r))

    completed = ids(lambda r: r.error is None)
    resolved = ids(lambda r: bool(r.resolved) and r.error is None)
    unresolved = ids(lambda r: r.error is None and r.graded and not r.resolved)
    errors = ids(lambda r: r.error is not None)
    empty = sorted(i for i, patch in patches.items() if not patch.strip())
    return {
        "run_id": run_id,
        "total_instances": len(results),
        "submitted_instances": len(results),
        "completed_instances": len(completed),
        "resolved_instances": len(resolved),
        "unresolved_instances": len(unresolved),
        "empty_patch_instances": len(empty),
        "error_instances": len(errors),
        "completed_ids": completed,
        "resolved_ids": resolved,
        "unresolved_ids": unresolved,
        "empty_patch_ids": empty,
        "error_ids": errors,
        "not_graded_ids": ids(lambda r: r.error is None and not r.graded),
        "exit_statuses": {r.instance_id: r.exit_status for r in results},
        "errors": {r.instance_id: r.error for r in results if r.error is not None},
        "cost": round(sum(r.cost for r in results), 6),
        "schema_version": RUN_REPORT_SCHEMA_VERSION,
    }
