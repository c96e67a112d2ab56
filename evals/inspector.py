"""A run folder as people read it: the view model behind ``agentkit inspect`` (drawn in a terminal
by :mod:`agentkit.cli.inspect_cmd`, as a page by :mod:`agentkit.evals.html_report`).

People inspect a run mostly when it went wrong, so the reader trusts nothing in the folder: a
run may still be going or have been killed, a file may come from an older agentkit or have been
edited by hand. Whatever is missing or unreadable becomes a note on its task (or on the run) and
everything else is still shown; reading never raises for a folder's content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentkit.scaffold import format_class, tool_class
from agentkit.tools import Tool, ToolCallError
from agentkit.tools.call_format import CallFormat
from agentkit.types import Completion, Step, ToolCall, Trajectory

TASK_FILES = ("result.json", "trajectory.json", "patch.diff", "test_output.txt", "error.log")
"""A folder holding any of these is a task's (or an attempt's) folder; ``report.json`` is not
one of them, since a run folder has one too."""

Status = Literal["resolved", "unresolved", "error", "ungraded", "unfinished"]
"""``ungraded``: the agent finished on a task without tests (``agentkit run --repo``): its patch is
the result, and there is no verdict to wait for."""
STATUS_STYLES: dict[Status, str] = {
    "resolved": "green",
    "unresolved": "yellow",
    "error": "red",
    "ungraded": "cyan",
    "unfinished": "dim",
}


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepView(_View):
    """One step, already reduced to what a person reads."""

    index: int
    thought: str
    """The reply without its action (the whole reply when no action could be read from it)."""
    action_name: str | None = None
    action: str | None = None
    observation: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False
    format_error: str | None = None
    model_s: float = 0.0
    action_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class TestVerdict(_View):
    """The per-instance SWE-bench report in brief: per category (FAIL_TO_PASS, ...) the
    passed and failing tests."""

    resolved: bool | None = None
    patch_applied: bool | None = None
    passed: dict[str, int] = Field(default_factory=dict)
    failing: dict[str, list[str]] = Field(default_factory=dict)


class TaskView(_View):
    instance_id: str
    attempt: int = 0
    path: Path
    status: Status
    exit_status: str | None = None
    exit_message: str = ""
    steps: list[StepView] | None = None
    """``None`` when the folder has no readable trajectory (grade-only runs have none)."""
    step_count: int = 0
    cost: float = 0.0
    wall_time_s: float = 0.0
    error: str | None = None
    patch: str | None = None
    verdict: TestVerdict | None = None
    test_output: str | None = None
    error_log: str | None = None
    prompt: list[tuple[str, str]] = Field(default_factory=list)
    """The first model call's messages as (role, content): the task as the model saw it."""
    notes: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.instance_id if self.attempt == 0 else f"{self.instance_id} #{self.attempt}"


class RunTotals(_View):
    tasks: int
    attempts: int
    resolved: int
    unresolved: int
    errors: int
    ungraded: int
    unfinished: int
    steps: int
    cost: float


class RunView(_View):
    root: Path
    run_id: str
    tasks: list[TaskView]
    notes: list[str] = Field(default_factory=list)

    @property
    def totals(self) -> RunTotals:
        count = {status: sum(t.status == status for t in self.tasks) for status in STATUS_STYLES}
        return RunTotals(
            tasks=len({t.instance_id for t in self.tasks}),
            attempts=len(self.tasks),
            resolved=count["resolved"],
            unresolved=count["unresolved"],
            errors=count["error"],
            ungraded=count["ungraded"],
            unfinished=count["unfinished"],
            steps=sum(t.step_count for t in self.tasks),
            cost=sum(t.cost for t in self.tasks),
        )


# -- text that is safe to show -----------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with terminal colour codes dropped and other control bytes made visible
    (``\\x07`` becomes ``␇``), so no log can move a cursor, ring a bell, or break a page."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return "\ufffd" if code >= 0xD800 else f"\\x{code:02x}"


def clip(text: str, max_lines: int, max_chars: int) -> str:
    """The head and the tail of a long text, with the size of the gap between them."""
    lines = text.split("\n")
    if len(lines) > max_lines:
        head, tail = max_lines * 2 // 3, max_lines - max_lines * 2 // 3
        gap = len(lines) - head - tail
        lines = [*lines[:head], f"… {gap} lines not shown …", *lines[-tail:]]
        text = "\n".join(lines)
    if len(text) > max_chars:
        half = max_chars // 2
        gap = len(text) - 2 * half
        text = f"{text[:half]}\n… {gap} characters not shown …\n{text[-half:]}"
    return text


