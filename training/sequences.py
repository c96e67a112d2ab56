"""Trajectories → token-exact training sequences with loss masks (token in, token out).

A trainer must see exactly the tokens the model saw and sampled. Re-tokenizing generated text
drifts (a model may sample a non-canonical split of the same text, and templates re-render
history), so a step's recorded ``prompt_token_ids`` and ``completion_token_ids`` are used as they
are whenever the backend returned them; only steps without them are rendered with the chat
template (:mod:`agentkit.training.chat_render`).

Steps merge into one sequence while each prompt extends the sequence so far token for token —
the common case of an append-only chat, where one forward pass trains every turn. Where it does
not (a template dropped earlier ``<think>`` blocks, a history processor elided turns), the
trajectory branches: a new :class:`TokenSample` starts from the new prompt. Prompts, observations
and template glue are never trained (mask 0); each reply's tokens are (mask 1), including its
end-of-turn token, unless ``train_step`` rejects the step (a malformed action), which keeps it as
context with mask 0.

:func:`check_token_agreement` compares both paths on steps that carry recorded ids, to find
tokenizer or template drift before it corrupts training data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from agentkit.training.chat_render import (
    NoChatTemplateError,
    RenderedStep,
    SequenceError,
    TemplateRenderError,
    first_difference,
    render_step,
)
from agentkit.training.samples import SampleSource, TokenSample
from agentkit.types import Step, StepKind, Trajectory

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "NoChatTemplateError",
    "RecordedTokensError",
    "SequenceError",
    "StepAgreement",
    "TemplateRenderError",
    "TokenAgreement",
    "check_token_agreement",
    "trajectory_samples",
]

CONTEXT_TOKENS = 8
"""Tokens shown on each side of a mismatch in :class:`StepAgreement`."""


class RecordedTokensError(SequenceError):
    """A step's recorded token data is inconsistent (e.g. one logprob per id is not the case)."""


@dataclass(frozen=True)
class _StepTokens:
    index: int
    source: SampleSource
    prompt: list[int]
    completion: list[int]
    logprobs: list[float] | None
    trained: bool
    policy_version: int | None


@dataclass
class _SampleBuilder:
    source: SampleSource
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    has_logprobs: bool = True
    steps: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)

    def extends(self, tokens: _StepTokens) -> bool:
        return tokens.source == self.source and tokens.prompt[: len(self.ids)] == self.ids

    def add(self, tokens: _StepTokens) -> None:
        """Append the prompt tokens not yet in the sequence (context) and the reply."""
        new_prompt = tokens.prompt[len(self.ids) :]
        self.ids.extend(new_prompt)
        self.mask.extend([0] * len(new_prompt))
        self.logprobs.extend([0.0] * len(new_prompt))
        self.ids.extend(tokens.completion)
        self.mask.extend([int(tokens.trained)] * len(tokens.completion))
        if tokens.logprobs is None:
            self.has_logprobs = False
            self.logprobs.extend([0.0] * len(tokens.completion))
        else:
            self.logprobs.extend(tokens.logprobs)
        self.steps.append(tokens.index)
        if tokens.policy_version is not None:
            self.versions.append(tokens.policy_version)

    def build(self, trajectory: Trajectory, trajectory_id: str, branch: int) -> TokenSample:
        return TokenSample(
            task_id=trajectory.task_id,
            trajectory_id=trajectory_id,
            branch=branch,
            steps=self.steps,
            source=self.source,
            input_ids=self.ids,
            loss_mask=self.mask,
            logprobs=self.logprobs if self.has_logprobs else None,
            reward=trajectory.reward,
            policy_version=min(self.versions) if self.versions else None,
        )


