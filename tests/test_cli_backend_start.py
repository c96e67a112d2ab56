"""What ``agentkit run`` shows while a shared backend starts (``_Backends.start``).

A local vLLM server takes a minute or more to come up; meanwhile the run shows a status line with
the seconds so far and where the server's log is, then says how long the start took. A start
that fails stops the run with the backend's own message, and Ctrl-C stops the start.

The backend here is a fake, ``SlowStartingBackend``, and it is what these tests drive: its
``start`` only sleeps (the real server's start is exercised in test_vllm_server.py and
test_cli_vllm.py); like the real vLLM backend it has a ``log_path`` that is set once the start
begins. ``_Backends`` itself is the real one, built for a ``vllm:`` spec, with the fake put in
place of the backend it built (which was never started).
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest
from rich.console import Console

from agentkit.backend import BackendError
from agentkit.backends.registry import parse_backend_spec
from agentkit.cli.runner import _Backends
from agentkit.errors import UserFacingError
from agentkit.scaffolds import load_scaffold


class SlowStartingBackend:
    """A fake backend whose ``start`` sleeps ``seconds`` (then raises ``error``, if given)."""

    def __init__(self, log: Path, seconds: float, error: Exception | None = None) -> None:
        self.log, self.seconds, self.error = log, seconds, error
        self.log_path: Path | None = None
        self.began = self.finished = self.cancelled = False

    async def start(self) -> None:
        self.began, self.log_path = True, self.log
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        self.finished = True


class StatusRecorder:
    """Stands in for ``console.status``: records the text of every update (a robust view of what
    the spinner line showed, independent of the terminal's refresh timing)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str) -> StatusRecorder:
        self.texts.append(text)
        return self

    def __enter__(self) -> StatusRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, text: str) -> None:
        self.texts.append(text)


def backends_with(fake: SlowStartingBackend, tmp_path: Path) -> _Backends:
    """The run's real ``_Backends`` for a ``vllm:`` backend, with ``fake`` as its backend."""
    backends = _Backends(parse_backend_spec(f"vllm:{tmp_path}"), load_scaffold("mini"), [])
    assert backends.shared is not None and not backends.per_task
    backends.shared = fake  # type: ignore[assignment]
    return backends


def recording_console() -> Console:
    return Console(record=True, force_terminal=True, width=400, color_system=None)


async def test_the_status_shows_seconds_and_log_then_how_long_it_took(tmp_path):
    """Through rich's real spinner, recorded as a terminal shows it."""
    log = tmp_path / "logs" / "vllm-server.log"
    fake = SlowStartingBackend(log, seconds=2.6)
    console = recording_console()
    await backends_with(fake, tmp_path).start(console)

    assert fake.finished and not fake.cancelled
    shown = console.export_text()
    what = "Starting the vllm backend"
    # The first status comes before the start has run (no log yet); then one a second.
    assert f"{what} (0 s)" in shown
    shown_seconds = re.findall(rf"{what} \((\d+) s; log: {re.escape(str(log))}\)", shown)
    assert {"1", "2"} & set(shown_seconds), shown  # counting up, with the log named
    ready = re.findall(rf"^{what}: ready after (\d+) s$", shown, re.MULTILINE)
    assert len(ready) == 1 and 3 <= int(ready[0]) < 30, shown


async def test_every_status_update_counts_up_and_names_the_log(tmp_path, monkeypatch):
    """The same with ``console.status`` replaced by a recorder: every text it was given, in
    order, whatever the spinner's refresh timing."""
    log = tmp_path / "vllm.log"
    fake = SlowStartingBackend(log, seconds=2.2)
    console = recording_console()
    recorder = StatusRecorder()
    monkeypatch.setattr(console, "status", recorder)
    await backends_with(fake, tmp_path).start(console)
    what = "Starting the vllm backend"
    assert recorder.texts[:2] == [what, f"{what} (0 s)"]
    later = [
        re.fullmatch(rf"{what} \((\d+) s; log: {re.escape(str(log))}\)", t)
        for t in recorder.texts[2:]
    ]
    assert len(later) >= 2 and all(later), recorder.texts  # about one a second, each with the log
    seconds = [int(match.group(1)) for match in later if match]
    assert seconds == sorted(seconds) and seconds[-1] >= 2, recorder.texts
    assert "ready after" in console.export_text()


async def test_a_start_that_fails_is_the_backends_message_for_the_user(tmp_path):
    error = BackendError("Cannot start a vLLM server: no module named 'vllm' in /usr/bin/python3")
    fake = SlowStartingBackend(tmp_path / "vllm.log", seconds=0.2, error=error)
    console = recording_console()
    with pytest.raises(UserFacingError) as caught:
        await backends_with(fake, tmp_path).start(console)
    assert str(caught.value) == str(error) and caught.value.__cause__ is error
    assert "ready after" not in console.export_text()


async def test_another_exception_is_not_dressed_up_as_the_users_problem(tmp_path):
    fake = SlowStartingBackend(tmp_path / "vllm.log", seconds=0.1, error=RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        await backends_with(fake, tmp_path).start(recording_console())


def test_ctrl_c_cancels_the_start(tmp_path):
    """A real SIGINT, handled as ``asyncio.run`` handles it (the main task is cancelled)."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    fake = SlowStartingBackend(tmp_path / "vllm.log", seconds=60)
    console = recording_console()

    async def main() -> None:
        asyncio.get_running_loop().call_later(0.5, signal.raise_signal, signal.SIGINT)
        await backends_with(fake, tmp_path).start(console)

    with pytest.raises(KeyboardInterrupt), asyncio.Runner() as runner:
        runner.run(main())
    assert fake.began and fake.cancelled and not fake.finished
    assert "ready after" not in console.export_text()


async def test_a_cancelled_run_cancels_the_start(tmp_path):
    """The same through task cancellation (how a caller's timeout or shutdown reaches it)."""
    fake = SlowStartingBackend(tmp_path / "vllm.log", seconds=60)
    run = asyncio.ensure_future(backends_with(fake, tmp_path).start(recording_console()))
    await asyncio.sleep(0.3)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    for _ in range(50):  # the start's task receives its cancellation on the loop's next turn
        if fake.cancelled:
            break
        await asyncio.sleep(0.01)
    assert fake.began and fake.cancelled and not fake.finished


async def test_a_backend_without_start_shows_nothing(tmp_path):
    backends = _Backends(parse_backend_spec("gold"), load_scaffold("mini"), [])
    console = recording_console()
    await backends.start(console)
    assert console.export_text() == ""
