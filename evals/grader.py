"""Grade one prediction inside a runtime: apply the patch, run the eval script, grade the log.

The runtime must be fresh (the repository at ``base_commit`` in ``runtime.workdir``): grading in
the sandbox an agent worked in would let anything it left behind (installed packages, caches,
stray files outside the repository) influence the tests.

The script that runs is :func:`~agentkit.evals.eval_script.eval_script_for` given the patch: its
tamper check puts back what the patch changed about how the tests run, inside the same sandbox
command as the tests (one ``python3`` process, and only when the patch names such a file). A patch
that writes inside ``.git`` is refused before anything runs: git hooks and git's configuration
execute code in every later git command, which no check after the fact can undo.
"""

from __future__ import annotations

import shlex
import uuid

from agentkit.evals.eval_script import eval_script_for
from agentkit.evals.grading import (
    InstanceReport,
    grade_eval_output,
    report_for_apply_failure,
    report_for_error,
    report_for_no_patch,
)
from agentkit.evals.tamper import git_internal_paths, touched_paths
from agentkit.runtime.base import Runtime, SandboxError
from agentkit.tasks import Task

__all__ = ["APPLY_COMMANDS", "apply_patch", "grade_patch"]

APPLY_COMMANDS: tuple[str, ...] = (
    "git apply --verbose {patch}",
    "git apply --verbose --recount --ignore-whitespace {patch}",
    "command -v patch >/dev/null && patch --batch --fuzz=5 -p1 --dry-run -i {patch}"
    " && patch --batch --fuzz=5 -p1 -i {patch}",
)
"""Tried in order until one succeeds. Each is all-or-nothing: ``git apply`` is atomic and
``patch`` runs only after its dry run succeeded. ``git apply --reject`` is deliberately absent:
it leaves a half-applied tree behind when it fails, which would corrupt the next attempt, and
when it succeeds plain ``git apply`` would have too."""

_APPLY_TIMEOUT = 120.0


def _scratch_path(kind: str) -> str:
    """A unique path outside the repository, so it is never mistaken for an agent's file."""
    return f"/tmp/agentkit-grade-{uuid.uuid4().hex}.{kind}"


async def apply_patch(runtime: Runtime, patch: str) -> tuple[bool, str]:
    """Apply ``patch`` in ``runtime.workdir``; ``(applied, what the attempts printed)``.

    The command that applies the patch also deletes the patch file: each sandbox round trip
    costs about a tenth of a second on Docker, as much as a small test suite.
    """
    path = _scratch_path("diff")
    text = patch if patch.endswith("\n") else patch + "\n"
    await runtime.write_file(path, text)
    transcript: list[str] = []
    quoted = shlex.quote(path)
    for template in APPLY_COMMANDS:
        command = (
            f"cd {shlex.quote(runtime.workdir)} && {template.format(patch=quoted)}; "
            f"status=$?; if [ $status -eq 0 ]; then rm -f {quoted}; fi; exit $status"
        )
        result = await runtime.run(command, timeout=_APPLY_TIMEOUT, stateless=True)
        transcript.append(f"$ {template.format(patch='PATCH')}\n{result.output}")
        if result.exit_code == 0:
            return True, "\n".join(transcript)
    await runtime.run(f"rm -f {quoted}", timeout=_APPLY_TIMEOUT, stateless=True)
    return False, "\n".join(transcript)


async def grade_patch(
    runtime: Runtime, task: Task, patch: str | None, timeout: float = 1800
) -> InstanceReport:
    """Apply ``patch`` (the model's diff; ``None`` = no prediction) and grade the task's tests.

    Never raises for what a patch or the tests do: a patch that does not apply is unresolved;
    a sandbox failure, a timeout or a run without the test-output markers comes back as a report
    with ``error`` set. The raw eval output is on ``report.test_output``.
    """
    if patch is None:
        return report_for_no_patch(task)
    inside_git = git_internal_paths(touched_paths(patch))
    if inside_git:
        refusal = "not applied: the patch writes inside .git: " + ", ".join(inside_git)
        report = report_for_apply_failure(task, patch, refusal)
        return report.model_copy(update={"tampering": inside_git})
    apply_output = ""
    try:
        if patch.strip():
            applied, apply_output = await apply_patch(runtime, patch)
            if not applied:
                return report_for_apply_failure(task, patch, apply_output)
        return await _run_tests(runtime, task, patch, timeout, apply_output)
    except SandboxError as exc:
        return report_for_error(
            task, patch, "sandbox", f"sandbox failed: {exc}", apply_output=apply_output
        )


async def _run_tests(
    runtime: Runtime, task: Task, patch: str, timeout: float, apply_output: str
) -> InstanceReport:
    script = eval_script_for(task, runtime.workdir, patch)
    script_path, log_path = _scratch_path("sh"), _scratch_path("log")
    await runtime.write_file(script_path, script)
    try:
        # The output goes to a file: a runtime shapes command output for a model (cut in the
        # middle past a limit), and the grade needs every line.
        result = await runtime.run(
            f"bash {shlex.quote(script_path)} > {shlex.quote(log_path)} 2>&1",
            timeout=timeout,
            stateless=True,
        )
        try:
            output = (await runtime.read_file(log_path)).decode("utf-8", errors="replace")
        except OSError as exc:
            raise SandboxError(f"the eval log could not be read back: {exc}") from exc
    finally:
        await runtime.run(
            f"rm -f {shlex.quote(script_path)} {shlex.quote(log_path)}",
            timeout=_APPLY_TIMEOUT,
            stateless=True,
        )
    if result.timed_out:
        report = report_for_error(
            task,
            patch,
            "timeout",
            f"the eval script did not finish within {timeout:g} s",
            test_output=output,
            apply_output=apply_output,
        )
    else:
        report = grade_eval_output(task, output, patch, apply_output=apply_output)
    return report.model_copy(update={"eval_script": script})
