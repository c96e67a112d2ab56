"""The environment for git commands that make repositories of their own (examples, scratch
copies): the user's configuration, hooks and ``GIT_*`` variables left out, and a fixed identity
and date, so that the same tree always gives the same commit."""

from __future__ import annotations

import os


def isolated_git_env(*, name: str, email: str, date: str) -> dict[str, str]:
    """``os.environ`` without ``GIT_*``, with no system or global configuration, and ``name``
    ``<email>`` as author and committer at ``date`` (ISO 8601)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email,
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
    )
    return env
