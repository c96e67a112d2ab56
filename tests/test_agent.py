"""The agent loop with the scripted backend (the subject here) and a real local runtime, real bash
and a real git repository: every exit, every limit, autosubmit, exact inputs and crash safety."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentkit.agent import Agent
from agentkit.backend import ContextExceeded
from agentkit.backends import ScriptedBackend
from agentkit.history import CacheMarkers, KeepLastObservations, LLMSummary
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.store import recover
from agentkit.tasks import Task
from agentkit.tools import get_tool
from agentkit.types import Completion, ExitStatus, Trajectory

SUBMIT = "Done.\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"


def bash(command: str) -> str:
    return f"Next step.\n```bash\n{command}\n```"


@pytest.fixture
async def repo():
    async with LocalRuntime() as runtime:
        result = await runtime.run(
            "git init -q . && git config user.email a@b.c && git config user.name t && "
            "printf 'x = 1\\n' > mod.py && git add -A && git commit -qm base && git rev-parse HEAD"
        )
        assert result.exit_code == 0, result.output
        base = result.output.strip().splitlines()[-1]
        yield runtime, Task(instance_id="t-1", problem_statement="Make x two.", base_commit=base)


def make_agent(runtime, replies, **limits) -> tuple[Agent, ScriptedBackend]:
    config = load_scaffold("mini")
    config.limits = config.limits.model_copy(update=limits)
    backend = ScriptedBackend(replies)
    return Agent(config, backend, runtime, [get_tool("bash")]), backend


async def test_submission_is_the_diff_against_the_base_commit(repo):
    runtime, task = repo
    agent, backend = make_agent(
        runtime, [bash("sed -i 's/1/2/' mod.py && echo new > added.txt"), SUBMIT]
    )
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert not trajectory.autosubmitted
    assert "-x = 1\n+x = 2" in trajectory.submission
    assert "+++ b/added.txt" in trajectory.submission
    # The recorded input of every step is exactly what the backend was sent.
    assert [trajectory.model_input(s) for s in trajectory.steps] == backend.calls
    assert trajectory.steps[0].observation.exit_code == 0


async def test_step_limit_autosubmits_the_current_diff(repo):
    runtime, task = repo
    agent, _ = make_agent(
        runtime, [bash("sed -i 's/1/3/' mod.py"), bash("true"), bash("true")], max_steps=2
    )
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.STEP_LIMIT
    assert trajectory.autosubmitted
    assert "+x = 3" in trajectory.submission
    assert len(trajectory.steps) == 2


async def test_autosubmit_can_be_turned_off(repo):
    runtime, task = repo
    agent, _ = make_agent(runtime, [bash("true")], max_steps=1, autosubmit=False)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.STEP_LIMIT
    assert trajectory.submission is None and not trajectory.autosubmitted


async def test_cost_limit(repo):
    runtime, task = repo
    replies = [Completion(text=bash("true"), cost=0.6) for _ in range(5)]
    agent, _ = make_agent(runtime, replies, max_cost=1.0)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.COST_LIMIT
    assert len(trajectory.steps) == 2
    assert trajectory.cost == pytest.approx(1.2)


async def test_consecutive_format_errors_end_the_run_and_the_model_is_told_why(repo):
    runtime, task = repo
    agent, backend = make_agent(
        runtime, ["no block", bash("true"), "still none", "```bash\nls\n```\n```bash\nls\n```", "x"]
    )
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.FORMAT_ERRORS
    errors = [s.format_error for s in trajectory.steps if s.format_error]
    assert len(errors) == 4  # the valid reply in between reset the count
    feedback = backend.calls[1][-1]
    assert feedback.role == "user" and errors[0] in feedback.content


async def test_a_reply_cut_by_the_token_limit_is_not_a_format_error(repo):
    runtime, task = repo
    cut = Completion(text="I will now ```bash\nls", finish_reason="length")
    agent, _ = make_agent(runtime, [cut, cut, cut, SUBMIT], max_format_errors=2)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert all(s.format_error for s in trajectory.steps[:3])


async def test_consecutive_timeouts_end_the_run(repo):
    runtime, task = repo
    agent, _ = make_agent(runtime, [bash("sleep 30")] * 3, command_timeout_s=0.5, max_timeouts=2)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.TIMEOUTS
    assert all(s.observation.timed_out for s in trajectory.steps)


async def test_wall_time_limit(repo):
    runtime, task = repo
    agent, _ = make_agent(runtime, [bash("sleep 0.3"), bash("true")], max_wall_time_s=0.2)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.TIME_LIMIT
    assert len(trajectory.steps) == 1


async def test_context_limit_from_the_conversation_size(repo):
    runtime, task = repo
    agent, _ = make_agent(runtime, [bash("seq 1 3000"), bash("true")], max_context_tokens=2000)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.CONTEXT_EXCEEDED
    assert len(trajectory.steps) == 1


async def test_context_exceeded_raised_by_the_backend_is_an_exit(repo):
    runtime, task = repo

    class Overflowing(ScriptedBackend):
        async def complete(self, messages, tools, params=None):
            raise ContextExceeded("prompt of 9000 tokens > 8192")

    agent, _ = make_agent(runtime, [])
    agent.backend = Overflowing([])
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.CONTEXT_EXCEEDED
    assert "9000 tokens" in trajectory.exit_message
    assert trajectory.autosubmitted


async def test_backend_running_out_is_a_backend_error_exit(repo):
    runtime, task = repo
    agent, _ = make_agent(runtime, [bash("true")])
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.BACKEND_ERROR
    assert "no reply left" in trajectory.exit_message


async def test_history_keeps_the_last_n_observations_and_records_what_was_sent(repo):
    runtime, task = repo
    agent, backend = make_agent(
        runtime,
        [
            bash("echo first-$((0+1))"),
            bash("echo second-$((1+1))"),
            bash("echo third-$((2+1))"),
            SUBMIT,
        ],
    )
    agent.config.history = [KeepLastObservations(n=1)]
    trajectory = await agent.run(task)
    last_input = "\n".join(m.content for m in backend.calls[3])
    assert "first-1" not in last_input and "second-2" not in last_input
    assert "third-3" in last_input and "Older output elided" in last_input
    assert [trajectory.model_input(s) for s in trajectory.steps] == backend.calls
    # The pool stores each distinct message once, however many steps reused it.
    assert len(trajectory.messages) < sum(len(s.input) for s in trajectory.steps)


def condensing_script(turns: int, last: str | None = None) -> list[str]:
    """Replies for ``turns`` turns under ``llm_summary(keep_first=2, keep_last=2,
    max_messages=8)``, the last one ``last`` if given: the summary calls fall before turns 5, 7,
    9, ... (what would be sent has then grown to 10, 9, 9, ... messages)."""
    replies: list[str] = []
    for turn in range(1, turns + 1):
        if turn >= 5 and turn % 2 == 1:
            replies.append(f"SUMMARY-{(turn - 3) // 2}")
        replies.append(last if last and turn == turns else bash(f"echo out-$(({turn}*1))"))
    return replies


def condensing_agent(runtime, replies, **limits):
    agent, backend = make_agent(runtime, replies, **limits)
    agent.config.history = [LLMSummary(keep_first=2, keep_last=2, max_messages=8)]
    return agent, backend


async def test_llm_summary_condenses_and_records_the_summary_call(repo):
    runtime, task = repo
    agent, backend = condensing_agent(runtime, condensing_script(7, SUBMIT))
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    kinds = [s.kind for s in trajectory.steps]
    assert kinds == ["action"] * 4 + ["condensation"] + ["action"] * 2 + ["condensation", "action"]
    # Every backend call, the summaries included, is a step whose recorded input is exact.
    assert [trajectory.model_input(s) for s in trajectory.steps] == backend.calls
    first, second = (s for s in trajectory.steps if s.kind == "condensation")
    assert first.action is None and first.observation is None and first.format_error is None
    assert first.completion.text == "SUMMARY-1"
    (prompt,) = trajectory.model_input(first)
    assert "out-1" in prompt.content and "out-3" in prompt.content and "out-4" not in prompt.content
    # The next turn sees: system, task, the summary, the last turn (assistant + observation).
    turn5 = trajectory.model_input(trajectory.steps[5])
    assert [m.role for m in turn5] == ["system", "user", "user", "assistant", "user"]
    assert "SUMMARY-1" in turn5[2].content and "out-4" in turn5[4].content
    assert turn5[:2] == trajectory.model_input(trajectory.steps[0])
    # The second summary is of the first one and the turns since.
    (prompt,) = trajectory.model_input(second)
    assert "SUMMARY-1" in prompt.content and "out-5" in prompt.content
    assert "out-3" not in prompt.content
    last = trajectory.model_input(trajectory.steps[-1])
    assert "SUMMARY-2" in last[2].content and "out-6" in last[4].content


async def test_a_long_condensing_run_keeps_the_message_pool_de_duplicated(repo, tmp_path):
    runtime, task = repo
    path = tmp_path / "trajectory.json"
    agent, backend = condensing_agent(runtime, condensing_script(13, SUBMIT))
    agent.trajectory_path = path
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    summaries = [s for s in trajectory.steps if s.kind == "condensation"]
    assert len(summaries) == 5  # before turns 5, 7, 9, 11 and 13
    assert [trajectory.model_input(s) for s in trajectory.steps] == backend.calls
    # Each message is pooled once: system, task, 12 × (reply, observation), and per summary its
    # prompt and the message carrying it. Each summary message is sent by two turns.
    assert len(trajectory.messages) == 2 + 2 * 12 + 2 * 5
    for index, step in enumerate(trajectory.steps[:-2]):
        if step.kind == "condensation":
            carried = trajectory.steps[index + 1].input[2]
            assert trajectory.steps[index + 2].input[2] == carried
    # The turns that follow a summary never send more than 8 messages.
    assert max(len(s.input) for s in trajectory.steps[4:] if s.kind == "action") <= 8
    assert Trajectory.load(path) == trajectory


async def test_a_backend_error_while_summarising_ends_the_run_as_a_backend_error(repo):
    """No silent fallback: the run ends like any backend failure, with the finished turns kept
    and the current diff autosubmitted."""
    runtime, task = repo
    agent, _ = condensing_agent(runtime, condensing_script(4))  # no reply left for the summary
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.BACKEND_ERROR
    assert "no reply left" in trajectory.exit_message
    assert [s.kind for s in trajectory.steps] == ["action"] * 4
    assert trajectory.autosubmitted


async def test_summary_calls_do_not_count_against_the_step_limit_but_their_cost_does(repo):
    runtime, task = repo
    replies = [Completion(text=r, cost=0.01) for r in condensing_script(6)]
    agent, _ = condensing_agent(runtime, replies, max_steps=5)
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.STEP_LIMIT
    assert [s.kind for s in trajectory.steps].count("action") == 5
    assert len(trajectory.steps) == 6
    assert trajectory.cost == pytest.approx(0.06)


async def test_processors_compose_in_a_run(repo):
    """last_n_observations, then llm_summary, then cache_markers: the marks land on what is
    sent, and the recorded inputs are exactly the calls."""
    runtime, task = repo
    agent, backend = make_agent(runtime, condensing_script(7, SUBMIT))
    agent.config.history = [
        KeepLastObservations(n=1),
        LLMSummary(keep_first=2, keep_last=2, max_messages=8),
        CacheMarkers(),
    ]
    trajectory = await agent.run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert [trajectory.model_input(s) for s in trajectory.steps] == backend.calls
    for step in trajectory.steps:
        sent = trajectory.model_input(step)
        if step.kind == "condensation":
            assert not any(m.cache_control for m in sent)  # processors shape turns only
            continue
        marked = [i for i, m in enumerate(sent) if m.cache_control]
        users = [i for i, m in enumerate(sent) if m.role == "user"]
        assert marked == [0, *users[-2:]]
    turn4 = trajectory.model_input(trajectory.steps[3])
    assert "out-1" not in "".join(m.content for m in turn4)  # elided before any summary
    assert len(trajectory.messages) == len({id(m) for m in trajectory.messages})


async def test_trajectory_and_step_log_on_disk(repo, tmp_path):
    runtime, task = repo
    path = tmp_path / "run" / "trajectory.json"
    config = load_scaffold("mini")
    backend = ScriptedBackend([bash("true"), SUBMIT])
    agent = Agent(config, backend, runtime, [get_tool("bash")], trajectory_path=path)
    trajectory = await agent.run(task)
    assert Trajectory.load(path) == trajectory
    assert not (tmp_path / "run" / "trajectory.json.steps.jsonl").exists()


async def test_an_unexpected_exception_ends_the_run_as_error_with_its_steps(repo, tmp_path):
    """A bug in a backend (here: one that raises mid-run) ends that run with exit status
    ``error`` and the exception's message; the finished steps are kept."""
    runtime, task = repo
    path = tmp_path / "trajectory.json"

    class Crashing(ScriptedBackend):
        async def complete(self, messages, tools, params=None):
            if len(self.calls) == 2:
                raise RuntimeError("process died")
            return await super().complete(messages, tools, params)

    agent = Agent(
        load_scaffold("mini"),
        Crashing([bash("echo a"), bash("echo b")]),
        runtime,
        [get_tool("bash")],
        trajectory_path=path,
    )
    trajectory = await agent.run(task)
    assert trajectory.exit_status == ExitStatus.ERROR
    assert trajectory.exit_message == "unexpected RuntimeError: process died"
    saved = Trajectory.load(path)
    assert saved == trajectory
    assert [s.action.arguments["command"] for s in saved.steps] == ["echo a", "echo b"]
    assert saved.model_input(saved.steps[1])[-1].content.count("a") >= 1


