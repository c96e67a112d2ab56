"""Does RL raise the reward? The toy environment end to end, with nothing simulated.

1. **cold start** (RFT → SFT): the toy's gold (:class:`~agentkit.training.cold_start.
   SolutionBackend`, a replay of each task's one-line solution) solves ``--demo-tasks`` toy tasks
   through the harness (local runtime, graded for real); ``collect_samples`` and ``train_sft``
   fine-tune the *plain* tiny model (random weights) on those trajectories for a few steps — on
   purpose not to convergence, so that the policy solves some tasks and not all;
2. **RL**: :func:`~agentkit.training.rl_run.run_rl`, what ``agentkit train rl --config`` runs, on
   ``--rl-tasks`` *other* toy tasks: a vLLM server (CPU build) started from the cold-start
   weights, ``tasks_per_step`` × ``group_size`` rollouts a step sampled at temperature 1.0,
   graded by their tests, GRPO advantages, the DAPO loss, full-weight syncs into the server,
   asynchronous (rollouts at most ``--max-staleness`` versions old);
3. **the curve**: the solve rate of every step's rollouts (each step's tasks are new draws from
   the RL tasks; the rollouts of the first steps are sampled by the cold-start weights), the mean
   of the first and of the last ``--window`` steps, and their ratio. ``reward.png`` in the RL
   folder draws it.

The toy task (``Set VALUE in answer.py to 2.``, solved by ``echo 'VALUE = 2' > answer.py``)
uses values 1 and 2 only (``--max-value``). The cold start's failures are mostly of form (no tool
call, a reply cut off at the token limit, a misspelt file name); a well-formed command has the
right value at about the chance rate. RL sharpens the form, so the solve rate climbs towards ~0.5.
Compact filtering is off: in a two-turn scaffold, running out of turns is a failure to unlearn,
not a cut-off trajectory.

The defaults double the solve rate within the run (docs/training.md, "Does RL raise the reward?",
has the runs, and the settings that did not): lr 3e-4, four updates on each step's rollouts,
negative advantages weighted 0.25. ``tests/test_training_rl_learning.py`` runs them.

    python benchmarks/rl_learning.py [--output DIR] [--steps 24] [--learning-rate 3e-4]

About eleven minutes on two cores with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import UserFacingError
from agentkit.training.cold_start import FineTuned
from agentkit.training.rl_driver import RLStepRecord


class CurveSettings(BaseModel):
    """Everything the run does, in one value, so that the test runs the very same code."""

    model_config = ConfigDict(extra="forbid")

    output: Path
    max_value: int = Field(default=2, ge=2)
    """Toy values are drawn from 1..max_value."""
    demo_tasks: int = Field(default=32, ge=1)
    sft_steps: int = Field(default=75, ge=1)
    """Cold-start SFT steps (4 samples each, lr ``sft_learning_rate``). The start moves fast with
    it: after 60 steps the policy solved nothing, after 70 ~7% of the first steps' tasks, 75
    ~10%, 80 ~16% — and ~0.5 is where RL levels off (the value is right at chance), so 75 leaves
    room to double with a start well above the 5% floor."""
    sft_learning_rate: float = Field(default=3e-3, gt=0)
    rl_tasks: int = Field(default=32, ge=1)
    steps: int = Field(default=24, ge=1)
    tasks_per_step: int = Field(default=4, ge=1)
    group_size: int = Field(default=8, ge=2)
    learning_rate: float = Field(default=3e-4, gt=0)
    """An Adam step moves every weight by about the learning rate: for this model 1e-4 changed
    too little within a run, 5e-4 was unstable and 1e-3 broke the model in one step."""
    updates_per_batch: int = Field(default=4, ge=1)
    """Optimizer steps on each step's rollouts (``RLConfig.updates_per_batch``)."""
    negative_scale: float = Field(default=0.25, ge=0, le=1)
    """Weight of the negative advantages (``AdvantageConfig.negative_scale``)."""
    max_staleness: int = Field(default=1, ge=0)
    workers: int = Field(default=3, ge=1)
    window: int = Field(default=4, ge=1)
    """Steps averaged for the start and the end of the curve."""
    seed: int = 0


class CurveResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demonstrations: int
    sft_loss: float
    records: list[RLStepRecord]
    plot: Path
    seconds: dict[str, float]

    def mean_rate(self, records: list[RLStepRecord]) -> float:
        """The solve rate over ``records``' rollouts (each step weighted by its rollouts)."""
        rollouts = sum(r.rollouts - r.failures for r in records)
        solved = sum(r.solve_rate * (r.rollouts - r.failures) for r in records)
        return solved / rollouts if rollouts else 0.0

    def start_rate(self, window: int) -> float:
        return self.mean_rate(self.records[:window])

    def end_rate(self, window: int) -> float:
        return self.mean_rate(self.records[-window:])


