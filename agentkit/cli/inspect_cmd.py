"""``agentkit inspect``: a run folder in the terminal (the tasks and the run's totals, or one task
step by step), or as a self-contained HTML page.

Everything shown from the folder goes through :func:`~agentkit.evals.inspector.printable` and
into rich ``Text`` objects, never into markup: a trajectory holds whatever a model or a program
printed, and none of it may restyle the terminal or be read as rich markup.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from agentkit.evals.inspector import (
    STATUS_STYLES,
    RunView,
    StepView,
    TaskView,
    clip,
    printable,
    read_run,
    task_dirs,
)

OBSERVATION_LINES, OBSERVATION_CHARS = 30, 3000
"""How much of an observation one step shows; the HTML report shows far more."""
THOUGHT_LINES, THOUGHT_CHARS = 40, 4000
DIFF_LINES, DIFF_CHARS = 200, 20_000


def inspect_command(run_dir: Path, task: str | None, html: Path | None) -> int:
    """Show ``run_dir`` (or one ``task`` of it) or write it to ``html``; the exit code: 0 shown,
    2 for a folder or task that is not there (said in one line, never with a traceback)."""
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    view: RunView | None = None
    instance_id = task.split(" #")[0] if task is not None else None  # "ID" or a label "ID #N"
    try:
        problem = _not_a_run(run_dir)
        if problem is None:
            detail = task is not None or html is not None
            view = read_run(run_dir, detail=detail, instance_id=instance_id)
    except OSError as exc:
        problem = f"cannot read {run_dir}: {exc.strerror or exc}"
    if view is None:
        err.print(Text.assemble(("error: ", "bold red"), problem or f"cannot read {run_dir}"))
        return 2
    if task is not None:
        chosen = [t for t in view.tasks if task in (t.instance_id, t.label)]
        if not chosen:
            known = ", ".join(sorted({name for _, name, _ in task_dirs(run_dir)})[:20])
            err.print(Text.assemble(("error: ", "bold red"), f"no task {task!r} in {run_dir} "))
            err.print(Text(f"(tasks: {known or 'none'})"))
            return 2
        view = view.model_copy(update={"tasks": chosen})
    if html is not None:
        from agentkit.evals.html_report import write_html

        try:
            write_html(view, html)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            err.print(Text.assemble(("error: ", "bold red"), f"cannot write {html}: {reason}"))
            return 2
        out.print(Text(f"Wrote {html} ({len(view.tasks)} task(s)); open it in a browser."))
        return 0
    if task is None:
        print_run(view, out)
    else:
        for one in view.tasks:
            print_task(one, out)
    return 0


def _not_a_run(run_dir: Path) -> str | None:
    """Why ``run_dir`` cannot be shown, naming the runs inside when it is an output folder."""
    if not run_dir.is_dir():
        return f"{run_dir} is not a folder (expected a run folder: OUTPUT/RUN_ID)."
    if any(task_dirs(run_dir)) or (run_dir / "report.json").exists():
        return None
    runs = sorted(p.name for p in run_dir.iterdir() if p.is_dir() and any(task_dirs(p)))
    if runs:
        return f"{run_dir} holds runs, not tasks; pick one: " + ", ".join(runs[:20])
    return f"{run_dir} holds no task folders (expected a run folder: OUTPUT/RUN_ID)."


def print_run(view: RunView, console: Console) -> None:
    """The tasks table, the notes, and the run's totals."""
    table = Table(title=Text(f"Run {printable(view.run_id)} ({view.root})"), title_justify="left")
    for name, justify in [("instance", "left"), ("exit status", "left"), ("steps", "right")]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("result")
    table.add_column("cost", justify="right")
    for task in view.tasks:
        table.add_row(
            Text(printable(task.label)),
            Text(printable(task.exit_status or "-")),
            str(task.step_count),
            Text(task.status, style=STATUS_STYLES[task.status]),
            f"${task.cost:.4f}",
        )
    console.print(table)
    for note in view.notes:
        console.print(Text(f"note: {note}", style="dim"))
    for task in view.tasks:
        for line in ([f"error: {task.error}"] if task.error else []) + task.notes:
            console.print(Text(f"{task.label}: {printable(line)}", style="dim"))
    console.print(_totals_line(view))


