"""``agentkit run --repo PATH --problem TEXT``: a scaffold on the user's own repository, with no
dataset and no tests. The result is the trajectory and the patch, like any run's, not graded.

The repository is never touched. It is read (``git ls-files``, ``git fetch`` from it) into a
snapshot repository in a scratch folder, and the sandbox is made from the snapshot exactly as
for a dataset task (:func:`agentkit.evals.environment.open_task_runtime`).

Uncommitted work is part of the problem's starting point: the snapshot is the working tree as
it is (tracked files with their changes, and untracked files that ``.gitignore`` does not
exclude), committed on top of ``HEAD`` with a fixed author and date. The patch is therefore
relative to the working tree, and ``git apply PATCH`` in the repository applies it as it
stands. The same working tree gives the same snapshot commit, so the same command resumes (its
run folder is found again) and a Docker image built for it is reused.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentkit.cli.run_config import TaskSource
from agentkit.errors import UserFacingError
from agentkit.git_env import isolated_git_env
from agentkit.tasks import Task

if TYPE_CHECKING:
    from rich.console import Console

    from agentkit.cli.runner import RunSettings
    from agentkit.evals.run_folder import RunFolder, TaskResult

__all__ = [
    "Snapshot",
    "adhoc_for",
    "adhoc_source",
    "print_patches",
    "read_problem",
    "snapshot_working_tree",
]

_FIXED_DATE = "2000-01-01T00:00:00+00:00"
_SNAPSHOT_REF = "refs/heads/agentkit-snapshot"
_MESSAGE = "agentkit: snapshot of the working tree (uncommitted changes included)"


@dataclass(frozen=True)
class Snapshot:
    """The user's repository as a commit in a scratch repository."""

    source: Path
    """The repository's top level."""
    repo_dir: Path
    """The scratch repository holding :attr:`commit`."""
    commit: str
    head: str | None
    """The repository's ``HEAD`` (``None`` in a repository without commits)."""

    @property
    def uncommitted(self) -> bool:
        """Whether the working tree differed from ``HEAD`` (then :attr:`commit` is new)."""
        return self.commit != self.head


class _GitError(UserFacingError, RuntimeError):
    pass


