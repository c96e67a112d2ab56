"""Every message about MCP servers: what a model is shown when a call does not give a plain
result, and what a user is shown when a server cannot start. Module constants, like
:mod:`agentkit.tools.errors`, so tests assert them exactly and they can be read in one place.

The result-shaping notes (clipped output, images...) are in :mod:`agentkit.tools.mcp_results`.
"""

from __future__ import annotations

# -- what the model is shown --------------------------------------------------------------------

TOOL_ERROR = (
    "The tool '{tool}' failed:\n{detail}\n"
    "Fix what the error points at (an argument, the input) and call it again, or use another tool."
)
"""The server ran the tool and it reported an error (``isError``)."""

CALL_FAILED = (
    "The MCP server '{server}' could not run '{tool}': {detail}. Check the arguments and try "
    "again, or use another tool."
)
"""The server answered the call with a protocol error, or its answer could not be read."""

CALL_TIMED_OUT = (
    "The call to '{tool}' did not finish within {seconds} seconds and was abandoned (the MCP "
    "server '{server}' may still be working on it). Ask for less at once, or use another tool."
)

SERVER_GONE = (
    "The MCP server '{server}' is not running any more (it exited or closed the connection), so "
    "'{tool}' was not run. Its tools cannot be used for the rest of this run; carry on with the "
    "other tools."
)

SERVER_LOST = (
    "The MCP server '{server}' stopped (it exited or closed the connection) while '{tool}' was "
    "running, so there is no result. Its tools cannot be used for the rest of this run; carry on "
    "with the other tools."
)

# -- what the user is shown ---------------------------------------------------------------------

START_FAILED = "Could not start the MCP server {server}: {reason}"
START_TIMED_OUT = "it did not answer within {seconds} seconds"
STDERR_TAIL = "\nThe last lines it wrote to stderr:\n{tail}"
UNKNOWN_TOOLS = "it has no tool named {names}; its tools are: {valid}"
DUPLICATE_TOOL = (
    "two of its tools would both be named '{name}' (tool names keep only letters, digits, _ and "
    "-); leave one out with tools: [...]"
)
DUPLICATE_ACROSS_SERVERS = (
    "Two tools of the MCP servers {servers} would both be named '{name}'. Give the servers "
    "names and set prefix: true so that their tool names differ, or leave one out with "
    "tools: [...]."
)
WRONG_LOOP = (
    "The tools of MCP server '{server}' were called from another event loop than the one that "
    "started the server; start the server (MCPToolset / mcp_tools) in the loop that runs the agents."
)
