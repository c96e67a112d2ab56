"""Loading the model to train (full or LoRA), and writing it back as servable directories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .sft_config import DType, LoRAConfig

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)
"""Copied from the model directory into every saved model, so each is a complete
``from_pretrained`` directory (vLLM reads the tokenizer and chat template from it)."""


def resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: DType, device: torch.device) -> torch.dtype:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]


def load_causal_lm(
    path: str | Path, *, dtype: torch.dtype, device: torch.device, attn_implementation: str | None
) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model: Any = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    return model.to(device)


def add_lora(model: Any, lora: LoRAConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def load_lora(model: Any, adapter_dir: Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)


def enable_gradient_checkpointing(model: Any) -> None:
    from .logprobs import causal_lm

    causal_lm(model).gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """In a stable order (the optimizer state is matched to parameters by position)."""
    return [p for p in model.parameters() if p.requires_grad]


def copy_tokenizer(model_dir: str | Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        source = Path(model_dir) / name
        if source.is_file() and not (out / name).exists():
            shutil.copy2(source, out / name)


def save_model(model: Any, out: Path, model_dir: str | Path) -> None:
    """The model's weights (or its LoRA adapter) and the tokenizer files, in ``out``."""
    model.save_pretrained(str(out))
    copy_tokenizer(model_dir, out)


def save_merged(model: Any, out: Path, model_dir: str | Path) -> None:
    """A LoRA model merged into its base weights: a plain model directory that needs no peft.
    Merging changes ``model`` in place, so this is the last thing a run does with it."""
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out))
    copy_tokenizer(model_dir, out)


def link_or_copy_tree(source: Path, out: Path, *, skip: set[str]) -> None:
    """Hard-link the files of ``source`` into ``out`` (copy where links are not possible): the
    final model of a full fine-tune costs no second copy of the weights on disk."""
    out.mkdir(parents=True)
    for item in source.iterdir():
        if item.name in skip or not item.is_file():
            continue
        try:
            os.link(item, out / item.name)
        except OSError:
            shutil.copy2(item, out / item.name)
