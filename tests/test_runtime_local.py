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