async def cold_start(settings: CurveSettings, seconds: dict[str, float]) -> FineTuned:
    """Demonstrations on every cold-start task and SFT of the plain tiny model (nothing held
    out: the RL tasks are other ones)."""
    from agentkit.training.cold_start import ColdStartConfig, fine_tune_on_demonstrations
    from agentkit.training.toy_tasks import ToyTaskConfig

    began = time.perf_counter()
    config = ColdStartConfig(
        out_dir=str(settings.output / "cold-start"),
        tasks=ToyTaskConfig(
            count=settings.demo_tasks, seed=settings.seed, max_value=settings.max_value
        ),
        train_tasks=settings.demo_tasks, sft_steps=settings.sft_steps,
        learning_rate=settings.sft_learning_rate, workers=settings.workers, seed=settings.seed,
    )  # fmt: skip
    tuned = await fine_tune_on_demonstrations(config)
    seconds["cold start (demonstrations, SFT)"] = time.perf_counter() - began
    return tuned


async def run_curve(settings: CurveSettings) -> CurveResult:
    """Cold start, then RL; the per-step records."""
    from agentkit.training.advantages import AdvantageConfig
    from agentkit.training.cold_start import toy_scaffold
    from agentkit.training.rl_run import RLRunConfig, run_rl
    from agentkit.training.rl_shaping import ShapingConfig
    from agentkit.training.toy_tasks import ToyTaskConfig

    seconds: dict[str, float] = {}
    tuned = await cold_start(settings, seconds)
    config = RLRunConfig(
        model_path=str(tuned.model_dir), output_dir=str(settings.output / "rl"),
        toy_tasks=ToyTaskConfig(
            count=settings.rl_tasks, seed=settings.seed + 1, max_value=settings.max_value
        ),
        scaffold=toy_scaffold(), steps=settings.steps, tasks_per_step=settings.tasks_per_step,
        group_size=settings.group_size, mode="async", max_staleness=settings.max_staleness,
        workers=settings.workers, learning_rate=settings.learning_rate, micro_batch_size=16,
        save_every=0, seed=settings.seed, shaping=ShapingConfig(compact="keep"),
        advantage=AdvantageConfig(negative_scale=settings.negative_scale),
        updates_per_batch=settings.updates_per_batch,
    )  # fmt: skip
    began = time.perf_counter()
    result = await run_rl(config)
    seconds["RL (server start included)"] = time.perf_counter() - began
    return CurveResult(
        demonstrations=tuned.demonstrations, sft_loss=tuned.final_loss, records=result.records,
        plot=result.output_dir / "reward.png", seconds=seconds,
    )  # fmt: skip


def render(result: CurveResult, settings: CurveSettings) -> str:
    """The markdown report: a header, the per-step table, the start/end rates and the timings."""
    import torch

    header = (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} "
        f"({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"{platform.system()} {platform.release()}), Python {platform.python_version()}; "
        f"cold start on {settings.demo_tasks} toy tasks ({settings.sft_steps} SFT steps, final "
        f"loss {result.sft_loss:.3f}); RL on {settings.rl_tasks} other toy tasks (values "
        f"1..{settings.max_value}), {settings.tasks_per_step} tasks x {settings.group_size} "
        f"rollouts a step, lr {settings.learning_rate:g}, {settings.updates_per_batch} updates a "
        f"step, negative advantages x "
        f"{settings.negative_scale:g}, async, staleness <= "
        f"{settings.max_staleness}"
    )
    rows = [
        "| step | policy version | rollouts | solve rate | trained samples | loss | s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.records:
        loss = "" if r.loss is None else f"{r.loss:.4f}"
        rows.append(
            f"| {r.step} | {r.policy_version} | {r.rollouts - r.failures} | "
            f"{r.solve_rate:.3f} | {r.trained_samples} | {loss} | {r.elapsed_s:.0f} |"
        )
    start, end = result.start_rate(settings.window), result.end_rate(settings.window)
    ratio = f"{end / start:.2f}x" if start else "n/a"
    summary = (
        f"Solve rate, first {settings.window} steps: {start:.3f}; last {settings.window}: "
        f"{end:.3f} ({ratio}). Curve: {result.plot}"
    )
    times = ", ".join(f"{name} {s:.0f} s" for name, s in result.seconds.items())
    spread = (
        f"Step-to-step spread (sd): {statistics.pstdev(r.solve_rate for r in result.records):.3f}"
    )
    return "\n".join([header, "", *rows, "", summary, spread, f"Time: {times}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    defaults = CurveSettings(output=Path("."))
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--sft-steps", type=int, default=defaults.sft_steps)
    parser.add_argument("--updates-per-batch", type=int, default=defaults.updates_per_batch)
    parser.add_argument("--negative-scale", type=float, default=defaults.negative_scale)
    parser.add_argument("--max-value", type=int, default=defaults.max_value)
    parser.add_argument("--tasks-per-step", type=int, default=defaults.tasks_per_step)
    parser.add_argument("--group-size", type=int, default=defaults.group_size)
    parser.add_argument("--window", type=int, default=defaults.window)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    output = args.output or Path(tempfile.mkdtemp(prefix="agentkit-rl-learning-"))
    settings = CurveSettings(
        output=output.resolve(), steps=args.steps, learning_rate=args.learning_rate,
        sft_steps=args.sft_steps, max_value=args.max_value, tasks_per_step=args.tasks_per_step,
        group_size=args.group_size, window=args.window, seed=args.seed,
        negative_scale=args.negative_scale, updates_per_batch=args.updates_per_batch,
    )  # fmt: skip
    print(f"Working in {settings.output}", file=sys.stderr)
    try:
        result = asyncio.run(run_curve(settings))
    except UserFacingError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(render(result, settings))


if __name__ == "__main__":
    main()
