"""The workspace as a submission: its changes as one git diff, computed in the runtime.

Every scaffold type submits the same way: whatever produced the changes (a tool loop, a
pipeline that applied its own patch), :func:`workspace_diff` turns the working tree into the
trajectory's ``submission``.
"""

from __future__ import annotations

import shlex

from agentkit.runtime.base import Runtime, SandboxError

DIFF_FILE = ".git/agentkit_submission.diff"
"""Inside the repository's git dir: per workspace, never part of the diff."""


async def workspace_diff(
    runtime: Runtime, base_commit: str | None = None, *, timeout: float | None = 120.0
) -> str:
    """The workspace's changes against ``base_commit``, untracked files included.

    Without a base commit: against the current commit, or the empty tree in a repository with
    none. A workspace that is not a git repository raises :class:`SandboxError`.

    Written to a file and read back as bytes: command output is shaped for the model (cut when
    long), and a submission must be exact.
    """
    base = (
        shlex.quote(base_commit)
        if base_commit
        else "$(git rev-parse -q --verify HEAD || git hash-object -t tree /dev/null)"
    )
    workdir = shlex.quote(runtime.workdir)
    result = await runtime.run(
        f"cd {workdir} && git add -A && git -c core.quotepath=false diff --cached --binary "
        f"{base} > {DIFF_FILE}",
        timeout=timeout,
        stateless=True,
    )
    if result.exit_code != 0:
        raise SandboxError(f"could not compute the submission diff: {result.output}")
    diff_path = f"{runtime.workdir.rstrip('/')}/{DIFF_FILE}"
    return (await runtime.read_file(diff_path)).decode("utf-8", errors="surrogateescape")
