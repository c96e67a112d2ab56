"""The Ray executor: each task's work runs as a Ray task, on whichever node Ray picks.

- **Sandboxes on the node.** The Ray task opens its sandboxes with the node's own Docker engine
  and builds the task's image there on first use; nothing is built up front by the driver (the
  process that runs the harness), which needs no Docker engine of its own.
- **No shared filesystem.** The Ray task writes into a scratch folder on its node and returns
  the task folder's files as data; the driver writes them into the run folder, which stays the
  single owner of the layout (:meth:`RunFolder.pack_task` / :meth:`RunFolder.unpack_task`).
- **Events.** Ray tasks send their events to a small actor, which the driver drains a few
  times a second and once more when a task's result arrives, before its ``TaskFinished``.
- **Cancellation.** Cancelling :meth:`RayExecutor.run` (Ctrl-C) cancels its Ray task: Ray raises
  ``KeyboardInterrupt`` in the worker, ``asyncio.run`` turns it into the cancellation of the
  job, whose ``async with`` blocks close its sandboxes; the files written so far (the agent's
  finished steps) still come back. The driver waits for that up to ``cancel_grace_s``.

``ray`` is imported only here, and only when an executor is made: without it installed,
:class:`RayExecutor` raises :class:`RayMissingError`, which names the extra to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from types import ModuleType
from typing import Any

from agentkit.errors import UserFacingError, unexpected_error_message
from agentkit.evals.events import EventHandler, HarnessEvent
from agentkit.evals.executors import Executor, RayExecutorConfig
from agentkit.evals.jobs import TaskJob, TaskOutcome
from agentkit.evals.run_folder import RunFolder, TaskResult

__all__ = ["RAY_MISSING", "RayExecutor", "RayMissingError"]

RAY_MISSING = "the Ray executor needs the `ray` extra: pip install 'agentkit[ray]'"
POLL_INTERVAL_S = 0.2
"""How often the driver drains the events of running tasks."""
STOP_TIMEOUT_S = 10.0
"""How long the last drain of events may take at the end of a run."""


class RayMissingError(UserFacingError, ImportError):
    """``ray`` is not installed."""


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise RayMissingError(RAY_MISSING) from exc
    return ray


class RayExecutor(Executor):
    """Runs each job as a Ray task; see the module docstring."""

    builds_images_up_front = False

    def __init__(self, config: RayExecutorConfig | None = None) -> None:
        self.config = config or RayExecutorConfig()
        self._ray = import_ray()
        self._started_ray = False
        self._emit: EventHandler | None = None
        self._sink: Any = None
        self._remote: Any = None
        self._poller: asyncio.Task[None] | None = None
        self._drain_lock: asyncio.Lock | None = None

    async def start(self, emit: EventHandler) -> None:
        ray = self._ray
        if self._emit is not None:
            raise RuntimeError("this RayExecutor is already serving a run")
        self._emit = emit
        self._drain_lock = asyncio.Lock()  # this run's event loop
        if not ray.is_initialized():
            address = self.config.address
            try:
                ray.init(address=address)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise UserFacingError(f"Cannot start or reach {where}: {exc}") from exc
            self._started_ray = True
        self._sink = ray.remote(num_cpus=0)(_EventSink).remote()
        self._remote = ray.remote(_run_on_node).options(
            num_cpus=self.config.num_cpus, max_retries=0
        )
        self._poller = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._sink is not None:
            with contextlib.suppress(self._ray.exceptions.RayError, TimeoutError):
                await asyncio.wait_for(self._drain(), STOP_TIMEOUT_S)  # a cluster may be dying
            with contextlib.suppress(self._ray.exceptions.RayError):
                self._ray.kill(self._sink)
            self._sink = None
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False
        self._emit = None

    async def run(self, job: TaskJob, folder: RunFolder) -> TaskOutcome:
        ray = self._ray
        instance_id, attempt = job.task.instance_id, job.attempt
        try:
            ref = self._remote.remote(job, folder.run_id, self._sink)
        except Exception as exc:  # pickling: backend_for, tools and task must pickle (cloudpickle)
            what = (
                "cannot send this task to a Ray worker (backend_for must pickle with cloudpickle)"
            )
            return _failed(instance_id, exc, what)
        try:
            outcome: TaskOutcome = await ref
        except asyncio.CancelledError:
            await self._cancel(ref, job, folder)
            raise
        except ray.exceptions.RayError as exc:  # the worker died, was killed, or could not unpickle
            outcome = _failed(
                instance_id, getattr(exc, "cause", None) or exc, "the Ray task failed", str(exc)
            )
        with contextlib.suppress(ray.exceptions.RayError):
            await self._drain()  # this task's last events, before the harness says it finished
        if outcome.files:
            try:
                folder.unpack_task(instance_id, attempt, outcome.files)
            except OSError as exc:
                return _failed(
                    instance_id, exc, f"cannot write the task's files into {folder.root}"
                )
            outcome = outcome.model_copy(update={"files": {}})
        return outcome

    async def _cancel(self, ref: Any, job: TaskJob, folder: RunFolder) -> None:
        """Cancel the Ray task, wait for it to close its sandboxes, and keep what it wrote."""
        self._ray.cancel(ref)
        try:
            outcome: TaskOutcome = await asyncio.wait_for(_result(ref), self.config.cancel_grace_s)
        except (self._ray.exceptions.RayError, TimeoutError):  # never started, or gone
            return
        with contextlib.suppress(OSError, ValueError):
            folder.unpack_task(job.task.instance_id, job.attempt, outcome.files)

    async def _drain(self) -> None:
        assert self._drain_lock is not None
        async with self._drain_lock:
            events: list[HarnessEvent] = await self._sink.drain.remote()
            for event in events:
                assert self._emit is not None
                self._emit(event)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            with contextlib.suppress(self._ray.exceptions.RayError):
                await self._drain()


async def _result(ref: Any) -> TaskOutcome:
    outcome: TaskOutcome = await ref
    return outcome


def _failed(
    instance_id: str, exc: BaseException, what: str, details: str | None = None
) -> TaskOutcome:
    """The task's error when Ray, not the job, failed; the details go to ``error.log``."""
    import traceback

    message = f"{what}: {unexpected_error_message(exc)}"
    text = details or "".join(traceback.format_exception(exc))
    return TaskOutcome(result=TaskResult(instance_id=instance_id, error=message), traceback=text)