# -- reading -----------------------------------------------------------------------------------


class _ResultFile(BaseModel):
    """``result.json`` as far as the inspector needs it; unknown fields (newer agentkit) pass."""

    model_config = ConfigDict(extra="ignore")
    instance_id: str | None = None
    attempt: int = 0
    exit_status: str | None = None
    steps: int = 0
    resolved: bool | None = None
    graded: bool = True
    error: str | None = None
    cost: float = 0.0
    wall_time_s: float = 0.0


class _Tests(BaseModel):
    model_config = ConfigDict(extra="ignore")
    success: list[str] = Field(default_factory=list)
    failure: list[str] = Field(default_factory=list)


class _InstanceReport(BaseModel):
    model_config = ConfigDict(extra="ignore")
    resolved: bool | None = None
    patch_successfully_applied: bool | None = None
    tests_status: dict[str, _Tests] = Field(default_factory=dict)


def read_run(root: Path, *, detail: bool = True, instance_id: str | None = None) -> RunView:
    """Every task folder under ``root`` (attempt folders included, in name order), or only
    ``instance_id``'s. Without ``detail`` only what a summary needs is read (``result.json``,
    the trajectory only where that is missing), so a table of a large run stays fast."""
    notes: list[str] = []
    run_id = root.name
    report_path = root / "report.json"
    if report_path.exists():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8", errors="replace"))
            if isinstance(report, dict) and isinstance(report.get("run_id"), str):
                run_id = report["run_id"]
        except (OSError, ValueError) as exc:
            notes.append(f"report.json cannot be read ({_brief(exc)}); totals are counted here.")
    else:
        notes.append("no report.json: the run has not finished; totals are counted here.")
    tasks = [
        read_task(path, name, attempt, detail=detail)
        for path, name, attempt in task_dirs(root)
        if instance_id in (None, name)
    ]
    return RunView(root=root, run_id=run_id, tasks=tasks, notes=notes)


def task_dirs(root: Path) -> Iterator[tuple[Path, str, int]]:
    """(folder, instance id, attempt) of each task folder under ``root``."""
    for entry in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any((entry / name).exists() for name in TASK_FILES):
            yield entry, entry.name, 0
        attempts = []
        for sub in entry.glob("attempt-*"):
            suffix = sub.name.removeprefix("attempt-")
            if sub.is_dir() and suffix.isdigit() and any((sub / n).exists() for n in TASK_FILES):
                attempts.append((int(suffix), sub))
        for number, sub in sorted(attempts):
            yield sub, entry.name, number


def read_task(folder: Path, instance_id: str, attempt: int = 0, *, detail: bool = True) -> TaskView:
    """One task folder as a view; each missing or broken file adds a note instead of raising."""
    notes: list[str] = []
    result = _load(folder / "result.json", notes, _ResultFile.model_validate_json)
    if result is None and not (folder / "result.json").exists():
        notes.append("no result.json: the task has not finished (still running or interrupted).")
    trajectory = report = None
    if detail or result is None:
        trajectory = _load(folder / "trajectory.json", notes, _trajectory)
        if trajectory is None and not (folder / "trajectory.json").exists():
            notes.append("no trajectory.json (a grade-only run, or the agent never started).")
        report = _load(folder / "report.json", notes, lambda t: _instance_report(t, instance_id))
    patch = _text(folder / "patch.diff", notes) if detail else None
    if patch is None and trajectory is not None:
        patch = trajectory.submission
    resolved = result.resolved if result is not None else report.resolved if report else None
    error = result.error if result is not None else None
    steps = _steps(trajectory) if trajectory is not None and detail else None
    exit_status = trajectory.exit_status if trajectory is not None else None
    return TaskView(
        instance_id=instance_id,
        attempt=attempt,
        path=folder,
        status=_status(error, resolved, graded=result.graded if result is not None else True),
        exit_status=result.exit_status if result and result.exit_status else exit_status,
        exit_message=trajectory.exit_message if trajectory is not None else "",
        steps=steps,
        step_count=len(trajectory.steps) if trajectory else result.steps if result else 0,
        cost=result.cost if result is not None else trajectory.cost if trajectory else 0.0,
        wall_time_s=(result.wall_time_s if result else 0)
        or (trajectory.wall_time_s if trajectory else 0),
        error=error,
        patch=patch,
        verdict=_verdict(report) if report is not None else None,
        test_output=_text(folder / "test_output.txt", notes) if detail else None,
        error_log=_text(folder / "error.log", notes) if detail else None,
        prompt=_prompt(trajectory) if detail else [],
        notes=notes,
    )


