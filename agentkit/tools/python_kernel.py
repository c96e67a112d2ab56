"""The persistent Python interpreter behind the ``python`` tool, and the client that talks to it.

agentkit never imports this module: :mod:`agentkit.tools.python_tool` copies its source into the
sandbox and runs it there with the sandbox's own ``python3``. So it runs on any Python from 3.5
on (no f-strings, no variable annotations, nothing outside the standard library).

Two roles, one file::

    python3 kernel.py kernel DIR WORKDIR WATCH_PID
    python3 -S kernel.py client DIR WORKDIR TIMEOUT GRACE TOKEN   < base64 of the code

The **kernel** is a long-lived interpreter in its own session (so a shell command's timeout,
which signals the shell's process group, never reaches it), started in WORKDIR and listening on
``DIR/kernel.sock``. It runs one cell per connection in one ``__main__`` namespace, so variables,
imports and the working directory persist. The cell's standard output and error, at the file
descriptor level (so ``print``, ``os.system`` and subprocesses all land in the same place, in
order), go to a pipe the client hands over with the request (``SCM_RIGHTS``): what a cell printed
before it crashed is already in the client's pipe, including :mod:`faulthandler`'s dump of a
segfault. A final expression's ``repr`` is printed as in a REPL; an exception prints its
traceback without the kernel's own frames; ``input()`` raises :class:`EOFError` with
:data:`INPUT_REFUSED`. SIGINT raises :class:`KeyboardInterrupt` only while a cell runs. The
kernel exits, killing its process group and removing DIR, when WATCH_PID (the runtime's
persistent shell) ends, so it never outlives the runtime that started it.

The **client** runs once per cell: it connects to the kernel (starting one first when none
answers), sends the code, collects the output (head and tail, bounded), and on a timeout sends
SIGINT to the kernel's process group every GRACE seconds, a few times, then SIGKILL. It writes
``DIR/result``: a JSON header line (token, status, restarted, timed_out, dropped, detail) and the
raw output bytes. The tool reads that file and shapes the output as any command's.
"""

# This file runs on the sandbox's Python, which may be as old as 3.5: no ``X | None``, no builtin
# generics in annotations, no f-strings.
# ruff: noqa: UP004, UP006, UP031, UP035, UP045

import array
import base64
import builtins
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

# The client runs once per call, so what only the kernel needs is imported where it is used.

SOCKET = "kernel.sock"
PID_FILE = "kernel.pid"
LOG_FILE = "kernel.log"
RESULT_FILE = "result"

INPUT_REFUSED = (
    "input() is not available here: the interpreter's standard input is not a keyboard and "
    "nothing can type an answer. Put the value in the code instead."
)

START_TIMEOUT_S = 60.0
INTERRUPT_ROUNDS = 3
OUTPUT_HEAD = 256 * 1024
OUTPUT_TAIL = 256 * 1024


# ---- framing: one byte of kind, four of length, the payload ------------------------------------


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(kind + struct.pack(">I", len(payload)) + payload)


class FrameReader(object):
    """Frames from a socket; a timeout leaves what was read so far in the buffer."""

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self.sock = sock
        self.buffer = initial

    def frame(self) -> Optional[Tuple[bytes, bytes]]:
        """The next whole frame already buffered, or None."""
        if len(self.buffer) < 5:
            return None
        (size,) = struct.unpack(">I", self.buffer[1:5])
        if len(self.buffer) < 5 + size:
            return None
        kind, payload = self.buffer[:1], self.buffer[5 : 5 + size]
        self.buffer = self.buffer[5 + size :]
        return kind, payload

    def fill(self) -> bool:
        """Read once more from the socket; False at end of stream."""
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def read(self) -> Optional[Tuple[bytes, bytes]]:
        """Block for the next frame; None at end of stream."""
        while True:
            found = self.frame()
            if found is not None:
                return found
            if not self.fill():
                return None


# ---- the kernel ---------------------------------------------------------------------------------


def refuse_input(prompt: Any = "") -> str:
    raise EOFError(INPUT_REFUSED)


