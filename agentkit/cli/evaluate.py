"""``agentkit eval``: grade a predictions file (no agent) with the evaluation harness, into a run
folder whose reports have SWE-bench's shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.markup import escape

from agentkit.cli.progress import RunProgress
from agentkit.cli.runner import make_executor, require_docker
from agentkit.evals.run_folder import TaskResult


class EvalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Path
    predictions: str
    task_ids: list[str] = []
    pattern: str | None = None
    slice: str | None = None
    runtime: Literal["docker", "local"] = "docker"
    output: Path = Path("runs")
    run_id: str | None = None
    rerun: bool = False
    workers: int = Field(default=1, ge=1)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None


async def evaluate(settings: EvalSettings, console: Console | None = None) -> list[TaskResult]:
    from agentkit.cli.run_config import choose_run, eval_record, save_record, tasks_digest
    from agentkit.evals.datasets import load_dataset, select_tasks
    from agentkit.evals.harness import grade_predictions
    from agentkit.evals.predictions import load_predictions
    from agentkit.evals.run_folder import RunFolder

    console = console or Console()
    every = load_dataset(settings.dataset)
    tasks = select_tasks(
        every, ids=settings.task_ids, pattern=settings.pattern, slice_=settings.slice
    )
    predictions = load_predictions(settings.predictions, tasks)
    executor = make_executor(settings.executor, settings.ray_address)
    model = next(iter(predictions.values())).model_name_or_path
    record = eval_record(
        predictions=settings.predictions,
        runtime=settings.runtime,
        tasks_sha256=tasks_digest(every),
        details={"dataset": str(settings.dataset.expanduser().resolve())},
    )
    chosen = choose_run(
        settings.output,
        f"eval__{model.replace('/', '__')}",
        record,
        run_id=settings.run_id,
        rerun=settings.rerun,
        selected=[task.instance_id for task in tasks],
    )
    run_id = chosen.run_id
    folder = RunFolder(chosen.root, run_id)
    folder.prepare()
    save_record(folder.root, record)
    for note in chosen.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if settings.runtime == "docker" and settings.executor == "local":
        require_docker()  # on Ray, each node's engine (a node without one fails its tasks)
    to_grade = [p for i, p in predictions.items() if not p.is_empty]
    with RunProgress(console, len(to_grade)) as bar:
        results = await grade_predictions(
            tasks,
            predictions,
            folder,
            runtime=settings.runtime,
            workers=settings.workers,
            rerun=settings.rerun,
            on_event=bar.on_event,
            executor=executor,
        )
    summary = json.loads((folder.root / "report.json").read_text(encoding="utf-8"))
    console.print(
        f"{run_id}: {summary['resolved_instances']}/{summary['total_instances']} resolved, "
        f"{summary['unresolved_instances']} unresolved, {summary['empty_patch_instances']} "
        f"empty patches, {summary['error_instances']} errors",
        highlight=False,
    )
    console.print(f"Results: {folder.root}/")
    return results
