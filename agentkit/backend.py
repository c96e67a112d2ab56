"""The contract between the agent loop and a language model.

Implementations live in ``agentkit.backends``; the core only depends on this protocol.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol, runtime_checkable

from agentkit.types import Completion, Message, SamplingParams, ToolSpec


class BackendError(Exception):
    """The backend could not produce a completion (after its own retries)."""


class ContextExceeded(BackendError):
    """The prompt no longer fits the model's context; the loop records it as an exit."""


@runtime_checkable
class Backend(Protocol):
    """``complete`` turns a conversation into one :class:`Completion`.

    ``tools`` is given for native function calling; backends driving a text call format may ignore
    it. ``describe`` returns a JSON-able summary recorded in every trajectory (never secrets).
    """

    async def complete(
        self,
        messages: list[Message],
        tools: list[ToolSpec],
        params: SamplingParams | None = None,
    ) -> Completion: ...

    def describe(self) -> dict[str, Any]: ...


class CostLimitWarning(UserWarning):
    """A run has a cost limit that its backend can never reach: every call costs 0."""


COST_LIMIT_NEVER_TRIGGERS = (
    "The cost limit (max_cost: {limit:g} dollars) can never trigger: the {kind} backend prices "
    "every call at 0 ({why}). {fix}"
)


def has_prices(backend: object) -> bool | None:
    """Whether ``backend``'s calls can cost more than 0: its ``has_prices`` attribute, which the
    bundled model backends have (a local model has none; an API backend has them when prices are
    configured or known). ``None`` when the backend does not say (a user's own, scripted)."""
    value = getattr(backend, "has_prices", None)
    return value if isinstance(value, bool) else None


_COST_WARNINGS_GIVEN: set[str] = set()
"""The cost-limit warnings this process has given: each is given once, not once per task."""


def warn_if_cost_limit_never_triggers(max_cost: float | None, backend: object) -> bool:
    """Warn (:class:`CostLimitWarning`) when ``max_cost`` is set but ``backend`` prices every call
    at 0, so that the limit silently never stops a run. Each distinct warning is given once per
    process, so a run of many tasks warns once. Returns whether it warned."""
    if max_cost is None or max_cost <= 0 or has_prices(backend) is not False:
        return False
    describe = getattr(backend, "describe", None)
    kind = (describe() if callable(describe) else {}).get("type") or type(backend).__name__
    if kind in ("vllm", "hf"):
        why, fix = "a local model", "Set max_cost: null in the scaffold to silence this."
    else:
        why = "no price is configured or known for its model"
        fix = (
            "Give the backend config input_price_per_million_tokens and "
            "output_price_per_million_tokens, or set max_cost: null in the scaffold."
        )
    message = COST_LIMIT_NEVER_TRIGGERS.format(limit=max_cost, kind=kind, why=why, fix=fix)
    if message in _COST_WARNINGS_GIVEN:
        return False
    _COST_WARNINGS_GIVEN.add(message)
    warnings.warn(message, CostLimitWarning, stacklevel=2)
    return True
