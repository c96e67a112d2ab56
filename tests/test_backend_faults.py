"""Failures between a backend and its server: the retry policy (pure, with a fake clock and
sleep), then the OpenAI backend over real HTTP against a server that fails on purpose, and the
agent loop's exit when the server dies mid-run or the prompt no longer fits.

The failing server is a local stub (``openai_stub``): a real server cannot be made to answer
429, 503 or a context-length error body on demand. A missing server is real: a closed port, and
a stub stopped between two model calls of a running agent.
"""

from __future__ import annotations

import email.utils
import socket
import time

import httpx2
import openai
import pytest
from openai_stub import StubOpenAIServer, StubReply, chat_reply, error_body

from agentkit.agent import Agent
from agentkit.backend import BackendError, ContextExceeded
from agentkit.backends import OpenAIBackend, OpenAIConfig, RetryPolicy, with_retries
from agentkit.backends.retry import retry_after_from_error as _retry_after
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import get_tool
from agentkit.types import ExitStatus, Message, Trajectory

# -- the policy, with a fake clock ---------------------------------------------------------------


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception | None = None):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error or Flaky()
        return "ok"

    return call, calls


async def run(call, policy, fake, rand=0.5):
    return await with_retries(
        call,
        policy=policy,
        is_retryable=lambda exc: isinstance(exc, Flaky),
        describe=lambda exc, attempts, seconds: f"gave up: {exc} x{attempts} in {seconds:g} s",
        retry_after=lambda exc: getattr(exc, "retry_after", None),
        sleep=fake.sleep,
        clock=fake.clock,
        random=lambda: rand,
    )


async def test_backoff_is_exponential_with_full_jitter_and_capped():
    fake = FakeTime()
    policy = RetryPolicy(max_attempts=6, initial_delay_s=1, multiplier=2, max_delay_s=5)
    call, calls = failing(5)
    assert await run(call, policy, fake, rand=0.5) == "ok"
    assert calls["n"] == 6
    assert fake.sleeps == [0.5, 1.0, 2.0, 2.5, 2.5]


async def test_without_jitter_the_wait_is_the_cap_itself():
    fake = FakeTime()
    policy = RetryPolicy(max_attempts=4, initial_delay_s=0.5, multiplier=3, jitter=False)
    call, _ = failing(3)
    await run(call, policy, fake, rand=0.0)
    assert fake.sleeps == [0.5, 1.5, 4.5]


async def test_retry_after_replaces_the_drawn_wait_and_is_capped():
    fake = FakeTime()
    policy = RetryPolicy(max_attempts=3, initial_delay_s=1, max_delay_s=10)
    call, _ = failing(1, Flaky(retry_after=7))
    await run(call, policy, fake)
    call, _ = failing(1, Flaky(retry_after=3600))
    await run(call, policy, fake)
    assert fake.sleeps == [7, 10]


async def test_giving_up_wraps_the_last_error_with_the_callers_message():
    fake = FakeTime()
    call, calls = failing(10)
    with pytest.raises(BackendError) as caught:
        await run(call, RetryPolicy(max_attempts=3, initial_delay_s=2, jitter=False), fake)
    assert calls["n"] == 3
    assert str(caught.value) == "gave up: flaky x3 in 6 s"
    assert isinstance(caught.value.__cause__, Flaky)


async def test_errors_that_are_not_retryable_propagate_at_once():
    fake = FakeTime()
    call, calls = failing(1, ValueError("bad request"))
    with pytest.raises(ValueError, match="bad request"):
        await run(call, RetryPolicy(), fake)
    assert calls["n"] == 1 and fake.sleeps == []


async def test_one_attempt_means_no_retry():
    fake = FakeTime()
    call, _ = failing(1)
    with pytest.raises(BackendError, match="x1"):
        await run(call, RetryPolicy(max_attempts=1), fake)
    assert fake.sleeps == []


def test_policy_rejects_unknown_and_invalid_fields():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(retries=3)  # type: ignore[call-arg]


def _status_error(headers: dict[str, str]) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(429, headers=headers, request=request)
    return openai.RateLimitError("rate limited", response=response, body=None)


def test_retry_after_header_forms():
    assert _retry_after(_status_error({"retry-after": "3"})) == 3.0
    assert _retry_after(_status_error({"retry-after-ms": "250"})) == 0.25
    assert _retry_after(_status_error({})) is None
    assert _retry_after(_status_error({"retry-after": "soon"})) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (_retry_after(_status_error({"retry-after": date})) or 0) <= 31
    assert _retry_after(ValueError()) is None


# -- the OpenAI backend against a failing server -------------------------------------------------

FAST = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.05)
HELLO = [Message(role="user", content="Hello")]
VLLM_TOO_LONG = (
    "This model's maximum context length is 2048 tokens. However, you requested 2600 tokens "
    "(2088 in the messages, 512 in the completion). Please reduce the length of the messages "
    "or completion."
)


@pytest.fixture
def stub():
    server = StubOpenAIServer().start()
    yield server
    server.stop()