def text_stream(fd: int) -> Any:
    """Unbuffered text on a file descriptor, as ``python -u`` makes it: stdout and stderr stay in
    order, and text that cannot be encoded is escaped instead of failing the cell."""
    import io

    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=True,
    )


class Kernel(object):
    def __init__(self, directory: str) -> None:
        import types

        self.directory = directory
        self.running = False
        self.count = 0
        self.module = types.ModuleType("__main__")
        self.module.__dict__["__builtins__"] = builtins
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.stdout = text_stream(1)
        self.stderr = text_stream(2)
        self.own_file = Kernel.execute.__code__.co_filename

    def setup(self) -> None:
        import faulthandler

        sys.modules["__main__"] = self.module
        if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
            sys.path[0] = ""  # like ``python -c`` and the REPL: the working directory first
        os.dup2(self.devnull, 0)
        os.dup2(self.devnull, 1)
        os.dup2(self.devnull, 2)
        sys.stdin = open(os.devnull)
        builtins.input = refuse_input  # type: ignore[assignment]
        signal.signal(signal.SIGINT, self.on_sigint)
        faulthandler.enable(file=self.stderr)

    def on_sigint(self, signum: int, frame: Any) -> None:
        if self.running:
            raise KeyboardInterrupt

    def serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except InterruptedError:
                continue
            try:
                self.handle(conn)
            except OSError:
                pass  # the client went away (it was killed); the next one gets a fresh connection
            finally:
                conn.close()

    def handle(self, conn: socket.socket) -> None:
        fds = array.array("i")
        data, ancillary, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        reader = FrameReader(conn, data)
        frame = reader.read()
        if frame is None or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return
        request = json.loads(frame[1].decode("utf-8"))
        out = fds[0]
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        if self.stdout.closed:  # a cell closed them; later cells still need somewhere to print
            self.stdout = text_stream(1)
        if self.stderr.closed:
            self.stderr = text_stream(2)
        sys.stdout, sys.stderr = self.stdout, self.stderr
        try:
            status = self.execute(request["code"])
        finally:
            self.running = False
            try:
                os.write(1, request["marker"].encode("ascii"))
            except OSError:
                pass  # the client's end of the pipe is closed: nobody is reading anyway
            os.dup2(self.devnull, 1)
            os.dup2(self.devnull, 2)
        send_frame(conn, b"r", json.dumps({"status": status}).encode("ascii"))

    def execute(self, code: str) -> str:
        """Run one cell; its status: ``ok``, ``error`` or ``interrupted``."""
        import ast
        import linecache
        import traceback

        self.count += 1
        name = "<cell %d>" % self.count
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        try:
            tree = ast.parse(code, name, "exec")
            last = None
            final = tree.body[-1] if tree.body else None
            if isinstance(final, ast.Expr):
                tree.body.pop()
                last = ast.Expression(final.value)
            body = compile(tree, name, "exec")
            tail = compile(last, name, "eval") if last is not None else None
        except (SyntaxError, ValueError, OverflowError, UnicodeError) as exc:
            self.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
            return "error"
        namespace = self.module.__dict__
        try:
            self.running = True
            exec(body, namespace)
            if tail is not None:
                value = eval(tail, namespace)
                if value is not None:
                    namespace["_"] = value
                    self.stdout.write(repr(value) + "\n")
            self.running = False
            return "ok"
        except BaseException as exc:  # noqa: BLE001 - the cell's own error, shown to the model
            self.running = False
            self.show(exc)
            return "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"

    def show(self, exc: BaseException) -> None:
        """The traceback as Python prints it, without the kernel's frames (the cell's caller at
        the top, ``input()``'s refusal or the SIGINT handler at the bottom)."""
        import traceback

        report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        seen = set()  # type: set[int]
        pending = [report]  # type: List[Any]
        while pending:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            current.stack[:] = [f for f in current.stack if f.filename != self.own_file]
            pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        try:
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError):
            pass  # the cell replaced or closed sys.stdout; the traceback goes to our own stream
        self.stderr.write("".join(report.format()))

    def shutdown(self) -> None:
        """The runtime that started us is gone: remove our files and end the process group."""
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(0)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def watch(pid: int, on_exit: Any) -> None:
    """Call ``on_exit`` (in a thread) when process ``pid`` ends."""
    import threading

    def wait() -> None:
        fd = None
        if hasattr(os, "pidfd_open"):
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                on_exit()
            except OSError:
                fd = None  # an old kernel: poll instead
        if fd is not None:
            select.select([fd], [], [])
        else:
            while alive(pid):
                time.sleep(0.2)
        on_exit()

    thread = threading.Thread(target=wait, name="agentkit-watch")
    thread.daemon = True
    thread.start()


