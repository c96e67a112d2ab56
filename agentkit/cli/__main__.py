"""``python -m agentkit.cli``: the same as the ``agentkit`` command."""

from agentkit.cli import main

main()
