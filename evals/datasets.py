"""Loading a dataset for evaluation: the instances, checked for what grading will need.

:func:`agentkit.tasks.load_tasks` reads and validates the SWE-bench fields; what only the grader
knows (the names of its test-log parsers) is checked here, when the dataset loads, so that a
mistyped ``log_parser`` stops the run before any agent has spent time or money on it, instead of
failing each task after its agent finished.
"""

from __future__ import annotations

from pathlib import Path

from agentkit.evals.log_parsers import has_log_parser, log_parser_names
from agentkit.tasks import Task, TaskLoadError, load_tasks


def load_dataset(path: str | Path) -> list[Task]:
    """The tasks of a dataset file, or :class:`TaskLoadError` naming the first problem."""
    tasks = load_tasks(path)
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
