"""Turning raw call arguments into a tool's validated ``Arguments`` model, shared by every format.

All formats end here so that a given mistake produces the same message whether the model used
native function calling, XML or a bash block. Text formats deliver every value as a string; pydantic
in lax mode turns ``"5"`` and ``"true"`` into numbers and booleans, and strings that hold JSON
(``"[1, 2]"``) are decoded for fields that refuse a plain string. Each pydantic error is mapped onto
one of the templates in :mod:`agentkit.tools.errors`; only a validator's own reason (``must be
positive``) is quoted inside one, never pydantic's error listing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from agentkit.tools import errors
from agentkit.tools.base import Tool
from agentkit.validation import validator_reason

Usage = Callable[[Tool], str]
"""A format's way of showing one tool's syntax; used inside error messages."""

_VALUE_PREVIEW_CHARS = 200


def find_tool(name: str, tools: Sequence[Tool]) -> Tool:
    """The tool called ``name``, or :class:`ToolCallError` naming the valid tools."""
    for tool in tools:
        if tool.name == name:
            return tool
    valid = ", ".join(tool.name for tool in tools) or "(none)"
    raise errors.ToolCallError(errors.UNKNOWN_TOOL.format(name=name, valid=valid))


def field_names(tool: Tool) -> list[str]:
    """Argument names in declaration order (the order positional formats map words onto)."""
    return list(_field_names(tool.Arguments))


@functools.cache
def _field_names(model: type[BaseModel]) -> tuple[str, ...]:
    # Reading ``model_fields`` goes through a pydantic descriptor (microseconds per access), and
    # formats ask for the names several times per parsed call.
    return tuple(model.model_fields)


@functools.cache
def _accepted_names(model: type[BaseModel]) -> frozenset[str] | None:
    """Names a call may use (fields and their aliases); ``None`` when the model allows extras."""
    if model.model_config.get("extra") == "allow":
        return None
    fields = model.model_fields
    return frozenset(fields) | {f.alias for f in fields.values() if f.alias}


def field_schemas(tool: Tool) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-argument JSON schema and the ``$defs`` table its ``$ref``s point into (read-only)."""
    return _schemas(tool.Arguments)


