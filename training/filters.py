"""Masked-action SFT: which steps, trajectories and samples a fine-tune learns from.

Three levels, each answering a different question:

* **Step** — was this turn's action something to imitate? A reply the loop could not turn into an
  action is recorded with :attr:`~agentkit.types.Step.format_error` set (and no ``action``): no
  tool call, several calls, an unknown tool, missing or ill-typed arguments, unreadable
  JSON/XML/command blocks (every :class:`~agentkit.tools.ToolCallError` raised while parsing,
  arguments included, since each format validates them against the tool's argument model). The
  model still saw that turn (it stays in later prompts), so it is masked, not removed: the loss
  skips its action tokens. A reply cut off by the output-token limit is recorded the same way
  with the ``TRUNCATED_REPLY`` message; it is its own reason because the budget, not the
  model's grasp of the format, caused it. Tools that refuse a well-formed call report it as an
  observation with a non-zero ``exit_code`` (the editor's refusals: a missing ``old_str``, a
  relative path); for a shell tool the exit code is the command's own, so refusals are masked
  only for the tools named in ``mask_refusals``. Condensation steps (a history processor asking
  the model for a summary) are not actions and are masked unless ``keep_condensation``.
* **Trajectory** — the compact filter: a run that ended because it hit a limit (steps, cost,
  time, context, consecutive timeouts) was cut off, not finished, and training on it teaches
  the model to run out of budget. ``drop`` removes it; ``mask`` keeps its tokens with a zero
  loss everywhere (so batch shapes and token counts stay as sampled, the RL convention); ``keep``
  disables the filter. ``max_steps`` drops trajectories with more action steps than that.
* **Sample** — ``max_tokens`` caps a sequence: ``drop`` (the default: a cut trajectory is not a
  whole solution) or ``truncate`` (keep the first ``max_tokens`` tokens).

:class:`SFTFilter` applies all three with one :class:`SFTDataOptions` and counts what each did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.training.samples import TokenSample
from agentkit.types import ExitStatus, Step, Trajectory

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CompactPolicy = Literal["drop", "mask", "keep"]
OverlongPolicy = Literal["drop", "truncate"]
MaskReason = Literal["malformed", "truncated", "refused", "condensation"]

COMPACT_STATUSES: tuple[ExitStatus, ...] = (
    ExitStatus.STEP_LIMIT,
    ExitStatus.COST_LIMIT,
    ExitStatus.TIME_LIMIT,
    ExitStatus.CONTEXT_EXCEEDED,
    ExitStatus.TIMEOUTS,
)
"""Exits that mean the run was cut off by a budget (max steps, timeouts, context overflow)."""


class SFTDataOptions(BaseModel):
    """Everything that decides which tokens of a set of trajectories are trained on."""

    model_config = ConfigDict(extra="forbid")

    mask_malformed: bool = True
    """Mask steps whose reply held no usable tool call (``format_error`` set)."""
    mask_truncated: bool = True
    """Mask steps whose reply was cut off by the output-token limit before its call ended."""
    mask_refusals: list[str] = Field(default_factory=list)
    """Tools whose non-zero ``exit_code`` means the tool refused the call's arguments (e.g.
    ``str_replace_editor``); their refused steps are masked. Empty: no refusal is masked."""
    keep_condensation: bool = False
    """Train on the summaries a history processor asked the model for."""
    compact: CompactPolicy = "drop"
    compact_statuses: list[ExitStatus] = Field(default_factory=lambda: list(COMPACT_STATUSES))
    max_steps: int | None = Field(default=None, ge=1)
    """Drop trajectories with more action steps than this."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Cap on the tokens of one sample; what happens above it is ``overlong``."""
    overlong: OverlongPolicy = "drop"


class FilterStats(BaseModel):
    """What an :class:`SFTFilter` did, for a run's log."""

    model_config = ConfigDict(extra="forbid")

    trajectories: int = 0
    kept: int = 0
    """Trajectories passed on (the compact-masked included)."""
    compact_dropped: int = 0
    compact_masked: int = 0
    too_many_steps: int = 0
    steps: int = 0
    masked_steps: dict[str, int] = Field(default_factory=dict)
    """Steps masked by their own reason (not counting steps of compact-masked trajectories)."""
    samples: int = 0
    overlong_dropped: int = 0
    truncated: int = 0
    empty_dropped: int = 0
    """Samples that truncation left without a trained token."""


def step_mask_reason(step: Step, options: SFTDataOptions | None = None) -> MaskReason | None:
    """Why ``step``'s action tokens are not trained on, or ``None`` when they are."""
    options = options or SFTDataOptions()
    if step.kind == "condensation":
        return None if options.keep_condensation else "condensation"
    if step.format_error is not None:
        if _is_truncated(step):
            return "truncated" if options.mask_truncated else None
        return "malformed" if options.mask_malformed else None
    if (
        step.action is not None
        and step.action.name in options.mask_refusals
        and step.observation is not None
        and step.observation.exit_code not in (None, 0)
    ):
        return "refused"
    return None