def trajectory_samples(
    trajectory: Trajectory,
    tokenizer: PreTrainedTokenizerBase,
    *,
    trajectory_id: str,
    train_step: Callable[[Step], bool] | None = None,
    use_recorded: bool = True,
    include_condensation: bool = False,
) -> list[TokenSample]:
    """The trajectory's training sequences: one per branch, in step order.

    ``train_step`` decides per step whether its reply is trained (e.g.
    ``lambda s: s.format_error is None`` masks malformed actions); rejected replies stay in the
    sequence as context. ``use_recorded=False`` renders every step with the chat template even
    when ids were recorded (to compare the two paths). Summarisation calls of history processors
    (``kind == "condensation"``) are skipped unless ``include_condensation``; their prompts never
    extend the agent's conversation, so each starts its own branch.

    A sample's ``logprobs`` are set only when every step in it carries recorded logprobs for the
    very ids in the sample; ``policy_version`` is the oldest version among its steps.
    """
    builders: list[_SampleBuilder] = []
    for step in trajectory.steps:
        if step.kind == "condensation" and not include_condensation:
            continue
        trained = train_step(step) if train_step is not None else True
        tokens = _step_tokens(
            trajectory, step, tokenizer, use_recorded=use_recorded, trained=trained
        )
        if not builders or not builders[-1].extends(tokens):
            builders.append(_SampleBuilder(source=tokens.source))
        builders[-1].add(tokens)
    return [
        builder.build(trajectory, trajectory_id, branch) for branch, builder in enumerate(builders)
    ]


def _step_tokens(
    trajectory: Trajectory,
    step: Step,
    tokenizer: PreTrainedTokenizerBase,
    *,
    use_recorded: bool,
    trained: bool,
) -> _StepTokens:
    """A step's prompt and reply ids: recorded when available (and wanted), else rendered."""
    completion = step.completion
    source: SampleSource
    if (
        use_recorded
        and completion.prompt_token_ids is not None
        and completion.completion_token_ids is not None
    ):
        prompt, reply, source = (
            list(completion.prompt_token_ids),
            list(completion.completion_token_ids),
            "recorded",
        )
    else:
        rendered = _render(trajectory, step, tokenizer)
        prompt, reply, source = rendered.prompt_ids, rendered.completion_ids, "template"
    return _StepTokens(
        index=step.index,
        source=source,
        prompt=prompt,
        completion=reply,
        logprobs=_aligned_logprobs(step, reply),
        trained=trained,
        policy_version=step.policy_version,
    )


def _render(trajectory: Trajectory, step: Step, tokenizer: PreTrainedTokenizerBase) -> RenderedStep:
    try:
        return render_step(
            tokenizer, trajectory.model_input(step), trajectory.tools, step.completion
        )
    except SequenceError as exc:
        raise type(exc)(f"Step {step.index}: {exc}") from exc


def _aligned_logprobs(step: Step, reply: list[int]) -> list[float] | None:
    """The recorded logprobs, when they belong to exactly these reply ids."""
    completion = step.completion
    if completion.logprobs is None or completion.completion_token_ids is None:
        return None
    if len(completion.logprobs) != len(completion.completion_token_ids):
        raise RecordedTokensError(
            f"Step {step.index} records {len(completion.logprobs)} logprobs for "
            f"{len(completion.completion_token_ids)} completion ids; they must be one per id. "
            "The trajectory was written by a faulty backend; collect it again or drop its logprobs."
        )
    if completion.completion_token_ids != reply:
        return None
    return list(completion.logprobs)


# -- agreement between recorded ids and the template ------------------------------------------


class StepAgreement(BaseModel):
    """How one step's recorded ids compare with the chat template's rendering of the same call.

    Mismatch positions index the recorded ids (prompt or completion); the contexts show the
    decoded tokens around the first mismatch, ``>>>`` marking where the two begin to differ.
    """

    model_config = ConfigDict(extra="forbid")

    step: int
    kind: StepKind
    recorded: bool
    """Whether the step carries recorded prompt and completion ids (only those are compared)."""
    prompt_agrees: bool | None = None
    completion_agrees: bool | None = None
    prompt_mismatch: int | None = None
    completion_mismatch: int | None = None
    recorded_context: str = ""
    template_context: str = ""
    error: str | None = None
    """Why the template could not render this step, when it could not."""

    @property
    def agrees(self) -> bool:
        return not self.recorded or (
            self.error is None and bool(self.prompt_agrees) and bool(self.completion_agrees)
        )


