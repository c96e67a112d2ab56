"""Prompt templates: jinja2 with StrictUndefined, so a missing variable is a config error, not a
silently empty prompt."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

from agentkit.errors import UserFacingError


class PromptError(UserFacingError, ValueError):
    """A template could not be rendered (syntax error or a variable that was not provided)."""


_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def render(template: str, name: str = "template", **variables: Any) -> str:
    """Render ``template`` with ``variables``; ``name`` says which template failed in errors."""
    try:
        return _compile(template).render(**variables)
    except jinja2.UndefinedError as exc:
        available = ", ".join(sorted(variables)) or "none"
        raise PromptError(
            f"{name}: {exc.message}. Variables available to this template: {available}."
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(
            f"{name}: template syntax error on line {exc.lineno}: {exc.message}"
        ) from exc
