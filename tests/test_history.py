"""History processors on their own: ``last_n_observations``, ``cache_markers`` and
``llm_summary``, their configs, and how :func:`apply_history` composes them.

The summary's model is the scripted backend (the subject here), reached through
:class:`ScriptedContext`, a stand-in for the agent loop's recording context (that one, and the
recording of the calls in a trajectory, is tested through real runs in ``test_agent.py``)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from agentkit.backend import BackendError
from agentkit.backends import ScriptedBackend
from agentkit.backends.openai_format import message_to_openai
from agentkit.history import (
    CacheMarkers,
    HistoryProcessorBase,
    KeepLastObservations,
    LLMSummary,
    apply_history,
)
from agentkit.scaffold import ScaffoldConfig
from agentkit.scaffolds import load_scaffold
from agentkit.types import Completion, Message, SamplingParams, Step, Trajectory


class ScriptedContext:
    """Answers a processor's model calls from the scripted backend and keeps them."""

    def __init__(self, replies: list[str | Completion]) -> None:
        self.backend = ScriptedBackend(replies)
        self.params: list[SamplingParams | None] = []

    async def complete(
        self, messages: list[Message], params: SamplingParams | None = None
    ) -> Completion:
        self.params.append(params)
        return await self.backend.complete(messages, [], params)


def conversation(turns: int) -> tuple[list[Message], list[int]]:
    """system, task, then ``turns`` × (assistant, observation); and the observations' indices."""
    history = [Message(role="system", content="sys"), Message(role="user", content="task")]
    observations: list[int] = []
    for turn in range(1, turns + 1):
        history.append(Message(role="assistant", content=f"act-{turn}"))
        observations.append(len(history))
        history.append(Message(role="user", content=f"out-{turn}\nline"))
    return history, observations


def same_objects(left: list[Message], right: list[Message]) -> bool:
    return len(left) == len(right) and all(a is b for a, b in zip(left, right, strict=True))


# -- cache_markers ------------------------------------------------------------------------------


def test_cache_markers_mark_the_system_prompt_and_the_last_two_user_or_tool_messages() -> None:
    history, observations = conversation(3)
    cache: dict[Any, Any] = {}
    sent = CacheMarkers().apply(history, observations, cache)
    assert [i for i, m in enumerate(sent) if m.cache_control] == [0, 5, 7]
    assert [m.content for m in sent] == [m.content for m in history]  # only the mark differs
    assert not any(m.cache_control for m in history)  # the stored history is untouched
    # The same input gives the same objects, so the message pool stores each copy once.
    assert same_objects(CacheMarkers().apply(history, observations, cache), sent)
    # Options: no system mark, one mark, only tool messages.
    assert CacheMarkers(system=False, last=1).positions(history) == [7]
    native = [*history, Message(role="tool", content="x", tool_call_id="c")]
    assert CacheMarkers(roles=["tool"], last=1).positions(native) == [0, 8]


def test_cache_markers_refuse_more_marks_than_providers_accept() -> None:
    CacheMarkers(last=3)
    CacheMarkers(last=4, system=False)
    with pytest.raises(ValueError, match="at most 4 cache marks"):
        CacheMarkers(last=4)


def test_the_openai_wire_format_ignores_the_mark() -> None:
    """The OpenAI backend sends a marked message exactly as an unmarked one (OpenAI and vLLM
    cache prefixes on their own)."""
    plain = Message(role="user", content="hello")
    marked = plain.model_copy(update={"cache_control": True})
    assert message_to_openai(marked) == message_to_openai(plain)


def test_cache_markers_after_last_n_observations_mark_what_is_sent() -> None:
    history, observations = conversation(3)
    processors = [KeepLastObservations(n=1), CacheMarkers()]
    caches: list[dict[Any, Any]] = [{}, {}]
    context = ScriptedContext([])
    sent = _run(apply_history(processors, history, observations, caches, context))
    assert [i for i, m in enumerate(sent) if m.cache_control] == [0, 5, 7]
    assert sent[5].content.startswith("[Older output elided")  # elided, then marked
    assert sent[7].content == "out-3\nline"
    again = _run(apply_history(processors, history, observations, caches, context))
    assert same_objects(again, sent)


