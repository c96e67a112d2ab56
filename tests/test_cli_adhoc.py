"""``agentkit run --repo PATH --problem TEXT``: a scaffold on the user's own repository, no
dataset, no tests. Real git repositories, the scripted backend, the local runtime (and Docker in
the marked test); the user's repository must come out byte for byte as it went in."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.cli import app
from agentkit.cli.adhoc import snapshot_working_tree
from agentkit.types import Trajectory

runner = CliRunner()
FIX = (
    "- \"Fix it.\\n```bash\\nsed -i 's/a - b/a + b/' calc.py && cat NOTES.md\\n```\"\n"
    '- "Done.\\n```bash\\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\\n```"\n'
)
GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout


def make_repo(path: Path, *, commit: bool = True) -> Path:
    """A repository with a bug, a committed file changed in the working tree, an untracked file
    and an ignored one."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    (path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (path / ".gitignore").write_text("*.log\n")
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "start")
        (path / "calc.py").write_text("def add(a, b):\n    return a - b\n# work in progress\n")
    (path / "NOTES.md").write_text("untracked notes\n")
    (path / "debug.log").write_text("ignored\n")
    return path


def fingerprint(path: Path) -> dict[str, str]:
    """Every file under ``path`` (``.git`` included) with its content hash and mode."""
    found = {}
    for item in sorted(path.rglob("*")):
        if item.is_file() or item.is_symlink():
            data = os.readlink(item).encode() if item.is_symlink() else item.read_bytes()
            found[str(item.relative_to(path))] = (
                f"{hashlib.sha256(data).hexdigest()} {item.lstat().st_mode:o} "
                f"{item.lstat().st_mtime_ns}"
            )
    return found


def run_adhoc(repo: Path, out: Path, replies: Path, *extra: str, runtime: str = "local"):
    result = runner.invoke(
        app,
        ["run", "--repo", str(repo), "--problem", "add() subtracts instead of adding",
         "--runtime", runtime, "--backend", f"scripted:{replies}", "--output", str(out), *extra],
    )  # fmt: skip
    return result, " ".join(result.output.split())


def check_adhoc_run(repo: Path, out: Path, run_id: str, text: str) -> Path:
    task_dir = out / run_id / repo.name
    assert {p.name for p in task_dir.iterdir()} == {"trajectory.json", "patch.diff", "result.json"}
    trajectory = Trajectory.load(task_dir / "trajectory.json")
    assert trajectory.exit_status == "submitted" and trajectory.reward is None
    assert "untracked notes" in trajectory.steps[0].observation.output  # the snapshot has it
    patch = (task_dir / "patch.diff").read_text()
    assert patch == trajectory.submission
    assert "-    return a - b\n+    return a + b\n # work in progress" in patch
    assert "NOTES.md" not in patch and "debug.log" not in patch
    result = json.loads((task_dir / "result.json").read_text())
    assert result["graded"] is False and result["resolved"] is None and result["error"] is None
    assert "not graded" in text and f"git apply {(task_dir / 'patch.diff').resolve()}" in text
    report = json.loads((out / run_id / "report.json").read_text())
    assert report["not_graded_ids"] == [repo.name] and report["unresolved_ids"] == []
    assert report["statistics"]["graded_attempts"] == 0  # no evidence for any rate
    return task_dir


