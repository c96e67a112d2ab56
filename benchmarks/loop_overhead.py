"""Agent-loop overhead per step: agentkit against mini-swe-agent on identical scripted replies.

Why this benchmark exists: with a real model the model call dominates a step, but the loop's own
cost is paid on every step of every run (thousands of steps per evaluation, millions per RL
epoch), and it is the part a framework controls. The budget (docs: DESIGN performance table) is
at most 0.65 ms per step and at most a fifth of mini-swe-agent's time per step.

What is measured: the wall time of ``run()`` for ``--steps`` steps, divided by the number of
steps. Every step asks a scripted backend for a reply whose action is the same shell command
(``echo hello`` by default), runs it, and appends the observation. Both frameworks end by their
step limit (no submission, no git diff), and nothing is subtracted from the headline figure.
Each row runs once to warm up (imports, template compilation) and then ``--repeats`` times,
rows interleaved round by round so that load from other processes hits them alike; the table
shows the median round.

The rows:

* **agentkit, persistent shell**: the bundled ``mini`` scaffold (``bash_block`` format: the reply
  is parsed, validated and checked for interactive programs), ``ScriptedBackend`` with call
  recording off (recording copies the conversation every call, a test aid no real backend
  has), ``LocalRuntime`` whose one bash process runs every command.
* **agentkit, persistent shell + trajectory saving**: the same with ``trajectory_path`` set: each
  step and each new message is appended to the step log as it happens, and the trajectory JSON
  is written at the end.
* **agentkit, process per command**: the same as the first row, but every command runs in a fresh
  ``bash`` (``runtime.run(..., stateless=True)``), which is how mini-swe-agent runs commands.
* **mini-swe-agent**: ``DefaultAgent`` + ``LocalEnvironment`` + ``DeterministicModel`` with the
  templates of its bundled ``mini_textbased.yaml``. Its test model hands the loop the already
  parsed action, so mini-swe-agent does no parsing here, while agentkit parses every reply.
  ``LocalEnvironment`` spawns a shell per command (``subprocess.Popen(shell=True)``).

Extra columns, so that no cost hides inside another: *command alone* is the same command run
the same way outside any loop (``runtime.run`` in the persistent shell; ``runtime.run(...,
stateless=True)``; mini-swe-agent's own spawning function), and *loop only* is the step time
minus that (a difference of two medians, labelled as such). *Driver CPU* is the CPU time of the
Python process that runs the loop, per step: less sensitive to other load on the machine than
wall time, but blind to the time spent in the shell processes.

The mini-swe-agent part runs in another interpreter, because mini-swe-agent is not a dependency
of agentkit. Create that interpreter once with::

    python -m venv /tmp/peers && /tmp/peers/bin/pip install mini-swe-agent

and pass ``--peer-python /tmp/peers/bin/python`` (the default). Without it the peer row is
skipped with a note and ratios are left out.

Run: ``python benchmarks/loop_overhead.py [--steps 200] [--repeats 5] [--peer-python PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from agentkit.agent import Agent
from agentkit.backends import ScriptedBackend
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import BashTool, ToolContext
from agentkit.types import Observation

DEFAULT_PEER_PYTHON = "/tmp/peers/bin/python"
BUDGET_MS = 0.65
BUDGET_FRACTION_OF_PEER = 0.2
REPLY_THOUGHT = "I will print a greeting to check that the shell works."


class ProcessPerCommandBash(BashTool):
    """The ``bash`` tool, except that each command gets a fresh process, as in mini-swe-agent.

    It reuses :class:`BashTool` whole (empty and interactive commands, timeout notes) and only
    swaps the runtime it sees for one whose ``run`` is always stateless.
    """

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        view = _StatelessView(ctx.runtime)
        return await super().execute(args, dataclasses.replace(ctx, runtime=view))  # type: ignore[arg-type]


class _StatelessView:
    """Forwards ``run`` to a runtime with ``stateless=True``; the bash tool needs nothing else."""

    def __init__(self, runtime: object) -> None:
        self._runtime = runtime
        self.workdir = getattr(runtime, "workdir", "")

    async def run(self, command: str, timeout: float | None = None, *, stateless: bool = False):  # noqa: ANN201
        return await self._runtime.run(command, timeout, stateless=True)  # type: ignore[attr-defined]


@dataclasses.dataclass
class Sample:
    wall_ms: float
    cpu_ms: float


@dataclasses.dataclass
class Row:
    name: str
    what: str
    step: list[Sample] = dataclasses.field(default_factory=list)
    command: list[Sample] = dataclasses.field(default_factory=list)

    @property
    def step_ms(self) -> float:
        return statistics.median(s.wall_ms for s in self.step)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(s.cpu_ms for s in self.step)

    @property
    def command_ms(self) -> float | None:
        return statistics.median(s.wall_ms for s in self.command) if self.command else None


# -- agentkit -------------------------------------------------------------------------------------


def _reply(command: str) -> str:
    return f"{REPLY_THOUGHT}\n\n```bash\n{command}\n```"


async def _timed(steps: int, body: Callable[[], Awaitable[object]]) -> Sample:
    """Time ``body`` with the garbage collector in its normal state, collected beforehand so one
    row does not pay for the previous row's garbage."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    await body()
    return Sample(
        wall_ms=(time.perf_counter() - wall) * 1e3 / steps,
        cpu_ms=(time.process_time() - cpu) * 1e3 / steps,
    )