def _totals_line(view: RunView) -> Text:
    t = view.totals
    graded = t.resolved + t.unresolved
    rate = f" ({t.resolved / graded:.0%} of graded)" if graded else ""
    attempts = f" in {t.attempts} attempts" if t.attempts != t.tasks else ""
    line = Text.assemble(
        (f"{t.tasks} task(s){attempts}: ", "bold"),
        (f"{t.resolved} resolved{rate}", STATUS_STYLES["resolved"]),
        ", ",
        (f"{t.unresolved} unresolved", STATUS_STYLES["unresolved"]),
        ", ",
        (f"{t.errors} error(s)", STATUS_STYLES["error"]),
        ", ",
    )
    if t.ungraded:  # tasks without tests (``agentkit run --repo``)
        line.append(f"{t.ungraded} not graded", STATUS_STYLES["ungraded"])
        line.append(", ")
    line.append(f"{t.unfinished} unfinished · {t.steps} steps · ${t.cost:.4f}")
    return line


def print_task(task: TaskView, console: Console) -> None:
    """One task: its outcome, every step, the diff and the test verdict."""
    console.print(Rule(Text(printable(task.label), style="bold")))
    console.print(
        Text.assemble(
            (task.status, STATUS_STYLES[task.status]),
            f" · exit {printable(task.exit_status or '-')} · {task.step_count} steps"
            f" · ${task.cost:.4f} · {task.wall_time_s:.1f} s · {task.path}",
        )
    )
    if task.exit_message:
        console.print(Text(printable(task.exit_message), style="dim"))
    if task.error:
        console.print(Text(f"error: {printable(task.error)}", style="red"))
    for note in task.notes:
        console.print(Text(f"note: {printable(note)}", style="dim"))
    for step in task.steps or []:
        _print_step(step, console)
    console.print(Rule("diff", align="left", style="dim"))
    if task.patch and task.patch.strip():
        diff = clip(printable(task.patch), DIFF_LINES, DIFF_CHARS)
        console.print(Syntax(diff, "diff", theme="ansi_dark", word_wrap=True))
    else:
        console.print(Text("(no changes submitted)", style="dim"))
    _print_verdict(task, console)


def _print_step(step: StepView, console: Console) -> None:
    console.print(Rule(f"step {step.index + 1}", align="left", style="cyan"))
    if step.thought:
        console.print(Text(clip(printable(step.thought), THOUGHT_LINES, THOUGHT_CHARS)))
    if step.action is not None:
        console.print(Text(f"▶ {printable(step.action_name or '')}", style="bold cyan"))
        console.print(Text(clip(printable(step.action), THOUGHT_LINES, THOUGHT_CHARS)))
    if step.format_error:
        console.print(Text(f"format error: {printable(step.format_error)}", style="bold red"))
    if step.observation is not None:
        flags = [f"exit {step.exit_code}" if step.exit_code is not None else "no exit code"]
        flags += ["timed out"] * step.timed_out + ["truncated"] * step.truncated
        console.print(Text(f"◀ observation ({', '.join(flags)})", style="bold magenta"))
        output = printable(step.observation).rstrip("\n")
        console.print(Text(clip(output, OBSERVATION_LINES, OBSERVATION_CHARS)))
    timing = f"model {step.model_s:.2f} s · action {step.action_s:.2f} s"
    if step.prompt_tokens or step.completion_tokens:
        timing += f" · {step.prompt_tokens}+{step.completion_tokens} tokens"
    console.print(Text(timing + (f" · ${step.cost:.4f}" if step.cost else ""), style="dim"))


def _print_verdict(task: TaskView, console: Console) -> None:
    console.print(Rule("tests", align="left", style="dim"))
    verdict = task.verdict
    if verdict is None:
        console.print(Text("not graded", style="dim"))
        return
    word = "RESOLVED" if verdict.resolved else "NOT RESOLVED"
    line = Text(word, style="bold green" if verdict.resolved else "bold yellow")
    if verdict.patch_applied is False:
        line.append(" · the patch did not apply", style="red")
    for category, passed in verdict.passed.items():
        total = passed + len(verdict.failing.get(category, []))
        if total:
            line.append(f" · {category} {passed}/{total} passed")
    console.print(line)
    for category, failing in verdict.failing.items():
        for test in failing[:20]:
            console.print(Text(f"  failing ({category}): {printable(test)}", style="yellow"))
        if len(failing) > 20:
            console.print(Text(f"  … and {len(failing) - 20} more {category} failures"))
    if task.test_output is not None:
        console.print(Text(f"test log: {task.path / 'test_output.txt'}", style="dim"))
