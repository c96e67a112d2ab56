"""Create the example repositories and their SWE-bench dataset.

Usage: ``python -m agentkit.evals.examples.build OUT_DIR`` → ``OUT_DIR/repos/<name>`` (git
repositories at the buggy commit) and ``OUT_DIR/examples.jsonl``.

Commits use a fixed author, committer and date and an isolated git configuration, so
``base_commit`` is the same on every machine. ``patch`` and ``test_patch`` are real ``git diff``
output against that commit; the working trees are left clean at ``base_commit``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from agentkit.evals.examples.catalog import EXAMPLES
from agentkit.evals.examples.spec import ExampleSpec
from agentkit.git_env import isolated_git_env
from agentkit.tasks import Task, save_tasks

__all__ = ["DATASET_NAME", "ExampleBuildError", "build_example", "build_examples", "main"]

DATASET_NAME = "examples.jsonl"
_FIXED_DATE = "2024-01-01T00:00:00+00:00"


class ExampleBuildError(RuntimeError):
    """git failed while creating an example repository."""


def _git_env() -> dict[str, str]:
    """An environment in which git ignores the user's configuration and hooks."""
    return isolated_git_env(
        name="agentkit examples", email="examples@agentkit.invalid", date=_FIXED_DATE
    )


def _git(repo: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(repo), *args],
        env=_git_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise ExampleBuildError(
            f"git {' '.join(args)} failed in {repo}: {completed.stderr.strip()}"
        )
    return completed.stdout


def _write(repo: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _diff_of(repo: Path, files: dict[str, str]) -> str:
    """Write ``files`` over the base tree, take the diff, and put the tree back."""
    _write(repo, files)
    _git(repo, "add", "--intent-to-add", "--", *files)  # new files appear in the diff
    diff = _git(repo, "diff", "--no-color", "--no-ext-diff", "--src-prefix=a/", "--dst-prefix=b/")
    _git(repo, "reset", "-q")
    _git(repo, "checkout", "-q", "--", ".")
    _git(repo, "clean", "-fdq")
    return diff


def build_example(spec: ExampleSpec, repo: Path) -> Task:
    """Create ``repo`` for one example (replacing what is there) and return its task."""
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "core.autocrlf", "false")
    _write(repo, spec.base_files)
    _git(repo, "add", "--", *spec.base_files)
    _git(repo, "commit", "-q", "--no-gpg-sign", "--no-verify", "-m", f"{spec.name} {spec.version}")
    base_commit = _git(repo, "rev-parse", "HEAD").strip()
    patch = _diff_of(repo, spec.fix_files)
    test_patch = _diff_of(repo, spec.test_files)
    return Task(
        instance_id=spec.instance_id,
        repo=spec.repo,
        base_commit=base_commit,
        patch=patch,
        test_patch=test_patch,
        problem_statement=spec.problem_statement,
        hints_text=spec.hints_text,
        created_at=spec.created_at,
        version=spec.version,
        environment_setup_commit=base_commit,
        FAIL_TO_PASS=list(spec.fail_to_pass),
        PASS_TO_PASS=list(spec.pass_to_pass),
        log_parser="pytest",
        repo_dir=str(repo.resolve()),
    )


def build_examples(out_dir: str | Path, examples: Iterable[ExampleSpec] | None = None) -> Path:
    """Create every example repository under ``out_dir/repos`` and return the dataset path."""
    if examples is None:
        examples = EXAMPLES
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [build_example(spec, out / "repos" / spec.name) for spec in examples]
    dataset = out / DATASET_NAME
    save_tasks(tasks, dataset)
    return dataset


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m agentkit.evals.examples.build OUT_DIR", file=sys.stderr)
        return 2
    try:
        dataset = build_examples(args[0])
    except (ExampleBuildError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(dataset)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
