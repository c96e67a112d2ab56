"""From token samples to micro-batches and optimizer steps: the plan (pure Python) and the tensors.

Planning is separate from collation so that a run's order of data is a pure function of the
samples' lengths, the batching settings, the seed and the epoch. A resumed run re-plans the same
epoch and skips the steps it already took; nothing about the data order has to be stored.

Two layouts:

- **length-grouped** (the default): samples sorted by length (ties broken by the seed) are cut
  into micro-batches of similar lengths, so right-padding wastes little, and the micro-batches are
  visited in a seeded random order. One sample per row.
- **packed**: samples are packed first-fit-decreasing into rows of at most ``pack_length`` tokens.
  Position ids restart at 0 for every sample and the row carries no 2D attention mask, which makes
  transformers build a block-diagonal causal mask (sdpa / eager) or variable-length attention
  (flash attention): no token attends across a sample boundary, so a packed sample trains exactly
  as it would alone.

A micro-batch is a list of rows; a row is a list of sample indices (one index unless packed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

Row = list[int]
"""Indices of the samples laid end to end in one row of a micro-batch."""
MicroBatchPlan = list[Row]
StepPlan = list[MicroBatchPlan]
"""The micro-batches whose gradients one optimizer step accumulates."""
Overlong = Literal["truncate", "drop"]


@dataclass(frozen=True)
class FittedSamples:
    """Samples cut to the length limit, with what was done to the others."""

    input_ids: list[list[int]]
    loss_masks: list[list[int]]
    source_index: list[int]
    """For each kept sample, its index in the caller's sequence."""
    truncated: int
    dropped: int
    """Samples left out: too long under ``overlong="drop"``, or with no trainable token left."""


def trainable_targets(loss_mask: Sequence[int]) -> int:
    """Tokens that are trained: masked-in tokens after the first (the first has no context)."""
    return sum(loss_mask[1:])


def fit_to_length(
    input_ids: Sequence[Sequence[int]],
    loss_masks: Sequence[Sequence[int]],
    max_length: int,
    overlong: Overlong = "truncate",
) -> FittedSamples:
    """Keep the first ``max_length`` tokens of longer samples (``truncate``) or leave them out
    (``drop``). Tokens after a sample's last trained token are cut too: attention is causal, so
    they cannot change the loss or its gradient, and reading them would only cost compute.
    Samples without a single trainable target are left out either way."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    kept_ids: list[list[int]] = []
    kept_masks: list[list[int]] = []
    source: list[int] = []
    truncated = dropped = 0
    for index, (ids, mask) in enumerate(zip(input_ids, loss_masks, strict=True)):
        if len(ids) > max_length:
            if overlong == "drop":
                dropped += 1
                continue
            ids, mask = ids[:max_length], mask[:max_length]
            truncated += 1
        end = next((t + 1 for t in range(len(mask) - 1, 0, -1) if mask[t]), 0)
        if end == 0:
            dropped += 1
            continue
        kept_ids.append(list(ids[:end]))
        kept_masks.append(list(mask[:end]))
        source.append(index)
    return FittedSamples(kept_ids, kept_masks, source, truncated, dropped)


def _fits(rows: int, width: int, size: int | None, tokens: int | None) -> bool:
    if size is not None and rows > size:
        return False
    return tokens is None or rows == 1 or rows * width <= tokens


def _group_rows(
    row_lengths: Sequence[int], order: Sequence[int], size: int | None, tokens: int | None
) -> list[list[int]]:
    """Cut rows, taken in ``order``, into consecutive groups whose padded size fits the budget."""
    groups: list[list[int]] = []
    current: list[int] = []
    width = 0
    for row in order:
        new_width = max(width, row_lengths[row])
        if current and not _fits(len(current) + 1, new_width, size, tokens):
            groups.append(current)
            current, new_width = [], row_lengths[row]
        current.append(row)
        width = new_width
    if current:
        groups.append(current)
    return groups


def length_grouped_batches(
    lengths: Sequence[int],
    *,
    micro_batch_size: int | None,
    micro_batch_tokens: int | None,
    seed: int,
) -> list[MicroBatchPlan]:
    """Micro-batches of samples of similar length, in a seeded random order.

    ``micro_batch_size`` caps the rows; ``micro_batch_tokens`` caps rows × longest row (the padded
    size the model computes on); either or both may be set. A sample longer than the token budget
    gets a micro-batch of its own.
    """
    if micro_batch_size is None and micro_batch_tokens is None:
        raise ValueError("set micro_batch_size, micro_batch_tokens or both")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)  # equal lengths meet in a different order each epoch
    order.sort(key=lambda i: lengths[i])
    groups = _group_rows(lengths, order, micro_batch_size, micro_batch_tokens)
    rng.shuffle(groups)
    return [[[i] for i in group] for group in groups]


def pack_rows(lengths: Sequence[int], pack_length: int, seed: int) -> list[Row]:
    """First-fit-decreasing packing of samples into rows of at most ``pack_length`` tokens."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: -lengths[i])
    rows: list[Row] = []
    free: list[int] = []
    for index in order:
        need = lengths[index]
        if need > pack_length:
            raise ValueError(f"sample of {need} tokens does not fit a row of {pack_length}")
        for r, room in enumerate(free):
            if room >= need:
                rows[r].append(index)
                free[r] -= need
                break
        else:
            rows.append([index])
            free.append(pack_length - need)
    return rows