def train_step_predicate(options: SFTDataOptions | None = None) -> Callable[[Step], bool]:
    """The ``train_step`` argument of :func:`~agentkit.training.sequences.trajectory_samples`:
    ``True`` for a step whose action tokens are trained on."""
    chosen = options or SFTDataOptions()

    def train_step(step: Step) -> bool:
        return step_mask_reason(step, chosen) is None

    return train_step


def _never(step: Step) -> bool:
    return False


def compact_action(
    trajectory: Trajectory, options: SFTDataOptions | None = None
) -> Literal["keep", "mask", "drop"]:
    """What the compact filter does with ``trajectory``."""
    options = options or SFTDataOptions()
    if options.compact == "keep" or trajectory.exit_status not in options.compact_statuses:
        return "keep"
    return options.compact


def cap_sample(sample: TokenSample, options: SFTDataOptions | None = None) -> TokenSample | None:
    """``sample`` within ``max_tokens``: itself, its first ``max_tokens`` tokens (``truncate``),
    or ``None`` (dropped: over the cap with ``drop``, or truncated to no trained token). A
    truncated sample keeps its ``steps`` list: which steps lost their tokens is not recorded
    in a sample, and the list still names where it came from."""
    options = options or SFTDataOptions()
    limit = options.max_tokens
    if limit is None or len(sample) <= limit:
        return sample
    if options.overlong == "drop":
        return None
    logprobs = sample.logprobs[:limit] if sample.logprobs is not None else None
    cut = sample.model_copy(
        update={
            "input_ids": sample.input_ids[:limit],
            "loss_mask": sample.loss_mask[:limit],
            "logprobs": logprobs,
        }
    )
    return cut if cut.trained_tokens else None


class SFTFilter:
    """Applies one :class:`SFTDataOptions` to trajectories and samples and counts what it did.

    ``plan(trajectory)`` before tokenizing (``None``: leave it out; else the ``train_step`` to
    tokenize it with), ``cap(samples)`` after; ``samples(trajectory, tokenizer, ...)`` does
    both around the tokenizing."""

    def __init__(self, options: SFTDataOptions | None = None) -> None:
        self.options = options or SFTDataOptions()
        self.stats = FilterStats()
        self._train_step = train_step_predicate(self.options)

    def plan(self, trajectory: Trajectory) -> Callable[[Step], bool] | None:
        stats, options = self.stats, self.options
        stats.trajectories += 1
        action = compact_action(trajectory, options)
        if action == "drop":
            stats.compact_dropped += 1
            return None
        actions = sum(step.kind == "action" for step in trajectory.steps)
        if options.max_steps is not None and actions > options.max_steps:
            stats.too_many_steps += 1
            return None
        stats.kept += 1
        stats.steps += len(trajectory.steps)
        if action == "mask":
            stats.compact_masked += 1
            return _never
        for step in trajectory.steps:
            reason = step_mask_reason(step, options)
            if reason is not None:
                stats.masked_steps[reason] = stats.masked_steps.get(reason, 0) + 1
        return self._train_step

    def samples(
        self, trajectory: Trajectory, tokenizer: PreTrainedTokenizerBase, *, trajectory_id: str
    ) -> list[TokenSample]:
        """``trajectory``'s training samples under these options: :meth:`plan`, then
        :func:`~agentkit.training.sequences.trajectory_samples` with that ``train_step``
        (condensation calls included only when kept), then :meth:`cap`. ``[]`` when the
        trajectory is left out."""
        from agentkit.training.sequences import trajectory_samples

        train_step = self.plan(trajectory)
        if train_step is None:
            return []
        samples = trajectory_samples(
            trajectory,
            tokenizer,
            trajectory_id=trajectory_id,
            train_step=train_step,
            include_condensation=self.options.keep_condensation,
        )
        return self.cap(samples)

    def cap(self, samples: Iterable[TokenSample]) -> list[TokenSample]:
        stats = self.stats
        kept: list[TokenSample] = []
        for sample in samples:
            stats.samples += 1
            capped = cap_sample(sample, self.options)
            if capped is None:
                if self.options.overlong == "drop":
                    stats.overlong_dropped += 1
                else:
                    stats.empty_dropped += 1
                continue
            if capped is not sample:
                stats.truncated += 1
            kept.append(capped)
        return kept


def _is_truncated(step: Step) -> bool:
    """The loop records a reply cut by the token limit with the ``TRUNCATED_REPLY`` message."""
    from agentkit.tools.errors import TRUNCATED_REPLY  # here: the tools package is slow to import

    return step.format_error == TRUNCATED_REPLY
