"""Backends: implementations of :class:`agentkit.backend.Backend`, their configs and a registry
that builds one from a config, a YAML file or a short form such as ``openai:MODEL@URL``.

Importing this package stays light: client libraries (``openai``, ``litellm``, ``torch``) are
imported only when a backend that needs them is used.
"""

from agentkit.backend import Backend, BackendError, ContextExceeded
from agentkit.backends.gold import GOLD_LABEL, GoldBackend
from agentkit.backends.openai_backend import OpenAIBackend, OpenAIConfig
from agentkit.backends.registry import (
    BackendConfig,
    BackendConfigError,
    GoldConfig,
    ScriptedConfig,
    VLLMBackend,
    build_backend,
    close_backend,
    dump_backend_config,
    load_backend_config,
    parse_backend_spec,
)
from agentkit.backends.retry import RetryPolicy, with_retries
from agentkit.backends.scripted import ScriptedBackend

__all__ = [
    "GOLD_LABEL",
    "Backend",
    "BackendConfig",
    "BackendConfigError",
    "BackendError",
    "ContextExceeded",
    "GoldBackend",
    "GoldConfig",
    "OpenAIBackend",
    "OpenAIConfig",
    "RetryPolicy",
    "ScriptedBackend",
    "ScriptedConfig",
    "VLLMBackend",
    "build_backend",
    "close_backend",
    "dump_backend_config",
    "load_backend_config",
    "parse_backend_spec",
    "with_retries",
]
