"""LocalRuntime specifics (the shared behaviour is in test_runtime_shared.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentkit.runtime import LocalRuntime, SandboxError
from agentkit.runtime.process import group_members


async def test_temp_workdir_is_created_and_removed() -> None:
    rt = LocalRuntime()
    workdir = Path(rt.workdir)
    assert workdir.is_absolute() and workdir.is_dir()
    await rt.write_file("x.txt", "x")
    await rt.close()
    assert not workdir.exists()
    with pytest.raises(SandboxError):
        await rt.run("true")


async def test_given_workdir_is_kept_and_resolved(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    async with LocalRuntime("rel/dir", env={"AK_GIVEN": "v"}) as rt:
        assert rt.workdir == str(tmp_path / "rel" / "dir")
        r = await rt.run("pwd; echo $AK_GIVEN $PAGER $TERM")
        assert r.output == f"{rt.workdir}\nv cat dumb\n"
        r = await rt.run("echo $AK_GIVEN", stateless=True)
        assert r.output == "v\n"
    assert (tmp_path / "rel" / "dir").is_dir()


async def test_timeout_kills_children_but_keeps_the_shell(tmp_path: Path) -> None:
    async with LocalRuntime(tmp_path) as rt:
        r = await rt.run("sh -c 'trap \"\" INT; sleep 60; echo never'", timeout=0.5)
        assert r.timed_out and "never" not in r.output
        session = rt._session
        assert session is not None and session.shell_pid is not None
        pgid = session.shell_pid
        for _ in range(50):  # killed processes may take a moment to be reaped
            if group_members(pgid) == [pgid]:
                break
            await asyncio.sleep(0.05)
        assert group_members(pgid) == [pgid]
        assert (await rt.run("echo ok")).output == "ok\n"


async def test_close_kills_the_shell_group(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path)
    await rt.run("sleep 60 &")
    session = rt._session
    assert session is not None and session.shell_pid is not None
    pgid = session.shell_pid
    await rt.close()
    for _ in range(50):  # killed processes may take a moment to be reaped
        if not group_members(pgid):
            break
        await asyncio.sleep(0.05)
    assert group_members(pgid) == []


def test_a_sigkilled_owner_leaves_no_shell_behind(tmp_path: Path) -> None:
    """A busy command in the persistent shell must not outlive its owner, even when the owner is
    killed with SIGKILL (no cleanup code runs then)."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "owner.py"
    script.write_text(
        "import asyncio\n"
        "from agentkit.runtime import LocalRuntime\n"
        "async def main():\n"
        "    async with LocalRuntime() as rt:\n"
        "        print((await rt.run('echo $$')).output.strip(), flush=True)\n"
        "        await rt.run('while true; do :; done', timeout=300)\n"
        "asyncio.run(main())\n"
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    shell_pid = int(owner.stdout.readline())
    time.sleep(0.3)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{shell_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{shell_pid}").exists(), "the shell outlived its killed owner"


async def test_syntax_error_in_a_command_too_long_for_one_argument(tmp_path: Path) -> None:
    """Over 128 KiB a command cannot be an argument of `bash -n -c`; it is parsed from a pipe and
    still reported the way `bash -c` reports errors, and the session carries on."""
    command = "echo x\n" * 20_000 + "fi"
    async with LocalRuntime(tmp_path) as rt:
        r = await rt.run(command)
        assert r.exit_code == 2
        assert r.output == (
            "bash: -c: line 20001: syntax error near unexpected token `fi'\n"
            "bash: -c: line 20001: `fi'\n"
        )
        r = await rt.run("cat > big.txt <<'EOF'\n" + "y" * 200_000 + "\nEOF\nwc -c < big.txt")
        assert r.output == "200001\n" and r.exit_code == 0
