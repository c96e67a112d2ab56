"""What a weight sync can get silently wrong, and how each case is caught or avoided.

A weight sync can fail without any error: vLLM logs (and does not raise) when a checkpoint leaves
tensors unloaded, skips LoRA modules whose names match none of its own, and keeps serving KV
blocks of the old weights from its prefix cache. So after every sync one fixed probe is scored by
both sides and compared:

* **teacher-forced**: the log-probabilities of a fixed continuation after a fixed prompt, from
  the server's ``prompt_logprobs`` (vLLM never reads the prefix cache for such a request) and
  from the trainer's own log-prob code — this compares the weights themselves;
* **generated**: a few greedy tokens after the same prompt with their log-probabilities (a
  normal request, so a cached prefix is reused), re-scored by the trainer — this adds the
  prefix cache. The prompt is longer than one KV block (128 tokens on CPU) so it is cached.

When the first agrees and the second does not, the prefix cache is stale; when the first
disagrees, the weights differ. The error says which, with the largest difference.

Two cases are also stopped before the server sees them: :func:`check_adapter` refuses a LoRA
adapter that vLLM would reject or apply in part, and :func:`write_tied_output_embedding` saves a
tied LM head under its own name, without which vLLM's in-place reload keeps the old head.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import UserFacingError

if TYPE_CHECKING:
    import torch

DEFAULT_PROMPT = (
    "A software engineer reads the issue, finds the code, writes a test that reproduces the "
    "bug, fixes the source and runs the tests again. "
)
DEFAULT_CONTINUATION = " The function returns None when the list is empty."


class WeightSyncError(UserFacingError):
    """Weights could not be moved to the server, or the server does not serve them."""


class WeightSyncTimeout(WeightSyncError):
    """A call to the server did not finish within its timeout (the server may be hung)."""


class WeightMismatch(WeightSyncError):
    """The server's log-probabilities on the probe differ from the trainer's."""

    def __init__(self, message: str, report: ProbeReport) -> None:
        super().__init__(message)
        self.report = report


class AdapterMismatch(WeightSyncError):
    """A LoRA adapter that vLLM would refuse or apply only in part."""


class ProbeConfig(BaseModel):
    """The fixed probe compared after every sync, and how close the two sides must be."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = DEFAULT_PROMPT
    """Repeated until the prompt has ``min_prompt_tokens`` tokens."""
    continuation: str = DEFAULT_CONTINUATION
    min_prompt_tokens: int = Field(default=160, ge=1)
    """Longer than one KV block (128 tokens on vLLM's CPU backend, 16 on GPUs) so that the
    generated check reads the prompt from the prefix cache."""
    generate_tokens: int = Field(default=4, ge=0)
    """Greedy tokens for the generated check; 0 skips it."""
    atol: float = Field(default=1e-3, gt=0)
    """Largest allowed difference of one token's log-probability. float32 on both sides agrees
    to ~1e-5; bfloat16 serving needs ~0.1 (and can then only catch gross mismatches)."""


class Probe(BaseModel):
    """The probe's token ids, fixed once from the tokenizer (never re-tokenized per check)."""

    model_config = ConfigDict(extra="forbid")

    prompt_ids: list[int] = Field(min_length=1)
    continuation_ids: list[int] = Field(min_length=1)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, config: ProbeConfig | None = None) -> Probe:
        config = config or ProbeConfig()
        unit: list[int] = list(tokenizer.encode(config.prompt, add_special_tokens=False))
        continuation = list(tokenizer.encode(config.continuation, add_special_tokens=False))
        if not unit or not continuation:
            raise WeightSyncError("The probe's prompt and continuation must not be empty.")
        prompt = unit * math.ceil(config.min_prompt_tokens / len(unit))
        return cls(prompt_ids=prompt, continuation_ids=continuation)

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, config: ProbeConfig | None = None) -> Probe:
        from transformers import AutoTokenizer

        return cls.from_tokenizer(AutoTokenizer.from_pretrained(str(model_dir)), config)


