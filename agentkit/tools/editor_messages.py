"""Everything the ``str_replace_editor`` tool says to a model: the templates, the sizes that bound
what it is shown, and the small phrases the templates are filled with.

Each template is a constant so tests can assert the exact text and a reviewer sees any change of
wording. A refusal says what to do next: the closest lines when ``old_str`` is not found, the line
of every occurrence when it is found several times, the range to view when output is clipped.
"""

from __future__ import annotations

OUTPUT_LIMIT = 16_000
"""Characters of file text, snippet or listing shown in one observation."""
SNIPPET_CONTEXT = 4
"""Unchanged lines shown either side of an edit."""
LISTING_BYTES = 12_000
"""Bytes of directory listing asked of the shell: under any runtime's output limit, so the
runtime never cuts the middle out of it."""
_MAX_LISTED_LINES = 20

# -- paths and files -----------------------------------------------------------------------------

RELATIVE_PATH = (
    "The path `{path}` is not absolute. Give the full path, for example `{suggestion}` (the "
    "repository is at {workdir})."
)
MISSING_PARAMETER = "The `{command}` command needs the `{parameter}` parameter."
NOT_FOUND = "{path} does not exist. View its directory to see what is there: {parent}"
ALREADY_EXISTS = (
    "{path} already exists, and `create` never overwrites a file. Change it with `str_replace` "
    "or `insert` (view it first), or create a file at another path."
)
IS_DIRECTORY = (
    "{path} is a directory; `{command}` works on files, and directories can only be viewed."
)
NOT_REGULAR = (
    "{path} is not a regular file (it is a device, pipe, socket or broken link), so the editor "
    "does not open it."
)
TOO_LARGE = (
    "{path} is {size} MB, over the editor's limit of {limit} MB. Search it with `grep -n PATTERN "
    "{path}` and read parts of it with `sed -n 'START,ENDp' {path}`."
)
BINARY = (
    "{path} is a binary file (it contains NUL bytes), so the editor cannot show or edit it. Look "
    "at it with a shell command, e.g. `file {path}` or `xxd {path} | head`."
)
WIDE_UNICODE = (
    "{path} is encoded in UTF-16 or UTF-32, which the editor does not write back; it handles "
    "UTF-8 and single-byte encodings. Use a shell command to inspect or convert it."
)
CONTROL_BYTES = (
    "{path} is neither UTF-8 nor text in a single-byte encoding (it is full of control bytes), so "
    "the editor cannot show or edit it safely. Look at it with `file {path}` or `xxd {path} | "
    "head`."
)
READ_FAILED = "{path} could not be read: {reason}."
WRITE_FAILED = "Nothing was written: {path} could not be written: {reason}."

# -- views ---------------------------------------------------------------------------------------

VIEW_FILE = "{path} ({total}), numbered as by `cat -n`:\n{body}"
VIEW_RANGE = "{lines} of {path} ({total} in all), numbered as by `cat -n`:\n{body}"
VIEW_EMPTY_FILE = "{path} is empty (0 lines)."
VIEW_RANGE_CLAMPED = (
    "Note: {path} has only {total}, so the range [{start}, {requested}] was shortened to "
    "[{start}, {last}]."
)
VIEW_RANGE_SHAPE = (
    "view_range must be two line numbers, [start, end], e.g. [10, 40]; use -1 as the end to view "
    "to the end of the file. Got {got}."
)
VIEW_RANGE_START = (
    "view_range starts at line {start}, but {path} has {total}: the start must be between 1 and "
    "{last}."
)
VIEW_RANGE_EMPTY_FILE = "{path} is empty (0 lines), so view_range has nothing to show."
VIEW_RANGE_ORDER = (
    "view_range [{start}, {end}] ends before it starts: the end must be at least the start, or -1 "
    "for the end of the file."
)
VIEW_RANGE_DIRECTORY = (
    "view_range applies to files, and {path} is a directory. Leave view_range out to list it."
)
CLIPPED = (
    "[Output clipped at {limit} characters, after line {last}. View further lines with "
    "view_range, e.g. [{next}, {next_end}], or find what you need with `grep -n PATTERN {path}`.]"
)
CLIPPED_LONG_LINE = (
    "[Output clipped at {limit} characters, inside line {line}, which has {length} characters. "
    "Read that line in parts with `sed -n '{line}p' {path} | cut -c START-END`.]"
)

