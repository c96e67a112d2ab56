"""Tasks as SWE-bench 5.x instances, so the ``swebench`` harness can grade them too.

A 5.x instance carries everything its harness needs to grade a patch without knowing the
repository: a local ``image`` with the repository at ``base_commit`` in ``/testbed``, the
``eval_script`` run after the model patch is applied, the ``log_parser`` that reads its output,
and the ``eval_type``. Exporting agentkit's tasks in that form lets the same predictions be
graded by both harnesses and the reports compared (``tests/test_swebench_compat.py``), and lets
a team hand its tasks to anyone who grades with ``swebench``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentkit.errors import UserFacingError
from agentkit.evals.environment import task_image
from agentkit.evals.eval_script import build_eval_script
from agentkit.evals.log_parsers import has_log_parser, log_parser_name_for
from agentkit.tasks import Task

__all__ = ["SWEBENCH5_FIELDS", "export_swebench5", "to_swebench5"]

SWEBENCH5_FIELDS = ("image", "eval_script", "log_parser", "eval_type")
"""What a 5.x instance adds to the classic SWE-bench fields."""

# agentkit's own readers whose output a SWE-bench parser reads the same way.
_SWEBENCH_NAMES = {"pytest": "parse_log_pytest"}


class ExportError(UserFacingError, ValueError):
    """A task cannot be expressed as a SWE-bench 5.x instance."""


def _swebench_log_parser(task: Task) -> str:
    name = log_parser_name_for(task.log_parser, task.repo)
    name = _SWEBENCH_NAMES.get(name, name)
    if not name.startswith("parse_log_") or not has_log_parser(name):
        raise ExportError(
            f"task {task.instance_id}: its log parser {name!r} has no SWE-bench equivalent; "
            "set `log_parser` to one of SWE-bench's parse_log_* names"
        )
    return name


def to_swebench5(task: Task, image: str) -> dict[str, Any]:
    """``task`` as a 5.x instance graded in ``image``. A task that already carries its own
    ``eval_script`` keeps it; otherwise the script is agentkit's, without the exit-code line
    (the 5.x harness inserts its own after the test command)."""
    if task.workdir != "/testbed":
        raise ExportError(
            f"task {task.instance_id}: SWE-bench runs every task in /testbed, not {task.workdir}"
        )
    record = task.model_dump(mode="json", exclude={"repo_dir", "test_cmd", "workdir"})
    record.update(
        image=image,
        eval_script=task.eval_script or build_eval_script(task, patch="", record_exit_code=False),
        log_parser=_swebench_log_parser(task),
        eval_type=task.eval_type,
    )
    return record


def export_swebench5(
    tasks: Sequence[Task],
    path: str | Path,
    *,
    build_image: Callable[[Task], str] = task_image,
) -> Path:
    """Write ``tasks`` to ``path`` (JSONL) as 5.x instances, building each task's Docker image
    first (blocking; an image already built is reused). Grade them with
    ``python -m swebench.harness.run_evaluation --dataset_name PATH ...``."""
    path = Path(path)
    lines = [json.dumps(to_swebench5(task, build_image(task))) + "\n" for task in tasks]
    path.write_text("".join(lines), encoding="utf-8")
    return path