class ProbeReport(BaseModel):
    """Both sides' log-probabilities of the probe, and how far apart they are."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    trainer_logprobs: list[float]
    server_logprobs: list[float]
    max_diff: float
    """Teacher-forced continuation: the weights."""
    generated_ids: list[int] = Field(default_factory=list)
    trainer_generated_logprobs: list[float] = Field(default_factory=list)
    server_generated_logprobs: list[float] = Field(default_factory=list)
    max_generated_diff: float = 0.0
    """Greedy tokens after the cached prompt: the weights and the prefix cache."""
    atol: float

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.atol and self.max_generated_diff <= self.atol


def max_abs_diff(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        return math.inf
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def trainer_logprobs(model: Any, ids: list[int], start: int) -> list[float]:
    """Log-probabilities of ``ids[start:]`` (each after the tokens before it) under ``model``,
    through the same code the trainer uses for its losses; adapters included (peft injects its
    layers into the base model). The model is put in eval mode for the call (no dropout)."""
    import torch

    from .logprobs import causal_lm, token_logprobs

    lm = causal_lm(model)
    device = next(lm.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            input_ids = torch.tensor([ids], device=device)
            hidden: torch.Tensor = lm.get_decoder()(
                input_ids=input_ids, use_cache=False
            ).last_hidden_state
            index = torch.arange(start - 1, len(ids) - 1, device=device)
            targets = input_ids[0, start:]
            values = token_logprobs(hidden, lm.get_output_embeddings(), index, targets)
    finally:
        model.train(was_training)
    return [float(v) for v in values.float().cpu()]


def adapted_modules(model: Any) -> set[str]:
    """Names (as in the base model's ``named_modules``) of the modules a peft LoRA adapts."""
    from .logprobs import causal_lm

    return {
        name
        for name, module in causal_lm(model).named_modules()
        if hasattr(module, "lora_A") and hasattr(module, "base_layer")
    }


def _adapter_key_module(key: str) -> str:
    """``base_model.model.model.layers.0.mlp.up_proj.lora_A.weight`` → ``model.layers.0.mlp.up_proj``
    (the same parse vLLM applies to adapter keys)."""
    name = key.removeprefix("base_model.model.")
    parts = name.split(".")
    if len(parts) >= 3 and parts[-2] in ("lora_A", "lora_B") and parts[-1] == "weight":
        return ".".join(parts[:-2])
    if parts[-1] in ("lora_embedding_A", "lora_embedding_B"):
        return ".".join(parts[:-1])
    return name


def check_adapter(adapter_dir: Path, model: Any, max_lora_rank: int | None) -> None:
    """Refuse an adapter that vLLM would reject or apply only in part, before it is sent.

    vLLM rejects ranks above ``--max-lora-rank``, DoRA, LoRA biases and ``modules_to_save``;
    worse, it *silently* skips adapter weights whose module names match no module of its model
    (a renamed or re-prefixed key): such a module would keep serving base weights. Every key of
    the saved adapter must therefore name a module the trainer adapted, and every adapted module
    must be in the file.
    """
    from safetensors import safe_open

    config_path = adapter_dir / "adapter_config.json"
    weights = adapter_dir / "adapter_model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise AdapterMismatch(
            f"{adapter_dir} is not a saved LoRA adapter (it needs adapter_config.json and "
            "adapter_model.safetensors, as peft's save_pretrained writes them)."
        )
    config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    problems: list[str] = []
    ranks = [
        int(config.get("r") or 0),
        *(int(r) for r in (config.get("rank_pattern") or {}).values()),
    ]
    if max_lora_rank is not None and max(ranks) > max_lora_rank:
        problems.append(
            f"its rank {max(ranks)} is above the server's --max-lora-rank {max_lora_rank} "
            "(vLLM refuses it; start the server with a larger max_lora_rank)"
        )
    if config.get("use_dora"):
        problems.append("it uses DoRA, which vLLM does not support")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        problems.append("it trains biases, which vLLM does not support")
    if config.get("modules_to_save"):
        problems.append(
            f"it saves whole modules ({config['modules_to_save']}), which vLLM does not load"
        )
    with safe_open(str(weights), framework="pt") as handle:
        keys = list(handle.keys())
    in_file = {_adapter_key_module(key) for key in keys}
    expected = adapted_modules(model)
    unknown = sorted(in_file - expected)
    missing = sorted(expected - in_file)
    if unknown:
        problems.append(
            f"{len(unknown)} of its modules name no adapted module of the model, so vLLM "
            f"would silently serve them unadapted: {_listing(unknown)}"
        )
    if missing:
        problems.append(
            f"{len(missing)} adapted modules of the model are missing from it: {_listing(missing)}"
        )
    if problems:
        raise AdapterMismatch(
            f"The LoRA adapter in {adapter_dir} cannot be served as trained: "
            + "; ".join(problems)
            + "."
        )


