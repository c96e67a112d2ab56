"""Sandboxes that run commands and hold files: one async interface, local and Docker.

``import agentkit.runtime`` stays fast: the Docker SDK is imported only when a
:class:`DockerRuntime` starts or :func:`docker_available` is called.
"""

from agentkit.runtime.base import CommandResult, Runtime, SandboxError
from agentkit.runtime.docker import DockerRuntime, docker_available
from agentkit.runtime.docker_cleanup import reap_orphans
from agentkit.runtime.local import LocalRuntime

__all__ = [
    "CommandResult",
    "DockerRuntime",
    "LocalRuntime",
    "Runtime",
    "SandboxError",
    "docker_available",
    "reap_orphans",
]
