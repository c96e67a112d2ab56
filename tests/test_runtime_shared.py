"""Behaviour every runtime shares, run against LocalRuntime and DockerRuntime alike."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentkit.runtime import DockerRuntime, LocalRuntime, Runtime
from agentkit.runtime.output import BINARY_NOTE, EMPTY_FAILED, EMPTY_OK


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime: Runtime
    if request.param == "local":
        runtime = LocalRuntime(tmp_path / "work", output_limit=2000)
    else:
        runtime = DockerRuntime(
            request.getfixturevalue("docker_image"), memory="512m", cpus=1.0, output_limit=2000
        )
    async with runtime:
        yield runtime


async def test_cwd_and_env_persist(rt: Runtime) -> None:
    await rt.run("mkdir -p sub && cd sub && export AK_X=42 && MYVAR=7")
    r = await rt.run("pwd; echo $AK_X $MYVAR")
    assert r.output == f"{rt.workdir}/sub\n42 7\n" and r.exit_code == 0


async def test_exit_codes(rt: Runtime) -> None:
    assert (await rt.run("true")).exit_code == 0
    r = await rt.run("echo out; echo err >&2; (exit 5)")
    assert r.exit_code == 5 and r.output == "out\nerr\n"


async def test_stateless_does_not_persist_cd(rt: Runtime) -> None:
    r = await rt.run("cd / && pwd", stateless=True)
    assert r.output == "/\n" and r.exit_code == 0
    assert (await rt.run("pwd", stateless=True)).output == f"{rt.workdir}\n"
    assert (await rt.run("pwd")).output == f"{rt.workdir}\n"


async def test_timeout_interrupts_and_session_survives(rt: Runtime) -> None:
    await rt.run("cd /tmp && export KEEP=yes")
    r = await rt.run("echo started; sleep 60; echo never", timeout=1)
    assert r.timed_out and r.exit_code is None
    assert r.output == "started\n"
    r = await rt.run("echo ok; pwd; echo $KEEP")
    assert r.output == "ok\n/tmp\nyes\n" and r.exit_code == 0


async def test_timeout_of_loop_and_sigint_ignoring_program(rt: Runtime) -> None:
    r = await rt.run("for i in 1 2 3; do sleep 30; done; echo never", timeout=0.5)
    assert r.timed_out and "never" not in r.output
    stubborn = "python3 -c 'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'"
    r = await rt.run(stubborn, timeout=0.5)
    assert r.timed_out
    assert (await rt.run("echo alive")).output == "alive\n"


async def test_stateless_timeout_kills_group(rt: Runtime) -> None:
    r = await rt.run("sleep 60 & sleep 60; echo never", timeout=0.5, stateless=True)
    assert r.timed_out and r.exit_code is None and "never" not in r.output
    await rt.run("sleep 0.3")
    assert (
        "sleep 60"
        not in (await rt.run("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '")).output
    )


async def test_huge_output_is_cut_in_the_middle(rt: Runtime) -> None:
    r = await rt.run("seq 1 200000")
    assert r.truncated and r.exit_code == 0
    assert r.output.startswith("1\n2\n3\n") and r.output.endswith("199999\n200000\n")
    assert "characters cut from the middle" in r.output and len(r.output) < 2300


async def test_binary_output_made_safe(rt: Runtime) -> None:
    r = await rt.run("head -c 3000 /bin/bash")
    assert r.output == BINARY_NOTE.format(size=3000)


async def test_empty_output_messages(rt: Runtime) -> None:
    assert (await rt.run("true")).output == EMPTY_OK
    assert (await rt.run("false")).output == EMPTY_FAILED.format(exit_code=1)


async def test_syntax_error_runs_nothing_and_session_survives(rt: Runtime) -> None:
    await rt.run("cd /tmp && export KEEP=yes")
    r = await rt.run("touch made_it\nif then fi )")
    assert r.exit_code == 2 and "syntax error" in r.output
    assert (await rt.run("ls made_it")).exit_code != 0
    r = await rt.run("touch made_it\necho $(fi)")  # bash 5.2's eval would end a shell on this one
    assert r.exit_code == 2 and "syntax error" in r.output
    assert (await rt.run("ls made_it; pwd; echo $KEEP")).output.endswith("/tmp\nyes\n")
    r = await rt.run("echo fine", stateless=True)
    assert r.output == "fine\n"
    r = await rt.run("touch made_it\n)", stateless=True)
    assert r.exit_code == 2 and "syntax error" in r.output
    assert (await rt.run("ls made_it")).exit_code != 0


SYNTAX_ERRORS = [
    "fi",
    "if true; then\n  echo x",
    "echo 'unclosed",
    'echo "unclosed',
    "echo $(",
    "echo )",
    ":\n:\n:\n:\nfi",
    "for f in a b; do\n  : $f\ndone\ndone",
    "case x in",
    "echo $(fi)",
    "diff <(if) x",
    "x=(1",
    "[[ x",
    "}; touch ran; f() { :",
    "); touch ran; (",
]
"""Commands bash rejects; in none of them does bash -c print anything before the error."""

NOT_ERRORS = [
    "cat <<EOF\nan unclosed heredoc is only a warning",
    "echo trailing \\",
    "echo a\necho ${x!}\necho b",
    "echo ok # comment",
    "",
]
"""Commands that look broken to a naive check, or whose runtime errors name a line."""


def bash_c(rt: Runtime, command: str) -> tuple[str, int]:
    """What a fresh ``bash -c COMMAND`` prints (stdout and stderr merged) and its exit status, in
    the same sandbox and directory as ``rt``: the reference for what the model must see."""
    argv = ["bash", "-c", command]
    if isinstance(rt, DockerRuntime):
        assert rt.container_id is not None
        # merged in the container: `docker exec` passes stdout and stderr on separately
        merged = ["bash", "-c", 'exec bash -c "$1" bash 2>&1', "bash", command]
        argv = ["docker", "exec", "-w", rt.workdir, rt.container_id, *merged]
    done = subprocess.run(
        argv,
        cwd=rt.workdir if isinstance(rt, LocalRuntime) else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
    )
    return done.stdout, done.returncode


@pytest.mark.parametrize("stateless", [False, True], ids=["persistent", "stateless"])
async def test_syntax_errors_read_as_bash_c_prints_them(rt: Runtime, stateless: bool) -> None:
    """The model sees bash's own report about its own command (its line numbers, no wrapper, no
    internal names), exit status 2, and nothing of the command ran."""
    await rt.run("true")  # start the sandbox, so bash_c can reach it
    for command in SYNTAX_ERRORS:
        expected, _ = bash_c(rt, command)
        r = await rt.run(command, stateless=stateless)
        assert (r.output, r.exit_code) == (expected, 2), command
        assert "__ak" not in r.output and "eval" not in r.output
    assert (await rt.run("ls ran")).exit_code != 0
    for command in NOT_ERRORS:
        expected, code = bash_c(rt, command)
        r = await rt.run(command, stateless=stateless)
        if not expected:
            expected = EMPTY_OK if code == 0 else EMPTY_FAILED.format(exit_code=code)
        assert (r.output, r.exit_code) == (expected, code), command
    assert (await rt.run("echo alive", stateless=stateless)).output == "alive\n"


async def test_heredoc_and_stdin_reading_commands(rt: Runtime) -> None:
    r = await rt.run("cat > h.txt <<'EOF'\nline $HOME\n  indented\nEOF\ncat h.txt")
    assert r.output == "line $HOME\n  indented\n"
    r = await rt.run("cat; read -r x; echo after")  # reads /dev/null, does not eat the next command
    assert r.output == "after\n"
    assert (await rt.run("echo next")).output == "next\n"


async def test_shell_exit_restarts_with_a_note(rt: Runtime) -> None:
    await rt.run("cd /tmp")
    r = await rt.run("exit 3")
    assert r.exit_code == 3 and "shell session ended" in r.output
    r = await rt.run("pwd")
    assert r.output.startswith("[note: a new shell session was started")
    assert r.output.endswith(f"\n{rt.workdir}\n") and r.exit_code == 0


async def test_file_round_trips(rt: Runtime) -> None:
    blob = bytes(range(256)) * 10
    await rt.write_file("deep/er/blob.bin", blob)
    assert await rt.read_file("deep/er/blob.bin") == blob
    assert await rt.read_file(f"{rt.workdir}/deep/er/blob.bin") == blob
    await rt.write_file("latin.txt", "café".encode("latin-1"))
    assert await rt.read_file("latin.txt") == b"caf\xe9"
    await rt.write_file("text.txt", "héllo\n")
    assert (await rt.run("cat text.txt")).output == "héllo\n"
    with pytest.raises(FileNotFoundError):
        await rt.read_file("missing.txt")
    with pytest.raises(IsADirectoryError):
        await rt.read_file("deep")


async def test_write_keeps_executable_bit(rt: Runtime) -> None:
    await rt.write_file("run.sh", "#!/bin/sh\necho one\n")
    await rt.run("chmod +x run.sh")
    await rt.write_file("run.sh", "#!/bin/sh\necho two\n")
    assert (await rt.run("./run.sh")).output == "two\n"


async def test_upload_and_download_directory(rt: Runtime, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("print('a')\n")
    (src / "data.bin").write_bytes(b"\x00\xff" * 100)
    await rt.upload(src, "uploaded")
    r = await rt.run("(cd uploaded && python3 pkg/a.py && wc -c < data.bin)")
    assert r.output == "a\n200\n"
    await rt.run("echo new > uploaded/pkg/b.txt")
    dst = tmp_path / "back"
    await rt.download("uploaded", dst)
    assert (dst / "pkg" / "b.txt").read_text() == "new\n"
    assert (dst / "data.bin").read_bytes() == b"\x00\xff" * 100
    single = tmp_path / "one.txt"
    await rt.download("uploaded/pkg/a.py", single)
    assert single.read_text() == "print('a')\n"
    await rt.upload(single, "copies/one.txt")
    assert await rt.read_file("copies/one.txt") == b"print('a')\n"


async def test_cancelled_call_does_not_leak_into_the_next(rt: Runtime) -> None:
    import asyncio

    task = asyncio.ensure_future(rt.run("echo partial; sleep 30; echo late"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await rt.run("echo alive")
    assert r.output == "alive\n" and r.exit_code == 0
