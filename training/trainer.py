"""Supervised fine-tuning on token samples: ``train_sft(samples, config) -> SFTResult``.

The trainer reads only :class:`~agentkit.training.samples.TokenSample` values (token ids and a
loss mask), never chat messages. A run:

1. fits the samples to ``max_length`` and plans each epoch's micro-batches and optimizer steps
   (:mod:`.batching`; the plan is a pure function of the data, the settings and the seed);
2. loads the model (full fine-tune, or a LoRA adapter over frozen weights) and, on resume, the
   latest checkpoint's weights, optimizer, schedule, random generators and data position;
3. takes the planned steps — log-probs of trained tokens only (:mod:`.logprobs`), the loss
   normalised by the step's trained tokens (:mod:`.loss`) — logging each step to
   ``metrics.jsonl`` and a progress bar;
4. writes a checkpoint every ``save_every`` steps and at the end, draws ``loss.png``, and puts a
   servable model in ``final/`` (merged with its base weights for LoRA).

Output layout::

    <output_dir>/metrics.jsonl, loss.png, config.json
    <output_dir>/checkpoints/step-0000040/   model or adapter + tokenizer + training_state/
    <output_dir>/final/                      full model + tokenizer (from_pretrained, vLLM)
"""

from __future__ import annotations

import hashlib
import shutil
import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .batching import (
    FittedSamples,
    StepPlan,
    collate,
    fit_to_length,
    group_steps,
    length_grouped_batches,
    packed_batches,
    trainable_targets,
)
from .checkpoints import (
    CheckpointError,
    TrainerState,
    check_compatible,
    latest_checkpoint,
    load_optimizer_state,
    read_state,
    restore_rng,
    save_checkpoint,
)
from .metrics import METRICS_FILE, PLOT_FILE, MetricsLog, StepMetrics, StepProgress, dump_json
from .samples import TokenSample
from .sft_config import LoRAConfig, SFTConfig
from .sft_step import LRSchedule, accumulate_gradients, apply_step, build_optimizer

__all__ = ["LoRAConfig", "SFTConfig", "SFTResult", "plan_epoch", "train_sft"]

FINAL_DIR = "final"


class SFTResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_dir: Path
    final_dir: Path
    """A complete model directory (merged for LoRA unless ``merge_lora`` is off)."""
    checkpoint_dir: Path
    """The last resumable checkpoint (model or adapter + training state)."""
    steps: int
    resumed_from_step: int | None
    losses: list[float]
    """The loss of every step of the run, resumed sessions included."""
    trained_tokens: int
    tokens: int
    """Real tokens read by the steps of this session."""
    train_seconds: float
    """Time in this session's steps (loading and saving not included)."""
    tokens_per_second: float
    samples: int
    truncated: int
    dropped: int


def plan_epoch(fitted: FittedSamples, config: SFTConfig, epoch: int) -> list[StepPlan]:
    """The optimizer steps of one epoch (micro-batches of sample indices into ``fitted``)."""
    lengths = [len(ids) for ids in fitted.input_ids]
    seed = config.seed * 100_003 + epoch
    if config.packing:
        batches = packed_batches(
            lengths,
            pack_length=config.max_length,
            micro_batch_size=config.micro_batch_size,
            micro_batch_tokens=config.micro_batch_tokens,
            seed=seed,
        )
    else:
        batches = length_grouped_batches(
            lengths,
            micro_batch_size=config.micro_batch_size,
            micro_batch_tokens=config.micro_batch_tokens,
            seed=seed,
        )
    trained = [trainable_targets(mask) for mask in fitted.loss_masks]
    return group_steps(
        batches,
        trained,
        gradient_accumulation=config.gradient_accumulation,
        step_tokens=config.step_tokens,
    )


def _fingerprint(fitted: FittedSamples) -> str:
    digest = hashlib.sha256()
    for ids, mask in zip(fitted.input_ids, fitted.loss_masks, strict=True):
        digest.update(array("q", ids).tobytes())
        digest.update(bytes(mask))
        digest.update(b"|")
    return digest.hexdigest()


