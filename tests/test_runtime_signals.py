"""Timeouts stop the whole command even when the owner starts with signals ignored.

An owner started as a background job of a script (``agentkit run … &``), or by some supervisors,
begins with SIGINT ignored; an ignored signal stays ignored across exec, and a non-interactive
bash can then neither trap nor reset it. Each scenario runs in a child interpreter started that
way, since the test process itself may or may not have been.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.runtime.child import reset_signals
from agentkit.runtime.process import signal_local_group
from agentkit.runtime.shell import ShellSession

IGNORED = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP)


def like_a_background_job() -> None:
    """Pre-exec hook: the dispositions a script's ``cmd &`` gives, and then some."""
    for sig in IGNORED:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


def owner(
    script: str, *args: str, preexec: Callable[[], object] = like_a_background_job
) -> dict[str, object]:
    """Run ``script`` (which prints one JSON object) in a fresh interpreter; return that object."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        preexec_fn=preexec,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


TIMEOUT_SCRIPT = """
    import asyncio, json, sys, time
    from agentkit.runtime import LocalRuntime

    async def main() -> None:
        stateless = sys.argv[1] == "stateless"
        async with LocalRuntime() as rt:
            await rt.run("cd /tmp && export KEEP=yes")
            started = time.monotonic()
            r = await rt.run("echo started; sleep 60; echo never", timeout=1, stateless=stateless)
            took = time.monotonic() - started
            later = await rt.run("sleep 1.2; echo after; pwd; echo $KEEP")
            print(json.dumps({"output": r.output, "timed_out": r.timed_out, "took": took,
                              "later": later.output}))

    asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["persistent", "stateless"])
def test_timeout_stops_the_command_when_the_owner_ignores_sigint(mode: str) -> None:
    result = owner(TIMEOUT_SCRIPT, mode)
    assert result["timed_out"] is True
    assert result["output"] == "started\n", result
    # SIGINT works again: no waiting out the grace period for SIGKILL
    assert isinstance(result["took"], float) and result["took"] < 1.8, result
    assert result["later"] == "after\n/tmp\nyes\n", result


DISPOSITIONS_SCRIPT = """
    import asyncio, json, sys
    from agentkit.runtime import LocalRuntime

    async def main() -> None:
        seen = {}
        async with LocalRuntime() as rt:
            for mode in ("persistent", "stateless"):
                r = await rt.run(
                    "grep -E '^Sig(Ign|Blk)' /proc/$$/status /proc/self/status",
                    stateless=mode == "stateless",
                )
                seen[mode] = r.output
        print(json.dumps(seen))

    asyncio.run(main())
"""


def test_shells_and_their_commands_start_with_default_signals() -> None:
    seen = owner(DISPOSITIONS_SCRIPT)
    sigint = 1 << (signal.SIGINT - 1)
    for mode, output in seen.items():
        assert isinstance(output, str)
        masks = {}
        for line in output.splitlines():
            where, mask = line.split(":\t")
            who = "command" if where.startswith("/proc/self/") else "shell"
            masks[who, where.rsplit(":", 1)[1]] = int(mask, 16)
        # what the shell starts gets every signal at its default and none blocked
        assert masks["command", "SigIgn"] == 0 and masks["command", "SigBlk"] == 0, (mode, output)
        # the shell itself may ignore SIGQUIT (bash does) but not SIGINT, which it traps
        assert masks["shell", "SigIgn"] & sigint == 0, (mode, output)


NEED_RESET_SCRIPT = """
    import json
    from agentkit.runtime.child import signals_need_reset
    print(json.dumps({"need": signals_need_reset()}))
"""


def test_signals_need_reset_only_when_something_is_ignored_or_blocked() -> None:
    assert owner(NEED_RESET_SCRIPT)["need"] is True
    assert owner(NEED_RESET_SCRIPT, preexec=reset_signals)["need"] is False


async def test_a_shell_that_cannot_trap_sigint_is_killed_rather_than_left_running(
    tmp_path: Path,
) -> None:
    """Where the shell is not our own child (a container engine starts it), it could still come
    up with SIGINT ignored; then a timeout ends the shell, and nothing after the command's
    current program runs."""
    argv = ["bash", "--norc", "--noprofile", "-c", "trap '' INT; exec bash --norc --noprofile"]
    session = ShellSession(argv, signal_local_group, workdir=str(tmp_path), interrupt_grace_s=0.3)
    await session.start()
    try:
        raw = await session.run("echo started; sleep 60; touch never", timeout=0.5)
        assert raw.timed_out and raw.shell_exited
        assert raw.data == b"started\n"
        assert not session.alive
    finally:
        await session.close()
    assert not (tmp_path / "never").exists()
