"""A tool of one's own, used from the ``agentkit`` command the way docs/writing-a-tool.md shows.

The command imports no module of the user's, so a scaffold file names the tool's class by dotted
path (``my_tools:CountLines``); the module is found next to the scaffold file or in the current
directory, as a script finds its neighbours. The end-to-end test runs the page's own
``my_tools.py`` and ``counting.yaml`` through a real ``agentkit run`` process (scripted replies,
local runtime, real grading) and reads the tool's real output back from the trajectory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.scaffold import ScaffoldConfig, ScaffoldConfigError
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import load_tasks
from agentkit.types import ExitStatus, Trajectory

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "writing-a-tool.md"

A_TOOL = """\
from typing import ClassVar

from pydantic import BaseModel

from agentkit.tools import Tool, ToolContext
from agentkit.types import Observation


class EchoArguments(BaseModel):
    text: str


class Echo(Tool):
    name: ClassVar[str] = "echo_back"
    description: ClassVar[str] = "Say it back."
    Arguments: ClassVar[type[BaseModel]] = EchoArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        return Observation(output="", exit_code=0)
"""


def page_block(language: str, containing: str) -> str:
    """The page's first fenced ``language`` block whose code holds ``containing``."""
    text = PAGE.read_text(encoding="utf-8")
    for match in re.finditer(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL):
        if containing in match.group(1):
            return match.group(1)
    raise AssertionError(f"{PAGE.name} has no {language} block holding {containing!r}")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture
def own_module(tmp_path, monkeypatch) -> Iterator[str]:
    """A module name unique to this test; ``sys.path`` and ``sys.modules`` are restored after it
    (finding the module puts its folder on ``sys.path`` for the rest of the process)."""
    name = f"own_tools_{tmp_path.name.replace('-', '_')}"
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


def test_the_pages_tool_runs_from_the_command_line_next_to_its_scaffold(dataset, tmp_path):
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "my_tools.py").write_text(page_block("python", "class CountLines(Tool)"))
    (project / "counting.yaml").write_text(page_block("yaml", "my_tools:CountLines"))
    replies = [
        "A file to count.\n```bash\nbash\nprintf 'import os\\nimport sys\\n\\nprint(1)\\n' > app.py\n```",
        "All its lines.\n```bash\ncount_lines app.py\n```",
        "Only the imports.\n```bash\ncount_lines app.py import\n```",
        "Done.\n```bash\nsubmit\n```",
    ]
    (tmp_path / "replies.yaml").write_text(yaml.safe_dump(replies))
    elsewhere = tmp_path / "elsewhere"  # the current directory holds no my_tools.py
    elsewhere.mkdir()
    task_id = load_tasks(dataset)[0].instance_id
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # -P: like the installed `agentkit` script, the process does not see the current directory.
    command = [sys.executable, "-P", "-m", "agentkit.cli", "run",
               "--scaffold", str(project / "counting.yaml"), "--runtime", "local",
               "--task", task_id, "--dataset", str(dataset),
               "--backend", f"scripted:{tmp_path / 'replies.yaml'}",
               "--output", str(tmp_path / "runs")]  # fmt: skip
    result = subprocess.run(
        command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr

    trajectory = Trajectory.load(
        tmp_path / "runs" / "counting__scripted" / task_id / "trajectory.json"
    )
    assert trajectory.scaffold["tools"] == ["bash", "my_tools:CountLines", "submit"]
    assert [step.format_error for step in trajectory.steps] == [None] * 4
    assert [step.action.name for step in trajectory.steps if step.action] == [
        "bash",
        "count_lines",
        "count_lines",
        "submit",
    ]
    counted = [step.observation for step in trajectory.steps[1:3] if step.observation]
    assert [(o.exit_code, o.output.strip()) for o in counted] == [(0, "4"), (0, "2")]
    assert trajectory.steps[2].action and trajectory.steps[2].action.arguments == {
        "path": "app.py",
        "pattern": "import",
    }
    assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
    assert "+++ b/app.py" in trajectory.submission


def test_a_tool_in_the_current_directory_or_next_to_an_extended_file(
    own_module, tmp_path, monkeypatch
):
    (tmp_path / "tools_here").mkdir()
    (tmp_path / "tools_here" / f"{own_module}.py").write_text(A_TOOL)
    (tmp_path / "configs").mkdir()
    scaffold = tmp_path / "configs" / "s.yaml"
    scaffold.write_text(f'extends: mini\nname: own\ntools: [bash, "{own_module}:Echo"]\n')
    with pytest.raises(ScaffoldConfigError) as missing:
        load_scaffold(str(scaffold))  # neither beside the file nor in the current directory
    message = " ".join(str(missing.value).split())
    assert f"cannot import module '{own_module}'" in message
    assert str(tmp_path / "configs") in message and "PYTHONPATH" in message

    monkeypatch.chdir(tmp_path / "tools_here")
    config = load_scaffold(str(scaffold))
    assert isinstance(config, ScaffoldConfig)
    assert [tool.name for tool in config.build_tools()] == ["bash", "echo_back"]

    # A file extending one that lists the tool: the base file's folder is searched too.
    sys.modules.pop(own_module)
    sys.path.remove(str(tmp_path / "tools_here"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tools_here" / "base.yaml").write_text(scaffold.read_text())
    (tmp_path / "configs" / "derived.yaml").write_text(
        "extends: ../tools_here/base.yaml\nname: derived\n"
    )
    derived = load_scaffold(str(tmp_path / "configs" / "derived.yaml"))
    assert isinstance(derived, ScaffoldConfig) and derived.tools[1] == f"{own_module}:Echo"


@pytest.mark.parametrize(
    ("tool", "says"),
    [
        ("count_lines", "list its class by dotted path, like 'my_tools:CountLines'"),
        (
            "my_tools.CountLines",
            "separates the module and the class with ':': 'my_tools:CountLines'",
        ),
    ],
)
def test_an_unknown_tool_from_the_command_line_says_how_to_use_ones_own(
    dataset, tmp_path, tool, says
):
    scaffold = tmp_path / "counting.yaml"
    scaffold.write_text(
        json.dumps({"extends": "mini", "name": "counting", "tools": ["bash", tool]})
    )
    result = CliRunner().invoke(
        app,
        ["run", "--dataset", str(dataset), "--runtime", "local", "--scaffold", str(scaffold),
         "--output", str(tmp_path / "runs")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"unknown tool '{tool}'" in text and says in text and "Traceback" not in text