# -- llm_summary ---------------------------------------------------------------------------------


def test_llm_summary_config_is_checked() -> None:
    with pytest.raises(ValueError, match="set max_messages or max_tokens"):
        LLMSummary(max_messages=None)
    with pytest.raises(ValueError, match=r"must exceed keep_first \+ 1 \+ keep_last"):
        LLMSummary(keep_first=2, keep_last=4, max_messages=7)
    LLMSummary(keep_first=2, keep_last=4, max_messages=8)
    LLMSummary(max_messages=None, max_tokens=1000)


async def test_llm_summary_condenses_the_middle_once_per_crossing() -> None:
    summary = LLMSummary(keep_first=2, keep_last=2, max_messages=8)
    context = ScriptedContext(["FIRST SUMMARY", "SECOND SUMMARY"])
    cache: dict[Any, Any] = {}

    history, observations = conversation(3)  # 8 messages: at the threshold, not past it
    assert same_objects(await summary.apply_async(history, observations, cache, context), history)
    assert context.backend.calls == []

    history, observations = conversation(4)  # 10 messages: past it
    sent = await summary.apply_async(history, observations, cache, context)
    # First two, the summary, the last turn (its assistant message starts the kept part).
    assert [m.content for m in sent[3:]] == ["act-4", "out-4\nline"]
    assert same_objects(sent[:2], history[:2]) and same_objects(sent[3:], history[8:])
    assert sent[2].role == "user" and "FIRST SUMMARY" in sent[2].content
    (prompt,) = context.backend.calls[0]
    assert "out-1" in prompt.content and "act-3" in prompt.content
    assert "act-4" not in prompt.content and "<user>\ntask" not in prompt.content
    assert context.params == [None]  # None: the scaffold's sampling

    # Later steps reuse the same summary object until the next crossing.
    history, observations = conversation(5)
    later = await summary.apply_async(history, observations, cache, context)
    assert later[2] is sent[2] and len(context.backend.calls) == 1
    assert same_objects(summary.apply(history, observations, cache), later)  # no model: reuse

    history, observations = conversation(6)  # 3 + 6 kept messages: past it again
    second = await summary.apply_async(history, observations, cache, context)
    (prompt,) = context.backend.calls[1]
    assert "FIRST SUMMARY" in prompt.content  # the previous summary + the new middle
    assert "out-4" in prompt.content and "out-5" in prompt.content
    assert "out-3" not in prompt.content and "out-6" not in prompt.content
    assert "SECOND SUMMARY" in second[2].content
    assert [m.content for m in second[3:]] == ["act-6", "out-6\nline"]


async def test_llm_summary_keeps_tool_results_with_their_calls() -> None:
    """The kept part starts at an assistant turn, so no tool result loses its call."""
    history = [Message(role="system", content="sys"), Message(role="user", content="task")]
    for turn in range(3):
        history.append(Message(role="assistant", content=f"act-{turn}"))
        history += [Message(role="tool", content=f"r{turn}-{i}") for i in range(3)]
    summary = LLMSummary(keep_first=2, keep_last=2, max_messages=10)
    sent = await summary.apply_async(history, [], {}, ScriptedContext(["S"]))
    assert [m.content for m in sent[3:]] == ["act-2", "r2-0", "r2-1", "r2-2"]


async def test_llm_summary_token_threshold_and_long_messages() -> None:
    history, observations = conversation(4)
    history[3] = Message(role="user", content="x" * 10_000)
    summary = LLMSummary(max_messages=None, max_tokens=2000, keep_last=2, message_chars=100)
    context = ScriptedContext(["S"])
    sent = await summary.apply_async(history, observations, {}, context)
    assert len(sent) == 5
    prompt = context.backend.calls[0][0].content
    assert "x" * 100 in prompt and "x" * 101 not in prompt
    assert "[... 9900 more characters not shown]" in prompt