async def test_a_dying_process_leaves_its_finished_steps_recoverable(repo, tmp_path):
    """The process dies mid-run (simulated by a BaseException no handler catches, as SIGKILL
    would end it without any): the step log still holds every finished step."""
    runtime, task = repo
    path = tmp_path / "trajectory.json"

    class ProcessDied(BaseException):
        pass

    class Dying(ScriptedBackend):
        async def complete(self, messages, tools, params=None):
            if len(self.calls) == 2:
                raise ProcessDied
            return await super().complete(messages, tools, params)

    agent = Agent(
        load_scaffold("mini"),
        Dying([bash("echo a"), bash("echo b")]),
        runtime,
        [get_tool("bash")],
        trajectory_path=path,
    )
    with pytest.raises(ProcessDied):
        await agent.run(task)
    partial = recover(path)
    assert partial is not None and partial.exit_status is None
    assert [s.action.arguments["command"] for s in partial.steps] == ["echo a", "echo b"]


async def test_ctrl_c_mid_command_saves_an_interrupted_trajectory(repo, tmp_path):
    runtime, task = repo
    path = tmp_path / "trajectory.json"
    agent = Agent(
        load_scaffold("mini"),
        ScriptedBackend([bash("echo one"), bash("sleep 30")]),
        runtime,
        [get_tool("bash")],
        trajectory_path=path,
    )
    run = asyncio.ensure_future(agent.run(task))
    while (
        not (tmp_path / "trajectory.json.steps.jsonl").exists()
        or "echo one" not in (tmp_path / "trajectory.json.steps.jsonl").read_text()
    ):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    saved = json.loads(path.read_text())
    assert saved["exit_status"] == "interrupted"
    assert len(saved["steps"]) == 1
    # The session is still usable after the interrupted command.
    assert (await runtime.run("echo alive")).output.strip() == "alive"


