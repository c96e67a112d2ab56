"""Making sure no container outlives the process that started it.

Leaked containers are the most common sandbox defect in agent tools, so cleanup has four layers,
each covering what the one before can miss:

1. :meth:`DockerRuntime.close` removes the container (kill + remove, no 10 s ``docker stop``);
2. an ``atexit`` hook removes every container this process still owns (normal exit, an unhandled
   exception, Ctrl-C, and SIGTERM/SIGHUP, which are turned into ``SystemExit`` so ``atexit`` runs);
3. the container's main process blocks reading its attached stdin and exits on EOF; the owner
   holds the only attach connection, so when the owner dies — even by SIGKILL — the kernel closes
   the connection, the engine closes stdin, the container exits and ``--rm`` removes it;
4. :func:`reap_orphans` at start-up removes labelled containers whose owner process is dead (a
   crashed engine connection, an engine restart), identified by pid *and* process start time so
   a reused pid is not mistaken for the owner.

Owner labels name one process and one run. A whole session of several processes (a test suite
and the ``agentkit`` CLI processes it spawns) is named by setting ``AGENTKIT_SESSION_ID`` in the
environment, which children inherit: every container then also carries ``agentkit.session``, so
one label query finds the session's containers whichever process started them.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

LABEL_OWNER = "agentkit.owner"
LABEL_OWNER_START = "agentkit.owner_start"
LABEL_HOST = "agentkit.host"
LABEL_RUN = "agentkit.run"
LABEL_SESSION = "agentkit.session"
SESSION_ENV = "AGENTKIT_SESSION_ID"
"""Environment variable whose value, when set and not empty, becomes the ``agentkit.session`` label."""

KEEPALIVE_COMMAND = ["/bin/sh", "-c", "while read -r _; do :; done"]
"""PID 1's child: lives exactly as long as the owner's attach connection (stdin) is open."""

_live: dict[str, str] = {}
"""Container id → name, for every container this process has started and not yet removed."""
_lock = threading.Lock()
_hooks_installed = False


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()[19].decode()


def owner_labels(run_id: str) -> dict[str, str]:
    """Labels for a container this process starts for run ``run_id``.

    They name the owner (pid, its start time, host) for :func:`reap_orphans`, the run, and — only
    when ``AGENTKIT_SESSION_ID`` is set and not empty — the session (``agentkit.session``).
    """
    pid = os.getpid()
    labels = {
        LABEL_OWNER: str(pid),
        LABEL_OWNER_START: process_start_time(pid) or "",
        LABEL_HOST: socket.gethostname(),
        LABEL_RUN: run_id,
    }
    session = os.environ.get(SESSION_ENV)
    if session:
        labels[LABEL_SESSION] = session
    return labels


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the process named by a container's labels still runs on this host.

    A container started from another host (same engine over TCP) counts as alive: we cannot see
    its owner, so we must not remove it.
    """
    if labels.get(LABEL_HOST, socket.gethostname()) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(LABEL_OWNER, ""))
    except ValueError:
        return False
    started = process_start_time(pid)
    if started is None:
        return False
    expected = labels.get(LABEL_OWNER_START)
    return not expected or expected == started


def reap_orphans(client: docker.DockerClient | None = None) -> list[str]:
    """Remove agentkit containers (running or not) whose owner process is gone; return their names."""
    import docker

    client = client or docker.from_env()
    removed: list[str] = []
    # The low-level listing carries the labels in one call. The high-level one inspects each
    # container afterwards, and fails when another runtime's container is removed in between.
    for entry in client.api.containers(all=True, filters={"label": LABEL_OWNER}):
        if owner_alive(entry.get("Labels") or {}):
            continue
        name = (entry.get("Names") or [entry["Id"]])[0].lstrip("/")
        try:
            client.api.remove_container(entry["Id"], force=True)
        except docker.errors.NotFound:
            continue  # removed meanwhile (auto-remove raced us)
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
        removed.append(name)
    return removed


def track(container_id: str, name: str) -> None:
    with _lock:
        _live[container_id] = name
    _install_hooks()


def untrack(container_id: str) -> None:
    with _lock:
        _live.pop(container_id, None)


def remove_container(client: Any, container_id: str) -> None:
    """Kill and remove, ignoring a container that is already gone."""
    import docker

    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass  # already removed: the goal is reached
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise
    untrack(container_id)


def _remove_all_live() -> None:
    with _lock:
        ids = list(_live)
    if not ids:
        return
    import docker

    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return  # engine unreachable at exit; the stdin binding still ends the containers
    for cid in ids:
        try:
            remove_container(client, cid)
        except docker.errors.DockerException:
            continue  # best effort at exit; the stdin binding and the reaper cover the rest


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _install_hooks() -> None:
    """Register the atexit hook and, where nobody else handles them, SIGTERM/SIGHUP → SystemExit."""
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_remove_all_live)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _exit_on_signal)