def backend_for(url: str, policy: RetryPolicy = FAST, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(OpenAIConfig(model="m", base_url=url, retry=policy), **kwargs)


async def test_429_with_retry_after_is_retried_then_succeeds(stub):
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    stub.enqueue(StubReply(error_body("slow down", 429), status=429, headers={"Retry-After": "2"}))
    async with backend_for(stub.url, RetryPolicy(max_delay_s=30), sleep=record) as backend:
        completion = await backend.complete(HELLO, [])
    assert completion.text == "Hello."
    assert len(stub.requests) == 2
    assert waits == [2.0]


async def test_503_until_the_attempts_run_out_is_a_clear_backend_error(stub):
    overloaded = StubReply(error_body("engine overloaded", 503), status=503)
    stub.enqueue(*[overloaded] * 3)
    async with backend_for(stub.url) as backend:
        with pytest.raises(BackendError) as caught:
            await backend.complete(HELLO, [])
    message = str(caught.value)
    assert len(stub.requests) == 3
    assert f"The server at {stub.url} kept failing with HTTP 503 after 3 attempts" in message
    assert "engine overloaded" in message and "log" in message


async def test_no_server_at_the_address_is_a_clear_backend_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    async with backend_for(url) as backend:
        with pytest.raises(BackendError) as caught:
            await backend.complete(HELLO, [])
    message = str(caught.value)
    assert message.startswith(f"No server answered at {url} after 3 attempts over ")
    assert "is it running" in message


async def test_a_server_that_does_not_answer_in_time_is_retried_then_reported(stub):
    stub.enqueue(*[StubReply(chat_reply(), delay_s=1.0)] * 2)
    config = OpenAIConfig(
        model="m", base_url=stub.url, timeout_s=0.2, retry=RetryPolicy(max_attempts=2)
    )
    async with OpenAIBackend(config) as backend:
        with pytest.raises(BackendError, match=r"did not answer within 0.2 s, after 2 attempts"):
            await backend.complete(HELLO, [])


async def test_a_refused_request_is_not_retried_and_says_what_to_check(stub):
    stub.enqueue(StubReply(error_body("The model `m` does not exist.", 404), status=404))
    async with backend_for(stub.url) as backend:
        with pytest.raises(BackendError) as caught:
            await backend.complete(HELLO, [])
    assert not isinstance(caught.value, ContextExceeded)
    assert len(stub.requests) == 1
    assert (
        "HTTP 404: The model `m` does not exist. (the server serves 'stub-model', not 'm')"
        in str(caught.value)
    )


async def test_a_wrong_model_name_without_a_model_list_says_what_to_check(stub):
    stub.served_models = []
    stub.enqueue(StubReply(error_body("The model `m` does not exist.", 404), status=404))
    async with backend_for(stub.url) as backend:
        with pytest.raises(BackendError, match=r"check the model name \('m'\) and base_url"):
            await backend.complete(HELLO, [])


@pytest.mark.parametrize(
    "status, body",
    [
        (400, error_body(VLLM_TOO_LONG, 400)),
        (
            400,
            error_body(
                "The decoder prompt (length 3000) is longer than the maximum model length of "
                "2048. Make sure that `max_model_len` is no smaller than the number of text "
                "tokens.",
                400,
            ),
        ),
        (400, {"object": "error", "message": VLLM_TOO_LONG, "type": "BadRequestError"}),
        (
            400,
            {
                "error": {
                    "message": "Input is too long for this model.",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
        ),
    ],
    ids=["vllm-max-context", "vllm-max-model-len", "old-vllm-body", "openai-code"],
)
async def test_context_overflow_is_context_exceeded_with_the_servers_message(stub, status, body):
    stub.enqueue(StubReply(body, status=status))
    async with backend_for(stub.url) as backend:
        with pytest.raises(ContextExceeded) as caught:
            await backend.complete(HELLO, [])
    assert len(stub.requests) == 1
    inner = body.get("error", body)
    assert str(caught.value) == inner["message"]


# -- the agent loop ------------------------------------------------------------------------------


@pytest.fixture
async def repo():
    async with LocalRuntime() as runtime:
        result = await runtime.run(
            "git init -q . && git -c user.email=a@b.c -c user.name=t commit -q --allow-empty "
            "-m base && git rev-parse HEAD"
        )
        base = result.output.strip().splitlines()[-1]
        yield runtime, Task(instance_id="t-1", problem_statement="Do it.", base_commit=base)


def bash_reply(command: str) -> StubReply:
    return StubReply(chat_reply(f"Next.\n```bash\n{command}\n```"))


async def test_server_killed_mid_run_ends_the_loop_with_backend_error_and_keeps_the_steps(
    stub, repo, tmp_path
):
    runtime, task = repo
    stub.default = bash_reply("echo still here")
    path = tmp_path / "trajectory.json"

    def kill_after_second_step(step) -> None:
        if step.index == 1:
            stub.stop()

    async with backend_for(stub.url) as backend:
        agent = Agent(
            load_scaffold("mini"),
            backend,
            runtime,
            [get_tool("bash")],
            trajectory_path=path,
            on_step=kill_after_second_step,
        )
        trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.BACKEND_ERROR
    assert trajectory.exit_message.startswith(f"No server answered at {stub.url} after 3 attempts")
    saved = Trajectory.load(path)
    assert saved.exit_status is ExitStatus.BACKEND_ERROR
    assert len(saved.steps) == 2
    assert saved.steps[1].observation is not None
    assert saved.steps[1].observation.output.strip() == "still here"


async def test_context_overflow_ends_the_loop_with_context_exceeded(stub, repo):
    runtime, task = repo
    stub.enqueue(bash_reply("echo one"), StubReply(error_body(VLLM_TOO_LONG, 400), status=400))
    async with backend_for(stub.url) as backend:
        agent = Agent(load_scaffold("mini"), backend, runtime, [get_tool("bash")])
        trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.CONTEXT_EXCEEDED
    assert VLLM_TOO_LONG in trajectory.exit_message
    assert len(trajectory.steps) == 1
