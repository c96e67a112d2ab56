"""The gold backend replays reference patches through the scaffold's own edit tool.

Real tasks (the bundled examples), real git, real tests, the real editor and every call format:
each run must resolve and leave exactly the tree ``git apply`` of the reference patch gives. A
repository built here holds what the examples lack (CRLF, no final newline, a Latin-1 file, new,
deleted, renamed, binary and mode-changed files, an ambiguous hunk the editor refuses); its runs
are compared tree hash against tree hash.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from agentkit.backends.gold import GoldBackend
from agentkit.backends.gold_diff import parse_patch
from agentkit.evals.environment import open_task_runtime
from agentkit.evals.examples import build_examples
from agentkit.evals.harness import run_and_grade
from agentkit.evals.run_folder import RunFolder
from agentkit.scaffold import ScaffoldConfig
from agentkit.scaffolding import build_scaffold
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import CallFormat, NativeFormat, ParsedAction, Tool, get_format, get_tool
from agentkit.types import Completion, ExitStatus, Message, ToolCall, Trajectory

FORMATS = ["native", "xml", "bash_block"]
EDIT_TOOLS = ["bash", "str_replace_editor"]


def config_for(call_format: str, tools: list[str] = EDIT_TOOLS) -> ScaffoldConfig:
    mini = load_scaffold("mini")
    assert isinstance(mini, ScaffoldConfig)
    return mini.model_copy(update={"tools": tools, "call_format": call_format})


def gold_for(config: ScaffoldConfig, tools):  # type: ignore[no-untyped-def]
    def backend(task: Task) -> GoldBackend:
        return GoldBackend(
            task.patch, get_format(config.call_format), tools, config.submit_sentinel
        )

    return backend


def actions(trajectory: Trajectory) -> list[ToolCall]:
    return [step.action for step in trajectory.steps if step.action is not None]


def applies_patch(call: ToolCall) -> bool:
    return call.name == "bash" and "git apply" in call.arguments.get("command", "")


# -- git helpers ------------------------------------------------------------------------------------


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t.invalid",
    )
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def tree_after(repo_dir: str, base: str, patch: str, scratch: Path) -> str:
    """The tree hash of ``base`` with ``patch`` applied by ``git apply``."""
    clone = scratch / f"clone{len(list(scratch.iterdir()))}"
    subprocess.run(["git", "clone", "-q", repo_dir, str(clone)], check=True)
    git(clone, "-c", "advice.detachedHead=false", "checkout", "-q", base)
    data = patch.encode("utf-8", "surrogateescape")
    if data.strip():
        git(clone, "apply", "--binary", "--whitespace=nowarn", "-", stdin=data)
    git(clone, "add", "-A")
    return git(clone, "write-tree").decode().strip()


# -- the bundled examples -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Task]:
    return load_tasks(build_examples(tmp_path_factory.mktemp("examples")))


@pytest.mark.parametrize("call_format", FORMATS)
async def test_every_example_resolves_through_the_editor(
    tasks: list[Task], call_format: str, tmp_path: Path
) -> None:
    config = config_for(call_format)
    tools = config.build_tools()
    folder = RunFolder(tmp_path / "run", "run")
    results = await run_and_grade(
        tasks, config, tools, gold_for(config, tools), folder, runtime="local", workers=4
    )
    assert all(r.resolved and r.error is None for r in results), results
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for task in tasks:
        trajectory = Trajectory.load(folder.trajectory_path(task.instance_id))
        assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
        assert not any(step.format_error for step in trajectory.steps)
        assert trajectory.submission is not None and task.repo_dir is not None
        assert tree_after(task.repo_dir, task.base_commit, trajectory.submission, scratch) == (
            tree_after(task.repo_dir, task.base_commit, task.patch, scratch)
        )
        calls = actions(trajectory)
        files = parse_patch(task.patch)
        assert files is not None and all(f.kind == "modify" for f in files)
        # Plain modifications: a probe, one str_replace per hunk, the submission; no git apply.
        edits = [c for c in calls if c.name == "str_replace_editor"]
        assert [c.arguments["command"] for c in edits] == ["str_replace"] * sum(
            len(f.hunks) for f in files
        )
        assert not any(applies_patch(c) for c in calls)
        assert calls[-1].arguments == {"command": f"echo {config.submit_sentinel}"}
    report = json.loads((folder.root / "report.json").read_text())
    assert report["resolved_instances"] == len(tasks)


async def test_the_fenced_example_resolves_with_a_submit_tool(tasks: list[Task], tmp_path: Path):
    (task,) = [t for t in tasks if "docsnip" in t.instance_id]
    config = config_for("bash_block", [*EDIT_TOOLS, "submit"])
    tools = config.build_tools()
    folder = RunFolder(tmp_path / "run", "run")
    [result] = await run_and_grade(
        [task], config, tools, gold_for(config, tools), folder, runtime="local"
    )
    assert result.resolved, result
    calls = actions(Trajectory.load(folder.trajectory_path(task.instance_id)))
    assert calls[-1] == ToolCall(name="submit", arguments={}, id=calls[-1].id)
    assert any("```" in c.arguments.get("new_str", "") for c in calls)  # fences went as edits


async def test_without_the_editor_the_patch_is_applied_with_git(tasks: list[Task], tmp_path: Path):
    config = config_for("bash_block", ["bash"])
    tools = config.build_tools()
    folder = RunFolder(tmp_path / "run", "run")
    [result] = await run_and_grade(
        tasks[:1], config, tools, gold_for(config, tools), folder, runtime="local"
    )
    assert result.resolved, result
    calls = actions(Trajectory.load(folder.trajectory_path(tasks[0].instance_id)))
    assert len(calls) == 2 and applies_patch(calls[0])


@pytest.mark.docker
async def test_an_example_resolves_through_the_editor_in_docker(
    tasks: list[Task], tmp_path: Path
) -> None:
    (task,) = [t for t in tasks if "units" in t.instance_id]  # two hunks in one file
    config = config_for("xml")
    tools = config.build_tools()
    folder = RunFolder(tmp_path / "run", "run")
    [result] = await run_and_grade(
        [task], config, tools, gold_for(config, tools), folder, runtime="docker"
    )
    assert result.resolved and result.error is None, result
    calls = actions(Trajectory.load(folder.trajectory_path(task.instance_id)))
    assert sum(c.name == "str_replace_editor" for c in calls) == 2
    assert not any(applies_patch(c) for c in calls)


# -- a repository with every hard case ----------------------------------------------------------

BASE: dict[str, bytes] = {
    "crlf.txt": b"".join(b"line %d\r\n" % i for i in range(1, 12)),
    # Mostly CRLF (12 lines of 21), with LF lines far enough from them to make an LF-only hunk.
    "crlf_mixed.txt": b"".join(b"crlf %d\r\n" % i for i in range(12))
    + b"".join(b"lf %d\n" % i for i in range(9)),
    "data.bin": bytes(range(256)),
    "doc.md": b"# Doc\n\n```bash\npip install x\n```\n\nend\n",
    "gone.py": b"x = 1\n",
    "latin1.txt": b"caf\xe9\n" + b"".join(b"plain %d\n" % i for i in range(10)),
    "nonl.py": b"a = 1\nb = 2\nc = 3",
    "old_name.py": b"".join(b"value_%d = %d\n" % (i, i) for i in range(12)),
    "script.sh": b"#!/bin/sh\necho hi\n",
    "tabs.py": b"def f():\n\tif True:  \n\t\treturn 1\n\treturn 2\n",
    "zz_dup.py": b"head = 0\n\n"
    + b"def block():\n    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n\n" * 2,
    "zzz_later.py": b"later = 1\n",
}
AFTER: dict[str, bytes | None] = {
    "crlf.txt": BASE["crlf.txt"].replace(b"line 6\r\n", b"line six\r\nline 6.5\r\n"),
    "crlf_mixed.txt": BASE["crlf_mixed.txt"].replace(b"lf 4\n", b"lf four\nlf 4.5\n"),
    "data.bin": bytes(reversed(range(256))),
    "doc.md": BASE["doc.md"].replace(b"end\n", b"````markdown\n```python\nprint(1)\n```\n````\n"),
    "empty.txt": b"",
    "gone.py": None,
    "latin1.txt": BASE["latin1.txt"].replace(b"plain 8\n", b"plain eight\n"),
    "new_name.py": BASE["old_name.py"].replace(b"value_11 = 11\n", b"value_11 = 12\n"),
    "nonl.py": b"a = 1\nb = 2\nc = 4",
    "old_name.py": None,
    "pkg/sub/new_mod.py": b'"""New."""\n\nNAME = "caf\xc3\xa9 </parameter>"\n',
    "tabs.py": b"def f():\n\tif True:  \n\t\treturn 10\n\treturn 2\n",
    "zz_dup.py": b"head = 0\nhead2 = 0\n\n"
    + b"def block():\n    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n\n"
    + b"def block():\n    a = 1\n    b = 20\n    c = 3\n    return a + b + c\n\n",
    "zzz_later.py": b"later = 2\n",
}


@pytest.fixture(scope="module")
def hard_task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Task, str]:
    """A task whose patch holds every hard case, and the tree its patch gives."""
    repo = tmp_path_factory.mktemp("hard") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "core.autocrlf", "false")
    for name, data in BASE.items():
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "base")
    base = git(repo, "rev-parse", "HEAD").decode().strip()
    for name, after in AFTER.items():
        path = repo / name
        if after is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(after)
    (repo / "script.sh").chmod(0o755)
    git(repo, "add", "-A")
    expected = git(repo, "write-tree").decode().strip()
    patch = git(repo, "diff", "--cached", "--binary", "-M", "HEAD").decode(
        "utf-8", "surrogateescape"
    )
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-fdq")
    task = Task(instance_id="hard__cases-1", base_commit=base, patch=patch, repo_dir=str(repo))
    return task, expected


def test_the_diff_is_read_into_exact_pre_and_post_images(hard_task: tuple[Task, str]) -> None:
    task, _ = hard_task
    files = {f.path: f for f in parse_patch(task.patch) or []}
    kinds = {path: f.kind for path, f in files.items()}
    assert kinds == {
        "crlf.txt": "modify",
        "crlf_mixed.txt": "modify",
        "data.bin": "other",
        "doc.md": "modify",
        "empty.txt": "create",
        "gone.py": "other",
        "latin1.txt": "modify",
        "new_name.py": "other",
        "nonl.py": "modify",
        "pkg/sub/new_mod.py": "create",
        "script.sh": "other",
        "tabs.py": "modify",
        "zz_dup.py": "modify",
        "zzz_later.py": "modify",
    }
    (crlf,) = files["crlf.txt"].hunks
    assert crlf.old_text == "line 3\r\nline 4\r\nline 5\r\nline 6\r\nline 7\r\nline 8\r\nline 9\r\n"
    assert "line six\r\nline 6.5\r\n" in crlf.new_text
    (nonl,) = files["nonl.py"].hunks
    assert (nonl.old_text, nonl.new_text) == ("a = 1\nb = 2\nc = 3", "a = 1\nb = 2\nc = 4")
    (new,) = files["pkg/sub/new_mod.py"].hunks
    assert new.new_text.encode() == AFTER["pkg/sub/new_mod.py"]
    assert files["empty.txt"].hunks == ()
    first, second = files["zz_dup.py"].hunks
    # The rest of a file after its first hunk: the second hunk, moved by the line the first added.
    rest = files["zz_dup.py"].rest_from(1)
    assert f"@@ -{second.old_start + 1},{second.old_count} +{second.new_start}," in rest
    assert first.body not in rest and rest.startswith("diff --git a/zz_dup.py b/zz_dup.py\n")


def test_a_patch_that_is_not_a_git_diff_is_left_to_git_apply() -> None:
    assert parse_patch("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n") is None
    [broken] = parse_patch("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n") or []
    assert broken.kind == "other"  # the hunk is shorter than its header says


@pytest.mark.parametrize("call_format", FORMATS)
async def test_hard_cases_end_in_the_tree_git_apply_gives(
    hard_task: tuple[Task, str], call_format: str, tmp_path: Path
) -> None:
    task, expected = hard_task
    config = config_for(call_format)
    tools = config.build_tools()
    backend = gold_for(config, tools)(task)
    scaffold = build_scaffold(config, tools=tools)
    async with await open_task_runtime(task, "local") as runtime:
        trajectory = await scaffold.solve(task, runtime, backend, trajectory_path=tmp_path / "t")
    assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
    assert not any(step.format_error for step in trajectory.steps)
    assert trajectory.submission is not None and task.repo_dir is not None
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert tree_after(task.repo_dir, task.base_commit, trajectory.submission, scratch) == expected

    calls = actions(trajectory)
    edited = {
        (c.arguments["command"], c.arguments["path"].rsplit("/", 1)[-1])
        for c in calls
        if c.name == "str_replace_editor"
    }
    assert {
        ("str_replace", "crlf.txt"),
        ("str_replace", "doc.md"),
        ("str_replace", "latin1.txt"),
        ("str_replace", "nonl.py"),
        ("str_replace", "tabs.py"),
        ("str_replace", "zz_dup.py"),
        ("create", "empty.txt"),
    } <= edited
    # LF lines into a CRLF file: the editor would write them with CRLF, so git applies them.
    assert ("str_replace", "crlf_mixed.txt") not in edited
    # Every format carries a module that holds "</parameter>" and non-ASCII text exactly.
    assert ("create", "new_mod.py") in edited
    applied = [c.arguments["command"] for c in calls if applies_patch(c)]
    assert len(applied) == 2
    assert "rename from old_name.py" in applied[0] and "deleted file mode" in applied[0]
    # zz_dup.py's second hunk is ambiguous: the editor refuses it, and git applies the rest.
    assert "diff --git a/zz_dup.py" in applied[1] and "zzz_later.py" in applied[1]
    refused = [s.observation for s in trajectory.steps if s.observation]
    assert sum("occurs 2 times" in o.output for o in refused) == 1
    assert calls[-1].name == "bash" and "echo" in calls[-1].arguments["command"]


async def test_a_probe_without_a_path_falls_back_to_git_apply(hard_task: tuple[Task, str]) -> None:
    task, _ = hard_task
    tools = [get_tool("bash"), get_tool("str_replace_editor")]
    fmt = get_format("native")
    backend = GoldBackend(task.patch, fmt, tools, "DONE")
    first = fmt.parse(await backend.complete([], []), tools).call
    assert "AGENTKIT_GOLD_WORKDIR" in first.arguments["command"]

    history = [Message(role="assistant", content=""), Message(role="tool", content="(no output)")]
    second = fmt.parse(await backend.complete(history, []), tools).call
    assert applies_patch(second) and task.patch in second.arguments["command"]
    third = fmt.parse(await backend.complete(history, []), tools).call
    assert third.arguments == {"command": "echo DONE"}


class LossyFormat(NativeFormat):
    """A fake call format that drops trailing spaces from every argument (the subject: what
    the backend does with a format that cannot carry an edit exactly)."""

    def _parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        action = super()._parse(completion, tools)
        arguments = {
            k: re.sub(r" +$", "", v, flags=re.M) if isinstance(v, str) else v
            for k, v in action.call.arguments.items()
        }
        return super()._action(action.tool.name, arguments, tools, call_id=action.call.id)


TRAILING = (
    "diff --git a/t.py b/t.py\nindex 1111111..2222222 100644\n--- a/t.py\n+++ b/t.py\n"
    "@@ -1,2 +1,2 @@\n-x = 1  \n+x = 2  \n y = 1\n"
)


@pytest.mark.parametrize(("fmt", "edits"), [(NativeFormat(), True), (LossyFormat(), False)])
async def test_an_edit_the_format_cannot_carry_goes_to_git_apply(
    fmt: CallFormat, edits: bool
) -> None:
    tools = [get_tool("bash"), get_tool("str_replace_editor")]
    backend = GoldBackend(TRAILING, fmt, tools, "DONE")

    async def reply(observation: str) -> ToolCall:
        history = [Message(role="assistant", content=""), Message(role="tool", content=observation)]
        return fmt.parse(await backend.complete(history, []), tools).call

    assert "AGENTKIT_GOLD_WORKDIR" in (await reply("")).arguments["command"]
    second = await reply("AGENTKIT_GOLD_WORKDIR=/repo\nAGENTKIT_GOLD_CR 0 0\n")
    if edits:
        assert second.arguments == {
            "command": "str_replace",
            "path": "/repo/t.py",
            "old_str": "x = 1  \ny = 1\n",
            "new_str": "x = 2  \ny = 1\n",
        }
        # An observation without the editor's success line: the rest goes to git apply.
        second = await reply("No replacement was made: old_str does not occur in /repo/t.py.")
    assert applies_patch(second) and "@@ -1,2 +1,2 @@" in second.arguments["command"]
    if edits:
        assert TRAILING in second.arguments["command"]
    assert (await reply("")).arguments == {"command": "echo DONE"}