def packed_batches(
    lengths: Sequence[int],
    *,
    pack_length: int,
    micro_batch_size: int | None,
    micro_batch_tokens: int | None,
    seed: int,
) -> list[MicroBatchPlan]:
    """Packed rows grouped into micro-batches (rows of similar fill together), in seeded order."""
    rows = pack_rows(lengths, pack_length, seed)
    row_lengths = [sum(lengths[i] for i in row) for row in rows]
    order = sorted(range(len(rows)), key=lambda r: row_lengths[r])
    groups = _group_rows(row_lengths, order, micro_batch_size, micro_batch_tokens)
    random.Random(seed + 1).shuffle(groups)
    return [[rows[r] for r in group] for group in groups]


def group_steps(
    micro_batches: Sequence[MicroBatchPlan],
    trained: Sequence[int],
    *,
    gradient_accumulation: int,
    step_tokens: int | None,
) -> list[StepPlan]:
    """Consecutive micro-batches per optimizer step: ``gradient_accumulation`` of them, or, with
    ``step_tokens``, as many as it takes to reach that many trained tokens (the last step of an
    epoch may be smaller). ``trained`` holds each sample's trainable target count."""
    steps: list[StepPlan] = []
    current: StepPlan = []
    count = 0
    for batch in micro_batches:
        current.append(batch)
        count += sum(trained[i] for row in batch for i in row)
        full = count >= step_tokens if step_tokens is not None else False
        if full or (step_tokens is None and len(current) >= gradient_accumulation):
            steps.append(current)
            current, count = [], 0
    if current:
        steps.append(current)
    return steps


@dataclass
class MicroBatch:
    """The tensors of one micro-batch; targets are precomputed so a step does no Python per token.

    ``target_index`` holds flat indices into the ``(rows × width)`` hidden states of the positions
    whose NEXT token is trained; ``target_ids`` holds those next tokens.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    target_index: torch.Tensor
    target_ids: torch.Tensor
    tokens: int
    """Real (non-padding) tokens."""

    @property
    def trained_tokens(self) -> int:
        return int(self.target_ids.numel())

    def to(self, device: torch.device | str) -> MicroBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return MicroBatch(
            self.input_ids.to(device, non_blocking=True),
            move(self.attention_mask),
            move(self.position_ids),
            self.target_index.to(device, non_blocking=True),
            self.target_ids.to(device, non_blocking=True),
            self.tokens,
        )


def collate(
    plan: MicroBatchPlan,
    input_ids: Sequence[Sequence[int]],
    loss_masks: Sequence[Sequence[int]],
    *,
    pad_id: int,
    packed: bool,
) -> MicroBatch:
    """Right-pad the rows of ``plan`` into tensors.

    Unpacked rows get a 2D attention mask (``None`` when no row is padded, which keeps attention on
    its causal fast path). Packed rows get per-sample position ids and no attention mask; the
    padding after the last sample counts as one more sample, which nothing real attends to.
    """
    import torch

    row_ids: list[list[int]] = []
    row_targets: list[list[int]] = []
    row_positions: list[list[int]] = []
    for row in plan:
        ids: list[int] = []
        targets: list[int] = []
        positions: list[int] = []
        for index in row:
            sample, mask = input_ids[index], loss_masks[index]
            start = len(ids)
            # Token t is predicted by position t - 1 of the same sample; the first has no context.
            targets.extend(start + t - 1 for t in range(1, len(sample)) if mask[t])
            ids.extend(sample)
            positions.extend(range(len(sample)))
        row_ids.append(ids)
        row_targets.append(targets)
        row_positions.append(positions)
    width = max(len(ids) for ids in row_ids)
    tokens = sum(len(ids) for ids in row_ids)
    padded = any(len(ids) < width for ids in row_ids)
    flat_ids: list[int] = []
    flat_index: list[int] = []
    for r, ids in enumerate(row_ids):
        flat_index.extend(r * width + t for t in row_targets[r])
        flat_ids.extend(ids + [pad_id] * (width - len(ids)))
    input_tensor = torch.tensor(flat_ids, dtype=torch.long).view(len(row_ids), width)
    index_tensor = torch.tensor(flat_index, dtype=torch.long)
    target_tensor = input_tensor.view(-1)[index_tensor + 1]
    attention: torch.Tensor | None = None
    position: torch.Tensor | None = None
    if packed:
        position = torch.tensor(
            [p + list(range(width - len(p))) for p in row_positions], dtype=torch.long
        )
    elif padded:
        attention = torch.tensor(
            [[1] * len(ids) + [0] * (width - len(ids)) for ids in row_ids], dtype=torch.long
        )
    return MicroBatch(input_tensor, attention, position, index_tensor, target_tensor, tokens)
