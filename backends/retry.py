"""Retrying a remote model call: exponential backoff with full jitter.

Model servers fail in ways that pass: a restart, a full queue (HTTP 503), a rate limit (HTTP 429),
a dropped connection. One such blip must not end an agent run that has already spent many steps,
so a backend retries those errors a bounded number of times. "Full jitter" (a random wait between
zero and the exponential cap) spreads out many workers that failed at the same moment, instead
of having them all come back in lock-step and overload the server again.

Everything that waits or reads time is injectable (``sleep``, ``clock``, ``random``), so the
policy is tested without waiting. When the attempts run out, the last error is re-raised as a
:class:`BackendError` whose message the caller writes: what failed, after how many attempts and
how long, and what to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.backend import BackendError

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """How often and how patiently to retry a call that failed in a way that may pass.

    The wait before retry ``k`` (1-based) is drawn uniformly from
    ``[0, min(max_delay_s, initial_delay_s * multiplier ** (k - 1))]`` when ``jitter`` is on, and
    is that cap itself when it is off. A server's ``Retry-After`` replaces the drawn wait, capped
    at ``max_delay_s`` so that a misbehaving server cannot stall a run for an hour.
    """

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    """Attempts in all, the first one included; 1 means no retry."""
    initial_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=20.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: bool = True

    def delay(self, retry: int, rand: float, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry`` (1 for the first retry); ``rand`` is in [0, 1)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay_s))
        cap = min(self.max_delay_s, self.initial_delay_s * self.multiplier ** (retry - 1))
        return cap * rand if self.jitter else cap


Describe = Callable[[BaseException, int, float], str]
"""Builds the final error message from the last error, the attempts made and the seconds spent."""


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    is_retryable: Callable[[BaseException], bool],
    describe: Describe,
    retry_after: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    random: Callable[[], float] = _random.random,
) -> T:
    """Await ``call()`` until it succeeds, retrying errors that ``is_retryable`` accepts.

    An error that is not retryable propagates unchanged on the spot (the caller maps it: a
    context overflow, a bad request). A retryable error on the last attempt becomes a
    :class:`BackendError` with ``describe(error, attempts, seconds)`` as its message, chained to
    the error. ``retry_after`` reads a server's requested wait from an error, when it has one.
    """
    started = clock()
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            if attempt >= policy.max_attempts:
                raise BackendError(describe(exc, attempt, clock() - started)) from exc
            requested = retry_after(exc) if retry_after is not None else None
            await sleep(policy.delay(attempt, random(), requested))
            attempt += 1


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a server asks for: ``retry-after-ms`` (OpenAI's), else ``Retry-After`` as seconds
    or as an HTTP date. ``None`` when there is none or it cannot be read. ``headers`` must look
    names up case-insensitively, as HTTP clients' header maps do."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):  # unreadable: fall back to Retry-After
            return max(0.0, float(millis) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_from_error(exc: BaseException) -> float | None:
    """The wait a server asked for, read from the HTTP response an SDK error carries (the
    ``openai`` client's and litellm's errors both keep it as ``response``)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return retry_after_seconds(headers) if headers is not None else None


def attempts_phrase(attempts: int, seconds: float) -> str:
    """``after 3 attempts over 12 s``: how long a give-up message says the backend tried."""
    return f"after {attempts} attempt{'s' if attempts != 1 else ''} over {seconds:.0f} s"
