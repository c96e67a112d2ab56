"""A runtime in a Docker container: isolated, resource-limited, and never leaked.

Lifecycle goes through the Docker SDK (imported only when a container starts, so importing
:mod:`agentkit.runtime` stays fast). Commands go through one ``docker exec -i CID bash`` process
kept open for the runtime's life: a command costs a write and a read on a pipe instead of a new
``docker exec`` (tens of milliseconds each). ``stateless=True`` still pays that price on purpose.
Files move with the engine's archive API. Cleanup is explained in
:mod:`agentkit.runtime.docker_cleanup`.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from agentkit.runtime import docker_cleanup as cleanup
from agentkit.runtime import docker_files as files
from agentkit.runtime.base import SandboxError
from agentkit.runtime.output import DEFAULT_OUTPUT_LIMIT, RawRun
from agentkit.runtime.process import GROUP_SIGNAL_SCRIPT, STATELESS_WRAPPER, run_oneshot
from agentkit.runtime.shell import NONINTERACTIVE_ENV, SHELL_FLAGS, ShellSession
from agentkit.runtime.shell_runtime import ShellRuntime
from agentkit.runtime.spawned import spawn

MEMORY_KILL_NOTE = (
    "[exit code 137: the process was killed with SIGKILL; in this sandbox that usually means it "
    "went over the memory limit ({memory})]"
)
CONTAINER_GONE = "the sandbox container {name} is gone ({reason}); start a new runtime"
NO_ENGINE = (
    "no Docker engine answers ({error}). Start one: install it (`apt-get install -y docker.io`), "
    "run `dockerd > /tmp/dockerd.log 2>&1 &` and wait until `docker info` works; or run with "
    "`--runtime local` to use a host work dir instead."
)


def docker_available() -> str | None:
    """None when a Docker engine answers; otherwise a message saying how to get one."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"; we say why
        return NO_ENGINE.format(error=f"{type(exc).__name__}: {exc}".strip())
    if shutil.which("docker") is None:
        return NO_ENGINE.format(error="the engine answers but the `docker` client is not on PATH")
    return None


