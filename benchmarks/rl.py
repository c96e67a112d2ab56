"""RL policy steps per hour, asynchronous against synchronous, with the time of every phase.

Both modes run the same driver (:func:`agentkit.training.rl_driver.train_rl`) on the same toy
repair tasks (real git repositories, real tests, local runtime) against one real vLLM server on
the CPU, from the same weights (synced back to the base model before each mode), with the same
seed, step count, group size and staleness bound:

- **sync**: collect a step's rollouts, train, sync; then the next collection starts;
- **async**: the next collection starts as soon as a step's rollouts are in and runs beside the
  training and the sync (rollouts at most ``--max-staleness`` versions old).

Per mode the table gives policy steps per hour over the measured steps (the first step of each
mode is a warm-up and left out), and per step: the seconds the trainer waited for rollouts, the
collection's own wall time, training, the weight sync, and the harness phases summed over the
step's attempts (``agent``: generation plus the tools' commands; ``sandbox``: copying the
repository in and out; ``grading``: the tests).

What bounds the speed-up: in async mode a step costs ``max(collect, train + sync)`` when the two
really run side by side, against ``collect + train + sync`` in sync mode. The last lines compute
that bound from the sync mode's own phase times; on a machine where generation (vLLM), the
sandboxes and the trainer share two cores, running them side by side slows each of them, and the
measured async row shows how much of the bound survives.

    python benchmarks/rl.py [--steps 4] [--tasks-per-step 4] [--group-size 4] [--max-staleness 4]
        [--model DIR] [--output DIR]

About ten minutes on two cores (both modes of ``--steps`` steps, after a one-minute server
start).
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
from pathlib import Path
from typing import Any

from agentkit.training.rl_driver import RLConfig, RLResult, RLStepRecord, train_rl
from agentkit.training.rl_shaping import ShapingConfig
from agentkit.training.rollouts import PolicyEndpoint
from agentkit.training.toy_tasks import ToyTaskConfig, build_toy_tasks

PHASES = ("agent", "sandbox", "grading")


def toy_scaffold(max_tokens: int) -> Any:
    """The cold start's short bash-only scaffold (native calls; one command, then submit)."""
    from agentkit.training.cold_start import toy_scaffold as scaffold

    return scaffold(max_tokens=max_tokens, temperature=1.0)


async def run_mode(
    mode: str, model_dir: Path, tasks: list[Any], server: Any, args: argparse.Namespace
) -> RLResult:
    """One mode from the base weights: sync them back into the server, then ``train_rl``."""
    import torch

    from agentkit.training.modeling import load_causal_lm
    from agentkit.training.weight_sync import FullSyncConfig, FullWeightSync

    out = args.output / mode
    config = RLConfig(
        model_path=str(model_dir), output_dir=str(out / "rl"),
        scaffold=toy_scaffold(args.max_tokens), steps=args.steps,
        tasks_per_step=args.tasks_per_step, group_size=args.group_size, mode=mode,
        max_staleness=args.max_staleness, workers=args.workers, learning_rate=1e-4,
        micro_batch_size=8, save_every=0,
        # Throughput, not learning: keep every group so that every step trains and syncs.
        shaping=ShapingConfig(drop_zero_advantage_groups=False, compact="keep"),
    )  # fmt: skip
    endpoint = PolicyEndpoint(base_url=server.base_url, model=server.model_name)
    sync_config = FullSyncConfig(
        base_url=server.base_url, model_dir=str(model_dir), output_dir=str(out / "weights"),
        keep_versions=1,
    )  # fmt: skip
    async with FullWeightSync(sync_config) as sync:
        base = load_causal_lm(
            model_dir, dtype=torch.float32, device=torch.device("cpu"), attn_implementation="sdpa"
        )
        endpoint.version = (await sync.sync(base)).version
        return await train_rl(tasks, config, endpoint, sync)


def _mean(records: list[RLStepRecord], value: Any) -> float:
    return statistics.fmean(value(r) for r in records) if records else 0.0


def render(results: dict[str, RLResult], args: argparse.Namespace, threads: int) -> str:
    header = (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} "
        f"({os.cpu_count()} cores, {threads} torch threads, {platform.system()} "
        f"{platform.release()}), Python {platform.python_version()}; toy tasks, "
        f"{args.tasks_per_step} tasks x {args.group_size} attempts a step, {args.workers} "
        f"workers, staleness <= {args.max_staleness}, {args.max_tokens} tokens a reply; "
        f"{args.steps} steps a mode, the first one a warm-up"
    )
    rows = [
        "| mode | steps/hour | s/step | waited for rollouts | collect | train | sync "
        "| agent | sandbox | grading | staleness max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    per_step: dict[str, float] = {}
    for mode, result in results.items():
        measured = result.records[1:] or result.records
        first = result.records[0]
        span = result.records[-1].elapsed_s - (first.elapsed_s if len(result.records) > 1 else 0)
        seconds = span / len(measured)
        per_step[mode] = seconds
        phases = [_mean(measured, lambda r, p=p: r.phase_s.get(p, 0.0)) for p in PHASES]
        rows.append(
            f"| {mode} | {3600 / seconds:.0f} | {seconds:.1f} | "
            f"{_mean(measured, lambda r: r.rollout_s):.1f} | "
            f"{_mean(measured, lambda r: r.collect_s):.1f} | "
            f"{_mean(measured, lambda r: r.train_s):.1f} | "
            f"{_mean(measured, lambda r: r.sync_s):.1f} | "
            + " | ".join(f"{p:.1f}" for p in phases)
            + f" | {max(r.staleness_max for r in result.records)} |"
        )
    lines = [header, "", *rows, ""]
    if "sync" in results and "async" in results:
        measured = results["sync"].records[1:] or results["sync"].records
        collect = _mean(measured, lambda r: r.collect_s)
        learn = _mean(measured, lambda r: r.train_s + r.sync_s)
        bound = (collect + learn) / max(collect, learn)
        lines += [
            f"Measured speed-up, async over sync: {per_step['sync'] / per_step['async']:.2f}x.",
            f"Bound from the sync mode's phase times when collection and training do not share "
            f"cores: (collect {collect:.1f} s + train and sync {learn:.1f} s) / "
            f"max(the two) = {bound:.2f}x.",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--tasks-per-step", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-staleness", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--model", type=Path, default=None, help="default: the tiny tool model")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--modes", nargs="+", default=["sync", "async"])
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step of each mode is a warm-up)")
    args.output = (args.output or Path(tempfile.mkdtemp(prefix="agentkit-bench-rl-"))).resolve()
    print(f"Working in {args.output}", file=sys.stderr)

    import torch

    from agentkit.backends.tiny_model import build_tiny_chat_model
    from agentkit.backends.vllm_server import VLLMServer
    from agentkit.training.weight_sync import rl_server_config

    model_dir = args.model or build_tiny_chat_model(
        args.output / "tiny-model", teach_tool_calls=True
    )
    tasks = build_toy_tasks(args.output / "toy", ToyTaskConfig(count=16, seed=1))
    server = VLLMServer(
        rl_server_config(model_dir, log_path=str(args.output / "vllm.log"), startup_timeout_s=600)
    )
    results: dict[str, RLResult] = {}
    server.start_sync()
    try:
        for mode in args.modes:
            results[mode] = asyncio.run(run_mode(mode, Path(model_dir), tasks, server, args))
    finally:
        server.stop_sync()
    print(render(results, args, torch.get_num_threads()))


if __name__ == "__main__":
    main()
