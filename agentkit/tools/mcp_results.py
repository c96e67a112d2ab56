"""What an MCP tool call returned, as the text a model is shown.

Text content is joined (one block per line group); content a text model cannot read (images,
audio, binary resources) is named with its type and size so the model knows it was there; a
result with no content shows its structured content as JSON. Control characters and terminal
escapes are cleaned as for command output, and long output keeps its head and tail with a note.

Reads the result objects by attribute (duck typing) so that importing this module does not import
the ``mcp`` package, which is slow to import.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from agentkit.runtime.output import DEFAULT_OUTPUT_LIMIT, clean_text

OUTPUT_LIMIT = DEFAULT_OUTPUT_LIMIT
"""Characters of a tool's result a model sees before the middle is cut (as for commands)."""

EMPTY_RESULT = "(the tool finished and returned no output)"
EMPTY_ERROR = "(the tool gave no details)"
OUTPUT_CLIPPED = (
    "[... {cut} characters cut from the middle of the tool's output; ask the tool for less "
    "(a narrower query, a smaller range) to see the part you need ...]"
)
IMAGE = "[image: {mime}, {size} bytes, not shown]"
AUDIO = "[audio: {mime}, {size} bytes, not shown]"
BINARY_RESOURCE = "[resource {uri}: {mime}, {size} bytes of binary data, not shown]"
TEXT_RESOURCE = "[resource {uri}]\n{text}"
RESOURCE_LINK = "[resource link: {uri}{details}]"
OTHER_CONTENT = "[{kind} content, not shown]"


def result_text(result: Any) -> str:
    """The whole text of a ``CallToolResult`` (not yet clipped)."""
    parts = [describe_content(block) for block in getattr(result, "content", None) or []]
    text = "\n".join(part for part in parts if part)
    structured = getattr(result, "structured_content", None)
    if not text.strip() and structured is not None:
        text = json.dumps(structured, ensure_ascii=False, indent=2, default=str)
    return clean_text(text)


def describe_content(block: Any) -> str:
    """One content block: its text, or a short note for what cannot be shown as text."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(getattr(block, "text", ""))
    if kind in ("image", "audio"):
        template = IMAGE if kind == "image" else AUDIO
        mime = getattr(block, "mime_type", None) or "unknown type"
        return template.format(mime=mime, size=_decoded_size(getattr(block, "data", "")))
    if kind == "resource":
        resource = getattr(block, "resource", None)
        uri = getattr(resource, "uri", "?")
        if isinstance(getattr(resource, "text", None), str):
            return TEXT_RESOURCE.format(uri=uri, text=resource.text)  # type: ignore[union-attr]
        mime = getattr(resource, "mime_type", None) or "unknown type"
        size = _decoded_size(getattr(resource, "blob", ""))
        return BINARY_RESOURCE.format(uri=uri, mime=mime, size=size)
    if kind == "resource_link":
        name = getattr(block, "name", None)
        description = getattr(block, "description", None)
        details = f" ({name})" if name else ""
        details += f": {description}" if description else ""
        return RESOURCE_LINK.format(uri=getattr(block, "uri", "?"), details=details)
    return OTHER_CONTENT.format(kind=kind or "unknown")


def _decoded_size(data: Any) -> int:
    if not isinstance(data, str | bytes):
        return 0
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data) * 3 // 4


def clip(text: str, limit: int = OUTPUT_LIMIT) -> tuple[str, bool]:
    """``text`` within ``limit`` characters, keeping its head and tail; and whether it was cut."""
    if len(text) <= limit:
        return text, False
    head = text[: limit // 2]
    tail = text[len(text) - (limit - limit // 2) :]
    note = OUTPUT_CLIPPED.format(cut=len(text) - len(head) - len(tail))
    return f"{head}\n{note}\n{tail}", True
