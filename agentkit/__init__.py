"""agentkit: build, run, evaluate and train software-engineering agents.

Kept import-light on purpose: ``import agentkit`` and ``agentkit --help`` must stay fast, so heavy
modules (backends, training) are imported only where they are used.
"""

__version__ = "0.1.0"
