"""Trajectories → token sequences and loss masks (agentkit.training.sequences).

Golden files under tests/golden/training/ hold, per sample, every token id with its mask and
decoded piece, for three real-world chat template shapes (tokenizers built in
tests/chat_templates.py): check the boundaries by eye there — the generation prompt and the
newline after an end-of-turn token are 0, the reply and its end-of-turn token are 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chat_templates import (
    llama3_tokenizer,
    no_template_tokenizer,
    qwen25_tokenizer,
    think_tokenizer,
)
from golden_files import check_golden_file

from agentkit.training.chat_render import render_step
from agentkit.training.samples import TokenSample
from agentkit.training.sequences import (
    NoChatTemplateError,
    RecordedTokensError,
    SequenceError,
    TemplateRenderError,
    check_token_agreement,
    trajectory_samples,
)
from agentkit.types import Completion, Message, Step, ToolCall, ToolSpec, Trajectory

GOLDEN = Path(__file__).parent / "golden" / "training"
BASH = ToolSpec(
    name="bash",
    description="Run one command in a bash shell and return its output.",
    parameters={
        "type": "object",
        "properties": {"command": {"type": "string", "description": "The command to run."}},
        "required": ["command"],
    },
)
SYSTEM = Message(role="system", content="You are a helpful assistant.")
TASK = Message(role="user", content="List the files in the repository. Show me the README.")


@pytest.fixture(scope="module")
def qwen() -> Any:
    return qwen25_tokenizer()


def call(command: str, text: str = "") -> Completion:
    return Completion(
        text=text,
        tool_calls=[ToolCall(name="bash", arguments={"command": command}, id=f"call-{command}")],
        finish_reason="tool_calls",
    )


def agent_run(
    replies: list[Completion], observations: list[str], tools: list[ToolSpec] | None = None
) -> Trajectory:
    """A trajectory built the way the agent loop builds one: each step's input is the history so
    far; a reply enters it as an assistant turn, its result as a tool turn (native calls) or a
    user turn (text formats); messages are stored once, in a pool."""
    pool: list[Message] = [SYSTEM, TASK]
    history = [0, 1]
    steps = []
    for index, reply in enumerate(replies):
        steps.append(Step(index=index, input=list(history), completion=reply))
        if index == len(replies) - 1:
            break
        turn = Message(role="assistant", content=reply.text, tool_calls=reply.tool_calls)
        output = observations[index]
        if reply.tool_calls:
            answer = Message(role="tool", content=output, tool_call_id=reply.tool_calls[0].id)
        else:
            answer = Message(role="user", content=output)
        pool.extend([turn, answer])
        history.extend([len(pool) - 2, len(pool) - 1])
    return Trajectory(task_id="demo-1", tools=tools or [], messages=pool, steps=steps, reward=1.0)


def tool_run() -> Trajectory:
    return agent_run(
        [call("ls"), call("cat README.md"), Completion(text="The repository has a README.")],
        ["README.md\nsrc", "# demo"],
        [BASH],
    )


def record(trajectory: Trajectory, tokenizer: Any, *, logprobs: bool = True) -> Trajectory:
    """The trajectory as a backend that returns token ids would have recorded it (ids as the
    template renders them; a made-up logprob per reply token)."""
    recorded = trajectory.model_copy(deep=True)
    for step in recorded.steps:
        rendered = render_step(
            tokenizer, recorded.model_input(step), recorded.tools, step.completion
        )
        step.completion.prompt_token_ids = rendered.prompt_ids
        step.completion.completion_token_ids = rendered.completion_ids
        if logprobs:
            n = len(rendered.completion_ids)
            step.completion.logprobs = [-(step.index + 1) - i / 100 for i in range(n)]
    return recorded


def golden_text(samples: list[TokenSample], tokenizer: Any) -> str:
    lines = []
    for sample in samples:
        lines.append(
            f"# branch {sample.branch} steps {sample.steps} source {sample.source} "
            f"tokens {len(sample)} trained {sample.trained_tokens}"
        )
        for token, mask in zip(sample.input_ids, sample.loss_mask, strict=True):
            lines.append(f"{token:5d} {mask} {json.dumps(tokenizer.decode([token]))}")
    return "\n".join(lines) + "\n"


def trained_text(sample: TokenSample, tokenizer: Any) -> list[str]:
    """The decoded runs of trained tokens, one string per contiguous run."""
    runs: list[list[int]] = []
    previous = 0
    for token, mask in zip(sample.input_ids, sample.loss_mask, strict=True):
        if mask and not previous:
            runs.append([])
        if mask:
            runs[-1].append(token)
        previous = mask
    return [tokenizer.decode(run) for run in runs]


# -- golden files: exact ids and masks per template ------------------------------------------


def test_golden_qwen25_tool_calls(qwen) -> None:
    samples = trajectory_samples(tool_run(), qwen, trajectory_id="run-1")
    assert [s.steps for s in samples] == [[0, 1, 2]]
    assert trained_text(samples[0], qwen) == [
        '<tool_call>\n{"name": "bash", "arguments": {"command": "ls"}}\n</tool_call><|im_end|>',
        '<tool_call>\n{"name": "bash", "arguments": {"command": "cat README.md"}}\n'
        "</tool_call><|im_end|>",
        "The repository has a README.<|im_end|>",
    ]
    check_golden_file(GOLDEN / "qwen25_tool_calls.txt", golden_text(samples, qwen))


def test_golden_llama3_tool_calls() -> None:
    tokenizer = llama3_tokenizer()
    samples = trajectory_samples(tool_run(), tokenizer, trajectory_id="run-1")
    assert [s.steps for s in samples] == [[0, 1, 2]]
    assert samples[0].input_ids[0] == tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    assert trained_text(samples[0], tokenizer) == [
        '{"name": "bash", "parameters": {"command": "ls"}}<|eot_id|>',
        '{"name": "bash", "parameters": {"command": "cat README.md"}}<|eot_id|>',
        "The repository has a README.<|eot_id|>",
    ]
    check_golden_file(GOLDEN / "llama3_tool_calls.txt", golden_text(samples, tokenizer))


def think_run() -> Trajectory:
    """Text-format replies; steps 0 and 2 think first, step 1 does not."""
    return agent_run(
        [
            Completion(text="<think>I should list the files first.</think>\n```bash\nls\n```"),
            Completion(text="```bash\ncat README.md\n```"),
            Completion(text="<think>Now I know the layout.</think>\nThe tests pass now."),
        ],
        ["README.md\nsrc", "# demo"],
    )


def test_golden_think_stripping_template_branches() -> None:
    """The template drops step 0's <think> block from later prompts, so step 1's prompt does not
    extend step 0's sequence: a new branch. Step 1 has no think block, so step 2 extends it."""
    tokenizer = think_tokenizer()
    samples = trajectory_samples(think_run(), tokenizer, trajectory_id="run-1")
    assert [(s.branch, s.steps) for s in samples] == [(0, [0]), (1, [1, 2])]
    assert trained_text(samples[0], tokenizer) == [
        "<think>I should list the files first.</think>\n```bash\nls\n```<|im_end|>"
    ]
    assert "I should list" not in tokenizer.decode(samples[1].input_ids)
    assert trained_text(samples[1], tokenizer) == [
        "```bash\ncat README.md\n```<|im_end|>",
        "<think>Now I know the layout.</think>\nThe tests pass now.<|im_end|>",
    ]
    check_golden_file(GOLDEN / "think_stripped_branches.txt", golden_text(samples, tokenizer))


