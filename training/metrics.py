"""What a run reports: one JSON line per optimizer step, a loss plot, and a live progress bar.

``metrics.jsonl`` is the record a resumed run continues: on resume the lines after the checkpoint's
step are dropped (they belong to steps that will be taken again), so the file always holds one
line per step of a single, consistent loss curve.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


class StepMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    epoch: int
    loss: float
    """Mean negative log-likelihood per trained token of this step."""
    lr: float
    grad_norm: float
    """Global gradient norm before clipping."""
    trained_tokens: int
    tokens: int
    """Real (non-padding) tokens the model read in this step."""
    tokens_per_s: float
    step_s: float
    """Wall time of this step: batching, forward, backward, optimizer."""
    elapsed_s: float
    """Training time since the run began, summed over resumed sessions."""


def read_metrics(path: Path) -> list[StepMetrics]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [StepMetrics.model_validate_json(line) for line in lines if line.strip()]


class MetricsLog:
    """Appends one line per step (flushed, so a crash loses at most the step in flight)."""

    def __init__(self, path: Path, *, keep_through_step: int) -> None:
        self.path = path
        self.records = [m for m in read_metrics(path) if m.step <= keep_through_step]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(m.model_dump_json() + "\n" for m in self.records), encoding="utf-8")
        os.replace(tmp, path)
        self._file = path.open("a", encoding="utf-8")

    def append(self, metrics: StepMetrics) -> None:
        self.records.append(metrics)
        self._file.write(metrics.model_dump_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def plot_loss(records: list[StepMetrics], out: Path) -> None:
    """Loss per step (and the learning rate on a second axis), written atomically as a PNG."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [m.step for m in records]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
    axis.plot(steps, [m.loss for m in records], color="tab:blue", linewidth=1.2)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (NLL per trained token)", color="tab:blue")
    axis.grid(alpha=0.3)
    rate = axis.twinx()
    rate.plot(steps, [m.lr for m in records], color="tab:orange", linewidth=0.8, alpha=0.7)
    rate.set_ylabel("learning rate", color="tab:orange")
    figure.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    figure.savefig(tmp)
    plt.close(figure)
    os.replace(tmp, out)


class StepProgress:
    """A rich progress bar over optimizer steps showing the loss and tokens/s; silent when off."""

    def __init__(self, total: int, *, completed: int, enabled: bool) -> None:
        self._progress: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]SFT"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} tok/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._task = self._progress.add_task(
            "sft", total=total, completed=completed, loss="-", speed="-"
        )

    def __enter__(self) -> StepProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, metrics: StepMetrics) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=metrics.step,
                loss=f"{metrics.loss:.4f}",
                speed=f"{metrics.tokens_per_s:,.0f}",
            )


def dump_json(value: Any, path: Path) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
