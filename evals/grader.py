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

import asyncio
import shlex
import tempfile
import uuid
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path

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

__all__ = ["APPLY_COMMANDS", "grade_patch"]

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

_PATCH, _APPLY, _EVAL = "patch.diff", "apply.sh", "eval.sh"
_APPLY_LOG, _EVAL_LOG = "apply.log", "eval.log"


async def grade_patch(
    runtime: Runtime,
    task: Task,
    patch: str | None,
    timeout: float = 1800,
    *,
    test_slot: AbstractAsyncContextManager[object] | None = None,
) -> InstanceReport:
    """Apply ``patch`` (the model's diff; ``None`` = no prediction) and grade the task's tests.

    ``test_slot``, when given, is held while the patch is applied and the tests run, and only
    then: a caller that bounds how many test suites run at once (one per CPU, say) can let
    other sandboxes start, receive their files and stop meanwhile.

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
    try:
        return await _apply_and_test(runtime, task, patch, timeout, test_slot or nullcontext())
    except SandboxError as exc:
        return report_for_error(task, patch, "sandbox", f"sandbox failed: {exc}")


async def _apply_and_test(
    runtime: Runtime,
    task: Task,
    patch: str,
    timeout: float,
    test_slot: AbstractAsyncContextManager[object],
) -> InstanceReport:
    """Few sandbox round trips: upload one folder holding the patch, a script that applies it
    and the eval script; run both scripts in the runtime's shell session (a command there
    costs about a millisecond); download the folder with the logs. An upload, a download or a
    fresh process costs about a tenth of a second on Docker, as much as a small test suite.

    The folder lives outside the repository under a unique name, so it is never mistaken for
    an agent's file; it is not removed afterwards, because a grading sandbox is thrown away.
    """
    script = eval_script_for(task, runtime.workdir, patch)
    folder = f"/tmp/agentkit-grade-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory(prefix="agentkit-grade-") as host:
        upload = Path(host, "up")
        upload.mkdir()
        upload.chmod(0o777)  # the logs are written there by whichever user the image runs as
        if patch.strip():
            text = patch if patch.endswith("\n") else patch + "\n"
            (upload / _PATCH).write_bytes(text.encode("utf-8", errors="surrogateescape"))
            (upload / _APPLY).write_text(_apply_script(runtime.workdir, folder), "utf-8")
        (upload / _EVAL).write_text(script, encoding="utf-8")
        # Starting the shell session costs a process in the sandbox: do it beside the upload,
        # before taking a test slot.
        await asyncio.gather(runtime.upload(upload, folder), runtime.run(":", _APPLY_TIMEOUT))
        async with test_slot:
            if patch.strip():
                applying = await runtime.run(
                    f"bash {shlex.quote(folder + '/' + _APPLY)}", timeout=_APPLY_TIMEOUT
                )
                if applying.exit_code != 0:
                    (apply_output,) = await _download(
                        runtime, folder, Path(host, "down"), _APPLY_LOG
                    )
                    return report_for_apply_failure(task, patch, apply_output)
            # The output goes to a file: a runtime shapes command output for a model (cut in the
            # middle past a limit), and the grade needs every line.
            eval_log = shlex.quote(f"{folder}/{_EVAL_LOG}")
            result = await runtime.run(
                f"bash {shlex.quote(folder + '/' + _EVAL)} > {eval_log} 2>&1", timeout=timeout
            )
        # A sandbox killed during the tests ends the shell session, and a stopped container's
        # files can still be read: the next command is what reports its death.
        await runtime.run(":", _APPLY_TIMEOUT)
        back = Path(host, "down")
        apply_output, output = await _download(runtime, folder, back, _APPLY_LOG, _EVAL_LOG)
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


def _apply_script(workdir: str, folder: str) -> str:
    """Try each of :data:`APPLY_COMMANDS` in turn (transcript in ``apply.log``); on success
    delete the patch so the tests never see it and exit 0."""
    patch, log = shlex.quote(f"{folder}/{_PATCH}"), shlex.quote(f"{folder}/{_APPLY_LOG}")
    lines = ["set +e", f"cd {shlex.quote(workdir)} || exit 1"]
    for template in APPLY_COMMANDS:
        shown = shlex.quote("$ " + template.format(patch="PATCH"))
        lines.append(f"printf '%s\\n' {shown} >> {log}")
        command = template.format(patch=patch)
        lines.append(f"{{ {command} ; }} >> {log} 2>&1 && {{ rm -f {patch}; exit 0; }}")
    lines.append("exit 1")
    return "\n".join(lines) + "\n"


async def _download(runtime: Runtime, folder: str, host: Path, *names: str) -> tuple[str, ...]:
    """The files ``names`` of the grading folder, in one round trip ("" for a missing one)."""
    try:
        await runtime.download(folder, host)
    except OSError as exc:
        raise SandboxError(f"the grading logs could not be read back: {exc}") from exc
    return tuple(_read(host / name) for name in names)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
