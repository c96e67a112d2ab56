"""RL rollout collection: groups, rewards from the real grader, failures left out, versions.

Most tests drive the harness with the scripted backend: it is the subject here (it stands for
the policy, so each test knows which rollouts must resolve). Its replies carry token ids and
logprobs, as the vLLM-backed policy's do, so samples are built from recorded ids. The
``vllm``-marked test collects a small group from the session's real vLLM server.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from agentkit.backend import Backend
from agentkit.backends.scripted import ScriptedBackend
from agentkit.evals.events import HarnessEvent, TaskProgress
from agentkit.tasks import Task
from agentkit.training.cold_start import TOY_SUBMIT, toy_scaffold
from agentkit.training.rollouts import (
    PolicyBackend,
    PolicyEndpoint,
    TruncatedSamplingError,
    check_sampling,
    collect_rollouts,
)
from agentkit.training.toy_tasks import ToyTaskConfig, build_toy_tasks, solution_command
from agentkit.types import Completion, SamplingParams, ToolCall

_ids = itertools.count(100)


def _reply(command: str) -> Completion:
    """A native bash call with made-up (but consistent) token ids and logprobs."""
    prompt = [1, 2, 3]
    reply = [next(_ids) % 1000 for _ in range(4)]
    return Completion(
        tool_calls=[ToolCall(name="bash", arguments={"command": command}, id="c1")],
        finish_reason="tool_calls",
        prompt_token_ids=prompt,
        completion_token_ids=reply,
        logprobs=[-0.5] * len(reply),
    )


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Task]:
    return build_toy_tasks(tmp_path_factory.mktemp("toy"), ToyTaskConfig(count=2, seed=7))


def test_groups_rewards_versions_and_failures(tasks: list[Task], tmp_path: Path) -> None:
    """Per task: attempt 0 writes the answer (reward 1), attempt 1 writes a wrong one (reward 0),
    attempt 2's backend fails (left out, counted). The endpoint's version moves on after the
    first step of each attempt, and the second step must carry the new version."""
    endpoint = PolicyEndpoint(base_url="http://unused.invalid/v1", model="policy", version=5)
    calls: dict[str, int] = {}

    def backend_for(task: Task) -> Backend:
        attempt = calls.get(task.instance_id, 0)
        calls[task.instance_id] = attempt + 1
        if attempt == 2:
            return PolicyBackend(endpoint, inner=ScriptedBackend([]))  # no reply: a backend error
        command = solution_command(task) if attempt == 0 else "echo 'VALUE = -1' > answer.py"
        script = ScriptedBackend([_reply(command), _reply(f"echo {TOY_SUBMIT}")])
        return PolicyBackend(endpoint, inner=script)

    def on_event(event: HarnessEvent) -> None:
        if isinstance(event, TaskProgress) and event.step == 0:
            endpoint.version += 1  # weights synced while the attempt runs

    batch = asyncio.run(
        collect_rollouts(
            tasks, toy_scaffold(), tmp_path / "run", backend_for=backend_for,
            group_size=3, workers=1, on_event=on_event,
        )
    )  # fmt: skip
    assert set(batch.groups) == {t.instance_id for t in tasks}
    for group in batch.groups.values():
        assert sorted((r.attempt, r.reward) for r in group) == [(0, 1.0), (1, 0.0)]
        for rollout in group:
            assert rollout.exit_status == "submitted" and rollout.steps == 2
            first, second = rollout.policy_versions
            assert second == first + 1 and rollout.oldest_version == first
            assert [s.policy_version for s in rollout.trajectory.steps] == [first, second]
            assert rollout.samples and all(s.source == "recorded" for s in rollout.samples)
            assert all(s.reward == rollout.reward and s.logprobs for s in rollout.samples)
            assert all(s.task_id == rollout.task_id for s in rollout.samples)
    assert [f.attempt for f in batch.failures] == [2, 2]
    assert all("no reply left" in f.error for f in batch.failures)
    stats = batch.stats
    assert (stats.tasks, stats.attempts, stats.rollouts, stats.failures) == (2, 6, 4, 2)
    assert stats.solve_rate == 0.5 and stats.mean_reward == 0.5 and stats.tasks_solved == 2
    assert stats.mean_steps == 2 and stats.exit_statuses == {"submitted": 4}
    assert sum(stats.policy_versions.values()) == 8 and min(stats.policy_versions) >= 5
    assert {"sandbox", "agent", "grading"} <= set(stats.phase_seconds)
    assert stats.trained_tokens == 4 * 2 * 4
    assert len(batch.samples()) == sum(len(r.samples) for g in batch.groups.values() for r in g)


@pytest.mark.parametrize(
    ("params", "extra", "named"),
    [
        (SamplingParams(top_p=0.9), {}, "top_p=0.9"),
        (SamplingParams(top_k=20), {}, "top_k=20"),
        (SamplingParams(), {"min_p": 0.05}, "min_p=0.05"),
        (SamplingParams(), {"top_k": 5}, "top_k=5"),
    ],
)
def test_truncating_sampling_is_refused(
    params: SamplingParams, extra: dict[str, float], named: str
) -> None:
    with pytest.raises(TruncatedSamplingError, match=named):
        check_sampling(params, extra)


def test_untruncated_sampling_is_accepted() -> None:
    check_sampling(SamplingParams(temperature=1.0, top_p=1.0, top_k=-1), {"min_p": 0.0})


def test_collect_refuses_top_p_before_running_anything(tasks: list[Task], tmp_path: Path) -> None:
    scaffold = toy_scaffold()
    scaffold.sampling = scaffold.sampling.model_copy(update={"top_p": 0.95})
    endpoint = PolicyEndpoint(base_url="http://unused.invalid/v1", model="policy")
    with pytest.raises(TruncatedSamplingError, match="top_p=0.95"):
        asyncio.run(collect_rollouts(tasks, scaffold, tmp_path / "run", endpoint=endpoint))
    assert not (tmp_path / "run").exists()
    with pytest.raises(TruncatedSamplingError, match="min_p"):
        PolicyBackend(endpoint.model_copy(update={"extra_body": {"min_p": 0.1}}))


def test_allowed_truncation_is_passed_on(tasks: list[Task], tmp_path: Path) -> None:
    """With ``allow_truncated_sampling`` the call goes through and is stamped."""
    endpoint = PolicyEndpoint(base_url="http://unused.invalid/v1", model="policy", version=2)
    backend = PolicyBackend(
        endpoint, allow_truncated_sampling=True, inner=ScriptedBackend([_reply("true")])
    )
    reply = asyncio.run(backend.complete([], [], SamplingParams(top_p=0.5)))
    assert reply.policy_version == 2
    strict = PolicyBackend(endpoint, inner=ScriptedBackend([_reply("true")]))
    with pytest.raises(TruncatedSamplingError):
        asyncio.run(strict.complete([], [], SamplingParams(top_p=0.5)))


@pytest.mark.vllm
def test_a_group_from_the_real_server(
    vllm_server: object, tasks: list[Task], tmp_path: Path
) -> None:
    from agentkit.backends.vllm_server import VLLMServer

    assert isinstance(vllm_server, VLLMServer)
    endpoint = PolicyEndpoint(
        base_url=vllm_server.base_url, model=vllm_server.model_name, version=3
    )
    batch = asyncio.run(
        collect_rollouts(
            tasks[:1], toy_scaffold(max_tokens=32, max_steps=1), tmp_path / "run",
            endpoint=endpoint, group_size=2, workers=2,
        )
    )  # fmt: skip
    assert batch.stats.failures == 0, batch.failures
    (group,) = batch.groups.values()
    assert len(group) == 2
    for rollout in group:
        assert rollout.reward in (0.0, 1.0) and rollout.policy_versions == [3]
        (step,) = rollout.trajectory.steps
        completion = step.completion
        assert completion.prompt_token_ids and completion.completion_token_ids
        assert len(completion.logprobs or []) == len(completion.completion_token_ids)
        (sample,) = rollout.samples
        assert sample.source == "recorded" and sample.policy_version == 3
        assert sample.input_ids == completion.prompt_token_ids + completion.completion_token_ids
        assert sample.logprobs is not None


class _RecordingServer:
    """A stand-in OpenAI-compatible server in a thread that records each request's ``model`` (a
    fake, the subject of the test: what matters is which name the policy backend requests)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        models: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                models.append(request["model"])
                body = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 1,
                    "model": request["model"], "prompt_token_ids": [1, 2],
                    "choices": [{
                        "index": 0, "finish_reason": "stop", "token_ids": [7],
                        "message": {"role": "assistant", "content": "ok"},
                        "logprobs": {"content": [{"token": "ok", "logprob": -0.5, "top_logprobs": []}]},
                    }],
                    "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.models = models
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_each_request_names_the_model_the_endpoint_serves_now() -> None:
    """A LoRA sync serves version N under a new name: the driver sets ``endpoint.model`` and
    every later request must ask for that name, stamped with that version."""
    from agentkit.types import Message

    server = _RecordingServer()
    endpoint = PolicyEndpoint(base_url=server.base_url, model="base")
    policy = PolicyBackend(endpoint)
    messages = [Message(role="user", content="hi")]
    try:
        first = await policy.complete(messages, [])
        endpoint.version, endpoint.model = 1, "policy-v1"
        second = await policy.complete(messages, [])
    finally:
        await policy.aclose()
        server.close()
    assert server.models == ["base", "policy-v1"]
    assert (first.policy_version, second.policy_version) == (0, 1)
    assert second.completion_token_ids == [7] and second.logprobs == [-0.5]