def _schedule(fitted: FittedSamples, config: SFTConfig) -> Iterator[tuple[int, int, StepPlan]]:
    """(epoch, index in epoch, step) for every step of the run, in order."""
    epoch, taken = 0, 0
    while config.max_steps is not None or epoch < config.epochs:
        for index, step in enumerate(plan_epoch(fitted, config, epoch)):
            if config.max_steps is not None and taken >= config.max_steps:
                return
            yield epoch, index, step
            taken += 1
        epoch += 1


def _pad_id(model_path: str) -> int:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path).get_text_config()
    for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(config, name, None)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, int):
            return value
    return 0  # padding is never attended to nor trained, any id will do


def _prepare_model(config: SFTConfig, checkpoint: Path | None) -> tuple[Any, Any]:
    """The model to train, on its device; full weights or base + adapter from ``checkpoint``."""
    from .logprobs import check_plain_head
    from .modeling import (
        add_lora,
        enable_gradient_checkpointing,
        load_causal_lm,
        load_lora,
        resolve_device,
        resolve_dtype,
    )

    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    source = checkpoint if checkpoint is not None and config.lora is None else config.model_path
    model = load_causal_lm(
        source, dtype=dtype, device=device, attn_implementation=config.attn_implementation
    )
    if config.lora is not None:
        model = load_lora(model, checkpoint) if checkpoint else add_lora(model, config.lora)
    check_plain_head(model)
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model.train()
    return model, device


def _write_final(config: SFTConfig, model: Any, checkpoint: Path, out: Path) -> None:
    from .checkpoints import STATE_DIR
    from .modeling import link_or_copy_tree, save_merged

    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    if config.lora is not None and config.merge_lora:
        staging.mkdir(parents=True)
        save_merged(model, staging, config.model_path)
    else:
        link_or_copy_tree(checkpoint, staging, skip={STATE_DIR})
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


class _Session:
    """The live parts of a run: model, optimizer, schedule, metrics log, and where it stands."""

    def __init__(
        self, config: SFTConfig, output: Path, fitted: FittedSamples, state: TrainerState,
        checkpoint: Path | None,
    ) -> None:  # fmt: skip
        import torch

        from .modeling import trainable_parameters

        self.config, self.output, self.fitted, self.state = config, output, fitted, state
        torch.manual_seed(config.seed)
        self.model, self.device = _prepare_model(config, checkpoint)
        self.parameters = trainable_parameters(self.model)
        self.optimizer, self.scheduler = build_optimizer(
            self.parameters,
            learning_rate=config.learning_rate,
            betas=config.adam_betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            schedule=LRSchedule(config.warmup_steps, state.total_steps, config.lr_schedule),
        )
        if checkpoint is not None:  # last: setting up may draw random numbers
            restore_rng(load_optimizer_state(checkpoint, self.optimizer, self.scheduler))
        output.mkdir(parents=True, exist_ok=True)
        dump_json(config.model_dump(mode="json"), output / "config.json")
        self.log = MetricsLog(output / METRICS_FILE, keep_through_step=state.step)
        self.pad_id = _pad_id(config.model_path)

    def step(self, epoch: int, index: int, plan: StepPlan) -> StepMetrics:
        started = time.perf_counter()
        fitted, config = self.fitted, self.config
        batches = [
            collate(batch, fitted.input_ids, fitted.loss_masks, pad_id=self.pad_id,
                    packed=config.packing).to(self.device)
            for batch in plan
        ]  # fmt: skip
        lr = float(self.optimizer.param_groups[0]["lr"])
        loss = accumulate_gradients(self.model, batches, chunk_tokens=config.logprob_chunk_tokens)
        norm = apply_step(self.parameters, self.optimizer, self.scheduler, config.max_grad_norm)
        loss_value, norm_value = float(loss), float(norm)
        seconds = time.perf_counter() - started
        tokens = sum(b.tokens for b in batches)
        trained = sum(b.trained_tokens for b in batches)
        state = self.state
        self.state = state.model_copy(
            update={
                "step": state.step + 1, "epoch": epoch, "step_in_epoch": index + 1,
                "trained_tokens": state.trained_tokens + trained, "tokens": state.tokens + tokens,
                "elapsed_s": state.elapsed_s + seconds,
            }
        )  # fmt: skip
        metrics = StepMetrics(
            step=self.state.step, epoch=epoch, loss=loss_value, lr=lr, grad_norm=norm_value,
            trained_tokens=trained, tokens=tokens, tokens_per_s=tokens / seconds,
            step_s=seconds, elapsed_s=self.state.elapsed_s,
        )  # fmt: skip
        self.log.append(metrics)
        return metrics

    def save(self) -> Path:
        from .modeling import save_model

        path = save_checkpoint(
            self.output,
            self.state,
            write_model=lambda d: save_model(self.model, d, self.config.model_path),
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            keep=self.config.keep_checkpoints,
        )
        self.plot()
        return path

    def plot(self) -> None:
        if self.config.plot:
            from .metrics import plot_loss

            plot_loss(self.log.records, self.output / PLOT_FILE)


