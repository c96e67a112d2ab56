"""Evaluation: SWE-bench-format grading, log parsers, eval scripts, task environments, examples.

The names below are the public surface; heavy dependencies (the Docker SDK) load only when a
Docker environment is opened.
"""

from agentkit.evals.environment import (
    BaseImageMissingError,
    TaskEnvironmentError,
    ensure_base_image,
    open_task_runtime,
    task_image,
)
from agentkit.evals.eval_script import build_eval_script, eval_script_for, split_test_output
from agentkit.evals.grader import grade_patch
from agentkit.evals.grading import (
    InstanceReport,
    TestResults,
    TestsStatus,
    grade_eval_output,
    grade_test_log,
    is_resolved,
)
from agentkit.evals.log_parsers import TestStatus, UnknownLogParserError, get_log_parser

__all__ = [
    "BaseImageMissingError",
    "InstanceReport",
    "TaskEnvironmentError",
    "TestResults",
    "TestStatus",
    "TestsStatus",
    "UnknownLogParserError",
    "build_eval_script",
    "ensure_base_image",
    "eval_script_for",
    "get_log_parser",
    "grade_eval_output",
    "grade_patch",
    "grade_test_log",
    "is_resolved",
    "open_task_runtime",
    "split_test_output",
    "task_image",
]
