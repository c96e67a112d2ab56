"""An MCP tool's JSON ``inputSchema`` as a pydantic ``Arguments`` model.

The model is what every call format validates against (see :mod:`agentkit.tools.arguments`), so
a bad call to a server's tool gets the same message as a bad call to a built-in tool, in every
format. The mapping covers what servers write in practice:

* ``string`` / ``integer`` / ``number`` / ``boolean`` / ``null``, and ``type`` lists;
* ``enum`` and ``const`` (as ``Literal``), ``anyOf`` / ``oneOf`` (as unions; ``oneOf``'s
  "exactly one" is not checked), an ``allOf`` of one schema;
* ``array`` with ``items``, ``object`` with ``properties`` (a nested model, closed when the
  schema says ``additionalProperties: false``) or with ``additionalProperties`` (a dict);
* ``$ref`` into ``$defs`` / ``definitions`` (a recursive reference becomes ``Any`` below it);
* ``description``, ``default``, ``required``, and the constraints ``minimum``, ``maximum``,
  ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``, ``minLength``, ``maxLength``,
  ``pattern``, ``minItems``, ``maxItems``.

Anything else (``not``, ``if``, ``prefixItems``, ``format``...) is accepted loosely: the server
still validates, and its refusal reaches the model as the tool's error.

The top-level model forbids unknown arguments, so a misspelled name is reported rather than
dropped; only a schema with no ``properties`` that explicitly allows additional ones takes any
argument. An optional argument without a default is ``None`` when not given; the caller sends
only the arguments the model gave (see :func:`call_arguments`), so the server applies its own
defaults. A property whose name pydantic cannot use as a field (a leading underscore,
``model_config``) gets a field name ``arg_N`` and keeps its real name as the alias.
"""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

_MAX_DEPTH = 12
"""Nesting below which a schema is taken as ``Any`` (guards against pathological schemas)."""
_NUMBER_CONSTRAINTS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
}
_CONSTRAINTS: dict[str, dict[str, str]] = {
    "integer": _NUMBER_CONSTRAINTS,
    "number": _NUMBER_CONSTRAINTS,
    "string": {"minLength": "min_length", "maxLength": "max_length"},
    "array": {"minItems": "min_length", "maxItems": "max_length"},
}
"""JSON-schema keyword → pydantic constraint, per type: a keyword on another type is ignored."""
_RESERVED = frozenset({"model_config"})
_SCALARS = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}


