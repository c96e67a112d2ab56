"""Telling a broken environment from a wrong patch, after the fact, from the logs.

SWE-bench 5.x marks instances whose logs show an environment fault (the engine unreachable, out
of memory, no display, no network) as ``infra_failure`` and others as ambiguous (a missing module
or no tests collected can be either). The classification is advisory: it never changes a verdict
or a count, it only names a likely reason, so a broken image is not silently read as a model's
failure. The same categories are used here so run reports compare with SWE-bench's.
"""

from __future__ import annotations

import re
from typing import Literal

Tier = Literal["environment", "ambiguous"]

_PATTERNS: tuple[tuple[str, Tier, str], ...] = (
    ("browser_launch_failed", "environment", r"Failed to launch|Failed to connect to the bus"),
    (
        "display_unavailable",
        "environment",
        r"cannot open display|Missing X server|unable to open X display",
    ),
    ("out_of_memory", "environment", r"Cannot allocate memory|OutOfMemoryError|^Killed$"),
    (
        "container_unavailable",
        "environment",
        r"Error response from daemon|Cannot connect to the Docker daemon",
    ),
    (
        "network_unreachable",
        "environment",
        r"Could not resolve host|Temporary failure in name resolution",
    ),
    ("missing_module", "ambiguous", r"Cannot find module|MODULE_NOT_FOUND|ModuleNotFoundError"),
    ("no_tests_collected", "ambiguous", r"no tests ran|collected 0 items"),
    ("tests_timed_out", "ambiguous", r"Timeout error: \d+ seconds exceeded"),
)
"""(reason, tier, sign); the first sign found in a log names its reason."""

_SIGNS = tuple((reason, tier, re.compile(sign, re.MULTILINE)) for reason, tier, sign in _PATTERNS)


def classify_log(text: str) -> tuple[str, Tier] | None:
    """The likely infrastructure reason a log shows, with its tier, or ``None``."""
    for reason, tier, sign in _SIGNS:
        if text and sign.search(text):
            return reason, tier
    return None