class TokenAgreement(BaseModel):
    """Whether the template path reproduces every recorded step of a trajectory."""

    model_config = ConfigDict(extra="forbid")

    agrees: bool
    checked: int
    """Steps that carried recorded ids and were compared."""
    steps: list[StepAgreement]

    def report(self) -> str:
        """A short human-readable account, one line per disagreeing step."""
        if self.agrees:
            return f"recorded ids and chat template agree on all {self.checked} recorded steps"
        lines = [f"recorded ids and chat template disagree ({self.checked} recorded steps):"]
        for entry in self.steps:
            if entry.agrees:
                continue
            if entry.error is not None:
                lines.append(f"  step {entry.step}: {entry.error}")
                continue
            where = (
                f"prompt token {entry.prompt_mismatch}"
                if entry.prompt_mismatch is not None
                else f"completion token {entry.completion_mismatch}"
            )
            lines.append(
                f"  step {entry.step}: differ at {where}: recorded {entry.recorded_context!r}, "
                f"template {entry.template_context!r}"
            )
        return "\n".join(lines)


def check_token_agreement(
    trajectory: Trajectory, tokenizer: PreTrainedTokenizerBase
) -> TokenAgreement:
    """Render every step that carries recorded ids with the chat template and compare.

    Disagreement means the template path would train on tokens the model did not see: a
    tokenizer or template that differs from the serving one, or a model that sampled a
    non-canonical tokenization. Recorded ids are what :func:`trajectory_samples` uses by default,
    so a disagreement matters only where ids are missing — or where it reveals the wrong
    tokenizer. Raises :class:`NoChatTemplateError` when the tokenizer has no template.
    """
    entries = [_agreement(trajectory, step, tokenizer) for step in trajectory.steps]
    return TokenAgreement(
        agrees=all(entry.agrees for entry in entries),
        checked=sum(entry.recorded for entry in entries),
        steps=entries,
    )


def _agreement(
    trajectory: Trajectory, step: Step, tokenizer: PreTrainedTokenizerBase
) -> StepAgreement:
    completion = step.completion
    prompt, reply = completion.prompt_token_ids, completion.completion_token_ids
    if prompt is None or reply is None:
        return StepAgreement(step=step.index, kind=step.kind, recorded=False)
    try:
        rendered = _render(trajectory, step, tokenizer)
    except TemplateRenderError as exc:
        return StepAgreement(step=step.index, kind=step.kind, recorded=True, error=str(exc))
    prompt_at = first_difference(prompt, rendered.prompt_ids)
    reply_at = first_difference(reply, rendered.completion_ids)
    entry = StepAgreement(
        step=step.index,
        kind=step.kind,
        recorded=True,
        prompt_agrees=prompt_at is None,
        completion_agrees=reply_at is None,
        prompt_mismatch=prompt_at,
        completion_mismatch=reply_at,
    )
    if prompt_at is not None:
        pair = (prompt, rendered.prompt_ids, prompt_at)
    elif reply_at is not None:
        pair = (reply, rendered.completion_ids, reply_at)
    else:
        return entry
    recorded_ids, template_ids, at = pair
    entry.recorded_context = _context(tokenizer, recorded_ids, at)
    entry.template_context = _context(tokenizer, template_ids, at)
    return entry


def _context(tokenizer: PreTrainedTokenizerBase, ids: list[int], at: int) -> str:
    before = tokenizer.decode(ids[max(0, at - CONTEXT_TOKENS) : at])
    after = tokenizer.decode(ids[at : at + CONTEXT_TOKENS])
    return f"{before}>>>{after}"