class DockerRuntime(ShellRuntime):
    """Commands and files in a fresh container of ``image``.

    The container runs with ``--init``, no network by default, CPU / memory (no extra swap) /
    pids limits, labels that name its owner (see :mod:`~agentkit.runtime.docker_cleanup`), and
    ``workdir`` as working directory. ``run_id`` groups the containers of one run (default: the
    ``AGENTKIT_RUN_ID`` environment variable, else a fresh id).
    """

    def __init__(
        self,
        image: str,
        workdir: str = "/testbed",
        cpus: float = 2.0,
        memory: str = "4g",
        pids_limit: int = 1024,
        network: str = "none",
        env: dict[str, str] | None = None,
        run_id: str | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> None:
        super().__init__()
        if not posixpath.isabs(workdir):
            raise ValueError(f"workdir must be an absolute path inside the container: {workdir!r}")
        self.image = image
        self.workdir = workdir
        self.cpus = cpus
        self.memory = memory
        self.pids_limit = pids_limit
        self.network = network
        self.env = dict(env or {})
        self.run_id = run_id or os.environ.get("AGENTKIT_RUN_ID") or uuid.uuid4().hex[:12]
        self.output_limit = output_limit
        self.container_id: str | None = None
        self.name = f"agentkit-{self.run_id[:24]}-{uuid.uuid4().hex[:8]}"
        self._client: Any = None
        self._attach: Any = None
        self._started_at = 0.0
        self._gone: str | None = None
        self._closed = False
        self._start_lock = asyncio.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Create and start the container (idempotent); reaps orphans of dead owners first."""
        if self.container_id is not None:
            return
        if self._closed:
            raise SandboxError("this DockerRuntime was closed; create a new one")
        async with self._start_lock:
            if self.container_id is None:
                if shutil.which("docker") is None:
                    raise SandboxError(NO_ENGINE.format(error="`docker` client not on PATH"))
                await asyncio.to_thread(self._create)

    def _create(self) -> None:
        import docker

        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxError(NO_ENGINE.format(error=exc)) from exc
        cleanup.reap_orphans(client)
        self._started_at = time.time()
        try:
            api = client.api
            host_config = api.create_host_config(
                init=True,
                auto_remove=True,
                network_mode=self.network,
                nano_cpus=int(self.cpus * 1e9),
                mem_limit=self.memory,
                memswap_limit=self.memory,
                pids_limit=self.pids_limit,
            )
            cid: str = api.create_container(
                self.image,
                command=cleanup.KEEPALIVE_COMMAND,
                name=self.name,
                stdin_open=True,
                detach=False,  # with stdin_open: StdinOnce, so the first detach closes stdin
                labels=cleanup.owner_labels(self.run_id),
                working_dir=self.workdir,
                environment={**NONINTERACTIVE_ENV, **self.env},
                host_config=host_config,
            )["Id"]
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"image {self.image!r} not found (images cannot be pulled "
                f"here; build it first): {exc.explanation}"
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxError(
                f"could not create a container from {self.image!r}: {exc.explanation or exc}"
            ) from exc
        cleanup.track(cid, self.name)
        try:
            # Attach before start: there is no moment when the container runs without the binding.
            self._attach = api.attach_socket(cid, params={"stdin": 1, "stream": 1})
            api.start(cid)
        except docker.errors.APIError as exc:
            cleanup.remove_container(client, cid)
            raise SandboxError(
                f"could not start a container from {self.image!r}: {exc.explanation or exc}"
            ) from exc
        self._client = client
        self.container_id = cid

    async def close(self) -> None:
        """Stop the shell and remove the container (kill, not a graceful 10 s stop)."""
        self._closed = True
        await self._close_session()
        cid, self.container_id = self.container_id, None
        if cid is not None and self._client is not None:
            await asyncio.to_thread(cleanup.remove_container, self._client, cid)
        if self._attach is not None:
            # The attach socket is a SocketIO wrapper: closing it leaves the socket itself open.
            raw = getattr(self._attach, "_sock", None)
            self._attach.close()
            if raw is not None:
                raw.close()
            self._attach = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- health ----------------------------------------------------------------------------

    async def _check_sandbox(self) -> None:
        if self._gone is None and self.container_id is not None:
            self._gone = await asyncio.to_thread(self._why_gone)
        if self._gone is not None:
            raise SandboxError(CONTAINER_GONE.format(name=self.name, reason=self._gone))

    def _why_gone(self) -> str | None:
        """None while the container runs; otherwise the best explanation the engine still has."""
        import docker

        try:
            state = self._client.api.inspect_container(self.container_id)["State"]
            if state.get("Running"):
                return None
            if state.get("OOMKilled"):
                return f"killed for going over the memory limit ({self.memory})"
            return f"it exited with code {state.get('ExitCode')}"
        except docker.errors.NotFound:
            pass  # auto-removed after it stopped; the engine's event log may still say why
        events = self._client.api.events(
            since=int(self._started_at) - 1,
            until=int(time.time()) + 1,
            decode=True,
            filters={"container": self.container_id},
        )
        reason = "it was removed"
        for event in events:
            action = event.get("Action") or event.get("status")
            if action == "oom":
                return f"killed for going over the memory limit ({self.memory})"
            if action == "die":
                code = event.get("Actor", {}).get("Attributes", {}).get("exitCode", "?")
                reason = f"it exited with code {code}" + (
                    " (killed: SIGKILL, by `docker kill`, the memory limit or the engine)"
                    if code == "137"
                    else ""
                )
        return reason

    def _extra_notes(self, raw: RawRun) -> tuple[str, ...]:
        if raw.exit_code == 137:
            return (MEMORY_KILL_NOTE.format(memory=self.memory),)
        return ()

    # ---- commands --------------------------------------------------------------------------

    def _new_session(self) -> ShellSession:
        assert self.container_id is not None
        return ShellSession(
            ["docker", "exec", "-i", "-w", self.workdir, self.container_id, "bash", *SHELL_FLAGS],
            self._signal_group,
            workdir=self.workdir,
            env=self.env,
        )

    async def _signal_group(self, sig: int, pgid: int | str, spare_leader: bool) -> None:
        """Signal a process group inside the container (one short ``docker exec``)."""
        if self.container_id is None:
            return
        proc = await spawn(
            "docker",
            "exec",
            self.container_id,
            "bash",
            "-c",
            GROUP_SIGNAL_SCRIPT,
            "bash",
            str(int(sig)),
            str(pgid),
            "1" if spare_leader else "0",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    async def _run_stateless(self, command: str, timeout: float | None) -> RawRun:
        assert self.container_id is not None
        pidfile = f"/tmp/.agentkit-stateless-{uuid.uuid4().hex}"
        env_flags = [
            arg for k, v in {**NONINTERACTIVE_ENV, **self.env}.items() for arg in ("-e", f"{k}={v}")
        ]

        async def on_timeout(sig: int, pid: int) -> None:
            await self._signal_group(sig, pidfile, False)

        return await run_oneshot(
            [
                "docker",
                "exec",
                "-w",
                self.workdir,
                *env_flags,
                self.container_id,
                "bash",
                *SHELL_FLAGS,
                "-c",
                STATELESS_WRAPPER,
                "bash",
                pidfile,
                command,
            ],
            timeout=timeout,
            on_timeout=on_timeout,
        )

    # ---- files -----------------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workdir, path))

    async def _api(self, fn: Any, *args: Any) -> Any:
        """Call the engine in a thread; map a vanished container to :class:`SandboxError`."""
        import docker

        await self.start()
        if self._gone is not None:
            await self._check_sandbox()
        try:
            return await asyncio.to_thread(fn, *args)
        except docker.errors.APIError:
            # A container killed mid-call fails in many ways (404, a 500 about its file
            # system); when it is gone, that is what the caller needs to hear.
            await self._check_sandbox()
            raise

    async def read_file(self, path: str) -> bytes:
        """Bytes of a file in the container; FileNotFoundError / IsADirectoryError as on a host."""
        import docker

        target = self._abs(path)
        for _ in range(16):  # follow symlinks, at most this many hops
            try:
                data, link = await self._api(self._read_archive, target)
            except docker.errors.NotFound as exc:
                raise FileNotFoundError(f"no such file in the sandbox: {target}") from exc
            if data is not None:
                return data
            assert link is not None
            target = link
        raise OSError(f"too many levels of symbolic links: {self._abs(path)}")

    def _read_archive(self, path: str) -> tuple[bytes | None, str | None]:
        stream, _ = self._client.api.get_archive(self.container_id, path)
        with files.spool_stream(stream) as archive:
            return files.single_file(archive, path)

    async def write_file(self, path: str, content: bytes | str) -> None:
        """Create or replace a file (parents created); an existing file keeps its permissions."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        target = self._abs(path)
        await self._api(self._write_archive, target, data)

    def _write_archive(self, path: str, data: bytes) -> None:
        self._client.api.put_archive(
            self.container_id, "/", files.file_archive(path, data, self._mode_of(path))
        )

    def _mode_of(self, path: str) -> int:
        """Permission bits of an existing file (so rewriting a script keeps it executable)."""
        from docker.utils import decode_json_header

        api = self._client.api
        res = api.head(
            api._url("/containers/{0}/archive", self.container_id), params={"path": path}
        )
        if res.status_code == 404:
            return 0o644
        res.raise_for_status()
        header = res.headers.get("X-Docker-Container-Path-Stat")
        stat = decode_json_header(header) if header else {}
        if stat.get("mode", 0) & (1 << 31):  # Go's ModeDir bit
            raise IsADirectoryError(f"is a directory, not a file: {path}")
        return int(stat.get("mode", 0o644)) & 0o777 or 0o644

    async def upload(self, local_path: str | Path, remote_path: str) -> None:
        """Copy a host file or directory to ``remote_path`` (the copy's own path; a directory
        merges into an existing one). Entries are owned by root."""
        local = Path(local_path)
        if not local.exists():
            raise FileNotFoundError(f"no such file or directory: {local}")
        target = self._abs(remote_path)

        def put() -> None:
            with files.tree_archive(local, target) as archive:
                self._client.api.put_archive(self.container_id, "/", archive)

        await self._api(put)

    async def download(self, remote_path: str, local_path: str | Path) -> None:
        """Copy a file or directory from the container to ``local_path`` (the copy's own path)."""
        import docker

        target = self._abs(remote_path)

        def get() -> None:
            stream, _ = self._client.api.get_archive(self.container_id, target)
            with files.spool_stream(stream) as archive:
                files.extract_to(archive, target, Path(local_path))

        try:
            await self._api(get)
        except docker.errors.NotFound as exc:
            raise FileNotFoundError(f"no such file or directory in the sandbox: {target}") from exc
