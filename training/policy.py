"""The policy as rollouts see it: where it is served, and the backend that samples from it.

:class:`PolicyEndpoint` names the server, the served model and the policy (weight) version it
serves now; the RL driver changes ``version`` and ``model`` after each weight sync.
:class:`PolicyBackend` is the OpenAI-compatible backend with ``request_token_ids`` on, which
stamps each completion with the version read when its request is sent, and asks for the model
name of that same moment (a LoRA sync serves each version under a new name).
:func:`check_sampling` refuses sampling settings that truncate the vocabulary (``top_k``,
``top_p < 1``, ``min_p``): the server would sample from a renormalised distribution while the
trainer scores tokens under the full softmax, so importance ratios would be wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.backend import Backend, BackendError
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.errors import UserFacingError
from agentkit.types import Completion, Message, SamplingParams, ToolSpec

__all__ = ["PolicyBackend", "PolicyEndpoint", "TruncatedSamplingError", "check_sampling"]

_TRUNCATING_EXTRA = ("top_k", "top_p", "min_p")


class TruncatedSamplingError(UserFacingError, BackendError):
    """Sampling settings that truncate the vocabulary, refused for RL rollouts."""


class PolicyEndpoint(BaseModel):
    """Where the policy is served and which weights it serves now.

    ``version`` and ``model`` are mutable on purpose: the training driver bumps the version
    after each weight sync (and, with LoRA, sets the adapter's new served name), and
    :class:`PolicyBackend` reads both at every call."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    """The server's OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``."""
    model: str
    """The served model name (what ``GET /v1/models`` lists)."""
    version: int = Field(default=0, ge=0)
    timeout_s: float = Field(default=600.0, gt=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Extra vLLM request fields; truncating ones are refused like in :func:`check_sampling`."""


def check_sampling(
    params: SamplingParams | None, extra_body: Mapping[str, Any] | None = None
) -> None:
    """Raise :class:`TruncatedSamplingError` when ``params`` or vLLM ``extra_body`` fields
    truncate the vocabulary (top-k, top-p below 1, min-p above 0): the rollout logprobs would
    then come from a renormalised distribution that the trainer's full softmax disagrees with.
    Disabled values (``top_k`` of 0 or -1, ``top_p`` of 1, ``min_p`` of 0) are accepted."""
    found: list[str] = []
    fields: dict[str, Any] = dict(extra_body or {})
    if params is not None:
        fields.update({k: getattr(params, k) for k in ("top_k", "top_p") if getattr(params, k)})
    for name in _TRUNCATING_EXTRA:
        value = fields.get(name)
        if value is None:
            continue
        if (name == "top_k" and value not in (0, -1)) or (name == "top_p" and value < 1.0):
            found.append(f"{name}={value}")
        elif name == "min_p" and value > 0.0:
            found.append(f"{name}={value}")
    if found:
        raise TruncatedSamplingError(
            f"Sampling with {', '.join(found)} truncates the vocabulary: the server's logprobs "
            "come from a renormalised distribution while the trainer scores tokens under the full "
            "softmax, so importance ratios and the policy loss would be wrong. Remove them for RL "
            "rollouts, or pass allow_truncated_sampling=True if the trainer applies the same "
            "truncation."
        )


class PolicyBackend:
    """The OpenAI-compatible backend (token ids and logprobs on) in front of ``endpoint``,
    stamping each completion with the endpoint's version as read when the request is sent (the
    older version when the weights change mid-request, which keeps staleness bounds safe)."""

    def __init__(
        self,
        endpoint: PolicyEndpoint,
        *,
        allow_truncated_sampling: bool = False,
        inner: Backend | None = None,
    ) -> None:
        """``inner`` replaces the OpenAI-compatible backend that talks to the server (a
        scripted backend in tests of this class)."""
        if not allow_truncated_sampling:
            check_sampling(None, endpoint.extra_body)
        self.endpoint = endpoint
        self.allow_truncated_sampling = allow_truncated_sampling
        self._backend: Backend = inner or OpenAIBackend(
            OpenAIConfig(
                model=endpoint.model,
                base_url=endpoint.base_url,
                timeout_s=endpoint.timeout_s,
                request_token_ids=True,
                extra_body=dict(endpoint.extra_body),
            )
        )

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion:
        if not self.allow_truncated_sampling:
            check_sampling(params)
        # Read together, before any await: a LoRA sync serves each version under a new name, so
        # the name requested and the version stamped must come from the same moment.
        version, model = self.endpoint.version, self.endpoint.model
        backend = self._backend
        if isinstance(backend, OpenAIBackend) and backend.config.model != model:
            # The request is built from the config before the backend's first await, so a
            # concurrent call that swaps it again cannot change this request's model.
            backend.config = backend.config.model_copy(update={"model": model})
        completion = await backend.complete(messages, tools, params)
        return completion.model_copy(update={"policy_version": version})

    def describe(self) -> dict[str, Any]:
        return {
            "type": "policy",
            "model": self.endpoint.model,
            "base_url": self.endpoint.base_url,
            "request_token_ids": True,
        }

    async def aclose(self) -> None:
        close = getattr(self._backend, "aclose", None)
        if close is not None:
            await close()
