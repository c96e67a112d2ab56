"""Errors shared across agentkit's parts, and the one-line wording of the unexpected ones."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message tells the whole story (what happened, what to do): the CLI prints
    it without a traceback."""


def unexpected_error_message(exc: BaseException) -> str:
    """One line for an exception nobody planned for (a bug in a backend, tool, template or
    grader): its type and message. The traceback belongs in a log file, not in results."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"unexpected {type(exc).__name__}: {text}"
