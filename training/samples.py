"""The seam between trajectories and trainers: token ids, a loss mask, and where they came from.

A trainer never sees chat messages (DESIGN.md, "Training batch"). Everything upstream —
rendering a trajectory through a chat template or reading the token ids its backend recorded,
merging steps whose prompts extend each other, branching where a template rewrote history,
masking malformed actions — produces :class:`TokenSample` values; everything downstream (datasets,
the SFT trainer, RL batches) consumes them and nothing else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SampleSource = Literal["recorded", "template"]
"""``recorded``: the backend's own prompt and completion ids, used as they are.
``template``: rendered here with the model's chat template and tokenizer."""


class TokenSample(BaseModel):
    """One training sequence: ``input_ids`` and a 0/1 ``loss_mask`` of the same length.

    ``loss_mask[t] == 1`` means token ``t`` is an action token the model produced and should be
    trained on (it is predicted from the tokens before it); system prompt, user turns, tool
    observations, the generation prompt and template glue are 0. ``logprobs`` are the sampling
    log-probabilities the backend recorded, aligned with ``input_ids`` (0.0 where the token was
    not generated); ``None`` when the backend did not return them.
    """

    model_config = ConfigDict(extra="forbid")

    task_id: str
    trajectory_id: str
    """Which trajectory this came from (its run folder path or another stable name)."""
    branch: int = 0
    """0 for the first sample of a trajectory; each place where the next prompt does not extend
    the previous sequence token for token starts the next branch."""
    steps: list[int] = Field(default_factory=list)
    """Indices of the trajectory's steps whose completions this sample holds, in order."""
    source: SampleSource
    input_ids: list[int]
    loss_mask: list[int]
    logprobs: list[float] | None = None
    reward: float | None = None
    policy_version: int | None = None
    """The oldest policy (weight) version among the steps in this sample, when recorded."""

    @model_validator(mode="after")
    def _aligned(self) -> TokenSample:
        if len(self.loss_mask) != len(self.input_ids):
            raise ValueError(
                f"loss_mask has {len(self.loss_mask)} entries for {len(self.input_ids)} tokens"
            )
        if self.logprobs is not None and len(self.logprobs) != len(self.input_ids):
            raise ValueError(
                f"logprobs has {len(self.logprobs)} entries for {len(self.input_ids)} tokens"
            )
        if any(m not in (0, 1) for m in self.loss_mask):
            raise ValueError("loss_mask holds values other than 0 and 1")
        return self

    @property
    def trained_tokens(self) -> int:
        return sum(self.loss_mask)

    def __len__(self) -> int:
        return len(self.input_ids)