def _user_env() -> dict[str, str]:
    """For commands on the user's repository: their own configuration (global excludes count),
    no variable that points git elsewhere, and no optional lock or index refresh."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def _scratch_env() -> dict[str, str]:
    """For the scratch repository: no user configuration or hooks, a fixed identity and date,
    so the same tree always gives the same commit."""
    return isolated_git_env(name="agentkit", email="agentkit@localhost", date=_FIXED_DATE)


def _git(cwd: Path, *args: str, env: dict[str, str], check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, env=env, check=False)
    if check and done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip()
        raise _GitError(f"git {' '.join(args[:2])} failed in {cwd}: {error}")
    return done.stdout.decode("utf-8", errors="surrogateescape") if done.returncode == 0 else ""


def snapshot_working_tree(repo: Path, dest: Path) -> Snapshot:
    """Make ``dest`` a repository whose ``agentkit-snapshot`` branch is ``repo``'s working
    tree (see the module docstring); ``repo`` is only read."""
    path = repo.expanduser()
    if not path.is_dir():
        raise UserFacingError(f"--repo {repo}: no such folder.")
    user = _user_env()
    top_text = _git(path, "rev-parse", "--show-toplevel", env=user, check=False).strip()
    if not top_text:
        raise UserFacingError(
            f"--repo {repo} is not a git repository. Make it one first (git init && git add -A "
            "&& git commit -m start): the patch is a git diff against its files."
        )
    top = Path(top_text).resolve()
    found = _git(top, "rev-parse", "-q", "--verify", "HEAD^{commit}", env=user, check=False)
    head = found.strip() or None
    listed = _git(
        top, "ls-files", "-z", "--cached", "--others", "--exclude-standard", env=user
    ).split("\0")
    files = sorted({name for name in listed if name})
    scratch = _scratch_env()
    dest.mkdir(parents=True, exist_ok=True)
    _git(dest, "init", "-q", env=scratch)
    if head is not None:
        _git(dest, "fetch", "-q", "--no-tags", str(top), head, env=scratch)
    copied = _copy_files(top, dest, files)
    if not copied and head is None:
        raise UserFacingError(f"--repo {repo}: the repository has no commits and no files.")
    _git(dest, "add", "-A", "-f", ".", env=scratch)  # the copied files are all there is
    tree = _git(dest, "write-tree", env=scratch).strip()
    if (
        head is not None
        and tree == _git(dest, "rev-parse", f"{head}^{{tree}}", env=scratch).strip()
    ):
        commit = head
    else:
        parent = ["-p", head] if head is not None else []
        commit = _git(dest, "commit-tree", tree, *parent, "-m", _MESSAGE, env=scratch).strip()
    _git(dest, "update-ref", _SNAPSHOT_REF, commit, env=scratch)
    return Snapshot(source=top, repo_dir=dest.resolve(), commit=commit, head=head)


def _copy_files(top: Path, dest: Path, names: list[str]) -> list[str]:
    """Copy the listed files (links as links, modes kept) into ``dest``; the names copied.
    A tracked file deleted in the working tree, or a submodule (a folder), is left out."""
    copied = []
    for name in names:
        source = top / name
        target = dest / name
        if source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:
            continue
        copied.append(name)
    return copied


def read_problem(problem: str | None, problem_file: Path | None) -> str:
    """The problem statement from ``--problem`` or ``--problem-file`` (exactly one)."""
    if (problem is None) == (problem_file is None):
        raise UserFacingError(
            "--repo needs the problem to work on: --problem TEXT or --problem-file FILE (one)."
        )
    if problem_file is not None:
        try:
            problem = problem_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserFacingError(f"--problem-file {problem_file}: {exc.strerror or exc}") from None
    assert problem is not None
    if not problem.strip():
        raise UserFacingError("The problem statement is empty: say what the agent should do.")
    return problem


def _instance_id(top: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", top.name).strip("-.") or "repo"


@contextmanager
def adhoc_source(repo: Path, problem: str) -> Iterator[TaskSource]:
    """The one ungraded task of ``--repo``: its snapshot lives in a scratch folder for as long
    as the ``with`` block (the run) lasts."""
    with tempfile.TemporaryDirectory(prefix="agentkit-repo-") as scratch:
        snapshot = snapshot_working_tree(repo, Path(scratch) / "repo")
        instance_id = _instance_id(snapshot.source)
        task = Task(
            instance_id=instance_id,
            repo=snapshot.source.name,
            base_commit=snapshot.commit,
            problem_statement=problem,
            repo_dir=str(snapshot.repo_dir),
        )
        identity = {
            "repo": str(snapshot.source),
            "base_commit": snapshot.commit,
            "problem_sha256": hashlib.sha256(problem.encode()).hexdigest(),
        }
        details = {"repo_head": snapshot.head, "uncommitted_changes": snapshot.uncommitted}
        yield TaskSource(
            tasks=[task],
            identity=identity,
            details=details,
            id_prefix=f"{instance_id}__",
            grade=False,
        )


def adhoc_for(settings: RunSettings) -> AbstractContextManager[TaskSource]:
    """:func:`adhoc_source` for ``agentkit run --repo``'s settings, which must not also name
    a dataset or its selection."""
    given = [
        name
        for name, value in (
            ("--dataset", settings.dataset),
            ("--task", settings.task_ids),
            ("--filter", settings.pattern),
            ("--slice", settings.slice),
        )
        if value
    ]
    if given:
        raise UserFacingError(f"--repo is a run without a dataset; drop {', '.join(given)}.")
    if settings.executor != "local":
        raise UserFacingError(
            "--repo runs on this machine (its snapshot is here); drop --executor."
        )
    assert settings.repo is not None
    return adhoc_source(settings.repo, read_problem(settings.problem, settings.problem_file))


def print_patches(console: Console, folder: RunFolder, results: Sequence[TaskResult]) -> None:
    """Where an ungraded run's patches are, and how to apply them."""
    for result in results:
        if result.error is not None:
            continue
        path = folder.task_dir(result.instance_id, result.attempt) / "patch.diff"
        patch = folder.saved_patch(result.instance_id, result.attempt)
        if not patch.strip():
            console.print(f"Patch: none, the agent changed nothing (trajectory: {path.parent}/)")
            continue
        changed = len(re.findall(r"^diff --git ", patch, flags=re.MULTILINE))
        console.print(
            f"Patch ({changed} file{'s' if changed != 1 else ''} changed, not graded): {path}\n"
            f"Apply it in your repository with: git apply {path.resolve()}",
            highlight=False,
            soft_wrap=True,
        )
