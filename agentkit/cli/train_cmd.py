"""``agentkit export`` and ``agentkit train sft``: run folders → training data → a checkpoint.

Both commands read the same options into one :class:`~agentkit.training.pipeline.SFTDataConfig`
(which attempts, which of their tokens), so the data a user exports is the data ``train sft``
trains on. Heavy modules (transformers, torch, datasets) are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.console import Console

from agentkit.errors import UserFacingError

if TYPE_CHECKING:
    from agentkit.training.pipeline import CollectedSamples, SFTDataConfig

ExportKind = Literal["hf", "trl", "conversations"]


def load_tokenizer(model: Path) -> object:
    """The tokenizer of a ``from_pretrained`` directory, or a clear error naming the path."""
    if not model.is_dir():
        raise UserFacingError(f"--model {model}: not a directory (give a from_pretrained folder)")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as exc:
        raise UserFacingError(f"--model {model}: no tokenizer could be loaded: {exc}") from exc


def collect(run_dirs: list[Path], model: Path, config: SFTDataConfig) -> CollectedSamples:
    """Samples of ``run_dirs`` under ``config``, with a summary printed to stderr."""
    from agentkit.training.chat_render import SequenceError
    from agentkit.training.pipeline import collect_samples

    missing = [str(d) for d in run_dirs if not d.is_dir()]
    if missing:
        raise UserFacingError(f"not a run folder: {', '.join(missing)}")
    tokenizer = load_tokenizer(model)
    try:
        collected = collect_samples(run_dirs, tokenizer, config)  # type: ignore[arg-type]
    except SequenceError as exc:
        raise UserFacingError(str(exc)) from exc
    Console(stderr=True).print(collected.summary(), highlight=False, markup=False)
    if not collected.samples:
        raise UserFacingError(
            "no training samples: no attempt passed the selection and filters above "
            "(were the runs graded? try --keep graded or --compact keep)"
        )
    return collected


def export_command(
    run_dirs: list[Path], model: Path, output: Path, kind: ExportKind, config: SFTDataConfig
) -> Path:
    """Write the data of ``run_dirs`` as ``kind``; the file type follows ``output``'s suffix
    (``.parquet``, ``.jsonl``; anything else is a ``save_to_disk`` folder)."""
    from agentkit.training import export

    if kind == "conversations":
        from agentkit.training.rft import select_trajectories

        selection = select_trajectories(run_dirs, keep=config.rft.keep, policy=config.rft.policy)
        Console(stderr=True).print(selection.stats.table(), highlight=False, markup=False)
        return export.save_conversations([r.trajectory for r in selection.records], output)
    samples = collect(run_dirs, model, config).samples
    if kind == "trl":
        return export.save_trl(samples, output)
    return export.save_samples(samples, output)


def train_sft_command(
    run_dirs: list[Path],
    model: Path,
    output: Path,
    data: SFTDataConfig,
    *,
    config_file: Path | None,
    overrides: dict[str, object],
    resume: bool,
) -> Path:
    """Collect the samples, fine-tune, and return the servable ``final/`` folder. The data
    settings are written beside the checkpoints, so the output says what it was trained on."""
    from pydantic import ValidationError

    from agentkit.training.checkpoints import CheckpointError
    from agentkit.training.sft_config import SFTConfig
    from agentkit.training.trainer import train_sft
    from agentkit.types import write_text_atomic
    from agentkit.yaml_files import read_yaml

    settings: dict[str, object] = {}
    if config_file is not None:
        loaded = read_yaml(config_file, UserFacingError, "trainer settings")
        if not isinstance(loaded, dict):
            raise UserFacingError(f"{config_file}: expected a mapping of SFTConfig fields")
        settings.update(loaded)
    settings.update(overrides, model_path=str(model), output_dir=str(output))
    try:
        config = SFTConfig.model_validate(settings)
    except ValidationError as exc:
        raise UserFacingError(f"bad trainer settings: {exc}") from exc
    samples = collect(run_dirs, model, data).samples
    try:
        result = train_sft(samples, config, resume=resume)
    except CheckpointError as exc:
        raise UserFacingError(str(exc)) from exc
    write_text_atomic(output / "data_config.json", data.model_dump_json(indent=1))
    final_loss = f"{result.losses[-1]:.4f}" if result.losses else "none"
    Console(stderr=True).print(
        f"{result.steps} steps, final loss {final_loss}, "
        f"{result.tokens_per_second:,.0f} tokens/s; metrics in {result.output_dir}",
        highlight=False,
    )
    return result.final_dir


def train_rl_command(config_file: Path, overrides: dict[str, object], resume: bool) -> Path:
    """Run the RL config of ``config_file`` (``overrides`` on top), a line per step on stderr;
    return the output folder (metrics, reward plot, checkpoints, weights)."""
    import asyncio

    from pydantic import ValidationError

    from agentkit.backend import BackendError
    from agentkit.runtime.spawned import reaping_children
    from agentkit.scaffolds import BUNDLED
    from agentkit.training.checkpoints import CheckpointError
    from agentkit.training.rl_driver import RLStepRecord
    from agentkit.training.rl_run import RLRunConfig, run_rl
    from agentkit.training.weight_sync import WeightSyncError
    from agentkit.yaml_files import read_yaml

    loaded = read_yaml(config_file, UserFacingError, "RL settings")
    if not isinstance(loaded, dict):
        raise UserFacingError(f"{config_file}: expected a mapping of RLRunConfig fields")
    loaded.update(overrides)
    for key in ("model_path", "output_dir", "dataset", "scaffold"):  # relative to the file
        value = loaded.get(key)
        if key == "scaffold" and value in BUNDLED:
            continue
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            loaded[key] = str((config_file.parent / value).resolve())
    try:
        config = RLRunConfig.model_validate(loaded)
    except ValidationError as exc:
        raise UserFacingError(f"bad RL settings in {config_file}: {exc}") from exc
    console = Console(stderr=True, highlight=False)

    def step_line(record: RLStepRecord) -> None:
        loss = "-" if record.loss is None else f"{record.loss:+.4f}"
        speed = record.trained_tokens / record.train_s if record.train_s > 0 else 0.0
        console.print(
            f"step {record.step}/{config.steps}: version {record.policy_version}, solve rate "
            f"{record.solve_rate:.2f}, reward {record.mean_reward:+.3f}, loss {loss}, "
            f"staleness {record.staleness_max} ({record.dropped_stale} dropped), "
            f"{record.rollouts} rollouts ({record.failures} failed), {speed:,.0f} trained "
            f"tokens/s; waited {record.rollout_s:.0f} s for rollouts, trained "
            f"{record.train_s:.0f} s, synced {record.sync_s:.0f} s"
        )

    with console.status("Starting the policy server (vLLM takes a minute or more)") as status:

        def on_server(where: str) -> None:
            status.stop()
            console.print(f"Policy served: {where}")

        try:
            result = asyncio.run(
                reaping_children(
                    run_rl(config, resume=resume, on_step=step_line, on_server=on_server)
                )
            )
        except (CheckpointError, WeightSyncError, BackendError, ValueError) as exc:
            raise UserFacingError(str(exc)) from exc
    if result.resumed_from_step is not None:
        console.print(f"Resumed after step {result.resumed_from_step}.")
    return result.output_dir
