"""Everything the SWE-agent interface tools say to a model: templates and sizes.

Each template is a constant so tests can assert the exact text and a reviewer sees any change of
wording. A refusal says what happened and what to do instead: a model that is only told "no" tends
to send the same call again.
"""

from __future__ import annotations

WINDOW = 100
"""Lines shown by the viewer at a time."""
OVERLAP = 2
"""Lines a scroll keeps from the window it leaves, so the model sees where it came from."""
MAX_HITS = 100
"""Most files (``find_file``, ``search_dir``) or lines (``search_file``) listed before a search is
refused and the model is asked to narrow it."""
LINE_CHARS = 1_000
"""Characters of one line the viewer shows; longer lines are cut with :data:`LINE_CUT`."""
HIT_CHARS = 200
"""Characters of one matching line ``search_file`` shows."""
EXCERPT_CONTEXT = 5
"""Unchanged lines shown either side of a rejected edit."""

# -- files ---------------------------------------------------------------------------------------

NOT_FOUND = (
    "{path} does not exist. Relative paths start at the repository root ({workdir}); find a "
    "file by name with find_file."
)
IS_DIRECTORY = (
    "{path} is a directory, not a file. Find files in it with find_file or search_dir, or list "
    "it with `ls {path}`."
)
NOT_REGULAR = (
    "{path} is not a regular file (a device, pipe, socket or broken link), so it cannot be opened."
)
NOT_TEXT = (
    "{path} is not a text file ({why}), so it cannot be shown or edited. Inspect it with a shell "
    "command, e.g. `xxd {path} | head`."
)
WHY_BINARY = "it contains NUL bytes"
WHY_WIDE = "it is encoded in UTF-16 or UTF-32"
WHY_CONTROL = "it is full of control bytes"
TOO_LARGE = (
    "{path} is {size} MB, over the limit of {limit} MB. Look for what you need with "
    "search_file or `grep -n`."
)
READ_FAILED = "{path} could not be read: {reason}."
WRITE_FAILED = "The edit was not applied: {path} could not be written: {reason}."

# -- the viewer ----------------------------------------------------------------------------------

HEADER = "[File: {path} ({total} lines total)]"
ABOVE = "({count} more lines above)"
BELOW = "({count} more lines below)"
EMPTY_FILE = "(the file is empty)"
LINE_CUT = " [... line cut: {length} characters in all]"
NO_FILE_OPEN = (
    "No file is open. Open one first with the open tool; {command} works on the open file."
)
LINE_OUT_OF_RANGE = (
    "Line {line} is outside {path}, which has {total} lines: give a line number from 1 to {total}."
)
NOTHING_TO_SCROLL = "{path} is empty, so there is nothing to scroll."
LINE_IN_EMPTY_FILE = "{path} is empty, so there is no line {line} to go to."
AT_START = (
    "Already at the top of {path}: lines 1-{last} are the window shown, and nothing is above. "
    "Scroll down, or go to a line with goto."
)
AT_END = (
    "Already at the end of {path}: line {total} is the last, and it is in the window shown. "
    "Scroll up, or go to a line with goto."
)

# -- searching -----------------------------------------------------------------------------------

EMPTY_TERM = "The search term is empty. Give the text to look for."
MULTILINE_TERM = (
    "The search term spans several lines; searches match within one line. Search for one line "
    "of it."
)
NAME_WITH_SLASH = (
    "find_file matches file names, and {name} contains a /. Give the name or a wildcard pattern "
    "(e.g. `*_test.py`) as file_name and the directory to search as dir."
)
DIR_NOT_FOUND = "The directory {path} does not exist. Relative paths start at {workdir}."
NOT_A_DIRECTORY = (
    "{path} is a file, not a directory. Search one file with search_file, or give its directory."
)
SEARCH_FAILED = "The search could not run: the sandbox's shell answered {answer!r}."
SEARCH_TIMED_OUT = "The search of {path} took too long and was stopped. Search a smaller directory."
LIST_CUT = "(and {count} more, left out to keep this short)"