_T = TypeVar("_T")


def _load(path: Path, notes: list[str], parse: Callable[[str], _T]) -> _T | None:
    text = _text(path, notes)
    if text is None:
        return None
    try:
        return parse(text)
    except (ValueError, KeyError, TypeError) as exc:
        notes.append(f"{path.name} cannot be read: {_brief(exc)}")
        return None


def _text(path: Path, notes: list[str]) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        notes.append(f"{path.name} cannot be read: {exc.strerror or exc}")
        return None


def _brief(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _trajectory(text: str) -> Trajectory:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a trajectory (not a JSON object)")
    return Trajectory.from_data(data, source="trajectory.json")


def _instance_report(text: str, instance_id: str) -> _InstanceReport:
    data = json.loads(text)
    if not isinstance(data, dict) or instance_id not in data:
        raise ValueError(f"no entry for {instance_id}")
    return _InstanceReport.model_validate(data[instance_id])


def _verdict(report: _InstanceReport) -> TestVerdict:
    return TestVerdict(
        resolved=report.resolved,
        patch_applied=report.patch_successfully_applied,
        passed={k: len(v.success) for k, v in report.tests_status.items()},
        failing={k: list(v.failure) for k, v in report.tests_status.items()},
    )


def _status(error: str | None, resolved: bool | None, *, graded: bool) -> Status:
    if error is not None:
        return "error"
    if not graded:
        return "ungraded"
    if resolved is None:
        return "unfinished"
    return "resolved" if resolved else "unresolved"


def _prompt(trajectory: Trajectory | None) -> list[tuple[str, str]]:
    first = trajectory.steps[0].input if trajectory and trajectory.steps else []
    pool = trajectory.messages if trajectory else []
    return [(pool[i].role, pool[i].content) for i in first if 0 <= i < len(pool)]


def _steps(trajectory: Trajectory) -> list[StepView]:
    parser = _parser(trajectory.scaffold)
    return [_step(step, parser) for step in trajectory.steps]


def _parser(scaffold: dict[str, object]) -> tuple[CallFormat, list[Tool]] | None:
    """The run's own call format and tools, to split each reply into thought and action the
    way the agent did; ``None`` when the scaffold names parts this process does not know."""
    tools = scaffold.get("tools", ["bash"])
    try:
        fmt = format_class(str(scaffold.get("call_format", "bash_block")))()
        names = tools if isinstance(tools, list) else []
        return fmt, [tool_class(str(name))() for name in names]
    except ValueError:
        return None


def _step(step: Step, parser: tuple[CallFormat, list[Tool]] | None) -> StepView:
    completion = step.completion
    observation = step.observation
    return StepView(
        index=step.index,
        thought=_thought(completion, step.action, parser),
        action_name=step.action.name if step.action else None,
        action=_action_text(step.action) if step.action else None,
        observation=observation.output if observation else None,
        exit_code=observation.exit_code if observation else None,
        timed_out=observation.timed_out if observation else False,
        truncated=observation.truncated if observation else False,
        format_error=step.format_error,
        model_s=step.timings.model_s,
        action_s=step.timings.action_s,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens,
        cost=completion.cost,
    )


def _thought(
    completion: Completion, action: ToolCall | None, parser: tuple[CallFormat, list[Tool]] | None
) -> str:
    if action is None or parser is None:
        return completion.text.strip()
    try:
        return parser[0].parse(completion, parser[1]).thought
    except (ToolCallError, ValueError):
        return completion.text.strip()


def _action_text(call: ToolCall) -> str:
    """A one-argument call (``bash``'s command) as its value; others as ``name: value`` lines."""
    values = list(call.arguments.values())
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return "\n".join(
        f"{k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in call.arguments.items()
    )