def test_a_run_on_my_repository_writes_trajectory_and_patch_and_leaves_it_alone(tmp_path):
    repo = make_repo(tmp_path / "myproject")
    replies = tmp_path / "replies.yaml"
    replies.write_text(FIX)
    before = fingerprint(repo)
    result, text = run_adhoc(repo, tmp_path / "runs", replies)
    assert result.exit_code == 0, result.output
    task_dir = check_adhoc_run(repo, tmp_path / "runs", "myproject__mini__scripted", text)
    assert fingerprint(repo) == before  # not one byte, mode or mtime changed, .git included
    # The patch is relative to the working tree as it is: it applies there.
    git(repo, "apply", "--check", str(task_dir / "patch.diff"))

    again, text = run_adhoc(repo, tmp_path / "runs", replies)
    assert again.exit_code == 0 and "already done" in text

    # Another problem on the same repository is another run, in its own folder.
    result = runner.invoke(
        app,
        ["run", "--repo", str(repo), "--problem-file", str(replies), "--runtime", "local",
         "--backend", f"scripted:{replies}", "--output", str(tmp_path / "runs")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "problem_sha256" in " ".join(result.output.split())
    assert len(list((tmp_path / "runs").iterdir())) == 2
    assert fingerprint(repo) == before


def test_a_repository_without_commits_and_a_subfolder_path(tmp_path):
    repo = make_repo(tmp_path / "fresh", commit=False)
    (repo / "sub").mkdir()
    snapshot = snapshot_working_tree(repo / "sub", tmp_path / "snap")
    assert snapshot.source == repo.resolve() and snapshot.head is None and snapshot.uncommitted
    files = git(tmp_path / "snap", "ls-tree", "-r", "--name-only", snapshot.commit).split()
    assert files == [".gitignore", "NOTES.md", "calc.py"]
    again = snapshot_working_tree(repo, tmp_path / "snap2")
    assert again.commit == snapshot.commit  # the same tree, the same commit


def test_a_clean_repository_is_its_own_head(tmp_path):
    repo = tmp_path / "clean"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a")
    snapshot = snapshot_working_tree(repo, tmp_path / "snap")
    assert snapshot.commit == git(repo, "rev-parse", "HEAD").strip()
    assert not snapshot.uncommitted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "x.jsonl"], "--repo is a run without a dataset; drop --dataset"),
        (["--task", "a"], "drop --task"),
        (["--backend", "gold"], "The gold backend replays a dataset task's reference patch"),
        (["--problem-file", "nope.txt"], "--problem TEXT or --problem-file FILE (one)"),
        (["--executor", "ray"], "drop --executor"),
    ],
)
def test_wrong_combinations_are_clear_errors(tmp_path, args, message):
    repo = make_repo(tmp_path / "r")
    base = ["run", "--repo", str(repo), "--runtime", "local", "--output", str(tmp_path)]
    base += ["--problem", "p"]
    if "--backend" not in args:
        base += ["--backend", "scripted:x.yaml"]
    result = runner.invoke(app, [*base, *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_not_a_repository_and_no_problem(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    result = runner.invoke(
        app, ["run", "--repo", str(plain), "--problem", "p", "--runtime", "local",
              "--backend", "scripted:x.yaml", "--output", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2 and "is not a git repository" in " ".join(result.output.split())
    result = runner.invoke(app, ["run", "--repo", str(plain), "--runtime", "local"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "--problem TEXT or --problem-file FILE" in text
    result = runner.invoke(app, ["run", "--problem", "p", "--runtime", "local"])
    assert result.exit_code == 2 and "go with --repo" in " ".join(result.output.split())


@pytest.mark.docker
def test_a_run_on_my_repository_in_docker(tmp_path):
    import docker

    name = f"userrepo-{uuid.uuid4().hex[:8]}"
    repo = make_repo(tmp_path / name)
    replies = tmp_path / "replies.yaml"
    replies.write_text(FIX)
    before = fingerprint(repo)
    client = docker.from_env()
    try:
        result, text = run_adhoc(repo, tmp_path / "runs", replies, runtime="docker")
        assert result.exit_code == 0, result.output
        check_adhoc_run(repo, tmp_path / "runs", f"{name}__mini__scripted", text)
        assert fingerprint(repo) == before
        built = client.images.list(filters={"reference": f"agentkit-task/{name}"})
        assert built and built[0].labels["agentkit.instance-image"] == name
    finally:
        for image in client.images.list(filters={"reference": f"agentkit-task/{name}"}):
            for tag in image.tags:
                client.images.remove(tag)
        client.close()
