"""Shared test set-up.

Docker tests (``@pytest.mark.docker``) need a running engine and the base image. Without them they
are skipped on a developer machine, but fail when ``CI`` is set: CI must really run them.

Every container a runtime starts during the test session carries this session's id in the
``agentkit.session`` label (set through ``AGENTKIT_SESSION_ID``, inherited by child processes — a
CLI subprocess whose harness labels its containers with its own pid and run-folder id included);
containers of this process also carry its run id (``AGENTKIT_RUN_ID``) and pid. At the end of the
session any such container still present is removed and the session fails loudly — a leak is a bug.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentkit.runtime.docker_cleanup import LABEL_OWNER, LABEL_RUN, LABEL_SESSION, SESSION_ENV

if TYPE_CHECKING:
    import docker

    from agentkit.backends.vllm_server import VLLMServer

TEST_IMAGE = os.environ.get("AGENTKIT_TEST_IMAGE", "agentkit-base:bookworm")
RUN_ID = f"pytest-{uuid.uuid4().hex[:12]}"
os.environ["AGENTKIT_RUN_ID"] = RUN_ID
SESSION_ID = f"pytest-session-{uuid.uuid4().hex[:12]}"
os.environ[SESSION_ENV] = SESSION_ID

_docker_problem: str | None | bool = False  # False: not checked yet


def docker_problem() -> str | None:
    """Why Docker tests cannot run here, or None when they can (checked once per session)."""
    global _docker_problem
    if _docker_problem is False:
        from agentkit.runtime import docker_available

        _docker_problem = docker_available()
        if _docker_problem is None:
            import docker

            client = docker.from_env()
            try:
                client.images.get(TEST_IMAGE)
            except docker.errors.ImageNotFound:
                _docker_problem = f"test image {TEST_IMAGE} is not built"
            finally:
                client.close()
    return _docker_problem  # type: ignore[return-value]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker") is None:
        return
    problem = docker_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Docker tests must run in CI but cannot: {problem}", pytrace=False)
    pytest.skip(f"Docker not available: {problem}")


@pytest.fixture(scope="session")
def docker_image() -> str:
    return TEST_IMAGE


def session_containers(client: docker.DockerClient) -> list[dict[str, Any]]:
    """Containers (running or not) started during this session, by this process or any child.

    Found by the ``agentkit.session`` label, and — for containers that predate it — by this
    process's run id or pid. Each entry is the engine's low-level listing (``Id``, ``Names``,
    ``State``, ``Labels``): one call, so a container removed meanwhile cannot make it fail.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for entry in client.api.containers(
        all=True, filters={"label": f"{LABEL_SESSION}={SESSION_ID}"}
    ):
        by_id[entry["Id"]] = entry
    for entry in client.api.containers(all=True, filters={"label": LABEL_OWNER}):
        labels = entry.get("Labels") or {}
        if labels.get(LABEL_RUN) == RUN_ID or labels.get(LABEL_OWNER) == str(os.getpid()):
            by_id[entry["Id"]] = entry
    return list(by_id.values())


@pytest.fixture(scope="session")
def list_session_containers() -> Callable[[docker.DockerClient], list[dict[str, Any]]]:
    """:func:`session_containers`, the leak check's own query, for tests that check it."""
    return session_containers


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers() -> Iterator[None]:
    """After the whole session: no container started by it may remain."""
    yield
    if _docker_problem is not None:  # never checked (no docker test ran) or no engine
        return
    import docker

    client = docker.from_env()
    try:
        # A container in "removing" is already on its way out (auto-remove after its owner went).
        leaked = [e for e in session_containers(client) if e.get("State") != "removing"]
        for entry in leaked:
            try:
                client.api.remove_container(entry["Id"], force=True)
            except docker.errors.NotFound:
                continue  # auto-removed meanwhile
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise
    finally:
        client.close()
    if leaked:
        names = ", ".join(
            f"{(e.get('Names') or [e['Id']])[0].lstrip('/')} ({e.get('State')})" for e in leaked
        )
        pytest.fail(f"containers leaked by this test session (now removed): {names}")