class _EventSink:
    """A Ray actor: the running tasks' events, in the order each task sent them, until the
    driver drains them."""

    def __init__(self) -> None:
        self._events: list[HarnessEvent] = []

    def put(self, event: HarnessEvent) -> None:
        self._events.append(event)

    def drain(self) -> list[HarnessEvent]:
        events, self._events = self._events, []
        return events


class _Sender:
    """A job's ``emit`` on a worker: each event goes to the sink without waiting; :meth:`flush`
    waits for the last (an actor runs one caller's calls in order, so for all of them)."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.last: Any = None

    def emit(self, event: HarnessEvent) -> None:
        self.last = self.sink.put.remote(event)

    def flush(self) -> None:
        import ray

        if self.last is not None:
            with contextlib.suppress(ray.exceptions.RayError):
                ray.get(self.last, timeout=30)


def _run_on_node(job: TaskJob, run_id: str, sink: Any) -> TaskOutcome:
    """The Ray task: run ``job`` against a scratch run folder on this node, return its outcome
    with the task folder's files."""
    sender = _Sender(sink)
    with tempfile.TemporaryDirectory(prefix="agentkit-ray-") as scratch:
        folder = RunFolder(Path(scratch), run_id)
        try:
            outcome = asyncio.run(_cancellable(job.execute(folder, sender.emit)))
        except (KeyboardInterrupt, asyncio.CancelledError):  # ray.cancel; the sandboxes closed
            outcome = TaskOutcome(
                result=TaskResult(instance_id=job.task.instance_id, error="cancelled")
            )
        finally:
            sender.flush()
        files = folder.pack_task(job.task.instance_id, job.attempt)
    return outcome.model_copy(update={"files": files})


async def _cancellable(work: Coroutine[Any, Any, TaskOutcome]) -> TaskOutcome:
    """``work``, cancelled when ``ray.cancel`` interrupts this worker. Ray raises the interrupt
    in the main thread without a real signal, which does not wake an event loop waiting for I/O
    (a sandbox command) unless the loop itself handles SIGINT; so it does, here."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    try:
        assert task is not None
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (ValueError, RuntimeError):  # not the main thread: the interrupt comes as is
        return await work
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGINT)
