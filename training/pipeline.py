"""Run folders → training samples in one call: RFT selection, masked-action filters, tokens.

The three steps live in their own modules (:mod:`~agentkit.training.rft`,
:mod:`~agentkit.training.filters`, :mod:`~agentkit.training.sequences`); this one composes them
the way ``agentkit export`` and ``agentkit train sft`` do, so a script gets exactly the data the
command line would train on, with the statistics of every step.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from agentkit.training.filters import FilterStats, SFTDataOptions, SFTFilter
from agentkit.training.rft import RFTOptions, SelectionStats, select_trajectories
from agentkit.training.samples import TokenSample

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from agentkit.evals.run_folder import RunFolder


class SFTDataConfig(BaseModel):
    """Which attempts (``rft``) and which of their tokens (``data``) become training data."""

    model_config = ConfigDict(extra="forbid")

    rft: RFTOptions = Field(default_factory=RFTOptions)
    data: SFTDataOptions = Field(default_factory=SFTDataOptions)


class CollectedSamples(BaseModel):
    """The samples and what each step did to get them (printed by the command line)."""

    model_config = ConfigDict(extra="forbid")

    samples: list[TokenSample]
    selection: SelectionStats
    filtering: FilterStats

    @property
    def trained_tokens(self) -> int:
        return sum(sample.trained_tokens for sample in self.samples)

    def summary(self) -> str:
        f = self.filtering
        masked = ", ".join(f"{n} {why}" for why, n in sorted(f.masked_steps.items())) or "none"
        return (
            f"{self.selection.table()}\n"
            f"trajectories: {f.trajectories} selected, {f.kept} kept "
            f"({f.compact_dropped} dropped and {f.compact_masked} masked by the compact filter, "
            f"{f.too_many_steps} over the step cap)\n"
            f"steps masked: {masked}\n"
            f"samples: {len(self.samples)} ({f.overlong_dropped} over the length cap dropped, "
            f"{f.truncated} truncated); {self.trained_tokens} trained tokens of "
            f"{sum(len(s) for s in self.samples)}"
        )


def collect_samples(
    run_dirs: RunFolder | str | Path | Iterable[RunFolder | str | Path],
    tokenizer: PreTrainedTokenizerBase,
    config: SFTDataConfig | None = None,
) -> CollectedSamples:
    """Select attempts from ``run_dirs`` (:func:`select_trajectories`), then turn each into
    samples under ``config.data`` (:class:`SFTFilter`: compact filter, step and length caps,
    masked malformed actions), token for token with ``tokenizer``."""
    config = config or SFTDataConfig()
    selection = select_trajectories(run_dirs, keep=config.rft.keep, policy=config.rft.policy)
    sft_filter = SFTFilter(config.data)
    samples: list[TokenSample] = []
    for record in selection.records:
        samples += sft_filter.samples(
            record.trajectory, tokenizer, trajectory_id=record.trajectory_id
        )
    return CollectedSamples(samples=samples, selection=selection.stats, filtering=sft_filter.stats)
