"""Settings of a supervised fine-tuning run (pydantic, so a run is described by one JSON/YAML file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .batching import Overlong

DType = Literal["auto", "float32", "bfloat16"]
"""``auto``: bfloat16 on CUDA, float32 elsewhere. float16 is not offered: it needs loss scaling."""
Schedule = Literal["constant", "linear", "cosine"]


class LoRAConfig(BaseModel):
    """A LoRA adapter instead of full fine-tuning (peft). The base weights stay frozen."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Module names to adapt; ``all-linear``: every linear layer except the LM head."""


class SFTConfig(BaseModel):
    """One SFT run: which model, where it goes, how the data is batched and how the optimizer steps.

    Batching: a micro-batch holds at most ``micro_batch_size`` rows and/or at most
    ``micro_batch_tokens`` padded tokens (rows × longest row); an optimizer step accumulates
    ``gradient_accumulation`` micro-batches, or, with ``step_tokens``, micro-batches until that many
    trained tokens are reached. The loss of a step is the mean over all its trained tokens, so
    these settings change speed and memory, never the value being optimised.

    Length: samples longer than ``max_length`` tokens keep their first ``max_length`` tokens
    (``overlong="truncate"``) or are left out (``"drop"``); a sample left with no trained token is
    left out either way. The counts are reported in the result. Tokens after a sample's last
    trained token are never read: attention is causal, so they cannot change the loss.
    """

    model_config = ConfigDict(extra="forbid")

    model_path: str
    """A ``from_pretrained`` directory (model + tokenizer)."""
    output_dir: str
    lora: LoRAConfig | None = None

    learning_rate: float = Field(1e-5, gt=0)
    lr_schedule: Schedule = "constant"
    """After warm-up: keep the rate, or decay it linearly / along a cosine to zero at the end."""
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the gradient to this global norm; ``None``: no clipping (the norm is still logged)."""

    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    """When set, train exactly this many optimizer steps, starting new epochs as needed."""
    micro_batch_size: int | None = Field(4, ge=1)
    micro_batch_tokens: int | None = Field(None, ge=2)
    gradient_accumulation: int = Field(1, ge=1)
    step_tokens: int | None = Field(None, ge=1)
    max_length: int = Field(4096, ge=2)
    overlong: Overlong = "truncate"
    packing: bool = False
    """Pack several samples into rows of ``max_length`` tokens (attention never crosses a
    sample boundary; position ids restart per sample)."""

    seed: int = 0
    save_every: int | None = Field(None, ge=1)
    """Write a resumable checkpoint every this many steps; one is always written at the end."""
    keep_checkpoints: int | None = Field(None, ge=1)
    """Keep only the newest this many checkpoints; ``None`` keeps all."""
    merge_lora: bool = True
    """With LoRA, also write the merged full model to ``final/`` (servable without peft)."""

    dtype: DType = "auto"
    device: str = "auto"
    """``auto``: CUDA when available, else CPU."""
    attn_implementation: str | None = "sdpa"
    gradient_checkpointing: bool = False
    logprob_chunk_tokens: int = Field(1024, ge=1)
    """Trained tokens whose logits are computed at once (memory: this × vocabulary floats)."""
    num_threads: int | None = Field(None, ge=1)
    """CPU threads for torch; ``None`` leaves torch's default (the number of physical cores)."""
    plot: bool = True
    """Draw ``loss.png`` at each checkpoint (matplotlib)."""

    @model_validator(mode="after")
    def _batching_is_bounded(self) -> SFTConfig:
        if self.micro_batch_size is None and self.micro_batch_tokens is None:
            raise ValueError("set micro_batch_size, micro_batch_tokens or both")
        return self

    def resume_key(self) -> dict[str, object]:
        """The settings a resumed run must share with the run it continues (the data order, the
        schedule and the model depend on them); paths, logging and speed settings may change."""
        free = {
            "output_dir", "save_every", "keep_checkpoints", "merge_lora", "device",
            "attn_implementation", "gradient_checkpointing", "logprob_chunk_tokens",
            "num_threads", "plot",
        }  # fmt: skip
        return self.model_dump(mode="json", exclude=free)
