"""Where the harness runs each task's work: in its own process (``local``, the default) or as
Ray tasks on a cluster (``ray``). Both run the same jobs (:mod:`agentkit.evals.jobs`) and give
the same results, files and events; the harness does not know which one it talks to.

An executor serves one harness call at a time: the harness calls :meth:`Executor.start` with
its event handler, :meth:`Executor.run` once per job (concurrently, ``workers`` at a time), and
:meth:`Executor.stop` at the end however the run ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.events import EventHandler, HarnessEvent
from agentkit.evals.jobs import TaskJob, TaskOutcome
from agentkit.evals.run_folder import RunFolder

__all__ = [
    "Executor",
    "ExecutorConfig",
    "ExecutorSpec",
    "LocalExecutor",
    "LocalExecutorConfig",
    "RayExecutorConfig",
    "make_executor",
]


class LocalExecutorConfig(BaseModel):
    """Every task in the harness's own process and event loop."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local"] = "local"


class RayExecutorConfig(BaseModel):
    """Every task as a Ray task (see :mod:`agentkit.evals.ray_executor`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ray"] = "ray"
    address: str | None = None
    """``None``: a local Ray instance (the one ``RAY_ADDRESS`` or a ``ray start`` on this
    machine names), else a new one for the length of the run. ``"auto"`` or ``HOST:PORT``: an
    existing cluster. A process that already called ``ray.init()`` keeps its instance."""
    num_cpus: float = Field(default=1.0, gt=0)
    """CPUs Ray reserves per task, which bounds how many tasks a node runs at once."""
    cancel_grace_s: float = Field(default=120.0, ge=0)
    """On cancellation, how long to wait for cancelled tasks to close their sandboxes."""


ExecutorConfig = Annotated[LocalExecutorConfig | RayExecutorConfig, Field(discriminator="type")]


class Executor(ABC):
    """Runs jobs; see the module docstring for the calling order."""

    builds_images_up_front: ClassVar[bool] = True
    """Whether the harness should build every task's Docker image before the first job (in its
    own process, where the jobs run); otherwise each job builds its image where it runs."""

    @abstractmethod
    async def start(self, emit: EventHandler) -> None:
        """Get ready; ``emit`` receives the jobs' events (in the harness's process)."""

    @abstractmethod
    async def stop(self) -> None:
        """Release what :meth:`start` took; safe to call when it failed half-way."""

    @abstractmethod
    async def run(self, job: TaskJob, folder: RunFolder) -> TaskOutcome:
        """Run ``job``; its files are in ``folder`` when this returns. Raises only on
        cancellation (after cancelling the job, whose sandboxes close)."""


def _ignore(event: HarnessEvent) -> None:
    return None


class LocalExecutor(Executor):
    """Runs each job as a coroutine on the harness's event loop."""

    def __init__(self) -> None:
        self._emit: EventHandler = _ignore

    async def start(self, emit: EventHandler) -> None:
        self._emit = emit

    async def stop(self) -> None:
        self._emit = _ignore

    async def run(self, job: TaskJob, folder: RunFolder) -> TaskOutcome:
        return await job.execute(folder, self._emit)


ExecutorSpec = Literal["local", "ray"] | LocalExecutorConfig | RayExecutorConfig | Executor
"""What the harness's ``executor`` argument takes: a name, a config or a ready executor."""


def make_executor(spec: ExecutorSpec) -> Executor:
    """The executor for ``spec``. ``"ray"`` (or a :class:`RayExecutorConfig`) without the ``ray``
    package installed is a :class:`~agentkit.errors.UserFacingError` that says what to install."""
    if isinstance(spec, Executor):
        return spec
    if spec == "local" or isinstance(spec, LocalExecutorConfig):
        return LocalExecutor()
    if spec == "ray" or isinstance(spec, RayExecutorConfig):
        from agentkit.evals.ray_executor import RayExecutor

        return RayExecutor(spec if isinstance(spec, RayExecutorConfig) else RayExecutorConfig())
    raise ValueError(f"unknown executor {spec!r}; use 'local' or 'ray'")