def test_golden_malformed_turn_is_masked(qwen) -> None:
    """A reply whose call did not parse stays as context (mask 0); the others are trained."""
    bad = Completion(
        text='<tool_call>\n{"name": "bash", "arguments": {"command": "ls"\n</tool_call>'
    )
    trajectory = agent_run(
        [call("ls"), bad, call("cat README.md")],
        [
            "README.md\nsrc",
            "Your reply had no valid tool call. Reply with exactly one function call.",
        ],
        [BASH],
    )
    trajectory.steps[1].format_error = "malformed JSON in the tool call"
    samples = trajectory_samples(
        trajectory, qwen, trajectory_id="run-1", train_step=lambda s: s.format_error is None
    )
    assert [s.steps for s in samples] == [[0, 1, 2]]
    text = trained_text(samples[0], qwen)
    assert len(text) == 2 and '"ls"\n</tool_call>' not in "".join(text)
    assert '"ls"\n</tool_call>' in qwen.decode(samples[0].input_ids)
    check_golden_file(GOLDEN / "malformed_turn_masked.txt", golden_text(samples, qwen))


# -- merging, branching, recorded ids --------------------------------------------------------


def test_recorded_steps_merge_with_aligned_logprobs(qwen) -> None:
    trajectory = record(tool_run(), qwen)
    trajectory.steps[0].policy_version = 7
    trajectory.steps[1].policy_version = 5
    (sample,) = trajectory_samples(trajectory, qwen, trajectory_id="run-1")
    last = trajectory.steps[-1].completion
    assert sample.source == "recorded" and sample.steps == [0, 1, 2]
    assert sample.input_ids == [*(last.prompt_token_ids or []), *(last.completion_token_ids or [])]
    assert sample.reward == 1.0 and sample.task_id == "demo-1" and sample.policy_version == 5
    assert sample.logprobs is not None
    trained = [lp for lp, m in zip(sample.logprobs, sample.loss_mask, strict=True) if m]
    recorded = [lp for step in trajectory.steps for lp in step.completion.logprobs or []]
    assert trained == recorded
    assert all(lp == 0.0 for lp, m in zip(sample.logprobs, sample.loss_mask, strict=True) if not m)
    # The same ids and masks come out of the template path (no logprobs there: none recorded).
    (rendered,) = trajectory_samples(tool_run(), qwen, trajectory_id="run-1")
    assert (rendered.input_ids, rendered.loss_mask) == (sample.input_ids, sample.loss_mask)
    assert rendered.source == "template" and rendered.logprobs is None