# -- vLLM ---------------------------------------------------------------------------------------
#
# vLLM tests (``@pytest.mark.vllm``) need an interpreter that can import vllm (see
# agentkit.backends.vllm_server.default_python): skipped without one on a developer machine,
# failing when ``CI`` is set. They share one real server per session (start-up takes a minute and
# generation keeps two cores busy); every process of every server started during the session must
# be gone at its end.

_vllm_problem: str | None | bool = False  # False: not checked yet


def vllm_problem_here() -> str | None:
    """Why vLLM tests cannot run here, or None when they can (checked once per session)."""
    global _vllm_problem
    if _vllm_problem is False:
        from agentkit.backends.vllm_server import default_python, vllm_problem

        problem = vllm_problem(default_python())
        _vllm_problem = (
            None
            if problem is None
            else f"{problem} (create .venv-vllm or set AGENTKIT_VLLM_PYTHON)"
        )
    return _vllm_problem  # type: ignore[return-value]


def require_vllm() -> None:
    problem = vllm_problem_here()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"vLLM tests must run in CI but cannot: {problem}", pytrace=False)
    pytest.skip(f"vLLM not available: {problem}")


class _VLLMGate:
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if item.get_closest_marker("vllm") is not None:
            require_vllm()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "vllm: needs an interpreter with vLLM; shares one real server per session"
    )
    config.pluginmanager.register(_VLLMGate(), "agentkit-vllm-gate")


@pytest.fixture(scope="session")
def tiny_tool_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny chat model, fine-tuned to emit ``<tool_call>`` blocks; built once per session."""
    from agentkit.backends.tiny_model import build_tiny_chat_model

    return build_tiny_chat_model(
        tmp_path_factory.mktemp("tiny-model") / "model", teach_tool_calls=True
    )


@pytest.fixture(scope="session")
def vllm_server(
    tiny_tool_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VLLMServer]:
    """One real vLLM server for the whole session, serving :func:`tiny_tool_model` with the
    hermes tool-call parser on."""
    from agentkit.backends.vllm_server import VLLMConfig, VLLMServer

    require_vllm()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = VLLMServer(VLLMConfig(model_path=str(tiny_tool_model), log_path=str(log)))
    server.start_sync()
    try:
        yield server
    finally:
        server.stop_sync()


@pytest.fixture(scope="session")
def rl_vllm_server(
    tiny_tool_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VLLMServer]:
    """One vLLM server that takes weight syncs (dev-mode routes, run-time LoRA adapters up to
    rank 8, two at a time) for every RL test of the session, serving :func:`tiny_tool_model`.
    Shared because a vLLM start costs a minute; a test that needs the original weights syncs
    them in first, since an earlier test may have changed them."""
    from agentkit.backends.vllm_server import VLLMServer
    from agentkit.training.weight_sync import rl_server_config

    require_vllm()
    log = tmp_path_factory.mktemp("rl-vllm") / "server.log"
    config = rl_server_config(
        tiny_tool_model, max_lora_rank=8, max_loras=2, startup_timeout_s=300, log_path=str(log)
    )
    server = VLLMServer(config)
    server.start_sync()
    try:
        yield server
    finally:
        server.stop_sync()


def _live_vllm_processes() -> list[tuple[int, str]]:
    """(pid, command) of running processes that belong to a vLLM server this session started."""
    from agentkit.backends.vllm_server import SERVER_ENV_MARK

    run = f"AGENTKIT_RUN_ID={RUN_ID}".encode()
    mark = f"{SERVER_ENV_MARK}=".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue  # gone meanwhile, or not ours to read
        if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
            continue  # already dead, waiting to be reaped
        if run in environ and any(v.startswith(mark) for v in environ):
            found.append((int(entry.name), command.decode(errors="replace")[:120]))
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leaked_vllm_servers() -> Iterator[None]:
    """After the whole session: no process of a vLLM server started by it may remain."""
    yield
    if not Path("/proc/self/environ").exists():
        return
    leaked = _live_vllm_processes()
    for pid, _ in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    if leaked:
        listing = "; ".join(f"{pid}: {command}" for pid, command in leaked)
        pytest.fail(f"vLLM server processes leaked by this test session (now killed): {listing}")