@functools.cache
def _schemas(model: type[BaseModel]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    # Building a JSON schema costs milliseconds; parsing runs every step, so build it once.
    schema = model.model_json_schema()
    return schema.get("properties", {}), schema.get("$defs", {})


def is_required(tool: Tool, name: str) -> bool:
    return tool.Arguments.model_fields[name].is_required()


def is_string_field(tool: Tool, name: str) -> bool:
    """True when the argument is a plain string (``str`` or ``str | None``)."""
    props, _ = field_schemas(tool)
    schema = props.get(name, {})
    if schema.get("type") == "string" and "enum" not in schema:
        return True
    variants = schema.get("anyOf", [])
    kinds = sorted(variant.get("type", "") for variant in variants)
    return kinds == ["null", "string"] and all("enum" not in v for v in variants)


def describe_type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A JSON-schema type in words a model understands: ``integer``, ``list of string``..."""
    if "$ref" in schema:
        return describe_type(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(describe_type(s, defs) for s in schema[key]))
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return f"list of {describe_type(items, defs)}" if items else "list"
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any value"


def argument_lines(tool: Tool) -> str:
    """One line per argument: name, type, required or default, description."""
    props, defs = field_schemas(tool)
    lines = []
    for name, field in tool.Arguments.model_fields.items():
        schema = props.get(name, {})
        kind = describe_type(_without_null(schema) if not field.is_required() else schema, defs)
        if field.is_required():
            need = "required"
        elif schema.get("default") is not None:
            need = f"optional, default {json.dumps(schema['default'])}"
        else:
            need = "optional"
        description = f": {field.description}" if field.description else ""
        lines.append(f"  - {name} ({kind}, {need}){description}")
    return "\n".join(lines) if lines else "  (no arguments)"


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional argument's schema minus its ``null`` variant: "optional" already says it."""
    variants = [v for v in schema.get("anyOf", []) if v.get("type") != "null"]
    if len(variants) == 1 and len(schema.get("anyOf", [])) == 2:
        return variants[0]
    return schema


def value_as_text(value: Any) -> str:
    """How a text format writes a typed value; :func:`validate_arguments` reads it back."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _preview(value: Any) -> str:
    """The bad value as the model wrote it: a one-line string in plain quotes (no JSON escaping,
    which would garble text-format values like ``["a"]``), anything else as JSON."""
    if isinstance(value, str) and "\n" not in value:
        text = f'"{value}"'
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _VALUE_PREVIEW_CHARS:
        text = text[:_VALUE_PREVIEW_CHARS] + "..."
    return text


def _is_type_error(kind: str) -> bool:
    return kind.endswith(("_type", "_parsing")) or kind in {
        "int_from_float",
        "literal_error",
        "enum",
        "json_invalid",
        "is_instance_of",
    }


def validate_arguments(tool: Tool, raw: dict[str, Any], usage: Usage) -> BaseModel:
    """Validate ``raw`` against ``tool.Arguments``; raise :class:`ToolCallError` with a template.

    Unknown names are checked here rather than left to pydantic, because a tool author's model may
    silently ignore extra fields, and a model that misspells an argument must be told.
    """
    model = tool.Arguments
    known = _accepted_names(model)
    if known is not None:
        for name in raw:
            if name not in known:
                raise errors.ToolCallError(
                    errors.UNKNOWN_ARGUMENT.format(tool=tool.name, argument=name, usage=usage(tool))
                )
    try:
        return model.model_validate(raw)
    except ValidationError as first:
        decoded = _decode_json_strings(raw, first)
        if decoded is raw:
            raise errors.ToolCallError(_explain(tool, raw, first, usage)) from None
        try:
            return model.model_validate(decoded)
        except ValidationError as second:
            raise errors.ToolCallError(_explain(tool, raw, second, usage)) from None


def _decode_json_strings(raw: dict[str, Any], error: ValidationError) -> dict[str, Any]:
    """Decode string values that failed validation and hold JSON (``"[1, 2]"``, ``"null"``).

    Returns ``raw`` itself when nothing changed, so the caller knows a retry is pointless.
    """
    decoded = dict(raw)
    changed = False
    for item in error.errors():
        name = item["loc"][0] if item["loc"] else None
        if not isinstance(name, str):
            continue
        value = raw.get(name)
        if not isinstance(value, str):
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if not isinstance(parsed, str):
            decoded[name] = parsed
            changed = True
    return decoded if changed else raw


def _explain(tool: Tool, raw: dict[str, Any], error: ValidationError, usage: Usage) -> str:
    """One message for a pydantic error: missing names together, then the first value problem."""
    props, defs = field_schemas(tool)
    missing: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()
    for item in error.errors():
        loc = item["loc"]
        name = loc[0] if loc and isinstance(loc[0], str) else None
        if item["type"] == "missing" and name is not None:
            missing.append(_location(loc))
            continue
        if name is None or name not in props:
            problems.append(
                errors.INVALID_ARGUMENTS.format(
                    tool=tool.name, reason=validator_reason(item["msg"]), usage=usage(tool)
                )
            )
            continue
        if name in seen:
            continue
        seen.add(name)
        value = _preview(raw.get(name))
        if _is_type_error(item["type"]):
            expected = describe_type(props[name], defs)
            problems.append(
                errors.WRONG_ARGUMENT_TYPE.format(
                    argument=name, tool=tool.name, expected=expected, value=value
                )
            )
        else:
            problems.append(
                errors.INVALID_ARGUMENT_VALUE.format(
                    argument=name, tool=tool.name, value=value, reason=validator_reason(item["msg"])
                )
            )
    if len(missing) == 1:
        problems.insert(
            0,
            errors.MISSING_ARGUMENT.format(tool=tool.name, argument=missing[0], usage=usage(tool)),
        )
    elif missing:
        names = ", ".join(f"'{name}'" for name in missing)
        problems.insert(
            0, errors.MISSING_ARGUMENTS.format(tool=tool.name, arguments=names, usage=usage(tool))
        )
    return "\n\n".join(problems)


def _location(loc: tuple[int | str, ...]) -> str:
    """Where a problem is, as the model would write it: ``points``, ``points[0].y``.

    Pydantic puts the member of a union it tried (``list[Point]``, ``str``) into the location;
    that is not a key the model wrote, so it is left out.
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _is_union_member(part):
            text += f".{part}" if text else part
    return text


def _is_union_member(part: str) -> bool:
    return "[" in part or part in {"str", "int", "float", "bool", "none"}
