"""The progress view of ``agentkit run``: a bar (done / total, resolved so far, errors, cost,
ETA) over a line per finished task, fed by the harness's events."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agentkit.evals.harness import HarnessEvent, TaskFinished, TaskProgress
from agentkit.evals.run_folder import TaskResult


class RunProgress:
    """Subscribe :meth:`on_event` to the harness; use as a context manager around the run."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.done = 0
        self.resolved = 0
        self.errors = 0
        self.cost = 0.0
        self.activity: dict[str, str] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[activity]}"),
            console=console,
            transient=True,
        )
        self._bar = self._progress.add_task("tasks", total=self.total, tally="", activity="")

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def on_event(self, event: HarnessEvent) -> None:
        if isinstance(event, TaskProgress):
            detail = event.phase
            if event.step is not None:
                detail = f"step {event.step + 1} ({event.action or 'format error'})"
            self.activity[event.instance_id] = detail
        elif isinstance(event, TaskFinished):
            self._finished(event.result)
        self._refresh()

    def _finished(self, result: TaskResult) -> None:
        self.activity.pop(result.instance_id, None)
        self.done += 1
        self.resolved += bool(result.resolved) and result.error is None
        self.errors += result.error is not None
        self.cost += result.cost
        label = f"[{self.done}/{self.total}] {result.instance_id}"
        if result.attempt:
            label += f" (attempt {result.attempt + 1})"
        self._progress.console.print(f"{label}: {describe(result)}", highlight=False)
        self._progress.advance(self._bar)

    def _refresh(self) -> None:
        tally = f"resolved {self.resolved}, errors {self.errors}"
        if self.cost:
            tally += f", ${self.cost:.2f}"
        activity = "  ".join(f"{i}: {what}" for i, what in list(self.activity.items())[:3])
        self._progress.update(self._bar, tally=tally, activity=activity)


def describe(result: TaskResult) -> str:
    """One finished task in words (rich markup)."""
    if result.error:
        return f"[red]error[/]: {escape(result.error)}"
    verdict = "[green]resolved[/]" if result.resolved else "[red]unresolved[/]"
    if not result.graded:
        verdict = "[cyan]not graded[/]"  # no tests: the patch is the result
    resumed = " (already done, not rerun)" if result.resumed else ""
    if result.exit_status is None:  # graded without an agent
        return f"{verdict}{resumed}"
    return f"{verdict} - exit {result.exit_status}, {result.steps} steps{resumed}"
