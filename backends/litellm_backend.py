"""A backend over litellm: one config reaches Anthropic, OpenAI, Bedrock, Vertex, Together, a
local vLLM (``hosted_vllm/`` or ``openai/`` with ``api_base``) and the other providers litellm knows.

litellm is heavy to import (seconds) and, unless told otherwise, fetches its model price list from
the internet at import. It is therefore imported only when the first call is made, with
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so its bundled price list is used: importing
``agentkit.backends`` or building a :class:`LiteLLMConfig` never loads it.

Retries are done here with :mod:`agentkit.backends.retry` (litellm's and the provider clients' own
retries are turned off), so rate limits, 5xx answers and dropped connections get the same backoff
and the same messages as with the OpenAI backend. A prompt that does not fit the model becomes
:class:`~agentkit.backend.ContextExceeded`, which the agent loop records as an exit.

Cost comes from litellm's price list when it knows the model; otherwise it is 0 and
:meth:`LiteLLMBackend.describe` says so (or give prices per million tokens in the config).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentkit.backend import BackendError, ContextExceeded
from agentkit.backends.openai_format import message_to_openai, parse_chat_response, tool_to_openai
from agentkit.backends.pricing import LITELLM_OLD_NAMES, renamed_prices, token_cost
from agentkit.backends.retry import (
    RetryPolicy,
    attempts_phrase,
    retry_after_from_error,
    with_retries,
)
from agentkit.types import Completion, Message, SamplingParams, ToolSpec, Usage

_CONTEXT_MARKERS = (
    "context length",
    "context window",
    "context_length_exceeded",
    "maximum model length",
    "prompt is too long",
)
"""Lower-case phrases by which providers say a prompt is too long, for errors litellm does not
map to its own ContextWindowExceededError."""

_SUPPORTED = frozenset({"temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "n"})


class LiteLLMConfig(BaseModel):
    """A litellm model string (``anthropic/claude-...``, ``openai/gpt-...``, ``hosted_vllm/NAME``)
    and how to reach it. ``api_key_env`` names the variable holding the key (never the key
    itself); without it litellm reads the provider's usual variable."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["litellm"] = "litellm"
    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    """Retries after the first attempt for rate limits, 5xx answers and connection errors."""
    retry_initial_delay_s: float = Field(default=1.0, ge=0)
    retry_max_delay_s: float = Field(default=30.0, ge=0)
    input_price_per_million_tokens: float | None = Field(default=None, ge=0)
    """Dollars per million prompt tokens. Setting either price replaces litellm's price list
    (an unset one counts as 0); with neither, litellm's prices are used."""
    output_price_per_million_tokens: float | None = Field(default=None, ge=0)
    """Dollars per million completion tokens."""

    @model_validator(mode="before")
    @classmethod
    def _old_price_names(cls, data: Any) -> Any:
        return renamed_prices(data, LITELLM_OLD_NAMES, "litellm")

    @property
    def prices_configured(self) -> bool:
        return (
            self.input_price_per_million_tokens is not None
            or self.output_price_per_million_tokens is not None
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_retries + 1,
            initial_delay_s=self.retry_initial_delay_s,
            max_delay_s=self.retry_max_delay_s,
        )