def _listing(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def mismatch_message(report: ProbeReport, kind: str) -> str:
    """Why the two sides differ, naming the largest difference and the likely cause."""
    head = (
        f"The vLLM server's log-probabilities for {report.model_name!r} differ from the "
        f"trainer's on the probe: "
    )
    if report.max_diff > report.atol:
        detail = (
            f"max |difference| {report.max_diff:.3g} over {len(report.trainer_logprobs)} "
            f"teacher-forced tokens (tolerance {report.atol:g}; trainer "
            f"{_few(report.trainer_logprobs)}, server {_few(report.server_logprobs)}). "
        )
        if kind == "lora":
            cause = (
                "Likely cause: the adapter vLLM applied is not the trainer's — adapter keys "
                "whose module names match no vLLM module are skipped silently (check the saved "
                "keys and target_modules), the server was started without --enable-lora, or "
                "the check compared against a different model."
            )
        else:
            cause = (
                "Likely cause: the server does not hold the trainer's weights — reload_weights "
                "skipped tensors whose names it did not recognise (vLLM only logs 'weights were "
                "not loaded'), a different checkpoint was loaded, the dtypes differ (raise "
                "atol for bfloat16), or the check compared against a different model."
            )
    else:
        detail = (
            f"the teacher-forced tokens agree (max |difference| {report.max_diff:.3g}) but the "
            f"greedy tokens after the cached prompt differ by up to "
            f"{report.max_generated_diff:.3g} (tolerance {report.atol:g}). "
        )
        cause = (
            "Likely cause: a stale prefix cache — KV blocks of the probe prompt computed with "
            "the old weights are still reused (reset_prefix_cache was not called, or failed "
            "while requests held blocks); or the server returns processed rather than raw "
            "log-probabilities (--logprobs-mode)."
        )
    return head + detail + cause


def _few(values: list[float], count: int = 3) -> str:
    return (
        "["
        + ", ".join(f"{v:.4f}" for v in values[:count])
        + (", …]" if len(values) > count else "]")
    )


def write_tied_output_embedding(model: Any, out: Path) -> None:
    """Store a tied LM head's weight under its own name in the saved model.

    ``save_pretrained`` writes a tied output embedding once (under the input embedding's name),
    and vLLM's in-place ``reload_weights`` then finds nothing for the LM head, "restores" the
    head's old tensor and so unties it: the server samples with the new embeddings but the old
    head (the probe sees this). With the head's tensor present, both are reloaded. The directory
    still loads with ``from_pretrained``, which ties the two again.
    """
    from safetensors.torch import load_file, save_file

    from .logprobs import causal_lm

    lm = causal_lm(model)
    head, embed = lm.get_output_embeddings(), lm.get_input_embeddings()
    if head is None or embed is None or head.weight is not embed.weight:
        return
    names = {id(module): name for name, module in lm.named_modules()}
    head_key, embed_key = f"{names[id(head)]}.weight", f"{names[id(embed)]}.weight"
    tensor = head.weight.detach().cpu().contiguous().clone()
    index_path = out / "model.safetensors.index.json"
    if index_path.is_file():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if head_key in index["weight_map"]:
            return
        shard = "model-tied-output-embedding.safetensors"
        save_file({head_key: tensor}, str(out / shard), metadata={"format": "pt"})
        index["weight_map"][head_key] = shard
        index_path.write_text(json.dumps(index, indent=2), encoding="utf-8")
        return
    single = out / "model.safetensors"
    tensors = load_file(str(single))
    if head_key in tensors or embed_key not in tensors:
        return
    tensors[head_key] = tensor.to(tensors[embed_key].dtype)
    save_file(tensors, str(single), metadata={"format": "pt"})
