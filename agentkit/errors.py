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


EXTRAS: dict[str, str] = {
    "torch": "train",
    "transformers": "train",
    "tokenizers": "train",
    "peft": "train",
    "accelerate": "train",
    "matplotlib": "train",
    "datasets": "hf",
    "pyarrow": "hf",
    "ray": "ray",
    "trl": "dev",
}
"""Which extra of the package provides each optional top-level module."""


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install when ``exc`` is an optional dependency that is not
    installed; ``None`` for any other missing module (a real bug, shown with its traceback)."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return (
        f"this needs {top!r}, which is not installed: pip install 'agentkit[{extra}]' "
        f"(in a checkout: pip install -e '.[{extra}]')"
    )