async def test_an_empty_summary_is_a_backend_error() -> None:
    history, observations = conversation(5)
    summary = LLMSummary(keep_last=2, max_messages=8)
    with pytest.raises(BackendError, match="no text"):
        await summary.apply_async(history, observations, {}, ScriptedContext(["  "]))


async def test_last_n_observations_after_a_summary_follow_the_moved_messages() -> None:
    """After ``llm_summary`` the observations sit at new positions: ``apply_history`` follows
    them, and an elided copy stays the same object when a summary moves it."""
    processors = [LLMSummary(keep_first=2, keep_last=6, max_messages=10), KeepLastObservations(n=1)]
    caches: list[dict[Any, Any]] = [{}, {}]
    context = ScriptedContext(["S1"])
    history, observations = conversation(4)  # 10 messages: not past the threshold
    before = await apply_history(processors, history, observations, caches, context)
    assert [m.content[:7] for m in before[6:]] == ["act-3", "[Older ", "act-4", "out-4\nl"]
    history += [Message(role="assistant", content="act-5"), Message(role="user", content="out-5")]
    observations.append(len(history) - 1)
    after = await apply_history(processors, history, observations, caches, context)
    # sys, task, summary of turns 1-2, then turns 3-5 with out-3 and out-4 elided
    assert [m.content[:7] for m in after[3:]] == [
        "act-3",
        "[Older ",
        "act-4",
        "[Older ",
        "act-5",
        "out-5",
    ]
    assert after[4] is before[7]  # out-3's elided copy, moved from 7 to 4
    again = await apply_history(processors, history, observations, caches, context)
    assert same_objects(again, after)


def test_processors_round_trip_through_a_scaffold_config() -> None:
    text = """
history:
  - type: last_n_observations
    n: 3
  - type: llm_summary
    keep_last: 6
    max_messages: 30
    sampling: {max_tokens: 1000}
  - type: cache_markers
    last: 2
"""
    data = {**load_scaffold("mini").model_dump(mode="json"), **yaml.safe_load(text)}
    config = ScaffoldConfig.model_validate(data)
    assert [type(p) for p in config.history] == [KeepLastObservations, LLMSummary, CacheMarkers]
    assert config.history[1].sampling == SamplingParams(max_tokens=1000)  # type: ignore[attr-defined]
    assert ScaffoldConfig.model_validate(config.model_dump(mode="json")) == config
    with pytest.raises(ValueError, match="at most 4 cache marks"):
        ScaffoldConfig.model_validate({**data, "history": [{"type": "cache_markers", "last": 9}]})


def test_a_user_processor_with_only_apply_still_works() -> None:
    class Reverse(HistoryProcessorBase):
        type: str = "x:Reverse"

        def apply(self, history, observations, cache):  # type: ignore[no-untyped-def]
            return history[::-1]

    history, observations = conversation(1)
    sent = _run(apply_history([Reverse()], history, observations, [{}], ScriptedContext([])))
    assert [m.content for m in sent] == [m.content for m in reversed(history)]


# -- the types stay compatible -------------------------------------------------------------------


def test_trajectories_written_before_marks_and_condensations_load() -> None:
    old = {
        "schema_version": 1,
        "task_id": "t",
        "messages": [{"role": "user", "content": "hi", "tool_calls": [], "tool_call_id": None}],
        "steps": [{"index": 0, "input": [0], "completion": {"text": "ok"}}],
    }
    trajectory = Trajectory.from_data(old)
    assert trajectory.messages[0].cache_control is False
    assert trajectory.steps[0].kind == "action"
    step = Step(index=1, kind="condensation", input=[0], completion=Completion(text="s"))
    trajectory.steps.append(step)
    assert Trajectory.model_validate_json(trajectory.model_dump_json()) == trajectory


def _run(coroutine: Any) -> Any:
    import asyncio

    return asyncio.run(coroutine)
