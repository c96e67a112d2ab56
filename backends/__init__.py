"""Backends: implementations of :class:`agentkit.backend.Backend`, and their configs.

Importing this package stays light: client libraries (``openai``, ``litellm``, ``torch``) are
imported only when a backend that needs them is used.
"""

from agentkit.backend import Backend, BackendError, ContextExceeded
from agentkit.backends.gold import GOLD_LABEL, GoldBackend
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.backends.retry import RetryPolicy, with_retries
from agentkit.backends.scripted import ScriptedBackend

__all__ = [
    "GOLD_LABEL",
    "Backend",
    "BackendError",
    "ContextExceeded",
    "GoldBackend",
    "OpenAIBackend",
    "OpenAIConfig",
    "RetryPolicy",
    "ScriptedBackend",
    "with_retries",
]