def arguments_model(tool_name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """The ``Arguments`` model of the MCP tool ``tool_name`` whose input schema is ``schema``."""
    builder = _Builder(schema, _class_name(tool_name))
    properties = schema.get("properties")
    extra = schema.get("additionalProperties")
    open_ended = not properties and extra not in (None, False)
    return builder.model(schema, builder.prefix + "Arguments", closed=not open_ended, depth=0)


def call_arguments(args: BaseModel) -> dict[str, Any]:
    """What to send to the server: the arguments the model gave, under their real names.

    A ``None`` the model gave for an optional argument whose schema does not allow ``null`` is
    left out, meaning "use the default": models often write ``null`` for arguments they skip.
    """
    data = args.model_dump(mode="json", by_alias=True, exclude_unset=True)
    nullable: frozenset[str] = getattr(type(args), "__mcp_nullable__", frozenset())
    return {key: value for key, value in data.items() if value is not None or key in nullable}


def _class_name(tool_name: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", tool_name)
    name = "".join(word[:1].upper() + word[1:] for word in words if word)
    return name if name[:1].isalpha() else f"Tool{name}"


class _Builder:
    def __init__(self, root: dict[str, Any], prefix: str) -> None:
        self.root = root
        self.prefix = prefix
        self.resolving: list[str] = []
        self.names: set[str] = set()

    def model(
        self, schema: dict[str, Any], name: str, *, closed: bool, depth: int
    ) -> type[BaseModel]:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        fields: dict[str, Any] = {}
        nullable: set[str] = set()
        for index, (prop, sub) in enumerate(properties.items()):
            sub = sub if isinstance(sub, dict) else {}
            annotation = self.type(sub, f"{name}{_class_name(prop)}", depth + 1)
            allows_null = self.allows_null(sub)
            if allows_null:
                nullable.add(prop)
            info: dict[str, Any] = {}
            if isinstance(sub.get("description"), str):
                info["description"] = sub["description"]
            if prop.startswith("_") or prop in _RESERVED:
                field_name = f"arg_{index}"
                info["alias"] = prop
            else:
                field_name = prop
            if "default" in sub:
                info["default"] = sub["default"]
            elif prop not in required:
                info["default"] = None
                if not allows_null:
                    annotation = annotation | None
            fields[field_name] = (annotation, Field(**info))
        config = ConfigDict(
            extra="forbid" if closed else "allow",
            protected_namespaces=(),
            validate_by_name=True,
            validate_by_alias=True,
            regex_engine="python-re",
        )
        with warnings.catch_warnings():
            # A property named like a BaseModel method (``json``, ``copy``) shadows it; harmless.
            warnings.simplefilter("ignore", UserWarning)
            model = create_model(self._unique(name), __config__=config, **fields)
        model.__mcp_nullable__ = frozenset(nullable)  # type: ignore[attr-defined]
        return model

    def _unique(self, name: str) -> str:
        candidate, number = name, 2
        while candidate in self.names:
            candidate, number = f"{name}{number}", number + 1
        self.names.add(candidate)
        return candidate

    def allows_null(self, schema: dict[str, Any]) -> bool:
        kind = schema.get("type")
        if kind == "null" or (isinstance(kind, list) and "null" in kind):
            return True
        if None in (schema.get("enum") or []):
            return True
        variants = [*(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]
        return any(isinstance(v, dict) and self.allows_null(v) for v in variants)

    def type(self, schema: Any, name: str, depth: int) -> Any:
        """The annotation for ``schema``; ``Any`` for what it cannot express."""
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return Any
        if "$ref" in schema:
            return self._ref(schema["$ref"], name, depth)
        if "const" in schema:
            return _literal([schema["const"]])
        if "enum" in schema:
            return _literal(schema["enum"]) if isinstance(schema["enum"], list) else Any
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return self._union(schema[key], schema, name, depth)
        if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            return self.type({**schema, **schema["allOf"][0], "allOf": None}, name, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            variants = [{**schema, "type": k} for k in kind]
            return self._union(variants, {}, name, depth)
        if kind is None and "properties" in schema:
            kind = "object"
        if kind in _SCALARS:
            return _constrained(_SCALARS[kind], kind, schema)
        if kind == "array":
            items = schema.get("items")
            item = self.type(items, f"{name}Item", depth + 1) if isinstance(items, dict) else Any
            return _constrained(list[item], kind, schema)  # type: ignore[valid-type]
        if kind == "object":
            return self._object(schema, name, depth)
        return Any

    def _object(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        if schema.get("properties"):
            closed = schema.get("additionalProperties") is False
            return self.model(schema, name, closed=closed, depth=depth)
        extra = schema.get("additionalProperties")
        value = self.type(extra, f"{name}Value", depth + 1) if isinstance(extra, dict) else Any
        return dict[str, value]  # type: ignore[valid-type]

    def _union(self, variants: list[Any], outer: dict[str, Any], name: str, depth: int) -> Any:
        # Keywords beside ``anyOf`` (a description, a default) do not change the type.
        del outer
        types: list[Any] = []
        for index, variant in enumerate(variants):
            annotation = self.type(variant, f"{name}{index + 1}", depth + 1)
            if annotation not in types:  # by equality: constrained types are not hashable
                types.append(annotation)
        if not types or Any in types:
            return Any
        return types[0] if len(types) == 1 else Union[tuple(types)]  # noqa: UP007

    def _ref(self, ref: Any, name: str, depth: int) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in self.resolving:
            return Any  # outside this document, or recursive: the server checks it
        target: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return Any
            target = target[part]
        self.resolving.append(ref)
        try:
            return self.type(target, self.prefix + _class_name(ref.rsplit("/", 1)[-1]), depth)
        finally:
            self.resolving.pop()


def _literal(values: list[Any]) -> Any:
    if not values or not all(isinstance(v, str | int | float | bool | type(None)) for v in values):
        return Any
    return Literal[tuple(values)]


def _constrained(annotation: Any, kind: str, schema: dict[str, Any]) -> Any:
    """``annotation`` with the constraints of ``schema`` that apply to a ``kind`` attached."""
    constraints: dict[str, Any] = {}
    for key, argument in _CONSTRAINTS.get(kind, {}).items():
        value = schema.get(key)
        # Draft 4 wrote ``exclusiveMinimum: true`` beside ``minimum``; a boolean is not a bound.
        if isinstance(value, int | float) and not isinstance(value, bool):
            constraints[argument] = value
    if kind == "string" and isinstance(schema.get("pattern"), str):
        try:
            re.compile(schema["pattern"])
        except re.error:
            pass  # an ECMA-only pattern: the server checks it
        else:
            constraints["pattern"] = schema["pattern"]
    if not constraints:
        return annotation
    return Annotated[annotation, Field(**constraints)]
