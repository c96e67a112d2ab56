"""Grade-only wall time: `agentkit eval` against `swebench` 5.x's `run_evaluation`, and the limit.

Both harnesses grade the same predictions (the reference patches) for the same instances (the
bundled examples exported in SWE-bench 5.x form, each repeated ``--copies`` times under its own
id), in the same Docker images, with the same number of workers, each started as a fresh process
the way a user starts it. The physical limit is the tests' own run time: every instance's eval
script timed inside an already-running container with the patch already applied (nothing of
container start, patch application or report writing), summed and divided by the workers.
Rounds alternate the two harnesses; medians are printed as a markdown table.

    python benchmarks/harness.py [--workers 2] [--copies 3] [--rounds 3] [--test-repeat 1]
        [--swebench-python .venv-swebench/bin/python]

The bundled examples' tests take about 0.3 s, less than starting a container; ``--test-repeat K``
runs each task's test command K times in a row (same tests, same verdicts) to stand for suites of
a realistic length, where a harness's fixed cost per instance matters less.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agentkit.evals.eval_script import default_test_command
from agentkit.evals.examples import build_examples
from agentkit.evals.swebench5 import export_swebench5
from agentkit.runtime import docker_available
from agentkit.tasks import Task, load_tasks

ROOT = Path(__file__).resolve().parents[1]


def copies_of(tasks: list[Task], copies: int) -> list[Task]:
    """Each task ``copies`` times under distinct ids (same image, same tests)."""
    return [
        task.model_copy(update={"instance_id": f"{task.instance_id}-copy{n}"})
        for task in tasks
        for n in range(copies)
    ]


def with_repeated_tests(tasks: list[Task], repeat: int) -> list[Task]:
    """Each task's test command run ``repeat`` times in a row (the last run's exit code)."""
    if repeat <= 1:
        return tasks
    return [
        task.model_copy(
            update={"test_cmd": f"for i in $(seq {repeat}); do {default_test_command(task)}; done"}
        )
        for task in tasks
    ]


def write_dataset(tasks: list[Task], path: Path) -> Path:
    path.write_text("".join(task.model_dump_json() + "\n" for task in tasks))
    return path


def write_gold(tasks: list[Task], path: Path) -> Path:
    rows = [
        {"instance_id": t.instance_id, "model_name_or_path": "gold", "model_patch": t.patch}
        for t in tasks
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return elapsed


def run_swebench(python: str, dataset: Path, preds: Path, workers: int, cwd: Path) -> float:
    return timed(
        [python, "-m", "swebench.harness.run_evaluation", "--dataset_name", str(dataset),
         "--predictions_path", str(preds), "--max_workers", str(workers), "--run_id", "bench"],
        cwd,
    )  # fmt: skip


def run_agentkit(dataset: Path, preds: Path, workers: int, cwd: Path) -> float:
    agentkit = str(Path(sys.executable).with_name("agentkit"))
    return timed(
        [agentkit, "eval", "--dataset", str(dataset), "--predictions", str(preds),
         "--workers", str(workers), "--output", str(cwd / "runs")],
        cwd,
    )  # fmt: skip


def docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


def tests_own_time(task: Task) -> float:
    """Seconds the task's eval script takes inside a running container, patch applied."""
    container = docker("run", "-d", "--rm", "-w", task.workdir, task.image or "", "sleep", "600")
    container = container.strip()
    try:
        docker("exec", "-i", container, "git", "apply", "-", stdin=task.patch)
        docker("exec", "-i", container, "sh", "-c", "cat > /eval.sh", stdin=task.eval_script)
        script = (
            "start=$(date +%s%N); bash /eval.sh >/dev/null 2>&1; end=$(date +%s%N); "
            "echo $((end - start))"
        )
        return int(docker("exec", container, "bash", "-c", script).strip()) / 1e9
    finally:
        docker("rm", "-f", container)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--test-repeat", type=int, default=1)
    parser.add_argument(
        "--swebench-python", default=str(ROOT / ".venv-swebench" / "bin" / "python")
    )
    args = parser.parse_args()
    problem = docker_available()
    if problem:
        raise SystemExit(problem)
    if not Path(args.swebench_python).exists():
        raise SystemExit(f"no swebench harness at {args.swebench_python} (scripts/setup.sh)")

    with tempfile.TemporaryDirectory(prefix="agentkit-bench-harness-") as scratch:
        root = Path(scratch)
        examples = load_tasks(build_examples(root / "examples"))
        exported = export_swebench5(
            with_repeated_tests(examples, args.test_repeat), root / "swebench5.jsonl"
        )
        tasks = copies_of(load_tasks(exported), args.copies)
        dataset = write_dataset(tasks, root / "dataset.jsonl")
        preds = write_gold(tasks, root / "preds.jsonl")

        samples: dict[str, list[float]] = {"agentkit": [], "swebench": [], "limit": []}
        for round_number in range(args.rounds):
            for name in ("swebench", "agentkit") if round_number % 2 else ("agentkit", "swebench"):
                cwd = root / f"{name}-{round_number}"
                cwd.mkdir()
                if name == "agentkit":
                    samples[name].append(run_agentkit(dataset, preds, args.workers, cwd))
                else:
                    samples[name].append(
                        run_swebench(args.swebench_python, dataset, preds, args.workers, cwd)
                    )
                shutil.rmtree(cwd, ignore_errors=True)
            own = sum(tests_own_time(task) for task in tasks)
            samples["limit"].append(own / args.workers)

    agentkit, swebench, limit = (statistics.median(samples[k]) for k in samples)
    print(
        f"{datetime.date.today().isoformat()}, {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}), {len(tasks)} instances "
        f"({args.copies} × each bundled example), gold patches, tests run "
        f"{args.test_repeat}× per instance, {args.workers} workers, "
        f"median of {args.rounds} rounds\n"
    )
    print("| row | wall time (s) | vs swebench | vs physical limit |")
    print("|---|---:|---:|---:|")
    for name, seconds in (
        ("agentkit eval", agentkit),
        ("swebench run_evaluation", swebench),
        ("physical limit (tests' own time ÷ workers)", limit),
    ):
        print(f"| {name} | {seconds:.2f} | {seconds / swebench:.2f}× | {seconds / limit:.2f}× |")
    ranges = ", ".join(f"{k} {min(v):.2f}–{max(v):.2f}" for k, v in samples.items())
    print(f"\nRange over rounds (s): {ranges}")


if __name__ == "__main__":
    main()