async def agentkit_loop(
    runtime: LocalRuntime, steps: int, command: str, *, stateless: bool, save_to: Path | None
) -> Sample:
    config = load_scaffold("mini")
    config.limits = config.limits.model_copy(
        update={"max_steps": steps, "autosubmit": False, "max_cost": None, "max_wall_time_s": None}
    )
    backend = ScriptedBackend([_reply(command)] * steps, record_calls=False)
    tool = ProcessPerCommandBash() if stateless else BashTool()
    agent = Agent(config, backend, runtime, [tool], trajectory_path=save_to)
    task = Task(instance_id="loop-overhead", problem_statement="Print a greeting, many times.")
    result: dict[str, object] = {}

    async def body() -> None:
        result["trajectory"] = await agent.run(task)

    sample = await _timed(steps, body)
    trajectory = result["trajectory"]
    assert len(trajectory.steps) == steps, trajectory.exit_message  # type: ignore[attr-defined]
    last = trajectory.steps[-1].observation  # type: ignore[attr-defined]
    assert last is not None and last.exit_code == 0, last
    return sample


async def agentkit_command(
    runtime: LocalRuntime, steps: int, command: str, *, stateless: bool
) -> Sample:
    async def body() -> None:
        for _ in range(steps):
            result = await runtime.run(command, timeout=120, stateless=stateless)
            assert result.exit_code == 0, result.output

    return await _timed(steps, body)


# -- mini-swe-agent, in its own interpreter -------------------------------------------------------

_PEER_SCRIPT = r"""
import gc, json, os, sys, tempfile, time
from pathlib import Path
import yaml
import minisweagent
from minisweagent.agents.default import DefaultAgent
from minisweagent.environments.local import LocalEnvironment, _run
from minisweagent.models.test_models import DeterministicModel, make_output

opts = json.loads(sys.argv[1])
steps, command, reply, runs = opts["steps"], opts["command"], opts["reply"], opts["runs"]
config = yaml.safe_load((Path(minisweagent.__file__).parent / "config" / "mini_textbased.yaml").read_text())
workdir = tempfile.mkdtemp(prefix="loop-overhead-peer-")

def timed(body):
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    body()
    return {"wall_ms": (time.perf_counter() - wall) * 1e3 / steps,
            "cpu_ms": (time.process_time() - cpu) * 1e3 / steps}

def loop():
    outputs = [make_output(reply, [{"command": command}], cost=0.0) for _ in range(steps)]
    model = DeterministicModel(outputs=outputs, cost_per_call=0.0,
                               observation_template=config["model"]["observation_template"])
    env = LocalEnvironment(cwd=workdir, env=config["environment"]["env"])
    agent = DefaultAgent(model, env, system_template=config["agent"]["system_template"],
                         instance_template=config["agent"]["instance_template"],
                         step_limit=steps, cost_limit=0.0)
    result = {}
    def body():
        result["info"] = agent.run("Print a greeting, many times.")
    sample = timed(body)
    assert result["info"].get("exit_status") == "LimitsExceeded", result["info"]
    assert agent.n_calls == steps and agent.messages[-2]["extra"]["returncode"] == 0
    return sample

def command_alone():
    env = {**os.environ, **config["environment"]["env"]}
    def body():
        for _ in range(steps):
            assert _run(command, workdir, env, 120).returncode == 0
    return timed(body)

loop(); command_alone()  # warm-up
result = {"version": minisweagent.__version__, "step": [], "command": []}
for _ in range(runs):
    result["step"].append(loop())
    result["command"].append(command_alone())
print("LOOP_OVERHEAD_RESULT " + json.dumps(result))
"""


