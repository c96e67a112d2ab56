"""Pydantic's validation errors in a user's words: which key, what is wrong, what was given.

Pydantic's own text lists every error with its internal type name and a documentation link, which
tells a user who mistyped ``max_step`` nothing they can act on quickly. Every place that
validates a user's file (datasets, scaffolds, backend configs) words its problems through
:func:`describe_problems`, so they all read the same way.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

_MAX_PROBLEMS = 3
_PREVIEW_CHARS = 60


def describe_problems(
    exc: ValidationError,
    model: type[BaseModel] | None = None,
    *,
    leading_tags: Collection[str] = (),
    limit: int = _MAX_PROBLEMS,
) -> str:
    """The first ``limit`` problems of ``exc``, ``"; "``-separated, each naming its key.

    With ``model`` (the class that was validated), an unknown key gets the closest valid name.
    ``leading_tags``: a discriminated union's tags, which pydantic puts in front of each key.
    """
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        if loc and loc[0] in leading_tags:
            error = {**error, "loc": loc[1:]}
        problems.append(_problem(error, model))
    unique = list(dict.fromkeys(problems))
    text = "; ".join(unique[:limit])
    if len(unique) > limit:
        text += f" (and {len(unique) - limit} more)"
    return text


def _problem(error: Any, model: type[BaseModel] | None) -> str:
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    key = ".".join(str(part) for part in loc)
    kind = error["type"]
    if kind == "missing":
        return f"missing required key '{key}'" if key else "a required key is missing"
    if kind == "extra_forbidden":
        hint = _suggestion(loc, model)
        return f"unknown key '{key}'{hint}"
    message = validator_reason(error["msg"])
    given = f" (got {_preview(error.get('input'))})" if "input" in error else ""
    return f"'{key}': {message}{given}" if key else f"{message}{given}"


def _is_union_tag(part: Any) -> bool:
    """Pydantic names the member of a union it tried (``function-after[...]``, ``str``) in the
    location; those are not keys a user wrote."""
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _suggestion(loc: list[Any], model: type[BaseModel] | None) -> str:
    names = _field_names_at(loc[:-1], model)
    if not names or not loc or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _field_names_at(path: Iterable[Any], model: type[BaseModel] | None) -> list[str]:
    """Field names of the (nested) model that ``path`` leads to, when it can be followed."""
    current = model
    for part in path:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return []
        annotation = current.model_fields[part].annotation
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return list(current.model_fields) if current is not None else []


def validator_reason(message: str) -> str:
    """A validator's message without pydantic's ``Value error, `` prefix, lower-cased start."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message[:1].lower() + message[1:] if message else "it was refused"


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."