LISTING = "Files and directories in {path}, two levels deep (directories end in /):\n{body}"
LISTING_EMPTY = "{path} is an empty directory."
HIDDEN_LEFT_OUT = (
    "Left out: {count} hidden {entries} (names starting with a dot); list them with `ls -a {path}`."
)
LISTING_CLIPPED = (
    "[Listing clipped: there are more entries than fit here. View a subdirectory, or search with "
    "`find {path} -name PATTERN`.]"
)

# -- edits ---------------------------------------------------------------------------------------

CREATED = "Created {path} ({lines})."

OLD_STR_EMPTY = (
    "old_str is empty. Give the exact text to replace, with enough surrounding lines to match "
    "one place only."
)
SAME_STRINGS = (
    "No replacement was made: new_str is identical to old_str, so the edit would change nothing. "
    "Put the new text in new_str."
)
OLD_STR_UNENCODABLE = (
    "No replacement was made: old_str contains {chars}, which cannot occur in {path} because the "
    "file is encoded as {encoding}. View the file and copy the text as it is shown."
)
OLD_STR_MANY = (
    "No replacement was made: old_str occurs {count} times in {path}, starting at lines {lines}. "
    "Add surrounding lines to old_str so that it matches exactly one place."
)
NEW_STR_UNENCODABLE = (
    "Nothing was written: the new text contains {chars}, which cannot be written in {path} "
    "because the file is encoded as {encoding}. Use characters that exist in that encoding."
)
REPLACED = "Replaced the text at line {line} of {path}."
DELETED = "Deleted the text at line {line} of {path}."
INSERT_EMPTY = "new_str is empty, so there is nothing to insert."
INSERT_LINE_RANGE = (
    "insert_line {line} is out of range: {path} has {total}, so insert_line must be between 0 "
    "(before the first line) and {last} (after the last line)."
)
INSERTED = "Inserted {count} after line {line} of {path}."
SNIPPET = "{lines} of the file now, numbered as by `cat -n`:\n{snippet}"
EMPTIED = "The file is now empty."
REVIEW = (
    "Check that this is what you intended (indentation, nothing duplicated or lost); if not, edit "
    "again or use undo_edit."
)
CRLF_KEPT = "The file has CRLF line endings; the new text was written with CRLF too."
ENCODING_KEPT = "The file is encoded as {encoding}; it was written back in that encoding."

OLD_STR_NOT_FOUND = (
    "No replacement was made: old_str does not occur in {path}. It must match the file exactly, "
    "including indentation, whitespace and line breaks."
)
SIMILAR_REGION = "The most similar part of {path}, {lines}:\n{body}"
WHITESPACE_ONLY = (
    "These lines differ from old_str only in whitespace (indentation, tabs, spaces or line "
    "breaks); copy them exactly as shown."
)
NOTHING_SIMILAR = "No part of the file resembles it; view the file to see its current text."

NOTHING_TO_UNDO = (
    "There is nothing to undo for {path}: undo_edit takes back edits made with this tool "
    "(create, str_replace, insert) in this session, the last {limit} of each file."
)
UNDONE = "Undid the last edit of {path}: it is back to how it was before that edit. {left}"
UNDO_LEFT = "{count} earlier {edits} of this file can still be undone."
UNDONE_CREATE = "Undid the creation of {path}: the file was removed."
UNDO_CHANGED = (
    "Note: the file had changed since that edit (by a shell command, for example); those later "
    "changes are gone too."
)

# -- phrases -------------------------------------------------------------------------------------


def clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n[...]"


def lines_phrase(count: int) -> str:
    """``1 line``, ``2 lines``."""
    return f"{count} line" if count == 1 else f"{count} lines"


def span(first: int, last: int) -> str:
    """``Line 4`` or ``Lines 4-9``."""
    return f"Line {first}" if first == last else f"Lines {first}-{last}"


def line_list(numbers: list[int]) -> str:
    """``4``, ``4 and 9``, ``4, 9 and 12``; after the first few, ``... and N more``."""
    shown = [str(n) for n in numbers[:_MAX_LISTED_LINES]]
    if len(numbers) > _MAX_LISTED_LINES:
        return ", ".join(shown) + f" and {len(numbers) - _MAX_LISTED_LINES} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def char_list(chars: list[str]) -> str:
    """The first five of ``chars`` as Python writes them (``'é'``), comma separated."""
    return ", ".join(repr(char) for char in chars[:5])
