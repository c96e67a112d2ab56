"""What one bundled example is: a small repository at a buggy commit, its fix, its new tests.

Examples are kept as source text rather than as checked-in repositories so the package stays a
plain Python package; :mod:`agentkit.evals.examples.build` turns them into real git repositories
and SWE-bench instances whose patches are real ``git diff`` output.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExampleSpec:
    """One task: files at the base commit, files changed by the fix and by the tests."""

    name: str
    """Repository name; the task's ``repo`` is ``agentkit-examples/<name>``."""
    number: int
    """Issue number, the tail of the instance id (``agentkit-examples__<name>-<number>``)."""
    version: str
    problem_statement: str
    base_files: dict[str, str]
    """Every file of the repository at ``base_commit`` (the buggy state)."""
    fix_files: dict[str, str]
    """Full new contents of the source files the reference fix changes."""
    test_files: dict[str, str]
    """Full new contents of the test files the test patch changes or adds."""
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    created_at: str = "2024-01-01T00:00:00Z"
    hints_text: str = ""

    @property
    def instance_id(self) -> str:
        return f"agentkit-examples__{self.name}-{self.number}"

    @property
    def repo(self) -> str:
        return f"agentkit-examples/{self.name}"
