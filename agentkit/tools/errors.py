"""Errors a model can cause when it calls a tool, and the exact words it is shown for each.

The wording lives here as module-level templates (``str.format`` placeholders) so that every call
format reports the same mistake the same way, tests can assert messages exactly, and a prompt
engineer can read every message the model may see in one place. Each message says what went wrong,
that nothing was run, and what to do instead: models recover from specific instructions, not from
tracebacks.
"""

from __future__ import annotations

# -- finding the call ---------------------------------------------------------------------------

NO_ACTION = (
    "Your reply did not contain a tool call, so nothing was run. "
    "End every reply with exactly one tool call, written like this:\n{syntax}"
)
"""No call in the reply at all. ``syntax``: the format's call skeleton."""

MULTIPLE_ACTIONS = (
    "Your reply contained {count} tool calls, but only one is allowed per reply, so none of them "
    "was run. Reply again with only the next tool call, written like this:\n{syntax}"
)

UNKNOWN_TOOL = (
    "There is no tool named '{name}', so nothing was run. "
    "The available tools are: {valid}. Call one of these."
)
"""``valid``: the tool names, comma separated."""

NAMELESS_CALL = (
    "Your function call has no name, so nothing was run. "
    "The available tools are: {valid}. Call one of these by its name."
)
"""Native calling: the call's ``name`` was empty."""

TRUNCATED_REPLY = (
    "Your reply was cut off at the output token limit before it held a complete tool call, "
    "so nothing was run. Reply again more briefly: keep the reasoning short so that the whole "
    "tool call fits."
)

# -- arguments ----------------------------------------------------------------------------------

MISSING_ARGUMENT = (
    "Tool '{tool}' needs the argument '{argument}', which your call did not give, so nothing was "
    "run. Call it again with every required argument:\n{usage}"
)
"""``usage``: the tool's call syntax and argument list in the format in use."""

MISSING_ARGUMENTS = (
    "Tool '{tool}' needs the arguments {arguments}, which your call did not give, so nothing was "
    "run. Call it again with every required argument:\n{usage}"
)
"""Several required arguments missing at once. ``arguments``: quoted names, comma separated."""

WRONG_ARGUMENT_TYPE = (
    "Argument '{argument}' of tool '{tool}' must be {expected}, but your call gave {value}, so "
    "nothing was run. Call it again with a value of that type."
)
"""``expected``: a type in words (``integer``, ``list of integer``); ``value``: the bad value."""

INVALID_ARGUMENT_VALUE = (
    "Argument '{argument}' of tool '{tool}' does not accept the value {value}: {reason}. "
    "Nothing was run; call it again with a valid value."
)
"""The type was right but a constraint or validator refused the value."""

INVALID_ARGUMENTS = (
    "The arguments of tool '{tool}' were not accepted: {reason}. Nothing was run; call it again "
    "with valid arguments:\n{usage}"
)
"""A check across several arguments failed (a model-level validator)."""

UNKNOWN_ARGUMENT = (
    "Tool '{tool}' has no argument named '{argument}', so nothing was run. "
    "Call it again using only its own arguments:\n{usage}"
)

DUPLICATE_ARGUMENT = (
    "Your call gave argument '{argument}' of tool '{tool}' more than once, so nothing was run. "
    "Give each argument once."
)

TOO_MANY_ARGUMENTS = (
    "Tool '{tool}' takes at most {limit} argument(s), but your call gave {count}, so nothing was "
    "run. Put quotes around an argument that contains spaces, and call it like this:\n{usage}"
)
"""Positional (command-line style) calls only."""

# -- syntax of one format -----------------------------------------------------------------------

MALFORMED_JSON = (
    "The arguments of your call to '{tool}' are not a valid JSON object ({detail}), so nothing "
    "was run. Call it again with all arguments in one JSON object."
)
"""Native function calling: the backend received an argument string that is not a JSON object."""

MALFORMED_XML = (
    "Your tool call could not be read: {problem}. Nothing was run. "
    "Write the call exactly like this:\n{syntax}"
)
"""``problem``: one of the ``XML_*`` phrases below."""

XML_UNCLOSED_FUNCTION = "<function={name}> is not closed by </function>"
XML_UNCLOSED_PARAMETER = "<parameter={name}> is not closed by </parameter>"
XML_MISSING_FUNCTION_NAME = "<function=...> has no tool name after the '='"
XML_MISSING_PARAMETER_NAME = "a <parameter=...> has no argument name after the '='"
XML_STRAY_TEXT = (
    "inside <function={name}> there is text that is not in a <parameter=...>...</parameter> "
    "pair: {text}"
)

MALFORMED_BLOCK = (
    "Your command block could not be read: {problem}. Nothing was run. "
    "Write it like this:\n{syntax}"
)
"""``problem``: one of the ``BLOCK_*`` phrases below."""

BLOCK_UNCLOSED = "the ``` block is not closed by a line that holds only ```"
BLOCK_EMPTY = "the block is empty; its first word must be a tool name"
BLOCK_BAD_QUOTES = "its quoting could not be split into words ({detail})"
BLOCK_MISPLACED_FENCE = (
    "a ``` fence must start its own line, with nothing before it and nothing after it but a "
    "language name such as bash"
)
"""A ``` in the middle of a line (``Run it: ```bash``) left the reply without a clean block."""


class ToolCallError(Exception):
    """The model's reply holds no usable tool call.

    ``message`` is shown to the model verbatim, so it is always one of the templates above, filled
    in; it never contains a traceback or a library's own error text.
    """

    def __init__(self, message: str) -> None:
        message = printable(message)
        super().__init__(message)
        self.message = message


_CONTROL = {
    code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\n\t"
}
"""C0 and C1 control characters other than newline and tab, as ``\\xNN`` escapes."""


def printable(text: str) -> str:
    """``text`` with control bytes (NUL, ESC, CR, ...) written as ``\\xNN``: messages echo parts
    of the model's reply, and a raw NUL or escape sequence would corrupt the transcript, a
    terminal, or a server that rejects them."""
    return text.translate(_CONTROL)


class TruncatedReply(ToolCallError):
    """The reply hit the output token limit before its tool call was complete.

    A separate type because it is the budget's fault, not the model's grasp of the format: the loop
    re-asks without counting it toward the consecutive format-error limit, and training can tell it
    apart from a malformed action. ``cause`` is the format error the cut reply produced.
    """

    def __init__(self, cause: ToolCallError | None = None) -> None:
        super().__init__(TRUNCATED_REPLY)
        self.cause = cause
