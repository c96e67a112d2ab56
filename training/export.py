"""Writing training data for other trainers: Hugging Face datasets, parquet, JSONL, and TRL.

Three shapes, for three kinds of consumer:

* **Samples** (:func:`save_samples`, :func:`load_samples`): every field of
  :class:`~agentkit.training.samples.TokenSample`, one row each, as a ``datasets`` folder
  (``save_to_disk``), a parquet file or JSONL. Loading gives back equal samples (log-probs are
  stored as float64 so they round-trip exactly).
* **TRL, pretokenized** (:func:`trl_records`, :func:`trl_dataset`, :func:`save_trl`): the columns
  TRL 1.16's ``SFTTrainer`` recognises as already tokenized — ``input_ids`` plus
  ``assistant_masks`` (our ``loss_mask``). TRL folds ``assistant_masks`` into ``labels``
  (``-100`` where the mask is 0) whatever ``completion_only_loss`` says, then truncates and
  packs, so it trains on exactly our masked tokens: malformed actions, observations, prompts and
  template glue stay out of the loss. (``completion_mask`` is *not* used: TRL applies it only
  with ``completion_only_loss=True``, which is off by default for pretokenized data, so it would
  silently train on every token.) ``mask_column="labels"`` writes the labels themselves, for
  ``dataset_kwargs={"skip_prepare_dataset": True}``, where TRL builds no labels from masks.
* **Conversations** (:func:`conversation_record`, :func:`save_conversations`): ``messages`` +
  ``tools`` for users who let TRL tokenize with the model's chat template
  (``assistant_only_loss=True``). This form cannot carry our masks: TRL trains on *every*
  assistant turn in the messages, malformed actions included, and a conversation is the last
  step's prompt, so turns a history processor elided or summarised are trained in their
  rewritten form, not as the model wrote them. Prefer the pretokenized form.

The ``datasets`` and ``pyarrow`` imports happen inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentkit.training.samples import TokenSample
from agentkit.types import Trajectory, write_text_atomic

if TYPE_CHECKING:
    from datasets import Dataset, Features

ExportFormat = Literal["disk", "parquet", "jsonl"]
MaskColumn = Literal["assistant_masks", "labels"]
IGNORE_INDEX = -100
"""The label of a token left out of the loss (PyTorch's ``cross_entropy`` default)."""


def _sample_features() -> Features:
    from datasets import Features, List, Value

    return Features(
        {
            "task_id": Value("string"),
            "trajectory_id": Value("string"),
            "branch": Value("int64"),
            "steps": List(Value("int64")),
            "source": Value("string"),
            "input_ids": List(Value("int64")),
            "loss_mask": List(Value("int8")),
            "logprobs": List(Value("float64")),
            "reward": Value("float64"),
            "policy_version": Value("int64"),
        }
    )


def sample_rows(samples: Iterable[TokenSample]) -> list[dict[str, Any]]:
    """Each sample as a plain dict of its fields (the row of every sample export)."""
    return [sample.model_dump(mode="json") for sample in samples]


def samples_dataset(samples: Iterable[TokenSample]) -> Dataset:
    """The samples as a ``datasets.Dataset`` with a fixed schema (also when a column is all
    ``None`` or the list is empty)."""
    return _dataset(sample_rows(samples), _sample_features())


def save_samples(
    samples: Iterable[TokenSample], path: str | Path, *, format: ExportFormat | None = None
) -> Path:
    """Write ``samples`` to ``path``: a ``save_to_disk`` folder, a parquet file or JSONL
    (``format``, or by the suffix: ``.parquet``, ``.jsonl``/``.json``, anything else a folder).
    Written atomically: a reader sees the old export or the new one, never a part."""
    rows = sample_rows(samples)
    return _write(rows, _sample_features, Path(path), format)


def load_samples(path: str | Path) -> list[TokenSample]:
    """The samples :func:`save_samples` wrote, in their order, from any of its formats (a
    folder is a ``save_to_disk`` export, a file is parquet when it starts like one, else
    JSONL)."""
    path = Path(path)
    if path.is_dir():
        from datasets import load_from_disk

        loaded = load_from_disk(str(path))
        rows = loaded.to_list()
    elif _is_parquet(path):
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        with path.open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    return [TokenSample.model_validate(row) for row in rows]


# -- TRL ------------------------------------------------------------------------------------------


def trl_records(
    samples: Iterable[TokenSample], *, mask_column: MaskColumn = "assistant_masks"
) -> list[dict[str, list[int]]]:
    """Pretokenized rows for TRL's ``SFTTrainer``: ``input_ids`` and ``assistant_masks`` (the
    loss mask as is) or ``labels`` (the token id where the mask is 1, else ``-100``). Rows with
    no trained token are left out: they carry no loss, and TRL drops them only when it
    truncates."""
    records = []
    for sample in samples:
        if not sample.trained_tokens:
            continue
        if mask_column == "assistant_masks":
            column = list(sample.loss_mask)
        else:
            column = [
                token if bit else IGNORE_INDEX
                for token, bit in zip(sample.input_ids, sample.loss_mask, strict=True)
            ]
        records.append({"input_ids": list(sample.input_ids), mask_column: column})
    return records


def _trl_features(mask_column: MaskColumn) -> Features:
    from datasets import Features, List, Value

    mask = Value("int8") if mask_column == "assistant_masks" else Value("int64")
    return Features({"input_ids": List(Value("int64")), mask_column: List(mask)})


def trl_dataset(
    samples: Iterable[TokenSample], *, mask_column: MaskColumn = "assistant_masks"
) -> Dataset:
    """:func:`trl_records` as a ``datasets.Dataset``, ready for ``SFTTrainer(train_dataset=...)``."""
    records = trl_records(samples, mask_column=mask_column)
    return _dataset(records, _trl_features(mask_column))


def save_trl(
    samples: Iterable[TokenSample],
    path: str | Path,
    *,
    mask_column: MaskColumn = "assistant_masks",
    format: ExportFormat | None = None,
) -> Path:
    """Write :func:`trl_records` like :func:`save_samples` writes samples (``load_from_disk``,
    ``load_dataset("parquet" | "json", ...)`` read them back for TRL)."""
    rows = trl_records(samples, mask_column=mask_column)
    return _write(rows, lambda: _trl_features(mask_column), Path(path), format)


# -- conversations --------------------------------------------------------------------------------


def conversation_record(trajectory: Trajectory) -> dict[str, Any]:
    """``{"messages": [...], "tools": [...]}``: the last action step's exact model input plus its
    reply, as chat-template dicts (tool-call ``arguments`` are dicts), and the tool specs in the
    OpenAI function format. See the module docstring for what this form cannot express."""
    from agentkit.chat_dicts import template_messages, tool_dicts
    from agentkit.training.chat_render import reply_message

    actions = [step for step in trajectory.steps if step.kind == "action"]
    if not actions:
        raise ValueError(f"trajectory of {trajectory.task_id} has no action step to export")
    last = actions[-1]
    messages = [*trajectory.model_input(last), reply_message(last.completion)]
    return {"messages": template_messages(messages), "tools": tool_dicts(trajectory.tools)}


def save_conversations(trajectories: Iterable[Trajectory], path: str | Path) -> Path:
    """Write one :func:`conversation_record` per trajectory as JSONL (a file TRL reads with
    ``load_dataset("json", data_files=...)``). JSONL only: Arrow gives every tool call the
    union of all calls' argument names, filling the missing ones with ``null``, which a chat
    template would then render as arguments the model never wrote."""
    lines = [json.dumps(conversation_record(t), ensure_ascii=False) for t in trajectories]
    path = Path(path)
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return path


# -- writing ----------------------------------------------------------------------------------


def _dataset(rows: Sequence[dict[str, Any]], features: Features) -> Dataset:
    """``rows`` as a dataset of ``features``, column by column (``Dataset.from_list`` loses the
    columns of an empty list)."""
    from datasets import Dataset

    columns = {name: [row[name] for row in rows] for name in features}
    return Dataset.from_dict(columns, features=features)


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def _format_of(path: Path, format: ExportFormat | None) -> ExportFormat:
    if format is not None:
        return format
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    return "disk"


def _write(
    rows: Sequence[dict[str, Any]],
    features: Callable[[], Features],
    path: Path,
    format: ExportFormat | None,
) -> Path:
    """Write ``rows`` (``features()`` gives their schema) to ``path`` atomically."""
    chosen = _format_of(path, format)
    if chosen == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        write_text_atomic(path, text)
        return path
    dataset = _dataset(rows, features())
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "parquet":
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            dataset.to_parquet(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        # One shard at least: ``load_from_disk`` fails on a folder with none (an empty list).
        dataset.save_to_disk(str(staging), num_shards=1 if not len(dataset) else None)
        _replace_dir(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _replace_dir(new: Path, path: Path) -> None:
    """Put the folder ``new`` at ``path``, moving an older one aside first and removing it
    after: at every moment ``path`` is the old export, absent for a rename's time, or new."""
    if not path.exists():
        os.replace(new, path)
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder; choose another export path")
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    old.rmdir()
    os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)