NO_FILES = 'No file matching "{name}" in {path}.'
FILES_FOUND = 'Found {count} file{s} matching "{name}" in {path}:'
TOO_MANY_FILES = (
    '{count} files match "{name}" in {path}, more than the {limit} listed at most. Narrow the '
    "search: a more specific name or pattern, or a subdirectory as dir."
)

NO_MATCHES_DIR = 'No matches for "{term}" in {path}.'
MATCHES_DIR = 'Found {lines} matching line{s} for "{term}" in {files} file{fs} under {path}:'
MATCHES_DIR_ENTRY = "{path} ({count} matching line{s})"
MATCHES_DIR_END = 'End of matches for "{term}" in {path}.'
TOO_MANY_DIR = (
    '"{term}" matches {lines} lines in {files} files under {path}, more than the {limit} files '
    "listed at most. Narrow the search: a longer or more specific term, or a subdirectory as dir."
)

NO_FILE_TO_SEARCH = (
    "No file is open and no path was given. Give the file to search as path, or open it first."
)
NO_MATCHES_FILE = 'No matches for "{term}" in {path}.'
MATCHES_FILE = 'Found {count} matching line{s} for "{term}" in {path}:'
MATCHES_FILE_ENTRY = "Line {line}: {text}"
MATCHES_FILE_END = 'End of matches for "{term}" in {path}.'
TOO_MANY_FILE = (
    '"{term}" matches {count} lines of {path}, more than the {limit} listed at most. Narrow the '
    "search with a longer or more specific term."
)

# -- editing -------------------------------------------------------------------------------------

EDIT_START_RANGE = (
    "start_line {start} is outside {path}, which has {total} lines: it must be from 1 to "
    "{after} ({after} adds lines at the end)."
)
EDIT_END_RANGE = (
    "end_line {end} is past the end of {path}, which has {total} lines. The last line an edit "
    "can replace is {total}."
)
EDIT_ORDER = (
    "end_line {end} is before start_line {start}. Give end_line >= start_line to replace lines "
    "{start}-END, or end_line = {before} to insert before line {start} without replacing any."
)
EDIT_UNENCODABLE = (
    "The edit was not applied: the new text contains {chars}, which cannot be written in {path} "
    "because the file is encoded as {encoding}."
)
EDIT_NO_CHANGE = (
    "The edit was not applied: the new text is the same as {span} now, so it would change "
    "nothing. Put the changed text in replacement."
)
EDIT_NOTHING = (
    "The replacement is empty and end_line is start_line - 1, so the edit would neither replace "
    "nor insert anything."
)
EDITED = "Replaced {span} of {path} with {new}."
DELETED = "Deleted {span} of {path}."
INSERTED = "Inserted {new} at line {start} of {path}."
EDIT_REVIEW = (
    "Check the window below: indentation right, nothing duplicated or lost. The lines after "
    "the edit moved by {shift}."
)
EDIT_REVIEW_SAME = "Check the window below: indentation right, nothing duplicated or lost."
CRLF_KEPT = "The file has CRLF line endings; the new lines were written with CRLF too."

LINT_REJECTED = (
    "The edit was not applied: it would add {count} error{s} to {path} that the file does not "
    "have now:"
)
LINT_ERROR = "- line {line}: {message}"
LINT_WOULD_BE = "How lines {first}-{last} would have looked after the edit:"
LINT_ORIGINAL = "How lines {first}-{last} look now (the file is unchanged):"
LINT_RETRY = (
    "Fix the errors and send the edit again (start_line {start}, end_line {end}) with the whole "
    "corrected replacement."
)
SYNTAX_ERROR = "syntax error: {detail}"
PARSE_ERROR = "cannot parse `{text}`"
PARSE_MISSING = "missing `{token}`"
UNDEFINED_NAME = "undefined name '{name}'"
