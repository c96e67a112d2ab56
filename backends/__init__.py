"""Backends: implementations of :class:`agentkit.backend.Backend`."""

from agentkit.backend import Backend, BackendError, ContextExceeded
from agentkit.backends.gold import GOLD_LABEL, GoldBackend
from agentkit.backends.scripted import ScriptedBackend

__all__ = [
    "GOLD_LABEL",
    "Backend",
    "BackendError",
    "ContextExceeded",
    "GoldBackend",
    "ScriptedBackend",
]
