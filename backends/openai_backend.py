"""A backend for any server that speaks the OpenAI chat-completions API: OpenAI itself, vLLM,
SGLang, llama.cpp's server, a litellm proxy.

With ``request_token_ids`` the backend asks a vLLM server for the exact token ids of the prompt
and of the reply and for the reply's per-token logprobs. Training reads those as they are (it must
never re-tokenize what the model generated), so when they are asked for and the server does not
send them, the call fails loudly instead of returning a completion without them. With
``request_token_ids: auto`` (the ``openai:MODEL@URL`` short form) the backend asks the server
once whether it is vLLM and requests them only then.

Retries (connection errors, timeouts, HTTP 408/409/429/5xx) are done here, with
:mod:`agentkit.backends.retry`; the ``openai`` client's own retries are turned off so that one
policy, one set of messages and one place decides.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentkit.backend import BackendError, ContextExceeded
from agentkit.backends.openai_format import message_to_openai, parse_chat_response, tool_to_openai
from agentkit.backends.pricing import OPENAI_OLD_NAMES, renamed_prices, token_cost
from agentkit.backends.retry import (
    RetryPolicy,
    attempts_phrase,
    retry_after_from_error,
    with_retries,
)
from agentkit.types import (
    Completion,
    Message,
    SamplingParams,
    ToolSpec,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_BASE_URL = "https://api.openai.com/v1"

CONTEXT_ERROR_MARKERS = (
    "maximum context length",
    "context_length_exceeded",
    "is longer than the maximum model length",
    "max_model_len",
)
"""Substrings (lower case) by which OpenAI and vLLM say a prompt does not fit the model."""

_RETRYABLE_STATUS = frozenset({408, 409, 429})


class OpenAIConfig(BaseModel):
    """Where the server is, which model to ask, and how patiently.

    ``api_key_env`` names the environment variable holding the key (the key itself never sits in
    a config, so configs and trajectories can be shared). A missing variable is fine for local
    servers, which ignore the key; the client is then given the placeholder ``EMPTY``.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["openai"] = "openai"
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(default=600.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    request_token_ids: bool | Literal["auto"] = False
    """vLLM only: ask for prompt and completion token ids and per-token logprobs. ``auto`` (what
    the ``openai:MODEL@URL`` short form sets) asks the server's ``/models`` once and requests
    them when the server is vLLM; a server that then sends none gets calls without them."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Extra request fields for servers with their own (vLLM: ``chat_template_kwargs``, ...)."""
    input_price_per_million_tokens: float | None = Field(default=None, ge=0)
    """Dollars per million prompt tokens (``None``: calls are recorded as costing 0)."""
    output_price_per_million_tokens: float | None = Field(default=None, ge=0)
    """Dollars per million completion tokens."""

    @model_validator(mode="before")
    @classmethod
    def _old_price_names(cls, data: Any) -> Any:
        return renamed_prices(data, OPENAI_OLD_NAMES, "openai")


class OpenAIBackend:
    """:class:`agentkit.backend.Backend` over ``openai.AsyncOpenAI``.

    One client per backend, made on first use (so the ``openai`` import is paid only by those who
    use it, and the client belongs to the event loop that uses it) and closed by :meth:`aclose`.
    """

    def __init__(
        self,
        config: OpenAIConfig,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``sleep`` waits between retries; tests pass one that records the waits instead."""
        self.config = config
        self._client: AsyncOpenAI | None = None
        self._sleep = sleep
        self._vllm: bool | None = None
        """For ``request_token_ids: auto``: whether the server is vLLM (``None``: not asked yet)."""

    @property
    def base_url(self) -> str:
        return (self.config.base_url or DEFAULT_BASE_URL).rstrip("/")

    @property
    def has_prices(self) -> bool:
        """Whether a call can cost more than 0 (a price is configured); a cost limit needs it."""
        return bool(
            self.config.input_price_per_million_tokens
            or self.config.output_price_per_million_tokens
        )

    @property
    def token_ids(self) -> bool:
        """Whether calls ask for token ids and logprobs (``auto``: once the server said it is
        vLLM; see :meth:`detect_token_ids`)."""
        requested = self.config.request_token_ids
        return bool(self._vllm) if requested == "auto" else requested

    async def detect_token_ids(self) -> bool:
        """For ``request_token_ids: auto``: ask ``GET /models`` whether the server is vLLM (it
        lists its models as ``owned_by: vllm``) and remember the answer. A server that does not
        answer is asked again before the next call."""
        if self.config.request_token_ids == "auto" and self._vllm is None:
            try:
                page = await self._get_client().models.list(timeout=10.0)
            except Exception:  # noqa: BLE001 - the completion that follows reports the failure
                return False
            self._vllm = any(getattr(m, "owned_by", None) == "vllm" for m in page.data)
        return self.token_ids

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        if self.config.request_token_ids == "auto" and self._vllm is None:
            await self.detect_token_ids()
        request = self.build_request(messages, tools, params)
        client = self._get_client()
        import openai

        async def call() -> Any:
            return await client.chat.completions.create(**request)

        try:
            response = await with_retries(
                call,
                policy=self.config.retry,
                is_retryable=_is_retryable,
                describe=self._describe_failure,
                retry_after=retry_after_from_error,
                sleep=self._sleep,
            )
        except openai.APIStatusError as exc:
            served = await self._served_models() if exc.status_code == 404 else []
            raise self._status_error(exc, served) from exc
        except openai.OpenAIError as exc:
            raise BackendError(f"The request to {self.base_url} failed: {exc}") from exc
        return self.parse_response(response)

    # -- request --------------------------------------------------------------------------------

    def build_request(
        self, messages: list[Message], tools: list[ToolSpec], params: SamplingParams | None
    ) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for one call (no I/O: testable)."""
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": [message_to_openai(m) for m in messages],
        }
        if tools:
            request["tools"] = [tool_to_openai(t) for t in tools]
        extra_body = dict(self.config.extra_body)
        if params is not None:
            request.update(self._sampling(params, extra_body))
        if self.token_ids:
            request["logprobs"] = True
            extra_body["return_token_ids"] = True
        if extra_body:
            request["extra_body"] = extra_body
        return request

    def _sampling(self, params: SamplingParams, extra_body: dict[str, Any]) -> dict[str, Any]:
        if params.n != 1:
            raise BackendError(
                f"n={params.n} is not supported: the agent loop takes one reply per call. "
                "Run several trajectories to sample several answers."
            )
        fields: dict[str, Any] = {}
        for name in ("temperature", "top_p", "max_tokens", "stop", "seed"):
            value = getattr(params, name)
            if value is not None:
                fields[name] = value
        if params.top_k is not None:
            if not self.token_ids:
                raise BackendError(
                    "top_k is not supported by the OpenAI API; leave it unset, or, for a vLLM "
                    "server (which accepts it), set request_token_ids: true in the backend config."
                )
            extra_body["top_k"] = params.top_k
        return fields

    # -- response -------------------------------------------------------------------------------

    def parse_response(self, response: Any) -> Completion:
        """Turn a ``ChatCompletion`` into a :class:`Completion` (no I/O: testable)."""
        choice, reply = parse_chat_response(response, f"The server at {self.base_url}")
        usage = reply.usage
        cost = token_cost(
            usage,
            self.config.input_price_per_million_tokens,
            self.config.output_price_per_million_tokens,
        )
        completion = reply.model_copy(update={"cost": cost})
        if self.token_ids:
            if self.config.request_token_ids == "auto" and not _has_tokens(response, choice):
                self._vllm = False  # a vLLM too old to send them: go on without asking
                return completion
            self._attach_tokens(completion, response, choice)
        return completion

    def _attach_tokens(self, completion: Completion, response: Any, choice: Any) -> None:
        prompt_ids = getattr(response, "prompt_token_ids", None)
        completion_ids = getattr(choice, "token_ids", None)
        content = choice.logprobs.content if choice.logprobs is not None else None
        if prompt_ids is None or completion_ids is None or content is None:
            missing = [
                name
                for name, value in (
                    ("prompt_token_ids", prompt_ids),
                    ("choices[0].token_ids", completion_ids),
                    ("choices[0].logprobs.content", content),
                )
                if value is None
            ]
            raise BackendError(
                f"Asked the server at {self.base_url} for token ids and logprobs, but its reply "
                f"has no {', '.join(missing)}: the server is not vLLM, or a vLLM too old to "
                "support return_token_ids. Use a recent vLLM, or set request_token_ids: false "
                "(the trajectory then has no token ids for training)."
            )
        completion.prompt_token_ids = list(prompt_ids)
        completion.completion_token_ids = list(completion_ids)
        completion.logprobs = [entry.logprob for entry in content]

    # -- errors ---------------------------------------------------------------------------------

    def _describe_failure(self, exc: BaseException, attempts: int, seconds: float) -> str:
        import openai

        tries = attempts_phrase(attempts, seconds)
        if isinstance(exc, openai.APITimeoutError):
            return (
                f"The server at {self.base_url} did not answer within {self.config.timeout_s:g} s, "
                f"{tries}: is it overloaded or stuck? Check its log, or raise timeout_s."
            )
        if isinstance(exc, openai.APIConnectionError):
            return (
                f"No server answered at {self.base_url} {tries}: is it running, and is the "
                f"address right? ({exc.__cause__ or exc})"
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = _server_message(exc)
            if status == 429:
                return (
                    f"The server at {self.base_url} kept refusing with HTTP 429 (rate limited) "
                    f"{tries}: {detail}. Lower the number of parallel workers or check the "
                    "account's limits."
                )
            return (
                f"The server at {self.base_url} kept failing with HTTP {status} {tries}: "
                f"{detail}. Check the server's log."
            )
        return f"The request to {self.base_url} failed {tries}: {exc}"

    def _status_error(self, exc: Any, served: list[str] | None = None) -> BackendError:
        """A non-retryable HTTP error: a context overflow, or a request the server refuses.
        ``served``: the model names the server lists, for a 404 (usually a wrong name)."""
        detail = _server_message(exc)
        if _is_context_error(exc, detail):
            return ContextExceeded(detail)
        wrong_name = f"check the model name ({self.config.model!r}) and base_url"
        if served:
            wrong_name = (
                f"the server serves {', '.join(repr(name) for name in served)}, "
                f"not {self.config.model!r}"
            )
        hint = {
            401: f"check the API key in ${self.config.api_key_env}",
            403: f"check the API key in ${self.config.api_key_env} and its permissions",
            404: wrong_name,
        }.get(exc.status_code, "check the model name and the request's parameters")
        return BackendError(
            f"The server at {self.base_url} refused the request with HTTP {exc.status_code}: "
            f"{detail} ({hint})."
        )

    async def _served_models(self) -> list[str]:
        """The names ``GET /models`` lists; empty when the server does not answer it."""
        try:
            page = await self._get_client().models.list(timeout=10.0)
            return sorted(model.id for model in page.data)
        except Exception:  # noqa: BLE001 - only a hint for an error already being raised
            return []

    # -- lifecycle ------------------------------------------------------------------------------

    def _get_client(self) -> AsyncOpenAI:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                api_key=os.environ.get(self.config.api_key_env) or "EMPTY",
                base_url=self.base_url,
                timeout=self.config.timeout_s,
                max_retries=0,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client (its connection pool); the backend may be used again after."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def __aenter__(self) -> OpenAIBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def describe(self) -> dict[str, Any]:
        """The config as recorded in trajectories; the key's value is never part of it."""
        return self.config.model_dump(mode="json")


def _has_tokens(response: Any, choice: Any) -> bool:
    return (
        getattr(response, "prompt_token_ids", None) is not None
        and getattr(choice, "token_ids", None) is not None
        and choice.logprobs is not None
    )


def _is_retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return False


def _server_message(exc: Any) -> str:
    """The server's own words: ``{"error": {"message": ...}}`` (OpenAI, new vLLM) or
    ``{"message": ...}`` (older vLLM), else the client's summary."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(exc.message)


def _is_context_error(exc: Any, detail: str) -> bool:
    if exc.status_code not in (400, 413, 422):
        return False
    text = f"{detail} {getattr(exc, 'code', '') or ''}".lower()
    return any(marker in text for marker in CONTEXT_ERROR_MARKERS)