@pytest.mark.parametrize("call_format", ["native", "xml", "bash_block"])
async def test_every_call_format_drives_the_loop(repo, call_format):
    """Replies rendered by each format travel through the same parse/execute/submit path; a bad
    reply in the middle gets the format's error message and the run still submits."""
    from agentkit.tools import get_format
    from agentkit.types import ToolCall

    runtime, task = repo
    config = load_scaffold("mini").model_copy(update={"call_format": call_format})
    fmt = get_format(call_format)
    tools = [get_tool("bash")]
    calls = [
        ToolCall(name="bash", arguments={"command": "sed -i 's/1/5/' mod.py"}, id="c1"),
        ToolCall(name="nope", arguments={}, id="c2"),
        ToolCall(
            name="bash",
            arguments={"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"},
            id="c3",
        ),
    ]
    replies = [
        fmt.render(calls[0], tools),
        _unknown_tool_reply(fmt, calls[1], tools),
        fmt.render(calls[2], tools),
    ]
    backend = ScriptedBackend(replies)
    trajectory = await Agent(config, backend, runtime, tools).run(task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert "+x = 5" in trajectory.submission
    if call_format == "bash_block":
        # With one single-argument tool, the whole block is a bash command: `nope` just fails.
        assert trajectory.steps[1].observation.exit_code == 127
    else:
        assert "There is no tool named 'nope'" in (trajectory.steps[1].format_error or "")
    if call_format == "native":
        # Every assistant tool call is answered by a tool message with its id.
        sent = backend.calls[-1]
        asked = [c.id for m in sent if m.role == "assistant" for c in m.tool_calls]
        answered = [m.tool_call_id for m in sent if m.role == "tool"]
        assert asked == answered == ["c1", "c2"]


def _unknown_tool_reply(fmt, call, tools):
    if fmt.native:
        return Completion(tool_calls=[call], finish_reason="tool_calls")
    if fmt.name == "xml":
        return Completion(text="<function=nope>\n</function>")
    return Completion(text="```bash\nnope\n```")


async def test_a_repository_without_commits_diffs_against_the_empty_tree():
    """No base commit and no commit yet: everything the agent wrote is the submission."""
    async with LocalRuntime() as runtime:
        await runtime.run("git init -q .")
        agent, _ = make_agent(runtime, [bash("echo hi > new.txt"), SUBMIT])
        trajectory = await agent.run(Task(instance_id="empty", problem_statement="Write new.txt."))
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert "+++ b/new.txt" in trajectory.submission and "+hi" in trajectory.submission


async def test_the_tool_loop_scaffold_solves_like_the_agent_it_wraps(repo, tmp_path):
    """``ToolLoop`` (the ``tool_loop`` scaffold type) builds its tools from the config and runs
    one :class:`Agent` per ``solve``, passing the trajectory path and the step callback on."""
    from agentkit.agent import ToolLoop

    runtime, task = repo
    path = tmp_path / "trajectory.json"
    steps: list[int] = []
    scaffold = ToolLoop(load_scaffold("mini"))
    trajectory = await scaffold.solve(
        task,
        runtime,
        ScriptedBackend([bash("sed -i 's/1/2/' mod.py"), SUBMIT]),
        trajectory_path=path,
        on_step=lambda step: steps.append(step.index),
    )
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert "+x = 2" in trajectory.submission
    assert steps == [0, 1] and Trajectory.load(path) == trajectory
    assert trajectory.scaffold["type"] == "tool_loop"
