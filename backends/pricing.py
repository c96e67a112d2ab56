"""Token prices: one naming, one unit, for every backend config that has prices.

A config that prices tokens has two fields, ``input_price_per_million_tokens`` and
``output_price_per_million_tokens``: dollars per million prompt (completion) tokens, the unit
providers' price lists use. ``None`` means "no price given": the ``openai`` backend then records
a cost of 0, the ``litellm`` backend uses litellm's own price list. Local backends (``vllm``,
``hf``) have no price fields; their calls cost 0.

The names used before (``cost_per_1k_input_tokens`` in ``openai``, dollars per thousand;
``cost_per_input_token`` in ``litellm``, dollars per token) still load, converted to the new unit,
with a :class:`FutureWarning` naming the replacement, so existing YAML keeps working.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from agentkit.types import Usage

INPUT_PRICE = "input_price_per_million_tokens"
OUTPUT_PRICE = "output_price_per_million_tokens"

OPENAI_OLD_NAMES: Mapping[str, tuple[str, float]] = {
    "cost_per_1k_input_tokens": (INPUT_PRICE, 1_000.0),
    "cost_per_1k_output_tokens": (OUTPUT_PRICE, 1_000.0),
}
"""The ``openai`` config's former price fields: the new name and the factor to its unit."""

LITELLM_OLD_NAMES: Mapping[str, tuple[str, float]] = {
    "cost_per_input_token": (INPUT_PRICE, 1_000_000.0),
    "cost_per_output_token": (OUTPUT_PRICE, 1_000_000.0),
}
"""The ``litellm`` config's former price fields: the new name and the factor to its unit."""


def renamed_prices(data: Any, old_names: Mapping[str, tuple[str, float]], kind: str) -> Any:
    """``data`` (a config's raw input) with deprecated price fields moved to the new names and
    converted to dollars per million tokens; warns once per old name used. Giving an old name
    and its new name together is an error (which one was meant?)."""
    if not isinstance(data, Mapping) or not any(name in data for name in old_names):
        return data
    out = dict(data)
    for old, (new, factor) in old_names.items():
        if old not in out:
            continue
        value = out.pop(old)
        if new in out:
            raise ValueError(f"give {new} or its deprecated name {old}, not both")
        warnings.warn(
            f"The {kind} backend's '{old}' is deprecated: use '{new}' (dollars per million "
            f"tokens; {old}: {value!r} is {new}: {_scaled(value, factor)!r}).",
            FutureWarning,
            stacklevel=2,
        )
        out[new] = _scaled(value, factor)
    return out


def _scaled(value: Any, factor: float) -> Any:
    """A number (or a number written as text: YAML reads ``1e-05`` as a string) in the new
    unit, rounded to drop binary noise (0.0025 * 1000 is 2.5, not 2.5000000000000004); anything
    else is left for validation to refuse."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * factor, 9)
    return value


def token_cost(usage: Usage, input_price: float | None, output_price: float | None) -> float:
    """Dollars for one call's tokens at the given prices per million tokens (``None``: 0)."""
    return (
        usage.prompt_tokens * (input_price or 0.0) + usage.completion_tokens * (output_price or 0.0)
    ) / 1_000_000