def kernel_main(directory: str, workdir: str, watch_pid: int) -> None:
    os.chdir(workdir)
    path = os.path.join(directory, SOCKET)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # no stale socket: the usual case
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    kernel = Kernel(directory)
    kernel.setup()
    if watch_pid > 1:
        watch(watch_pid, kernel.shutdown)
    pid_path = os.path.join(directory, PID_FILE)
    with open(pid_path + ".tmp", "w") as pid_file:
        pid_file.write(str(os.getpid()))
    os.rename(pid_path + ".tmp", pid_path)
    kernel.serve(server)


# ---- the client ---------------------------------------------------------------------------------


class StartError(Exception):
    pass


class Output(object):
    """The first OUTPUT_HEAD bytes and the last OUTPUT_TAIL; the middle is only counted. Stops at
    the kernel's end-of-cell marker."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.head = b""
        self.tail = b""
        self.dropped = 0
        self.carry = b""
        self.complete = False

    def feed(self, data: bytes) -> None:
        if self.complete:
            return
        data = self.carry + data
        index = data.find(self.marker)
        if index >= 0:
            self.complete = True
            self.carry = b""
            self.keep(data[:index])
            return
        keep = len(self.marker) - 1
        self.carry = data[-keep:] if len(data) > keep else data
        self.keep(data[: len(data) - len(self.carry)])

    def finish(self) -> None:
        self.keep(self.carry)
        self.carry = b""

    def keep(self, data: bytes) -> None:
        room = OUTPUT_HEAD - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > OUTPUT_TAIL:
            self.dropped += len(self.tail) - OUTPUT_TAIL
            self.tail = self.tail[-OUTPUT_TAIL:]


def connect(path: str) -> Optional[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def start_kernel(directory: str, workdir: str) -> Tuple[socket.socket, bool]:
    """A connection to the kernel, starting one when none answers; and whether an earlier
    kernel had been running (its state is gone)."""
    import subprocess

    path = os.path.join(directory, SOCKET)
    sock = connect(path)
    if sock is not None:
        return sock, False
    pid_path = os.path.join(directory, PID_FILE)
    restarted = os.path.exists(pid_path)
    if restarted:
        os.unlink(pid_path)
    log_path = os.path.join(directory, LOG_FILE)
    parent = str(os.getppid())  # the runtime's shell: the kernel lives as long as it does
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "kernel", directory, workdir, parent],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if os.path.exists(pid_path):
            sock = connect(path)
            if sock is not None:
                return sock, restarted
        if process.poll() is not None:
            with open(log_path, "rb") as log:
                text = log.read().decode("utf-8", "replace").strip()
            raise StartError(text[-2000:] or "it exited with status %d" % process.returncode)
        time.sleep(0.005)
    process.kill()
    raise StartError("it did not answer within %d seconds" % START_TIMEOUT_S)


def signal_kernel(directory: str, sig: int) -> Optional[int]:
    """Signal the kernel's process group; the kernel's pid, or None when there is none."""
    try:
        with open(os.path.join(directory, PID_FILE)) as pid_file:
            pid = int(pid_file.read().strip())
        os.killpg(pid, sig)
    except (OSError, ValueError):
        return None  # no kernel to signal: it is already gone
    return pid


def converse(
    sock: socket.socket, code: str, timeout: Optional[float], grace: float, directory: str
) -> Tuple[str, bool, Output]:
    """Run ``code`` in the kernel; its status, whether it was interrupted, and its output."""
    marker = "\n__agentkit_cell_end_%s__\n" % os.urandom(8).hex()
    output = Output(marker.encode("ascii"))
    read_end, write_end = os.pipe()
    request = json.dumps({"code": code, "marker": marker}).encode("ascii")
    payload = b"c" + struct.pack(">I", len(request)) + request
    fds = array.array("i", [write_end])
    sent = sock.sendmsg([payload[:65536]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    os.close(write_end)
    if sent < len(payload):
        sock.sendall(payload[sent:])
    reader = FrameReader(sock)
    deadline = None if timeout is None else time.time() + timeout
    signals = 0
    status = None  # type: Optional[str]
    streams = [sock, read_end]  # type: List[Any]
    while status is None or not output.complete:
        wait = None if deadline is None else max(0.0, deadline - time.time())
        ready, _, _ = select.select(streams, [], [], wait)
        if not ready:
            if status is not None:
                break  # the cell ended but a process it started still holds its output open
            if signals < INTERRUPT_ROUNDS:
                signal_kernel(directory, signal.SIGINT)
                signals += 1
                deadline = time.time() + grace
                continue
            pid = signal_kernel(directory, signal.SIGKILL)
            deadline = time.time() + 10
            while pid is not None and alive(pid) and time.time() < deadline:
                time.sleep(0.005)
            status = "killed"
            break
        if read_end in ready:
            data = os.read(read_end, 65536)
            if data:
                output.feed(data)
            else:
                streams.remove(read_end)
                output.complete = True
        if sock in ready:
            if not reader.fill():
                status = "died"
                break
            frame = reader.frame()
            if frame is not None and frame[0] == b"r":
                status = json.loads(frame[1].decode("ascii"))["status"]
                streams = [read_end] if read_end in streams else []
                deadline = time.time() + grace
    if status in ("died", "killed"):
        drain(read_end, output)
        try:
            os.unlink(os.path.join(directory, PID_FILE))
        except OSError:
            pass  # already removed
    os.close(read_end)
    output.finish()
    return status or "died", signals > 0, output


def drain(fd: int, output: Output) -> None:
    """What a dead kernel left in the pipe (a segfault's dump, say), without waiting for more."""
    while not output.complete:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            return
        data = os.read(fd, 65536)
        if not data:
            return
        output.feed(data)


def write_result(directory: str, header: Dict[str, Any], body: bytes) -> None:
    path = os.path.join(directory, RESULT_FILE)
    with open(path + ".tmp", "wb") as result:
        result.write(json.dumps(header).encode("ascii") + b"\n" + body)
    os.rename(path + ".tmp", path)


def client_main(directory: str, workdir: str, timeout: str, grace: str, token: str) -> None:
    code = base64.b64decode(sys.stdin.buffer.read()).decode("utf-8", "surrogatepass")
    header = {
        "token": token,
        "status": "start_failed",
        "restarted": False,
        "timed_out": False,
        "dropped": 0,
        "detail": "",
        "python": sys.executable,
    }  # type: Dict[str, Any]
    body = b""
    try:
        sock, header["restarted"] = start_kernel(directory, workdir)
    except (StartError, OSError) as exc:
        header["detail"] = str(exc)
        write_result(directory, header, body)
        return
    limit = None if timeout == "none" else float(timeout)
    try:
        status, timed_out, output = converse(sock, code, limit, float(grace), directory)
    finally:
        sock.close()
    header.update(status=status, timed_out=timed_out, dropped=output.dropped)
    write_result(directory, header, output.head + output.tail)
    if status in ("died", "killed"):
        # Start the next kernel now: the next call finds it ready, and a runtime closed before
        # then still has a kernel to notice it and remove this directory.
        try:
            start_kernel(directory, workdir)[0].close()
        except (StartError, OSError):
            pass  # the next call tries again, and reports what goes wrong


def main(argv: List[str]) -> None:
    role = argv[1]
    if role == "kernel":
        kernel_main(argv[2], argv[3], int(argv[4]))
    elif role == "client":
        client_main(argv[2], argv[3], argv[4], argv[5], argv[6])
    else:
        raise SystemExit("unknown role %r" % role)


if __name__ == "__main__":
    main(sys.argv)