class LiteLLMBackend:
    """:class:`agentkit.backend.Backend` over ``litellm.acompletion``; keeps a running cost."""

    def __init__(
        self,
        config: LiteLLMConfig,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``sleep`` waits between retries; tests pass one that records the waits instead."""
        self.config = config
        self.total_cost = 0.0
        self.calls = 0
        self._sleep = sleep
        self._cost_note: str | None = None
        self._has_prices: bool | None = None

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        request = self.build_request(messages, tools, params)
        litellm = _import_litellm()

        async def call() -> Any:
            return await litellm.acompletion(**request)

        try:
            response = await with_retries(
                call,
                policy=self.config.retry_policy(),
                is_retryable=_is_retryable,
                describe=self._describe_failure,
                retry_after=retry_after_from_error,
                sleep=self._sleep,
            )
        except litellm.ContextWindowExceededError as exc:
            raise ContextExceeded(_message(exc)) from exc
        except litellm.UnsupportedParamsError as exc:
            raise BackendError(
                f"{self.config.model} does not accept a sampling parameter that was set: "
                f"{_message(exc)}"
            ) from exc
        except BackendError:
            raise
        except Exception as exc:  # litellm raises many types; each becomes a clear BackendError
            text = _message(exc)
            if any(marker in text.lower() for marker in _CONTEXT_MARKERS):
                raise ContextExceeded(text) from exc
            raise BackendError(
                f"litellm could not complete with {self.config.model}: {type(exc).__name__}: {text}"
            ) from exc
        completion = self.parse_response(response)
        self.calls += 1
        self.total_cost += completion.cost
        return completion

    # -- request ----------------------------------------------------------------------------------

    def build_request(
        self, messages: list[Message], tools: list[ToolSpec], params: SamplingParams | None
    ) -> dict[str, Any]:
        """The keyword arguments of ``litellm.acompletion`` (no I/O: testable)."""
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": [message_to_litellm(m) for m in messages],
            "timeout": self.config.timeout_s,
            "num_retries": 0,  # retried here, under one policy
            "max_retries": 0,
        }
        if tools:
            request["tools"] = [tool_to_openai(t) for t in tools]
        if self.config.api_base:
            request["api_base"] = self.config.api_base
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise BackendError(
                    f"The environment variable {self.config.api_key_env} (api_key_env) is not "
                    f"set; it must hold the API key for {self.config.model}."
                )
            request["api_key"] = key
        elif (
            self.config.api_base
            and self.config.model.startswith("openai/")
            and not os.environ.get("OPENAI_API_KEY")
        ):
            # A local OpenAI-compatible server needs no key, but the client refuses to start
            # without one; a server that does need one answers 401, which is reported clearly.
            request["api_key"] = "EMPTY"
        if params is not None:
            request.update(_sampling(params))
        return request

    # -- response ---------------------------------------------------------------------------------

    def parse_response(self, response: Any) -> Completion:
        """A litellm ``ModelResponse`` as a :class:`Completion`, with its cost."""
        choice, reply = parse_chat_response(response, self.config.model)
        completion = reply.model_copy(
            update={"cost": self.cost(reply.usage), "model": reply.model or self.config.model}
        )
        _attach_token_ids(completion, response, choice)
        return completion

    def cost(self, usage: Usage) -> float:
        """Dollars for one call: the configured prices, else litellm's, else 0 (noted once)."""
        config = self.config
        if config.prices_configured:
            return token_cost(
                usage, config.input_price_per_million_tokens, config.output_price_per_million_tokens
            )
        litellm = _import_litellm()
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=self.config.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        except Exception as exc:  # litellm signals an unknown model with a bare Exception
            self._cost_note = (
                f"litellm has no price for {self.config.model!r}, so costs are recorded as 0 "
                "(set input_price_per_million_tokens / output_price_per_million_tokens): "
                f"{_message(exc)[:200]}"
            )
            return 0.0
        return float(prompt_cost) + float(completion_cost)

    @property
    def has_prices(self) -> bool:
        """Whether a call can cost more than 0: prices in the config, or litellm has a price
        for the model (asking imports litellm, as the first call would)."""
        if self._has_prices is None:
            if self.config.prices_configured:
                self._has_prices = bool(
                    self.config.input_price_per_million_tokens
                    or self.config.output_price_per_million_tokens
                )
            else:
                try:
                    prompt_cost, completion_cost = _import_litellm().cost_per_token(
                        model=self.config.model, prompt_tokens=1000, completion_tokens=1000
                    )
                    self._has_prices = float(prompt_cost) + float(completion_cost) > 0
                except Exception:  # noqa: BLE001 - litellm's way of saying it has no price
                    self._has_prices = False
        return self._has_prices

    # -- errors -----------------------------------------------------------------------------------

    def _describe_failure(self, exc: BaseException, attempts: int, seconds: float) -> str:
        tries = attempts_phrase(attempts, seconds)
        where = self.config.model + (f" at {self.config.api_base}" if self.config.api_base else "")
        status = getattr(exc, "status_code", None)
        name = type(exc).__name__
        if name == "RateLimitError" or status == 429:
            return (
                f"{where} kept refusing with HTTP 429 (rate limited) {tries}: {_message(exc)}. "
                "Lower the number of parallel workers or check the account's limits."
            )
        if name in {"APIConnectionError", "Timeout"}:
            return (
                f"{where} could not be reached {tries} ({name}: {_message(exc)}): is the "
                "server up and the address right? For slow models raise timeout_s."
            )
        return (
            f"{where} kept failing with {name}"
            + (f" (HTTP {status})" if status else "")
            + f" {tries}: {_message(exc)}. Check the provider's status or the server's log."
        )

    def describe(self) -> dict[str, Any]:
        """The config (no key, only the variable's name), the calls so far and their cost."""
        info: dict[str, Any] = self.config.model_dump(mode="json")
        info["total_cost"] = self.total_cost
        if self._cost_note:
            info["cost_note"] = self._cost_note
        return info


CACHE_CONTROL: dict[str, str] = {"type": "ephemeral"}
"""The prompt-cache mark Anthropic-style providers take, on a message's content block."""


def message_to_litellm(message: Message) -> dict[str, Any]:
    """One :class:`Message` for litellm: the OpenAI wire form, and for a message marked for
    prompt caching (:attr:`Message.cache_control`, set by the ``cache_markers`` history
    processor) its text as one content block carrying ``cache_control: {"type": "ephemeral"}``,
    the form litellm passes to Anthropic, Bedrock and Vertex (and removes for providers that
    cache on their own). A marked message without text carries the mark on the message."""
    out = message_to_openai(message)
    if message.cache_control:
        if message.content:
            out["content"] = [
                {"type": "text", "text": message.content, "cache_control": dict(CACHE_CONTROL)}
            ]
        else:
            out["cache_control"] = dict(CACHE_CONTROL)
    return out


def _import_litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _sampling(params: SamplingParams) -> dict[str, Any]:
    if params.n != 1:
        raise BackendError(
            f"n={params.n} is not supported: the agent loop takes one reply per call. "
            "Run several trajectories to sample several answers."
        )
    for name in type(params).model_fields:
        if name not in _SUPPORTED and getattr(params, name) is not None:
            raise BackendError(f"The litellm backend does not support sampling param {name!r}.")
    return {
        name: getattr(params, name)
        for name in ("temperature", "top_p", "top_k", "max_tokens", "stop", "seed")
        if getattr(params, name) is not None
    }


def _is_retryable(exc: BaseException) -> bool:
    import litellm

    if isinstance(exc, litellm.ContextWindowExceededError):
        return False
    if "missing credentials" in _message(exc).lower():  # reported by litellm as a "500"
        return False
    retryable = (
        litellm.RateLimitError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.APIConnectionError,
        litellm.Timeout,
    )
    if isinstance(exc, retryable):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status in (408, 409, 429))


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _attach_token_ids(completion: Completion, response: Any, choice: Any) -> None:
    """Keep vLLM's token ids and logprobs when the provider passed them through."""
    fields = getattr(choice, "provider_specific_fields", None) or {}
    token_ids = fields.get("token_ids") if isinstance(fields, dict) else None
    if token_ids is None:
        return
    completion.completion_token_ids = [int(t) for t in token_ids]
    prompt_ids = getattr(response, "prompt_token_ids", None)
    if prompt_ids is None:
        hidden = getattr(response, "_hidden_params", None) or {}
        prompt_ids = hidden.get("prompt_token_ids") if isinstance(hidden, dict) else None
    if prompt_ids is not None:
        completion.prompt_token_ids = [int(t) for t in prompt_ids]
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if content:
        completion.logprobs = [float(entry.logprob) for entry in content]
