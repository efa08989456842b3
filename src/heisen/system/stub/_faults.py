"""The four connection faults of WireMock, done to a real TCP connection.

What a client sees:
- `EMPTY_RESPONSE`: the connection closes (FIN) before any byte is sent.
- `MALFORMED_RESPONSE_CHUNK`: a 200 status line and chunked headers, then a
  chunk whose size line is not hexadecimal, then a close.
- `RANDOM_DATA_THEN_CLOSE`: bytes from the seeded RNG instead of a status
  line, then a close.
- `CONNECTION_RESET_BY_PEER`: `SO_LINGER {on, 0}` then close, so the kernel
  sends RST and the client's read fails with ECONNRESET.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from enum import StrEnum


class Fault(StrEnum):
    EMPTY_RESPONSE = "EMPTY_RESPONSE"
    MALFORMED_RESPONSE_CHUNK = "MALFORMED_RESPONSE_CHUNK"
    RANDOM_DATA_THEN_CLOSE = "RANDOM_DATA_THEN_CLOSE"
    CONNECTION_RESET_BY_PEER = "CONNECTION_RESET_BY_PEER"


FAULTS = tuple(f.value for f in Fault)
_MALFORMED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def inflict(fault: Fault, transport: asyncio.Transport, rng: random.Random) -> None:
    """Do `fault` to the connection behind `transport`; the transport is closed afterwards."""
    if fault is Fault.CONNECTION_RESET_BY_PEER:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return
    if fault is Fault.MALFORMED_RESPONSE_CHUNK:
        garbage = bytes(rng.choice(b"ghijklmnopqrstuvwxyz!#%&") for _ in range(24))
        transport.write(_MALFORMED_HEAD + garbage + b"\r\n" + garbage)
    elif fault is Fault.RANDOM_DATA_THEN_CLOSE:
        transport.write(rng.randbytes(64))
    transport.close()
