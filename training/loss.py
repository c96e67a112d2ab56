"""The SFT objective, normalised in one place.

The loss of an optimizer step is the mean negative log-likelihood over every trained token of
that step: each micro-batch contributes ``-sum(logp) / N`` where ``N`` counts the trained tokens
of the WHOLE step, not of the micro-batch. Summing the micro-batch losses (and their gradients)
then gives the same value however the step is split — dividing by each micro-batch's own count
instead weights a token in a short micro-batch more than one in a long micro-batch, a recurring
bug in trainers that accumulate gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def sft_loss(logprobs: torch.Tensor, step_trained_tokens: int) -> torch.Tensor:
    """This micro-batch's share of the step loss: ``-sum(logprobs) / step_trained_tokens``.

    ``logprobs`` are the log-probabilities of the micro-batch's trained tokens; a step without
    trained tokens contributes zero (a differentiable zero, so backward still runs).
    """
    return -logprobs.sum() / max(step_trained_tokens, 1)
