"""The cold start of the RL toy: a policy that solves some toy tasks, and not all.

RL on group-relative advantages learns nothing from a group whose rewards are all equal, so the
policy must start with a solve rate well inside (0, 1): a random tiny model solves nothing. The
cold start is the RFT → SFT recipe on the toy environment:

1. demonstrations: each training task is run through the harness with :class:`SolutionBackend`
   (the toy's gold: it replays the task's one-line solution, then submits — not a model), in
   the short bash-only scaffold of :func:`toy_scaffold` with native calls, on the local runtime,
   and graded for real;
2. the resolved trajectories become token samples (:func:`collect_samples`, rendered with the
   model's chat template), and the plain tiny model is fine-tuned on them (:func:`train_sft`);
3. the fine-tuned model is served by vLLM and its solve rate measured on held-out toy tasks,
   ``group_size`` attempts each at temperature 1.0 (:func:`collect_rollouts`).

``python -m agentkit.training.cold_start OUT_DIR --steps 80 200 --lr 3e-3`` trains and measures
each setting and prints a table; the settings go into :class:`ColdStartConfig`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.harness import run_and_grade
from agentkit.evals.run_folder import RunFolder
from agentkit.scaffold import Limits, ScaffoldConfig
from agentkit.tasks import Task
from agentkit.tools import CallFormat, Tool
from agentkit.training.pipeline import collect_samples
from agentkit.training.rollouts import PolicyEndpoint, RolloutStats, collect_rollouts
from agentkit.training.toy_tasks import (
    ToyTaskConfig,
    build_toy_tasks,
    solution_command,
    split_tasks,
)
from agentkit.training.trainer import SFTConfig, train_sft
from agentkit.types import Completion, Message, SamplingParams, ToolCall, ToolSpec

__all__ = [
    "TOY_SUBMIT",
    "ColdStartConfig",
    "ColdStartResult",
    "FineTuned",
    "SolutionBackend",
    "build_demonstrations",
    "cold_start",
    "evaluate_policy",
    "fine_tune_on_demonstrations",
    "toy_scaffold",
]

TOY_SUBMIT = "SUBMIT"
"""The toy scaffold's submit sentinel (short: every prompt token counts in a 2048 context)."""

_SYSTEM = "You work in a bash shell in a git repository. Call the bash tool once per turn."
_INSTANCE = "{{ task.problem_statement }}\nThen submit with: echo " + TOY_SUBMIT


def toy_scaffold(
    *, max_steps: int = 2, max_tokens: int = 48, temperature: float = 1.0, seed: int = 0
) -> ScaffoldConfig:
    """The bash-only (mini-style) scaffold with native calls and short prompts, sized for a
    2048-token model: one command, then the submit turn. A run that reaches ``max_steps``
    without submitting is autosubmitted (its diff is graded)."""
    return ScaffoldConfig(
        name="mini-toy",
        tools=["bash"],
        call_format="native",
        system_template=_SYSTEM,
        instance_template=_INSTANCE,
        observation_template=(
            "exit code {{ exit_code if exit_code is not none else 'none' }}\n{{ output }}"
        ),
        format_error_template="Not run: {{ error }}\nCall the bash tool.",
        submit_sentinel=TOY_SUBMIT,
        limits=Limits(
            max_steps=max_steps,
            max_cost=None,
            max_wall_time_s=300.0,
            command_timeout_s=30.0,
            max_context_tokens=1900,
            max_format_errors=max_steps,
        ),
        sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed),
    )


class SolutionBackend:
    """The toy's gold: replies with the task's one-line solution, then with the submit command,
    each rendered in the scaffold's call format. Not a model; its runs are demonstrations."""

    def __init__(self, task: Task, call_format: CallFormat, tools: list[Tool]) -> None:
        self.format = call_format
        self.tools = tools
        self._commands = [solution_command(task), f"echo {TOY_SUBMIT}"]
        self._next = 0

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        command = self._commands[min(self._next, len(self._commands) - 1)]
        self._next += 1
        call = ToolCall(name="bash", arguments={"command": command}, id=f"toy-{self._next}")
        return self.format.render(call, self.tools, thought="")

    def describe(self) -> dict[str, Any]:
        return {"type": "toy-solution", "label": "toy gold (solution replay, not a model)"}


async def build_demonstrations(
    tasks: Sequence[Task], folder: RunFolder, scaffold: ScaffoldConfig, *, workers: int = 2
) -> int:
    """Run :class:`SolutionBackend` on ``tasks`` in ``folder`` (local runtime, graded); the
    number of resolved demonstrations."""
    call_format, tools = scaffold.build_format(), scaffold.build_tools()
    results = await run_and_grade(
        tasks,
        scaffold,
        tools,
        lambda task: SolutionBackend(task, call_format, tools),
        folder,
        runtime="local",
        workers=workers,
        model_name="toy-gold",
    )
    return sum(bool(r.resolved) for r in results)


