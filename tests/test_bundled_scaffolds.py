"""Every bundled scaffold, end to end: a scripted model drives the scaffold's own tools (search,
outline, view, edit, submit) on a bundled example in a real git repository, and the harness
grades the submitted diff by running the task's tests. The replies are scripted (the subject:
the scaffold, its tools and its call format, not a model); each reply is rendered in the
scaffold's call format and parsed back exactly as a model's would be."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from agentkit.backends.gold import GoldBackend
from agentkit.evals.examples import build_examples
from agentkit.evals.examples.catalog import EXAMPLES
from agentkit.evals.harness import run_and_grade
from agentkit.evals.run_folder import RunFolder
from agentkit.runtime import LocalRuntime
from agentkit.scaffold import ScaffoldConfig
from agentkit.scaffolds import BUNDLED, load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import ToolContext
from agentkit.tools.submit import EMPTY_REVIEW, SUBMITTED, ReviewedSubmitTool
from agentkit.types import Completion, Message, SamplingParams, ToolCall, ToolSpec, Trajectory

Reply = Callable[[str], tuple[str, dict[str, Any]]]
"""Given the repository's path in the sandbox: a tool name and its arguments."""


class ConversationScript:
    """The scripted backend, with replies that may use the repository's path (the one thing a
    script cannot know in advance: a local runtime puts the repository in a fresh folder). The
    path is read from the task message, where every bundled scaffold states it."""

    def __init__(self, config: ScaffoldConfig, replies: list[Reply]) -> None:
        self.format = config.build_format()
        self.tools = config.build_tools()
        self.replies = replies
        self.step = 0

    async def complete(
        self, messages: list[Message], tools: list[ToolSpec], params: SamplingParams | None = None
    ) -> Completion:
        step, self.step = self.step, self.step + 1
        task_message = next(m.content for m in messages if m.role == "user")
        match = re.search(r"repository at (\S+?)\.?\n", str(task_message))
        assert match, task_message
        name, arguments = self.replies[step](match[1])
        call = ToolCall(name=name, arguments=arguments, id=f"call-{step}")
        return self.format.render(call, self.tools, thought=f"Step {step}.")

    def describe(self) -> dict[str, Any]:
        return {"type": "scripted"}


SPEC = EXAMPLES[0]
((FIXED_FILE, FIXED_TEXT),) = SPEC.fix_files.items()
PACKAGE = FIXED_FILE.rsplit("/", 1)[0]


def fix(root: str) -> tuple[str, dict[str, Any]]:
    return "str_replace_editor", {
        "command": "str_replace",
        "path": f"{root}/{FIXED_FILE}",
        "old_str": SPEC.base_files[FIXED_FILE],
        "new_str": FIXED_TEXT,
    }


def write_fix(root: str) -> tuple[str, dict[str, Any]]:
    """The fix through the shell alone (for bash-only scaffolds)."""
    script = f"open({FIXED_FILE!r}, 'w').write({FIXED_TEXT!r})"
    return "bash", {"command": f"cd {root} && python3 - <<'PY'\n{script}\nPY"}


