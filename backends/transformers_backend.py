"""A backend that runs a Hugging Face causal LM in this process.

For tests, demos and small-scale training runs without a server: the prompt is the model's own
chat template applied to the conversation (tools rendered into it), and the reply records exactly
the token ids the model saw and produced, with one logprob per produced token, so trajectories
collected here train the same way as trajectories collected from vLLM.

Logprobs are the log-softmax of the model's *raw* logits (before temperature, top-k or top-p), i.e.
the log-probability the unmodified policy assigns to each sampled token. That is what a trainer
recomputes and compares against; the processed distribution is only used to draw the sample.

torch and transformers are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.backend import BackendError, ContextExceeded
from agentkit.backends.hf_chat import parse_tool_call_blocks, template_messages, tool_dicts
from agentkit.types import Completion, FinishReason, Message, SamplingParams, ToolSpec, Usage

if TYPE_CHECKING:
    import torch

SUPPORTED_PARAMS = frozenset({"temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "n"})
"""Every :class:`SamplingParams` field this backend honours (``n`` only as 1)."""


class TransformersConfig(BaseModel):
    """Where the model is and how to run it. ``path`` is any ``from_pretrained`` directory."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hf"] = "hf"
    path: str
    device: str = "auto"
    """``auto`` picks ``cuda`` when available, else ``cpu``; any torch device string works."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """``auto`` keeps the checkpoint's own dtype."""
    max_new_tokens: int = Field(default=512, gt=0)
    """Reply length when the call's params give no ``max_tokens``."""
    max_context_tokens: int | None = Field(default=None, gt=0)
    """Prompt plus reply limit; defaults to the model's ``max_position_embeddings``."""


