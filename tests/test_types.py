"""Trajectory and friends: exact JSON round trips and schema-version checks."""

import json

import pytest

from agentkit.types import (
    SCHEMA_VERSION,
    Completion,
    ExitStatus,
    Message,
    Observation,
    Step,
    ToolCall,
    Trajectory,
    TrajectoryVersionError,
    Usage,
)


def _trajectory() -> Trajectory:
    system = Message(role="system", content="sys")
    user = Message(role="user", content="fix it ✓")
    reply = Completion(
        text="ls",
        tool_calls=[ToolCall(name="bash", arguments={"command": "ls -la"}, id="c1")],
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=12, completion_tokens=3),
        cost=0.001,
        prompt_token_ids=[1, 2, 3],
        completion_token_ids=[4, 5],
        logprobs=[-0.5, -1.25],
    )
    step = Step(
        index=0,
        input=[0, 1],
        completion=reply,
        action=reply.tool_calls[0],
        observation=Observation(output="a\nb", exit_code=0, duration_s=0.01),
    )
    return Trajectory(
        task_id="t-1",
        scaffold={"name": "mini"},
        backend={"type": "scripted"},
        messages=[system, user],
        steps=[step],
        exit_status=ExitStatus.SUBMITTED,
        submission="diff --git a/x b/x\n",
        reward=1.0,
    )


def test_trajectory_round_trips_through_json(tmp_path):
    trajectory = _trajectory()
    path = tmp_path / "t.json"
    trajectory.save(path)
    loaded = Trajectory.load(path)
    assert loaded == trajectory
    assert loaded.model_input(loaded.steps[0]) == trajectory.messages
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_newer_schema_version_is_a_clear_error(tmp_path):
    data = _trajectory().model_dump(mode="json")
    data["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TrajectoryVersionError, match="newer than this agentkit understands"):
        Trajectory.load(path)


def test_missing_schema_version_is_rejected():
    with pytest.raises(TrajectoryVersionError, match="not a trajectory"):
        Trajectory.from_data({"task_id": "x"})


def test_unknown_fields_are_rejected():
    data = _trajectory().model_dump(mode="json")
    data["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        Trajectory.from_data(data)
