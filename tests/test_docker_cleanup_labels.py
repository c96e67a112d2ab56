"""The ``agentkit.session`` label: how the test session's leak check sees containers of children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from agentkit.runtime.docker_cleanup import (
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_SESSION,
    SESSION_ENV,
    owner_labels,
    remove_container,
)


def test_session_label_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SESSION_ENV, "session-abc")
    labels = owner_labels("run-1")
    assert labels[LABEL_SESSION] == "session-abc"
    assert labels[LABEL_RUN] == "run-1"
    assert labels[LABEL_OWNER] == str(os.getpid())


@pytest.mark.parametrize("value", [None, ""])
def test_session_label_absent_without_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(SESSION_ENV, raising=False)
    else:
        monkeypatch.setenv(SESSION_ENV, value)
    labels = owner_labels("run-1")
    assert LABEL_SESSION not in labels
    assert labels[LABEL_RUN] == "run-1"


def test_the_test_session_exports_its_id() -> None:
    """conftest sets it in ``os.environ``, so every child process inherits it."""
    assert os.environ[SESSION_ENV].startswith("pytest-session-")


CHILD_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from agentkit.runtime import DockerRuntime

    async def main():
        rt = DockerRuntime(sys.argv[1], run_id=sys.argv[2])
        await rt.start()
        print(rt.container_id, flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


@pytest.mark.docker
def test_leak_query_sees_containers_of_child_processes(
    docker_image: str, list_session_containers: Callable[[Any], list[dict[str, Any]]]
) -> None:
    """A child with its own run id (like a CLI run folder's) and pid: only the session label
    ties its container to this session, and the leak check's query finds it."""
    import docker

    run_id = f"child-run-{os.getpid()}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SCRIPT, docker_image, run_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    client = docker.from_env()
    cid = ""
    try:
        assert child.stdout is not None
        cid = child.stdout.readline().strip()
        assert cid, "the child did not start its container"
        found = {entry["Id"]: entry for entry in list_session_containers(client)}
        assert cid in found
        labels = found[cid]["Labels"]
        assert labels[LABEL_SESSION] == os.environ[SESSION_ENV]
        # What the check used before the session label could not see this container:
        assert labels[LABEL_RUN] != os.environ["AGENTKIT_RUN_ID"]
        assert labels[LABEL_OWNER] == str(child.pid) != str(os.getpid())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if cid:
            # The stdin binding ends it soon; remove it now so the session's own check is quiet.
            with contextlib.suppress(docker.errors.NotFound):
                remove_container(client, cid)
        client.close()
