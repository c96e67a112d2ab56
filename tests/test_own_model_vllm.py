"""The "use your own model" example of docs/own-model.md, for real: the tiny model taught to call
a ``bash`` tool, served by ``agentkit serve`` (vLLM with its hermes tool parser), run from the
CLI with the ``--backend`` line ``serve`` prints and the native-calling ``mini-native`` scaffold.
The model writes ``<tool_call>`` blocks; they must arrive as parsed tool calls that ran (real
steps), not as format errors, and the short form must have asked the server for token ids."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit import backend as backend_module
from agentkit.backend import CostLimitWarning
from agentkit.cli import app
from agentkit.evals.examples import build_examples
from agentkit.tasks import load_tasks
from agentkit.types import Trajectory

pytestmark = pytest.mark.vllm

SCAFFOLD = "mini-native"


@pytest.fixture(scope="module")
def served(tiny_tool_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``agentkit serve MODEL`` in the background; yields the ``--backend`` value it prints."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    command = [
        sys.executable,
        "-m",
        "agentkit.cli",
        "serve",
        str(tiny_tool_model),
        "--log",
        str(log),
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy()
    )
    assert server.stdout is not None
    lines: list[str] = []
    backend = None
    try:
        # Bounded: serve gives up (and exits, closing stdout) after its start-up timeout.
        while backend is None and (line := server.stdout.readline()):
            lines.append(line)
            found = re.match(r"Use it with: --backend (\S+)", line)
            backend = found[1] if found else None
        if backend is None:
            log_text = log.read_text() if log.exists() else "(no log)"
            pytest.fail(f"agentkit serve did not start:\n{''.join(lines)}\n{log_text[-3000:]}")
        yield backend
    finally:
        server.send_signal(signal.SIGTERM)  # serve stops the server and every process it forked
        try:
            server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def test_the_tiny_model_takes_real_steps_through_serve_and_the_cli(
    served: str, tiny_tool_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert served.startswith(f"openai:{tiny_tool_model.name}@http://127.0.0.1:")  # folder's name
    dataset = build_examples(tmp_path / "examples")
    task_id = load_tasks(dataset)[0].instance_id
    monkeypatch.setattr(backend_module, "_COST_WARNINGS_GIVEN", set())
    with pytest.warns(CostLimitWarning, match="the openai backend prices every call at 0"):
        result = CliRunner().invoke(
            app,
            ["run", "--dataset", str(dataset), "--task", task_id, "--runtime", "local",
             "--scaffold", SCAFFOLD, "--backend", served, "--max-steps", "3",
             "--temperature", "0", "--run-id", "own", "--output", str(tmp_path / "runs")],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    trajectory = Trajectory.load(tmp_path / "runs" / "own" / task_id / "trajectory.json")
    assert trajectory.steps, trajectory.exit_message
    ran = [step for step in trajectory.steps if step.action is not None]
    assert ran, [(step.format_error, step.completion.text) for step in trajectory.steps]
    for step in ran:
        assert step.format_error is None and step.action is not None
        assert step.action.name == "bash" and step.action.arguments.get("command")
        assert step.observation is not None and step.observation.exit_code is not None
    assert trajectory.exit_status != "format_errors", trajectory.exit_message
    # openai:NAME@URL against vLLM asked for the exact token ids and logprobs (for training).
    for step in trajectory.steps:
        completion = step.completion
        assert completion.prompt_token_ids and completion.completion_token_ids
        assert len(completion.logprobs or []) == len(completion.completion_token_ids)


@pytest.mark.parametrize("runtime", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_my_repository_with_my_local_model(served: str, tmp_path: Path, runtime: str) -> None:
    """``agentkit run --repo PATH --problem TEXT`` with the served tiny model, in a work dir and
    in a container: a trajectory of real steps and the patch file, no grading, and the user's
    repository untouched."""
    repo = tmp_path / "myproject"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x.invalid", GIT_COMMITTER_NAME="t")
    env.update(GIT_COMMITTER_EMAIL="t@x.invalid")
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True)
    before = (repo / "calc.py").read_bytes(), sorted(p.name for p in repo.iterdir())
    result = CliRunner().invoke(
        app,
        ["run", "--repo", str(repo), "--problem", "add() subtracts instead of adding",
         "--runtime", runtime, "--scaffold", SCAFFOLD, "--backend", served,
         "--max-steps", "2", "--temperature", "0", "--output", str(tmp_path / "runs")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [task_dir] = [p for p in (tmp_path / "runs").glob("*/myproject") if p.is_dir()]
    assert {p.name for p in task_dir.iterdir()} >= {"trajectory.json", "patch.diff"}
    trajectory = Trajectory.load(task_dir / "trajectory.json")
    ran = [step for step in trajectory.steps if step.action is not None]
    assert ran and all(step.format_error is None for step in ran), trajectory.exit_message
    assert (task_dir / "patch.diff").read_text() == (trajectory.submission or "")
    assert ((repo / "calc.py").read_bytes(), sorted(p.name for p in repo.iterdir())) == before
