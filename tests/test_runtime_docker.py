"""DockerRuntime against a real engine: limits, isolation and, above all, no leaked containers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from agentkit.runtime import DockerRuntime, SandboxError, reap_orphans
from agentkit.runtime.docker import MEMORY_KILL_NOTE
from agentkit.runtime.docker_cleanup import LABEL_OWNER, LABEL_RUN

pytestmark = pytest.mark.docker


def containers(**labels: str) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        filters = [f"{k}={v}" for k, v in labels.items()] or [LABEL_OWNER]
        return [
            c.name
            for c in client.containers.list(all=True, filters={"label": filters})
            if c.status != "removing"
        ]
    finally:
        client.close()


def wait_gone(run_id: str, seconds: float = 20.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := containers(**{LABEL_RUN: run_id})) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


async def test_memory_limit_kill_is_explained(docker_image: str) -> None:
    async with DockerRuntime(docker_image, memory="256m") as rt:
        r = await rt.run("python3 -c 'x = bytearray(1024**3); print(len(x))'")
        assert r.exit_code == 137
        assert MEMORY_KILL_NOTE.format(memory="256m") in r.output
        assert (await rt.run("echo still here")).output == "still here\n"


async def test_network_is_off(docker_image: str) -> None:
    async with DockerRuntime(docker_image) as rt:
        r = await rt.run(
            "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), 2)'"
        )
        assert r.exit_code != 0 and "unreachable" in r.output.lower()
        assert (await rt.run("ls /sys/class/net")).output.split() == ["lo"]


async def test_limits_and_labels_applied(docker_image: str) -> None:
    import docker

    async with DockerRuntime(
        docker_image,
        cpus=1.5,
        memory="300m",
        pids_limit=64,
        run_id="limits-check-" + os.environ["AGENTKIT_RUN_ID"],
    ) as rt:
        client = docker.from_env()
        info = client.api.inspect_container(rt.container_id)
        client.close()
        host = info["HostConfig"]
        assert host["NanoCpus"] == 1_500_000_000 and host["Memory"] == 300 * 1024**2
        assert host["PidsLimit"] == 64 and host["Init"] is True and host["NetworkMode"] == "none"
        assert info["Config"]["Labels"][LABEL_OWNER] == str(os.getpid())
        assert info["Config"]["WorkingDir"] == "/testbed"


async def test_no_container_left_after_close(docker_image: str) -> None:
    run_id = "close-" + os.environ["AGENTKIT_RUN_ID"]
    rt = DockerRuntime(docker_image, run_id=run_id)
    await rt.start()
    assert len(containers(**{LABEL_RUN: run_id})) == 1
    await rt.close()
    await rt.close()  # twice is fine
    assert wait_gone(run_id) == []


async def test_failed_start_leaves_nothing() -> None:
    run_id = "bad-" + os.environ["AGENTKIT_RUN_ID"]
    with pytest.raises(SandboxError, match="not found"):
        await DockerRuntime("agentkit-no-such-image:none", run_id=run_id).start()
    assert containers(**{LABEL_RUN: run_id}) == []


async def test_dead_container_raises_clear_error(docker_image: str) -> None:
    import docker

    async with DockerRuntime(docker_image) as rt:
        assert (await rt.run("echo up")).exit_code == 0
        client = docker.from_env()
        client.api.kill(rt.container_id)
        client.close()
        with pytest.raises(SandboxError, match="is gone.*exited with code 137"):
            await rt.run("echo hello")
        with pytest.raises(SandboxError, match="is gone"):
            await rt.run("echo again")


OWNER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from agentkit.runtime import DockerRuntime

    async def main():
        rt = DockerRuntime(sys.argv[1], run_id=sys.argv[2])
        await rt.start()
        await rt.run("echo warm")
        print("ready", flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_owner_death_leaves_no_container(docker_image: str, sig: signal.Signals) -> None:
    """Ctrl-C and SIGTERM run the cleanup hooks; SIGKILL relies on the stdin binding."""
    run_id = f"owner-{sig.name.lower()}-" + os.environ["AGENTKIT_RUN_ID"]
    child = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, docker_image, run_id],
        stdout=subprocess.PIPE,
        text=True,
        # SIGINT at its default even when this suite runs as a background job of a script (which
        # starts it ignored, and an ignored SIGINT stays ignored across exec).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert len(containers(**{LABEL_RUN: run_id})) == 1
        child.send_signal(sig)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert wait_gone(run_id) == []


def test_reap_orphans_removes_containers_of_dead_owners(docker_image: str) -> None:
    import docker

    client = docker.from_env()
    proc = subprocess.Popen(["true"])
    proc.wait()
    run_id = "orphan-" + os.environ["AGENTKIT_RUN_ID"]
    c = client.containers.create(
        docker_image,
        ["sleep", "300"],
        labels={
            LABEL_OWNER: str(proc.pid),
            LABEL_RUN: run_id,
            "agentkit.host": os.uname().nodename,
        },
    )
    try:
        c.start()
        assert c.name in reap_orphans(client)
        assert containers(**{LABEL_RUN: run_id}) == []
    finally:
        with contextlib.suppress(docker.errors.NotFound):  # reaped, as expected
            c.remove(force=True)
        client.close()


async def test_runtimes_start_while_others_are_being_removed(docker_image: str) -> None:
    """Starting a runtime reaps orphans, which lists agentkit containers; containers of other
    runtimes vanishing meanwhile (as in a harness with parallel workers) must not break it."""
    import asyncio

    async def cycle() -> int | None:
        async with DockerRuntime(docker_image, workdir="/tmp") as runtime:
            return (await runtime.run("true")).exit_code

    for _ in range(3):
        async with asyncio.TaskGroup() as group:  # a failure cancels and closes the siblings
            results = [group.create_task(cycle()) for _ in range(6)]
        assert [r.result() for r in results] == [0] * 6


SIGINT_IGNORED_OWNER = textwrap.dedent(
    """
    import asyncio, json, sys
    from agentkit.runtime import DockerRuntime

    async def main():
        async with DockerRuntime(sys.argv[1]) as rt:
            seen = {}
            for mode in ("persistent", "stateless"):
                r = await rt.run(
                    "echo started; sleep 60; echo never", timeout=1, stateless=mode == "stateless"
                )
                seen[mode] = [r.output, r.timed_out]
            seen["after"] = (await rt.run("echo after")).output
        print(json.dumps(seen))

    asyncio.run(main())
    """
)


def test_timeout_stops_the_command_when_the_owner_ignores_sigint(docker_image: str) -> None:
    """An owner started as a script's background job ignores SIGINT; its `docker` clients and the
    shells in the container must not (see tests/test_runtime_signals.py for the local runtime)."""
    done = subprocess.run(
        [sys.executable, "-c", SIGINT_IGNORED_OWNER, docker_image],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "persistent": ["started\n", True],
        "stateless": ["started\n", True],
        "after": "after\n",
    }