class TransformersBackend:
    """Runs one local model; calls are served one at a time, off the event loop."""

    has_prices = False
    """A local model: every call costs 0 (so a scaffold's cost limit never triggers)."""

    def __init__(self, config: TransformersConfig) -> None:
        self.config = config
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: str | None = None
        self._lock = asyncio.Lock()

    # -- loading ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model before the first call (in a thread), so that a run whose model cannot
        load stops once, with the reason, instead of failing every task."""
        await asyncio.to_thread(self.load)

    def load(self) -> None:
        """Load tokenizer and model now (otherwise the first call does)."""
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype: Any = "auto" if self.config.dtype == "auto" else getattr(torch, self.config.dtype)
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(self.config.path)
            model: Any = AutoModelForCausalLM.from_pretrained(self.config.path, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise BackendError(f"Cannot load a model from {self.config.path!r}: {exc}") from exc
        if tokenizer.chat_template is None:
            raise BackendError(
                f"The tokenizer in {self.config.path!r} has no chat template; this backend "
                "renders conversations with the model's own template."
            )
        model.to(device)
        model.eval()
        self._model, self._tokenizer, self._device = model, tokenizer, device

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def max_context_tokens(self) -> int:
        if self.config.max_context_tokens is not None:
            return self.config.max_context_tokens
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = self.config.model_dump(mode="json")
        if self._device is not None:
            info["resolved_device"] = self._device
        info["logprobs"] = "raw logits"
        return info

    # -- completion -------------------------------------------------------------------------------

    def prompt_ids(self, messages: list[Message], tools: list[ToolSpec]) -> list[int]:
        """The exact token ids the model is given for this conversation (generation prompt on)."""
        encoded = self.tokenizer.apply_chat_template(
            template_messages(messages),
            tools=tool_dicts(tools) or None,
            add_generation_prompt=True,
            tokenize=True,
        )
        ids = encoded if isinstance(encoded, list) else encoded["input_ids"]
        return [int(t) for t in ids]

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        params = params or SamplingParams()
        _check_params(params)
        async with self._lock:
            return await asyncio.to_thread(self._complete, messages, tools, params)

    def _complete(
        self, messages: list[Message], tools: list[ToolSpec], params: SamplingParams
    ) -> Completion:
        prompt = self.prompt_ids(messages, tools)
        limit = self.max_context_tokens
        if len(prompt) >= limit:
            raise ContextExceeded(
                f"The prompt has {len(prompt)} tokens; the context holds {limit} "
                "(prompt plus at least one reply token)."
            )
        wanted = params.max_tokens if params.max_tokens is not None else self.config.max_new_tokens
        budget = min(wanted, limit - len(prompt))
        ids, logprobs, finish, text = self._generate(prompt, budget, params)
        tool_calls = []
        if tools:
            text, tool_calls = parse_tool_call_blocks(text)
            if tool_calls and finish == "stop":
                finish = "tool_calls"
        return Completion(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(ids)),
            cost=0.0,
            model=self.config.path,
            prompt_token_ids=prompt,
            completion_token_ids=ids,
            logprobs=logprobs,
        )

    def _generate(
        self, prompt: list[int], budget: int, params: SamplingParams
    ) -> tuple[list[int], list[float], FinishReason, str]:
        """Token-by-token decoding with a KV cache; returns ids, logprobs, finish reason, text.

        The end-of-turn token, when produced, is part of the ids (the model did sample it) but not
        of the text. A stop string ends the reply at the token that completed it; the text is cut
        where the stop string begins.
        """
        import torch

        model, tokenizer = self.model, self.tokenizer
        eos = _eos_ids(model, tokenizer)
        greedy = not params.temperature
        generator: torch.Generator | None = None
        if not greedy and params.seed is not None:
            generator = torch.Generator(device=self._device or "cpu").manual_seed(params.seed)
        stops = [s for s in (params.stop or []) if s]
        ids: list[int] = []
        logprobs: list[float] = []
        cache = _new_cache(model)
        step_input = torch.tensor([prompt], device=self._device)
        with torch.inference_mode():
            while len(ids) < budget:
                out = model(input_ids=step_input, use_cache=True, **cache)
                logits = out.logits[0, -1].float()
                token = _pick(logits, params, greedy, generator)
                ids.append(token)
                logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
                if token in eos:
                    return (
                        ids,
                        logprobs,
                        "stop",
                        tokenizer.decode(ids[:-1], skip_special_tokens=True),
                    )
                if stops:
                    text = tokenizer.decode(ids, skip_special_tokens=True)
                    cut = _first_stop(text, stops)
                    if cut is not None:
                        return ids, logprobs, "stop", text[:cut]
                step_input = torch.tensor([[token]], device=self._device)
        return ids, logprobs, "length", tokenizer.decode(ids, skip_special_tokens=True)


def _check_params(params: SamplingParams) -> None:
    """Refuse what cannot be honoured instead of silently ignoring it."""
    for name in params.model_fields_set | set(params.model_extra or {}):
        if name not in SUPPORTED_PARAMS and getattr(params, name, None) is not None:
            raise BackendError(
                f"The transformers backend does not support sampling param {name!r}."
            )
    if params.n != 1:
        raise BackendError(
            f"The transformers backend returns one completion per call; got n={params.n}. "
            "Call it n times instead."
        )
    if params.temperature is not None and params.temperature < 0:
        raise BackendError(f"temperature must be >= 0, got {params.temperature}.")
    if params.top_p is not None and not 0 < params.top_p <= 1:
        raise BackendError(f"top_p must be in (0, 1], got {params.top_p}.")
    if params.top_k is not None and params.top_k < 0:
        raise BackendError(f"top_k must be >= 0 (0 means no limit), got {params.top_k}.")
    if params.max_tokens is not None and params.max_tokens <= 0:
        raise BackendError(f"max_tokens must be positive, got {params.max_tokens}.")


def _new_cache(model: Any) -> dict[str, Any]:
    """A fresh KV cache under the keyword this transformers version takes (``cache`` in newer
    releases, ``past_key_values`` before); the cache fills in place as decoding proceeds."""
    import inspect

    from transformers import DynamicCache

    parameters = inspect.signature(model.forward).parameters
    keyword = "cache" if "cache" in parameters else "past_key_values"
    return {keyword: DynamicCache(config=model.config)}


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end a turn: the tokenizer's eos and the generation config's."""
    found: set[int] = set()
    for value in (
        tokenizer.eos_token_id,
        getattr(model.generation_config, "eos_token_id", None),
        model.config.eos_token_id,
    ):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, list):
            found.update(int(v) for v in value)
    return found


def _pick(
    logits: torch.Tensor,
    params: SamplingParams,
    greedy: bool,
    generator: torch.Generator | None,
) -> int:
    """Argmax, or a sample from the temperature / top-k / top-p processed distribution."""
    import torch

    if greedy:
        return int(torch.argmax(logits))
    scores = logits / float(params.temperature or 1.0)
    if params.top_k:
        kth = torch.topk(scores, min(params.top_k, scores.numel())).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p is not None and params.top_p < 1:
        ordered, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= params.top_p  # keep the first over p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None
