"""Runs on disk: trajectories are written atomically when a run ends, and while it runs each
finished step is appended to a log beside it, so a crash or Ctrl-C never loses finished work.

Appending keeps the per-step cost constant (rewriting the whole trajectory each step would grow
with the run); :func:`recover` rebuilds a partial trajectory from the log.
"""

from __future__ import annotations

import json
from pathlib import Path

from agentkit.types import Message, Step, Trajectory


def step_log_path(trajectory_path: Path) -> Path:
    return trajectory_path.with_name(trajectory_path.name + ".steps.jsonl")


class StepLog:
    """Append-only JSONL: a header line (the trajectory without steps), then one line per new
    pooled message or finished step, flushed as written."""

    def __init__(self, trajectory_path: Path, header: Trajectory) -> None:
        self.path = step_log_path(trajectory_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self._write("header", header.model_dump_json(exclude={"steps", "messages"}))

    def _write(self, kind: str, payload_json: str) -> None:
        self._file.write(f'{{"{kind}": {payload_json}}}\n')
        self._file.flush()

    def add_message(self, message: Message) -> None:
        self._write("message", message.model_dump_json())

    def add_step(self, step: Step) -> None:
        self._write("step", step.model_dump_json())

    def remove(self) -> None:
        """Called once the full trajectory is safely written."""
        self._file.close()
        self.path.unlink(missing_ok=True)


def recover(trajectory_path: str | Path) -> Trajectory | None:
    """The trajectory at ``trajectory_path``, or the part of it that its step log holds when the
    run never finished (``exit_status`` is then ``None``); ``None`` when neither exists."""
    path = Path(trajectory_path)
    if path.exists():
        return Trajectory.load(path)
    log = step_log_path(path)
    if not log.exists():
        return None
    trajectory: Trajectory | None = None
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by a crash ends the usable part
        if "header" in record:
            trajectory = Trajectory.from_data(record["header"], source=str(log))
        elif trajectory is not None and "message" in record:
            trajectory.messages.append(Message.model_validate(record["message"]))
        elif trajectory is not None and "step" in record:
            trajectory.steps.append(Step.model_validate(record["step"]))
    return trajectory