def peer_round(
    python: str, steps: int, command: str, runs: int
) -> tuple[str, list[Sample], list[Sample]]:
    options = json.dumps(
        {"steps": steps, "command": command, "reply": _reply(command), "runs": runs}
    )
    done = subprocess.run(
        [python, "-c", _PEER_SCRIPT, options],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("LOOP_OVERHEAD_RESULT "):
            data = json.loads(line.split(" ", 1)[1])
            return (
                data["version"],
                [Sample(**s) for s in data["step"]],
                [Sample(**s) for s in data["command"]],
            )
    raise RuntimeError(
        f"the mini-swe-agent run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )


# -- the run --------------------------------------------------------------------------------------


async def measure(
    steps: int, repeats: int, command: str, peer_python: str | None
) -> tuple[list[Row], str]:
    persistent = Row("agentkit, persistent shell", "mini scaffold, LocalRuntime's one bash session")
    saving = Row(
        "agentkit, persistent shell + trajectory saving",
        "as above, step log appended every step, trajectory.json at the end",
    )
    per_process = Row(
        "agentkit, process per command", "as the first row, every command in a fresh bash"
    )
    peer = Row("mini-swe-agent", "DefaultAgent + LocalEnvironment (process per command)")
    peer_note = ""
    rows = [persistent, saving, per_process]

    with tempfile.TemporaryDirectory(prefix="loop-overhead-") as scratch:
        async with LocalRuntime() as runtime:
            await runtime.run("true")  # start the session outside the measurement

            async def one_round(record: bool, index: int) -> None:
                trajectory = Path(scratch) / f"run-{index}" / "trajectory.json"
                samples = [
                    (
                        persistent.step,
                        await agentkit_loop(runtime, steps, command, stateless=False, save_to=None),
                    ),
                    (
                        persistent.command,
                        await agentkit_command(runtime, steps, command, stateless=False),
                    ),
                    (
                        saving.step,
                        await agentkit_loop(
                            runtime, steps, command, stateless=False, save_to=trajectory
                        ),
                    ),
                    (
                        per_process.step,
                        await agentkit_loop(runtime, steps, command, stateless=True, save_to=None),
                    ),
                    (
                        per_process.command,
                        await agentkit_command(runtime, steps, command, stateless=True),
                    ),
                ]
                if record:
                    for target, sample in samples:
                        target.append(sample)

            await one_round(record=False, index=0)
            saving.command = persistent.command  # the same command, run the same way
            for index in range(1, repeats + 1):
                await one_round(record=True, index=index)
                if peer_python:
                    version, step_samples, command_samples = peer_round(
                        peer_python, steps, command, 1
                    )
                    peer.name = f"mini-swe-agent {version}"
                    peer.step += step_samples
                    peer.command += command_samples
    if peer_python:
        rows.append(peer)
    else:
        peer_note = (
            "mini-swe-agent was not measured (no --peer-python interpreter); ratios omitted."
        )
    return rows, peer_note


def table(rows: list[Row], steps: int, repeats: int, command: str, note: str) -> str:
    peer = next((row for row in rows if row.name.startswith("mini-swe-agent")), None)
    lines = [
        f"Loop overhead, {steps} steps of `{command}`, median of {repeats} rounds; "
        f"{date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
        "| row | ms/step | ratio to mini-swe-agent | command alone ms | loop only ms (= step − command) "
        "| driver CPU ms/step | what it measures |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ratio = f"{row.step_ms / peer.step_ms:.2f}" if peer else "n/a"
        command_ms = row.command_ms
        alone = f"{command_ms:.3f}" if command_ms is not None else "n/a"
        loop_only = f"{row.step_ms - command_ms:.3f}" if command_ms is not None else "n/a"
        lines.append(
            f"| {row.name} | {row.step_ms:.3f} | {ratio} | {alone} | {loop_only} | {row.cpu_ms:.3f} "
            f"| {row.what} |"
        )
    lines.append("")
    first = rows[0]
    verdict = [f"budget ≤ {BUDGET_MS} ms/step: {'met' if first.step_ms <= BUDGET_MS else 'MISSED'}"]
    if peer:
        limit = BUDGET_FRACTION_OF_PEER * peer.step_ms
        verdict.append(
            f"≤ 1/5 of mini-swe-agent ({limit:.3f} ms): {'met' if first.step_ms <= limit else 'MISSED'}"
        )
    lines.append(f"{first.name}: " + "; ".join(verdict) + ".")
    if note:
        lines.append(note)
    spread = ", ".join(
        f"{row.name}: {min(s.wall_ms for s in row.step):.3f}–{max(s.wall_ms for s in row.step):.3f}"
        for row in rows
    )
    lines.append(f"Range over rounds (ms/step): {spread}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--command", default="echo hello", help="the command of every step")
    parser.add_argument(
        "--peer-python",
        default=DEFAULT_PEER_PYTHON,
        help="an interpreter with mini-swe-agent installed ('' to skip the peer)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    args = parser.parse_args(argv)

    peer_python: str | None = args.peer_python or None
    note = ""
    if peer_python and not Path(peer_python).exists():
        note = f"mini-swe-agent was not measured: {peer_python} does not exist (see this script's docstring)."
        peer_python = None
    rows, peer_note = asyncio.run(measure(args.steps, args.repeats, args.command, peer_python))
    print(table(rows, args.steps, args.repeats, args.command, note or peer_note))
    if args.json:
        args.json.write_text(
            json.dumps([dataclasses.asdict(row) for row in rows], indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
