"""The pure half of the file editor: deciding what a file's bytes mean, splicing into them, and
showing them to the model. No runtime, no I/O: bytes in, bytes or text out.

It lives in small modules, each with one job; this one gathers their names in one place, for the
tool (:mod:`agentkit.tools.editor`), the SWE-agent interface tools that share its file handling,
and tests:

- :mod:`agentkit.tools.editor_file`: how a file's bytes are read as text (encoding, lines, line
  endings) and where text sent by the model matches them;
- :mod:`agentkit.tools.editor_views`: numbered lines, views of files, snippets around an edit,
  directory listings;
- :mod:`agentkit.tools.editor_similar`: the lines most like an ``old_str`` that is not there;
- :mod:`agentkit.tools.editor_messages`: every template and size.
"""

from __future__ import annotations

from agentkit.tools.editor_file import (
    UTF8_BOM,
    NotText,
    NotTextError,
    Refusal,
    TextFile,
    adapt_newlines,
    context_span,
    count_lines,
    find_all,
    line_end,
    line_numbers,
    match_variants,
    read_text,
    unencodable,
)
from agentkit.tools.editor_messages import (
    CLIPPED,
    CLIPPED_LONG_LINE,
    HIDDEN_LEFT_OUT,
    LISTING,
    LISTING_BYTES,
    LISTING_CLIPPED,
    LISTING_EMPTY,
    NOTHING_SIMILAR,
    OLD_STR_NOT_FOUND,
    OUTPUT_LIMIT,
    SIMILAR_REGION,
    SNIPPET_CONTEXT,
    VIEW_EMPTY_FILE,
    VIEW_FILE,
    VIEW_RANGE,
    VIEW_RANGE_CLAMPED,
    VIEW_RANGE_DIRECTORY,
    VIEW_RANGE_EMPTY_FILE,
    VIEW_RANGE_ORDER,
    VIEW_RANGE_SHAPE,
    VIEW_RANGE_START,
    WHITESPACE_ONLY,
    clip,
    lines_phrase,
    span,
)
from agentkit.tools.editor_similar import Region, not_found, similar_regions
from agentkit.tools.editor_views import (
    Rendered,
    Shown,
    listing,
    number_line,
    plain_lines,
    render,
    render_lines,
    snippet,
    view_file,
)

__all__ = [
    "CLIPPED",
    "CLIPPED_LONG_LINE",
    "HIDDEN_LEFT_OUT",
    "LISTING",
    "LISTING_BYTES",
    "LISTING_CLIPPED",
    "LISTING_EMPTY",
    "NOTHING_SIMILAR",
    "OLD_STR_NOT_FOUND",
    "OUTPUT_LIMIT",
    "SIMILAR_REGION",
    "SNIPPET_CONTEXT",
    "UTF8_BOM",
    "VIEW_EMPTY_FILE",
    "VIEW_FILE",
    "VIEW_RANGE",
    "VIEW_RANGE_CLAMPED",
    "VIEW_RANGE_DIRECTORY",
    "VIEW_RANGE_EMPTY_FILE",
    "VIEW_RANGE_ORDER",
    "VIEW_RANGE_SHAPE",
    "VIEW_RANGE_START",
    "WHITESPACE_ONLY",
    "NotText",
    "NotTextError",
    "Refusal",
    "Region",
    "Rendered",
    "Shown",
    "TextFile",
    "adapt_newlines",
    "clip",
    "context_span",
    "count_lines",
    "find_all",
    "line_end",
    "line_numbers",
    "lines_phrase",
    "listing",
    "match_variants",
    "not_found",
    "number_line",
    "plain_lines",
    "read_text",
    "render",
    "render_lines",
    "similar_regions",
    "snippet",
    "span",
    "unencodable",
    "view_file",
]