def train_sft(
    samples: Sequence[TokenSample],
    config: SFTConfig,
    *,
    resume: bool = False,
    progress: bool = True,
) -> SFTResult:
    """Fine-tune ``config.model_path`` on ``samples`` (loss on ``loss_mask == 1`` tokens only).

    ``resume=True`` continues from the newest checkpoint in ``config.output_dir`` (or starts
    afresh when there is none) and reproduces the run an uninterrupted session would have made;
    without it, an output directory that already holds checkpoints is refused.
    """
    import torch

    output = Path(config.output_dir).expanduser().resolve()
    checkpoint = latest_checkpoint(output)
    if checkpoint is not None and not resume:
        raise CheckpointError(
            f"{output} already holds checkpoints; pass resume=True to continue that run "
            "or choose another output directory"
        )
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    fitted = fit_to_length(
        [s.input_ids for s in samples],
        [s.loss_mask for s in samples],
        config.max_length,
        config.overlong,
    )
    if not fitted.input_ids:
        raise ValueError("no sample has a trained token (loss_mask is all 0 after the first token)")
    fingerprint = _fingerprint(fitted)
    settings = config.resume_key()
    steps = list(_schedule(fitted, config))
    state = TrainerState(
        step=0, epoch=0, step_in_epoch=0, total_steps=len(steps), trained_tokens=0, tokens=0,
        elapsed_s=0.0, settings=settings, data_fingerprint=fingerprint,
    )  # fmt: skip
    if checkpoint is not None:
        state = read_state(checkpoint)
        check_compatible(state, settings, fingerprint)

    run = _Session(config, output, fitted, state, checkpoint)
    first_step, last_saved = state.step, checkpoint
    try:
        with StepProgress(len(steps), completed=first_step, enabled=progress) as bar:
            for epoch, index, plan in steps[first_step:]:
                bar.update(run.step(epoch, index, plan))
                if config.save_every and run.state.step % config.save_every == 0:
                    last_saved = run.save()
        if last_saved is None or read_state(last_saved).step != run.state.step:
            last_saved = run.save()
        else:
            run.plot()
    finally:
        run.log.close()

    final = output / FINAL_DIR
    _write_final(config, run.model, last_saved, final)
    session = run.log.records[first_step:]
    seconds = sum(m.step_s for m in session)
    tokens = sum(m.tokens for m in session)
    return SFTResult(
        output_dir=output,
        final_dir=final,
        checkpoint_dir=last_saved,
        steps=run.state.step,
        resumed_from_step=first_step if checkpoint is not None else None,
        losses=[m.loss for m in run.log.records],
        trained_tokens=sum(m.trained_tokens for m in session),
        tokens=tokens,
        train_seconds=seconds,
        tokens_per_second=tokens / seconds if seconds else 0.0,
        samples=len(fitted.input_ids),
        truncated=fitted.truncated,
        dropped=fitted.dropped,
    )
