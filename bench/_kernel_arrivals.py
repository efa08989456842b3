"""A loopback HTTP server that notes when the kernel received each request's last byte.

    .venv/bin/python bench/_kernel_arrivals.py PORT CONTROL_PORT [CPU] [CERT KEY]

The server answers every `GET` on PORT with `200 ok` (keep-alive). Every
socket it reads has SO_TIMESTAMPNS on (set on the listener, so that segments
queued before `accept` are stamped too, and again on each accepted socket),
and it reads with `recvmsg`: the kernel hands over, with the bytes, the
CLOCK_REALTIME receive time of the last segment of that read, which for a
read that ends a request's head is the segment that carried its final byte.
The figures do not depend on when this process got round to reading.

Requests are heads only (`GET` without a body). A connection that opens with
the HTTP/2 preface is served as prior-knowledge h2c (the `h2` state
machine): a stream's stamp is that of the read that ended it (END_STREAM).
With CERT and KEY the port speaks TLS (ALPN h2 or http/1.1) through an
`ssl.SSLObject` on memory buffers, so the bytes are still read with
`recvmsg` and a request's stamp is that of the segment that completed the
TLS record holding its end.

A plain `GET /_arrivals` on CONTROL_PORT answers
`{"stamps": [...], "unstamped": k}`, the stamps (ns, CLOCK_REALTIME) since
the previous call, and clears them. The server pins itself to CPU when one
is given. `KernelArrivalServer` starts it as a child process and reads the
stamps.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import StreamEnded

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CMSG_SPACE = socket.CMSG_SPACE(16)
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _State:
    stamps: list[int] = []
    unstamped = 0


def _stamp(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", payload[:16])
            return int(sec * 1_000_000_000 + nsec)
    return None


def _note(stamp: int | None) -> None:
    if stamp is None:
        _State.unstamped += 1
    else:
        _State.stamps.append(stamp)


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


class _Connection:
    """One accepted socket: optional TLS on memory buffers, then HTTP/1.1 or h2c by its preface."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        self.sock = sock
        self.pending = b""  # HTTP/1.1 bytes not yet ending a head
        self.h2: H2Connection | None = None
        self.tls: ssl.SSLObject | None = None
        if tls is not None:
            self.tls_in, self.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = tls.wrap_bio(self.tls_in, self.tls_out, server_side=True)
            self.handshaken = False

    def received(self, data: bytes, stamp: int | None) -> None:
        if self.tls is not None:
            data = self._decrypt(data)
        self._serve(data, stamp)

    def _decrypt(self, data: bytes) -> bytes:
        assert self.tls is not None
        self.tls_in.write(data)
        if not self.handshaken:
            try:
                self.tls.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                pass
            self._send(b"")
        plain = b""
        while self.handshaken:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            if not chunk:
                break
            plain += chunk
        return plain

    def _serve(self, data: bytes, stamp: int | None) -> None:
        if not data:
            return
        if self.h2 is None:
            pending = self.pending + data
            if H2_PREFACE.startswith(pending):  # the preface may come in pieces
                self.pending = pending
                return
            if pending.startswith(H2_PREFACE):
                self.h2 = H2Connection(H2Configuration(client_side=False))
                self.h2.initiate_connection()
                data = pending
        if self.h2 is not None:
            for event in self.h2.receive_data(data):
                if isinstance(event, StreamEnded):
                    _note(stamp)
                    self.h2.send_headers(
                        event.stream_id, [(":status", "200"), ("content-length", "2")]
                    )
                    self.h2.send_data(event.stream_id, b"ok", end_stream=True)
            self._send(self.h2.data_to_send())
            return
        buf = self.pending + data
        answers = 0
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            buf = buf[end + 4 :]
            answers += 1
            _note(stamp)
        self.pending = buf
        if answers:
            self._send(OK * answers)

    def _send(self, out: bytes) -> None:
        if self.tls is not None:
            if out:
                self.tls.write(out)
            out = self.tls_out.read()
        if not out:
            return
        self.sock.setblocking(True)  # answers to 100 streams can exceed one send
        try:
            self.sock.sendall(out)
        except OSError:
            pass
        finally:
            self.sock.setblocking(False)


def _read(sel: selectors.BaseSelector, sock: socket.socket, conns: dict[int, _Connection]) -> None:
    try:
        data, ancdata, _, _ = sock.recvmsg(65536, CMSG_SPACE)
    except BlockingIOError:
        return
    except OSError:
        data, ancdata = b"", []
    if not data:
        sel.unregister(sock)
        conns.pop(sock.fileno(), None)
        sock.close()
        return
    try:
        conns[sock.fileno()].received(data, _stamp(ancdata))
    except (ssl.SSLError, ValueError):
        sel.unregister(sock)
        conns.pop(sock.fileno(), None)
        sock.close()


def serve(port: int, control_port: int, tls: ssl.SSLContext | None) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    listener.setblocking(False)
    control = socket.create_server(("127.0.0.1", control_port))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(control, selectors.EVENT_READ)
    conns: dict[int, _Connection] = {}
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
                    conns[conn.fileno()] = _Connection(conn, tls)
                    sel.register(conn, selectors.EVENT_READ)
            else:
                _read(sel, sock, conns)


def server_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KernelArrivalServer:
    """The server above as a child process: `with KernelArrivalServer(cpu=1) as server:`.

    With `tls=True` the port speaks TLS with a certificate for 127.0.0.1 made
    for this run (trustme); `ca_path` is the CA to trust.
    """

    def __init__(self, cpu: int | None = None, tls: bool = False) -> None:
        self.port, self.control_port = free_port(), free_port()
        self.cpu = cpu
        self.tls = tls
        self.ca_path: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> KernelArrivalServer:
        command = [sys.executable, __file__, str(self.port), str(self.control_port)]
        command.append(str(self.cpu) if self.cpu is not None else "-")
        if self.tls:
            import trustme

            self._tmp = tempfile.TemporaryDirectory()
            ca = trustme.CA()
            issued = ca.issue_cert("127.0.0.1")
            folder = Path(self._tmp.name)
            self.ca_path = folder / "ca.pem"
            ca.cert_pem.write_to_path(str(self.ca_path))
            issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
            issued.private_key_pem.write_to_path(str(folder / "key.pem"))
            command += [str(folder / "cert.pem"), str(folder / "key.pem")]
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
        if self._tmp is not None:
            self._tmp.cleanup()

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
    if len(sys.argv) > 3 and sys.argv[3] != "-":
        os.sched_setaffinity(0, {int(sys.argv[3])})
    context = server_context(sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None
    serve(int(sys.argv[1]), int(sys.argv[2]), context)