def test_a_prompt_that_does_not_extend_the_sequence_starts_a_branch(qwen) -> None:
    """A history processor elided step 0's turns from step 2's input: steps 0-1 merge, step 2
    starts branch 1 from its own full prompt."""
    trajectory = tool_run()
    trajectory.steps[2].input = [0, 1, 4, 5]
    trajectory = record(trajectory, qwen)
    samples = trajectory_samples(trajectory, qwen, trajectory_id="run-1")
    assert [(s.branch, s.steps) for s in samples] == [(0, [0, 1]), (1, [2])]
    last = trajectory.steps[2].completion
    assert samples[1].input_ids == [
        *(last.prompt_token_ids or []),
        *(last.completion_token_ids or []),
    ]
    assert [len(trained_text(s, qwen)) for s in samples] == [2, 1]


def test_recorded_ids_are_used_as_they_are(qwen) -> None:
    """A model may sample a non-canonical split of its text; the recorded ids win, and the next
    prompt (which the server tokenizes canonically) then no longer extends them: a branch."""
    trajectory = record(tool_run(), qwen)
    completion = trajectory.steps[0].completion
    ids = list(completion.completion_token_ids or [])
    position, token = next(
        (i, t)
        for i, t in enumerate(ids)
        if len(qwen.decode([t])) > 1 and not qwen.convert_ids_to_tokens(t).startswith("<")
    )
    pieces = [qwen.convert_tokens_to_ids(c) for c in qwen.convert_ids_to_tokens(token)]
    odd = [*ids[:position], *pieces, *ids[position + 1 :]]
    assert qwen.decode(odd) == qwen.decode(ids) and odd != ids
    completion.completion_token_ids = odd
    completion.logprobs = [-0.5] * len(odd)

    samples = trajectory_samples(trajectory, qwen, trajectory_id="run-1")
    assert [s.steps for s in samples] == [[0], [1, 2]]
    assert samples[0].input_ids == [*(completion.prompt_token_ids or []), *odd]
    assert samples[0].logprobs is not None and samples[0].logprobs[-len(odd) :] == [-0.5] * len(odd)

    templated = trajectory_samples(trajectory, qwen, trajectory_id="run-1", use_recorded=False)
    assert [s.steps for s in templated] == [[0, 1, 2]]
    assert templated[0].logprobs is None  # step 0's logprobs belong to other ids

    agreement = check_token_agreement(trajectory, qwen)
    assert not agreement.agrees and agreement.checked == 3
    first = agreement.steps[0]
    assert first.prompt_agrees and first.completion_agrees is False
    assert first.completion_mismatch == position
    assert first.recorded_context.replace(">>>", "") in qwen.decode(odd)
    assert ">>>" in first.template_context
    assert [s.agrees for s in agreement.steps] == [False, True, True]
    assert "step 0: differ at completion token" in agreement.report()


