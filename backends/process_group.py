"""Owning a server's whole process tree from Python: a group leader that dies with its owner,
signals to the group, a free port, and readiness probes over plain HTTP. Standard library only,
so the leader script runs under any interpreter (vLLM's own venv included)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

GROUP_LEADER = """
import ctypes, os, signal, subprocess, sys, threading

def kill_group():
    os.killpg(0, signal.SIGKILL)

def watch_owner():
    while os.read(0, 4096):
        pass
    kill_group()

def die_with_supervisor():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)

signal.signal(signal.SIGTERM, lambda *_: None)
signal.signal(signal.SIGINT, lambda *_: None)
threading.Thread(target=watch_owner, daemon=True).start()
server = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, preexec_fn=die_with_supervisor)
code = server.wait()
sys.exit(code if code >= 0 else 128 - code)
"""
"""The server's group leader, run by the same interpreter (standard library only).

A parent-death signal alone is not enough: it reaches one process, not the engine and worker
processes vLLM forks, and it fires when the *thread* that spawned the child ends. So the leader
watches a pipe whose only writer is the owner: end of file means the owner is gone, and the leader
kills the whole group. The vLLM process itself gets a parent-death signal tied to the leader. A
SIGTERM to the group reaches vLLM (which shuts down cleanly) while the leader waits for it and
passes its exit code on."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return  # the group is already gone, which is what the signal was for


def kill_marked(variable: str, value: str) -> list[int]:
    """SIGKILL every process whose environment has ``variable=value``; return their pids.

    The environment is inherited, so this reaches descendants that left the process group (a
    helper started in a new session) too. Linux only (reads /proc); elsewhere it finds nothing."""
    needle = f"{variable}={value}".encode()
    killed: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return killed
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in environ:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(int(entry.name))
    return killed


async def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> bytes | None:
    """The body of a ``GET`` answered 200, else ``None`` (refused, closed early, other status).

    A bare HTTP/1.0 exchange keeps the manager free of an HTTP client dependency and of blocking
    calls in the event loop.
    """
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        return None
    return body


def first_model_id(body: bytes) -> str | None:
    try:
        data: Any = json.loads(body)
        return str(data["data"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