async def evaluate_policy(
    model_dir: Path, tasks: Sequence[Task], folder: Path, scaffold: ScaffoldConfig, *,
    group_size: int, workers: int, log_path: Path | None = None,
) -> RolloutStats:  # fmt: skip
    """Serve ``model_dir`` with vLLM and collect ``group_size`` rollouts per task; the stats."""
    from agentkit.backends.vllm_server import VLLMConfig, VLLMServer

    config = VLLMConfig(model_path=str(model_dir), log_path=str(log_path) if log_path else None)
    async with VLLMServer(config) as server:
        endpoint = PolicyEndpoint(base_url=server.base_url, model=server.model_name)
        batch = await collect_rollouts(
            tasks, scaffold, folder, endpoint=endpoint, group_size=group_size, workers=workers
        )
    return batch.stats


class ColdStartConfig(BaseModel):
    """One cold start: the toy tasks, the split, the SFT settings and the measurement."""

    model_config = ConfigDict(extra="forbid")

    out_dir: str
    model_dir: str | None = None
    """The plain tiny model; built under ``out_dir`` when unset."""
    tasks: ToyTaskConfig = Field(default_factory=lambda: ToyTaskConfig(count=48))
    train_tasks: int = Field(default=32, ge=1)
    """The first this many tasks are demonstrated and trained on; the rest are held out."""
    sft_steps: int = Field(default=80, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    micro_batch_size: int = Field(default=4, ge=1)
    max_tokens: int = Field(default=48, ge=8)
    group_size: int = Field(default=4, ge=1)
    workers: int = Field(default=2, ge=1)
    seed: int = 0


class ColdStartResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: ColdStartConfig
    demonstrations: int
    final_loss: float
    model_dir: str
    held_out: RolloutStats


class FineTuned(BaseModel):
    """The cold start before its measurement: the SFT'd policy and the tasks held out for it."""

    model_config = ConfigDict(extra="forbid")

    demonstrations: int
    """Resolved demonstrations (the toy's gold solves every task, so normally all of them)."""
    final_loss: float
    model_dir: Path
    held_out: list[Task]


async def fine_tune_on_demonstrations(config: ColdStartConfig) -> FineTuned:
    """Steps 1 and 2 of the cold start: demonstrate the training tasks, fine-tune on them."""
    from transformers import AutoTokenizer

    from agentkit.backends.tiny_model import build_tiny_chat_model

    out = Path(config.out_dir)
    base = (
        Path(config.model_dir)
        if config.model_dir
        else build_tiny_chat_model(out / "base", seed=config.seed)
    )
    tasks = build_toy_tasks(out / "tasks", config.tasks)
    train, held_out = split_tasks(tasks, config.train_tasks)
    scaffold = toy_scaffold(max_tokens=config.max_tokens, seed=config.seed)
    demos = RunFolder(out / "demos", "demos")
    solved = await build_demonstrations(train, demos, scaffold, workers=config.workers)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    samples = collect_samples(demos, tokenizer).samples
    sft = SFTConfig(
        model_path=str(base),
        output_dir=str(out / "sft"),
        learning_rate=config.learning_rate,
        max_grad_norm=None,
        max_steps=config.sft_steps,
        micro_batch_size=config.micro_batch_size,
        max_length=2048,
        seed=config.seed,
        plot=False,
    )
    trained = await asyncio.to_thread(train_sft, samples, sft, progress=False)
    return FineTuned(
        demonstrations=solved,
        final_loss=trained.losses[-1],
        model_dir=trained.final_dir,
        held_out=held_out,
    )


async def cold_start(config: ColdStartConfig) -> ColdStartResult:
    """Demonstrate, fine-tune the plain tiny model, and measure it served (see the module
    docstring). Each setting needs its own ``out_dir``."""
    tuned = await fine_tune_on_demonstrations(config)
    out = Path(config.out_dir)
    stats = await evaluate_policy(
        tuned.model_dir, tuned.held_out, out / "eval",
        toy_scaffold(max_tokens=config.max_tokens, seed=config.seed),
        group_size=config.group_size, workers=config.workers, log_path=out / "vllm.log",
    )  # fmt: skip
    return ColdStartResult(
        config=config,
        demonstrations=tuned.demonstrations,
        final_loss=tuned.final_loss,
        model_dir=str(tuned.model_dir),
        held_out=stats,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold-start the tiny model on toy tasks.")
    parser.add_argument("out_dir")
    parser.add_argument("--steps", type=int, nargs="+", default=[80])
    parser.add_argument("--lr", type=float, nargs="+", default=[3e-3])
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--held-out", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-value", type=int, default=99)
    args = parser.parse_args(argv)
    from agentkit.backends.tiny_model import build_tiny_chat_model

    out = Path(args.out_dir)
    base = build_tiny_chat_model(out / "base")
    for steps in args.steps:
        for lr in args.lr:
            config = ColdStartConfig(
                out_dir=str(out / f"steps{steps}-lr{lr:g}"),
                model_dir=str(base),
                tasks=ToyTaskConfig(count=args.train + args.held_out, max_value=args.max_value),
                train_tasks=args.train,
                sft_steps=steps,
                learning_rate=lr,
                max_tokens=args.max_tokens,
                group_size=args.group_size,
                workers=args.workers,
            )
            result = asyncio.run(cold_start(config))
            stats = result.held_out
            line = {
                "steps": steps, "lr": lr, "loss": round(result.final_loss, 4),
                "solve_rate": round(stats.solve_rate, 3), "rollouts": stats.rollouts,
                "failures": stats.failures, "tasks_solved": stats.tasks_solved,
                "exit_statuses": stats.exit_statuses,
            }  # fmt: skip
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
