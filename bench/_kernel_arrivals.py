"""A loopback HTTP/1.1 server that notes when the kernel received each request's last byte.

    .venv/bin/python bench/_kernel_arrivals.py PORT CONTROL_PORT [CPU]

The server answers every `GET` on PORT with `200 ok` (keep-alive). Every
socket it reads has SO_TIMESTAMPNS on (set on the listener, so that segments
queued before `accept` are stamped too, and again on each accepted socket),
and it reads with `recvmsg`: the kernel hands over, with the bytes, the
CLOCK_REALTIME receive time of the last segment of that read, which for a
read that ends a request's head is the segment that carried its final byte.
The figures do not depend on when this process got round to reading.

Requests are heads only (`GET` without a body). A plain `GET /_arrivals` on
CONTROL_PORT answers `{"stamps": [...], "unstamped": k}`, the stamps (ns,
CLOCK_REALTIME) since the previous call, and clears them. The server pins
itself to CPU when one is given. `KernelArrivalServer` starts it as a child
process and reads the stamps.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import time
from types import TracebackType

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CMSG_SPACE = socket.CMSG_SPACE(16)


class _State:
    stamps: list[int] = []
    unstamped = 0


def _stamp(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", payload[:16])
            return int(sec * 1_000_000_000 + nsec)
    return None


def _answer_control(listener: socket.socket) -> None:
    """One blocking exchange: only called between bursts, so it may block the loop."""
    conn, _ = listener.accept()
    with conn:
        conn.setblocking(True)
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        body = json.dumps({"stamps": _State.stamps, "unstamped": _State.unstamped}).encode()
        _State.stamps, _State.unstamped = [], 0
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        conn.sendall(head + body)


def _read(sel: selectors.BaseSelector, sock: socket.socket, buffers: dict[int, bytes]) -> None:
    try:
        data, ancdata, _, _ = sock.recvmsg(65536, CMSG_SPACE)
    except BlockingIOError:
        return
    except OSError:
        data, ancdata = b"", []
    if not data:
        sel.unregister(sock)
        buffers.pop(sock.fileno(), None)
        sock.close()
        return
    stamp = _stamp(ancdata)
    buf = buffers[sock.fileno()] + data
    answers = 0
    while (end := buf.find(b"\r\n\r\n")) >= 0:
        buf = buf[end + 4 :]
        answers += 1
        if stamp is None:
            _State.unstamped += 1
        else:
            _State.stamps.append(stamp)
    buffers[sock.fileno()] = buf
    if answers:
        try:
            sock.send(OK * answers)  # a few dozen bytes: the send buffer always has room
        except OSError:
            pass


def serve(port: int, control_port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    listener.setblocking(False)
    control = socket.create_server(("127.0.0.1", control_port))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(control, selectors.EVENT_READ)
    buffers: dict[int, bytes] = {}
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is control:
                _answer_control(control)
            elif sock is listener:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                    conn.setblocking(False)
                    buffers[conn.fileno()] = b""
                    sel.register(conn, selectors.EVENT_READ)
            else:
                _read(sel, sock, buffers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KernelArrivalServer:
    """The server above as a child process: `with KernelArrivalServer(cpu=1) as server:`."""

    def __init__(self, cpu: int | None = None) -> None:
        self.port, self.control_port = free_port(), free_port()
        self.cpu = cpu
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> KernelArrivalServer:
        command = [sys.executable, __file__, str(self.port), str(self.control_port)]
        if self.cpu is not None:
            command.append(str(self.cpu))
        self._proc = subprocess.Popen(command)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.arrivals()
                return self
            except OSError:
                time.sleep(0.05)
        self._proc.kill()
        raise SystemExit("the kernel-arrival server did not start")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)

    def arrivals(self) -> tuple[list[int], int]:
        """(kernel stamps in ns since the last call, requests that came without one)."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as conn:
            conn.sendall(b"GET /_arrivals HTTP/1.1\r\nHost: control\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        answer = json.loads(data.split(b"\r\n\r\n", 1)[1])
        return list(answer["stamps"]), int(answer["unstamped"])


if __name__ == "__main__":
    if len(sys.argv) > 3:
        os.sched_setaffinity(0, {int(sys.argv[3])})
    serve(int(sys.argv[1]), int(sys.argv[2]))
