"""Masked-action SFT filters on trajectories the real agent loop recorded (scripted replies, a
real local runtime, real bash and editor tools), so the signals tested are the loop's own."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from agentkit.agent import Agent
from agentkit.backends import ScriptedBackend
from agentkit.runtime import LocalRuntime
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import get_tool
from agentkit.tools.native import RAW_ARGUMENTS_KEY
from agentkit.training.filters import (
    COMPACT_STATUSES,
    SFTDataOptions,
    SFTFilter,
    cap_sample,
    compact_action,
    step_mask_reason,
    train_step_predicate,
)
from agentkit.training.samples import TokenSample
from agentkit.types import Completion, ExitStatus, Step, ToolCall, Trajectory

SENTINEL = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"


def call(name: str, **arguments: object) -> Completion:
    return Completion(text="thinking", tool_calls=[ToolCall(name=name, arguments=dict(arguments))])


# What each reply is, and the reason the default options mask it for (None: trained on).
SCRIPT: list[tuple[Completion, str | None]] = [
    (call("bash", command="true"), None),
    (Completion(text="I forgot to call a tool."), "malformed"),  # no action
    (call("nope", command="ls"), "malformed"),  # unknown tool
    (call("bash"), "malformed"),  # a required argument missing
    (call("bash", command=["not", "a", "string"]), "malformed"),  # wrong argument type
    (call("bash", **{RAW_ARGUMENTS_KEY: '{"command": "ls'}), "malformed"),  # unreadable JSON
    (Completion(text="Let me think at length", finish_reason="length"), "truncated"),
    (call("str_replace_editor", command="view", path="relative.py"), None),  # a refusal
    (call("bash", command="false"), None),  # a failing command is not a malformed action
    (call("bash", command=f"echo {SENTINEL}"), None),
]


@pytest.fixture(scope="module")
def trajectory() -> Trajectory:
    """Recorded once: the tests only read it (and copy it before changing anything)."""
    return asyncio.run(record())


async def record() -> Trajectory:
    async with LocalRuntime() as runtime:
        result = await runtime.run(
            "git init -q . && git config user.email a@b.c && git config user.name t && "
            "printf 'x = 1\\n' > mod.py && git add -A && git commit -qm base && git rev-parse HEAD"
        )
        assert result.exit_code == 0, result.output
        base = result.output.strip().splitlines()[-1]
        task = Task(instance_id="o__r-1", problem_statement="Make x two.", base_commit=base)
        config = load_scaffold("mini")
        config.call_format = "native"
        config.limits = config.limits.model_copy(update={"max_format_errors": 10})
        backend = ScriptedBackend([reply for reply, _ in SCRIPT])
        tools = [get_tool("bash"), get_tool("str_replace_editor")]
        return await Agent(config, backend, runtime, tools).run(task)


def test_the_loop_records_what_the_filters_read(trajectory: Trajectory) -> None:
    assert trajectory.exit_status is ExitStatus.SUBMITTED
    assert len(trajectory.steps) == len(SCRIPT)
    errors = [step.format_error is not None for step in trajectory.steps]
    assert errors == [reason is not None for _, reason in SCRIPT]
    refused = trajectory.steps[7]
    assert refused.action is not None and refused.action.name == "str_replace_editor"
    assert refused.observation is not None and refused.observation.exit_code == 1


def test_malformed_and_truncated_actions_are_masked_by_default(trajectory: Trajectory) -> None:
    reasons = [step_mask_reason(step) for step in trajectory.steps]
    assert reasons == [reason for _, reason in SCRIPT]
    train = train_step_predicate()
    assert [train(step) for step in trajectory.steps] == [r is None for r in reasons]


def test_each_mask_can_be_turned_off_or_on(trajectory: Trajectory) -> None:
    steps = trajectory.steps
    lenient = SFTDataOptions(mask_malformed=False, mask_truncated=False)
    assert all(train_step_predicate(lenient)(step) for step in steps)
    only_cut = SFTDataOptions(mask_malformed=False)
    assert [step_mask_reason(s, only_cut) for s in steps].count("truncated") == 1
    assert [step_mask_reason(s, only_cut) for s in steps].count("malformed") == 0
    refusals = SFTDataOptions(mask_refusals=["str_replace_editor"])
    reasons = [step_mask_reason(step, refusals) for step in steps]
    assert reasons[7] == "refused"
    assert reasons[8] is None  # bash's exit code is the command's, never a refusal
    shell_too = SFTDataOptions(mask_refusals=["bash"])
    assert step_mask_reason(steps[8], shell_too) == "refused"  # asked for, so done


def test_condensation_steps_are_masked_unless_kept() -> None:
    summary = Step(index=0, kind="condensation", input=[0], completion=Completion(text="S"))
    assert step_mask_reason(summary) == "condensation"
    assert not train_step_predicate()(summary)
    assert train_step_predicate(SFTDataOptions(keep_condensation=True))(summary)


def test_the_filter_counts_masked_steps_per_reason(trajectory: Trajectory) -> None:
    sft = SFTFilter()
    train = sft.plan(trajectory)
    assert train is not None
    assert [train(step) for step in trajectory.steps] == [r is None for _, r in SCRIPT]
    assert sft.stats.kept == 1 and sft.stats.steps == len(SCRIPT)
    assert sft.stats.masked_steps == {"malformed": 5, "truncated": 1}


@pytest.mark.parametrize("status", COMPACT_STATUSES)
def test_compact_filter_drops_or_masks_runs_cut_off_by_a_limit(
    trajectory: Trajectory, status: ExitStatus
) -> None:
    cut = trajectory.model_copy(update={"exit_status": status})
    assert compact_action(cut) == "drop"
    dropping = SFTFilter()
    assert dropping.plan(cut) is None
    assert (dropping.stats.compact_dropped, dropping.stats.kept) == (1, 0)

    masking = SFTFilter(SFTDataOptions(compact="mask"))
    train = masking.plan(cut)
    assert train is not None and not any(train(step) for step in cut.steps)
    assert (masking.stats.compact_masked, masking.stats.kept) == (1, 1)

    assert SFTFilter(SFTDataOptions(compact="keep")).plan(cut) is not None


@pytest.mark.parametrize(
    "status", [ExitStatus.SUBMITTED, ExitStatus.FORMAT_ERRORS, ExitStatus.INTERRUPTED]
)
def test_compact_filter_keeps_runs_that_were_not_cut_off(
    trajectory: Trajectory, status: ExitStatus
) -> None:
    assert compact_action(trajectory.model_copy(update={"exit_status": status})) == "keep"


def test_the_compact_statuses_are_configurable(trajectory: Trajectory) -> None:
    options = SFTDataOptions(compact_statuses=[ExitStatus.SUBMITTED])
    assert compact_action(trajectory, options) == "drop"
    assert compact_action(trajectory.model_copy(update={"exit_status": "step_limit"}), options) == (
        "keep"
    )


def test_turn_cap_drops_trajectories_with_more_action_steps(trajectory: Trajectory) -> None:
    summary = Step(index=99, kind="condensation", input=[0], completion=Completion(text="S"))
    longer = trajectory.model_copy(update={"steps": [*trajectory.steps, summary]})
    at_cap = SFTFilter(SFTDataOptions(max_steps=len(SCRIPT)))
    assert at_cap.plan(longer) is not None  # a condensation is not a turn
    over = SFTFilter(SFTDataOptions(max_steps=len(SCRIPT) - 1))
    assert over.plan(longer) is None and over.stats.too_many_steps == 1


def sample(mask: list[int], logprobs: bool = True) -> TokenSample:
    return TokenSample(
        task_id="o__r-1",
        trajectory_id="t",
        steps=[0, 1],
        source="recorded",
        input_ids=list(range(100, 100 + len(mask))),
        loss_mask=mask,
        logprobs=[-0.5 * bit for bit in mask] if logprobs else None,
    )


def test_length_cap_drops_by_default_and_can_truncate() -> None:
    short, long = sample([0, 1, 1]), sample([0, 0, 1, 1, 0, 1])
    assert cap_sample(long) is long  # no cap by default
    capped = SFTDataOptions(max_tokens=4)
    assert cap_sample(short, capped) is short
    assert cap_sample(long, capped) is None
    cut = cap_sample(long, capped.model_copy(update={"overlong": "truncate"}))
    assert cut is not None
    assert (cut.input_ids, cut.loss_mask) == ([100, 101, 102, 103], [0, 0, 1, 1])
    assert cut.logprobs == [-0.0, -0.0, -0.5, -0.5] and cut.steps == [0, 1]
    no_logprobs = cap_sample(
        sample([0, 1, 1, 1, 1], logprobs=False), SFTDataOptions(max_tokens=2, overlong="truncate")
    )
    assert no_logprobs is not None and no_logprobs.logprobs is None


def test_the_filter_counts_what_the_length_cap_did() -> None:
    samples = [sample([0, 1]), sample([0, 0, 0, 0, 1]), sample([0, 1, 1, 1, 1])]
    dropping = SFTFilter(SFTDataOptions(max_tokens=3))
    assert dropping.cap(samples) == samples[:1]
    assert (dropping.stats.samples, dropping.stats.overlong_dropped) == (3, 2)
    truncating = SFTFilter(SFTDataOptions(max_tokens=3, overlong="truncate"))
    kept = truncating.cap(samples)
    assert [s.loss_mask for s in kept] == [[0, 1], [0, 1, 1]]  # the second lost all it trained on
    assert (truncating.stats.truncated, truncating.stats.empty_dropped) == (1, 1)


def test_options_round_trip_and_refuse_unknown_fields() -> None:
    options = SFTDataOptions(compact="mask", max_tokens=2048, mask_refusals=["str_replace_editor"])
    assert SFTDataOptions.model_validate_json(options.model_dump_json()) == options
    assert SFTDataOptions().compact_statuses == list(COMPACT_STATUSES)
    with pytest.raises(ValidationError):
        SFTDataOptions.model_validate({"mask_everything": True})
    with pytest.raises(ValidationError):
        SFTDataOptions(max_tokens=0)