SCRIPTS: dict[str, list[Reply]] = {
    "mini-native": [
        lambda root: ("bash", {"command": f"cd {root} && git status --short && ls {PACKAGE}"}),
        write_fix,
        lambda root: ("bash", {"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}),
    ],
    "codeact": [
        lambda root: ("think", {"thought": "Look at the package first, then fix it."}),
        lambda root: ("bash", {"command": f"ls {PACKAGE}"}),
        lambda root: ("python", {"code": f"text = open({FIXED_FILE!r}).read()\nlen(text) > 0"}),
        fix,
        lambda root: (
            "python",
            {
                "code": "import subprocess\nprint(subprocess.run(['git', 'status', '--short'], capture_output=True, text=True).stdout)"
            },
        ),
        lambda root: ("submit", {}),
    ],
    "swe-agent": [
        lambda root: ("find_file", {"file_name": FIXED_FILE.rsplit("/", 1)[1]}),
        lambda root: ("search_dir", {"search_term": "def "}),
        lambda root: ("open", {"path": FIXED_FILE}),
        lambda root: ("search_file", {"search_term": "def "}),
        lambda root: ("goto", {"line_number": 20}),
        fix,
        lambda root: ("bash", {"command": "git status --short"}),
        lambda root: ("submit", {}),  # shows the diff for review
        lambda root: ("submit", {}),
    ],
    "code-nav": [
        lambda root: ("list_symbols", {"path": PACKAGE}),
        lambda root: ("file_skeleton", {"path": FIXED_FILE}),
        lambda root: ("str_replace_editor", {"command": "view", "path": f"{root}/{FIXED_FILE}"}),
        fix,
        lambda root: ("submit", {}),
    ],
}


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Task:
    [task] = load_tasks(build_examples(tmp_path_factory.mktemp("examples"), [SPEC]))
    return task


def test_every_bundled_scaffold_has_a_script():
    assert set(SCRIPTS) | {"mini"} == set(BUNDLED)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_a_scripted_run_of_the_scaffold_resolves_a_bundled_task(name, task, tmp_path):
    config = load_scaffold(name)
    assert isinstance(config, ScaffoldConfig)
    script = ConversationScript(config, SCRIPTS[name])
    folder = RunFolder(tmp_path / "run", "run")
    [result] = await run_and_grade([task], config, [], lambda task: script, folder, runtime="local")
    assert result.error is None, result
    assert (result.exit_status, result.resolved) == ("submitted", True)
    trajectory = Trajectory.load(folder.trajectory_path(task.instance_id))
    names = [step.action.name for step in trajectory.steps if step.action]
    assert names == [reply("/r")[0] for reply in SCRIPTS[name]]
    for step in trajectory.steps[:-1]:  # every tool answered without refusing
        assert step.observation is not None and step.observation.exit_code in (0, None), step
    if name == "swe-agent":  # its submit showed the diff for review before submitting
        review = trajectory.steps[-2].observation
        assert review is not None and review.output.startswith("Nothing is submitted yet")
        assert f"+++ b/{FIXED_FILE}" in review.output


async def test_the_reviewed_submit_shows_the_diff_once_then_submits(tmp_path):
    tool = ReviewedSubmitTool()
    async with LocalRuntime(workdir=tmp_path) as runtime:
        await runtime.run(
            "git init -q . && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m base"
        )
        ctx = ToolContext(runtime=runtime)
        args = tool.Arguments()
        first = await tool.execute(args, ctx)
        assert first.output == EMPTY_REVIEW and not tool.ends_run(runtime)
        await runtime.run("echo hello > notes.txt")
        second = await tool.execute(args, ctx)
        assert second.output == SUBMITTED and tool.ends_run(runtime)


@pytest.fixture(scope="module")
def all_tasks(tmp_path_factory) -> list[Task]:
    return load_tasks(build_examples(tmp_path_factory.mktemp("all-examples")))


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", ["swe-agent", "codeact", "code-nav"])
async def test_the_gold_backend_resolves_every_bundled_task_through_the_editor(
    name, all_tasks, tmp_path
):
    """The reference patches replayed through each scaffold's own str_replace_editor, in Docker."""
    config = load_scaffold(name)
    assert isinstance(config, ScaffoldConfig)

    def gold(task: Task) -> GoldBackend:
        return GoldBackend(
            task.patch, config.build_format(), config.build_tools(), config.submit_sentinel
        )

    folder = RunFolder(tmp_path / "run", "run")
    results = await run_and_grade(all_tasks, config, [], gold, folder, workers=2)
    assert [(r.resolved, r.error) for r in results] == [(True, None)] * len(all_tasks)
    for task in all_tasks:
        trajectory = Trajectory.load(folder.trajectory_path(task.instance_id))
        names = [step.action.name for step in trajectory.steps if step.action]
        assert "str_replace_editor" in names and names[-1] == "submit", names
