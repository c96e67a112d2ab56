"""A program interrupted mid-command exits quietly: what its runtimes spawned is reaped first.

Ctrl-C cancels every task; a ``docker exec`` started to signal a command group may still run
when ``asyncio.run`` closes its loop, and exiting into a closed loop makes Python print
tracebacks after the user's one-line message. Each scenario runs in a fresh interpreter, since
the warnings appear at loop close and interpreter exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENARIO = """
import asyncio, sys, time
from agentkit.runtime.spawned import reaping_children, spawn

async def main():
    # Left running, as a signal sender is when Ctrl-C cancels its caller.
    await spawn("sleep", "0.5", stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(0)

entry = reaping_children(main()) if sys.argv[1] == "reap" else main()
asyncio.run(entry)
time.sleep(1.0)  # the process ends after the loop closed, unless it was reaped
print("done")
"""


def run_scenario(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCENARIO), mode],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_process_left_running_into_a_closed_loop_prints_tracebacks() -> None:
    """The failure the reaper exists for; if Python stops printing these, the reaper may go."""
    done = run_scenario("plain")
    assert done.stdout.strip() == "done"
    assert "is closed" in done.stderr, done.stderr


def test_reaping_children_kills_leftovers_and_exits_quietly() -> None:
    done = run_scenario("reap")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == "", done.stderr


async def test_reap_spawned_kills_a_running_process() -> None:
    from agentkit.runtime.spawned import reap_spawned, spawn

    proc = await spawn("sleep", "30")
    await reap_spawned(grace_s=5.0)
    assert proc.returncode is not None and proc.returncode < 0
