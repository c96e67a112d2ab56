"""Shared test set-up.

Docker tests (``@pytest.mark.docker``) need a running engine and the base image. Without them they
are skipped on a developer machine, but fail when ``CI`` is set: CI must really run them.

Every container a runtime starts during the test session carries this session's run id (set
through ``AGENTKIT_RUN_ID``, inherited by child processes too); at the end of the session any such
container still present is removed and the session fails loudly — a leak is a bug.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

TEST_IMAGE = os.environ.get("AGENTKIT_TEST_IMAGE", "agentkit-base:bookworm")
RUN_ID = f"pytest-{uuid.uuid4().hex[:12]}"
os.environ["AGENTKIT_RUN_ID"] = RUN_ID

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


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers() -> Iterator[None]:
    """After the whole session: no container started by it may remain."""
    yield
    if _docker_problem is not None:  # never checked (no docker test ran) or no engine
        return
    import docker

    client = docker.from_env()
    try:
        leaked = [
            c
            for c in client.containers.list(all=True, filters={"label": "agentkit.owner"})
            if c.labels.get("agentkit.run") == RUN_ID
            or c.labels.get("agentkit.owner") == str(os.getpid())
        ]
        for container in leaked:
            container.remove(force=True)
    finally:
        client.close()
    if leaked:
        names = ", ".join(f"{c.name} ({c.status})" for c in leaked)
        pytest.fail(f"containers leaked by this test session (now removed): {names}")