def test_agreement_reports_the_first_prompt_mismatch(qwen) -> None:
    """Ids recorded by a different tokenizer than the one at hand."""
    trajectory = record(tool_run(), qwen)
    prompt = list(trajectory.steps[1].completion.prompt_token_ids or [])
    prompt[40] = qwen.convert_tokens_to_ids("<|endoftext|>")
    trajectory.steps[1].completion.prompt_token_ids = prompt
    agreement = check_token_agreement(trajectory, qwen)
    entry = agreement.steps[1]
    assert (entry.prompt_agrees, entry.prompt_mismatch, entry.completion_agrees) == (
        False,
        40,
        True,
    )
    assert entry.recorded_context.split(">>>")[1].startswith("<|endoftext|>")
    assert check_token_agreement(record(tool_run(), qwen), qwen).agrees


def test_steps_without_recorded_ids_are_not_checked(qwen) -> None:
    agreement = check_token_agreement(tool_run(), qwen)
    assert agreement.agrees and agreement.checked == 0
    assert [s.recorded for s in agreement.steps] == [False, False, False]


def test_a_source_change_starts_a_branch(qwen) -> None:
    """Steps are not mixed across sources: a sample's ``source`` says where all its ids came from."""
    trajectory = record(tool_run(), qwen)
    trajectory.steps[2].completion.prompt_token_ids = None
    trajectory.steps[2].completion.completion_token_ids = None
    trajectory.steps[2].completion.logprobs = None
    samples = trajectory_samples(trajectory, qwen, trajectory_id="run-1")
    assert [(s.source, s.steps) for s in samples] == [("recorded", [0, 1]), ("template", [2])]


def test_condensation_steps_are_skipped_unless_asked_for(qwen) -> None:
    trajectory = tool_run()
    summary_input = [len(trajectory.messages), 1]
    trajectory.messages.append(Message(role="system", content="Summarise the conversation."))
    trajectory.steps.append(
        Step(
            index=3,
            kind="condensation",
            input=summary_input,
            completion=Completion(text="Listed files, read the README."),
        )
    )
    assert [s.steps for s in trajectory_samples(trajectory, qwen, trajectory_id="r")] == [[0, 1, 2]]
    samples = trajectory_samples(trajectory, qwen, trajectory_id="r", include_condensation=True)
    assert [s.steps for s in samples] == [[0, 1, 2], [3]]


def test_a_reply_cut_by_the_token_limit_does_not_learn_to_stop(qwen) -> None:
    trajectory = agent_run([Completion(text="The repository has", finish_reason="length")], [])
    (sample,) = trajectory_samples(trajectory, qwen, trajectory_id="r")
    assert trained_text(sample, qwen) == ["The repository has"]


# -- errors a user can cause -----------------------------------------------------------------


def test_no_chat_template_and_no_recorded_ids_is_a_clear_error(qwen) -> None:
    tokenizer = no_template_tokenizer()
    with pytest.raises(NoChatTemplateError, match="Step 0: .*no chat template") as error:
        trajectory_samples(tool_run(), tokenizer, trajectory_id="r")
    assert isinstance(error.value, ValueError) and "request_token_ids" in str(error.value)
    # Recorded ids need no template at all.
    samples = trajectory_samples(record(tool_run(), qwen), tokenizer, trajectory_id="r")
    assert [s.steps for s in samples] == [[0, 1, 2]]
    with pytest.raises(NoChatTemplateError):
        check_token_agreement(record(tool_run(), qwen), tokenizer)


def test_a_template_failure_is_a_typed_error(qwen) -> None:
    tokenizer = qwen25_tokenizer()
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(TemplateRenderError, match="Step 0: .*roles must alternate"):
        trajectory_samples(tool_run(), tokenizer, trajectory_id="r")
    agreement = check_token_agreement(record(tool_run(), qwen), tokenizer)
    assert not agreement.agrees and "roles must alternate" in (agreement.steps[0].error or "")


def test_a_template_whose_reply_does_not_follow_its_prompt_is_refused(qwen) -> None:
    tokenizer = qwen25_tokenizer()
    tokenizer.chat_template = (
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>{% endif %}"
    )
    with pytest.raises(TemplateRenderError, match="continuation of the generation prompt"):
        trajectory_samples(tool_run(), tokenizer, trajectory_id="r")


def test_logprobs_that_do_not_match_the_ids_are_refused(qwen) -> None:
    trajectory = record(tool_run(), qwen)
    trajectory.steps[1].completion.logprobs = [-1.0]
    with pytest.raises(RecordedTokensError, match="Step 1 records 1 logprobs") as error:
        trajectory_samples(trajectory, qwen, trajectory_id="r")
    assert isinstance(error.value, SequenceError)
